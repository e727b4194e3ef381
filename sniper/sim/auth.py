"""Signature verification, exactly as Gate checks it (gate-v4.md §1.2, §6.2, §7.2).

REST: ``KEY``/``Timestamp``/``SIGN`` headers; the signed string is
``METHOD\\n/api/v4/PATH\\nQUERY\\nsha512hex(BODY)\\nTIMESTAMP``. Clients differ in which form of
the query they sign: the official SDK signs ``unquote_plus`` of the query it sends, ccxt signs
the URL-encoded query as sent. Gate accepts both, so the simulator tries the decoded query
first and the raw one second.

Failures (label, HTTP status), checked in this order:

==========================  ======  =====================================================
missing KEY/Timestamp/SIGN  401     ``MISSING_REQUIRED_HEADER`` "Missing required header: X"
Timestamp not a number or   401     ``REQUEST_EXPIRED`` "gap between request Timestamp and
more than 60 s off                  server time exceeds 60" (Gate's status is unverified,
                                    400 or 401; 401 keeps it in the auth class everywhere)
unknown key                 401     ``INVALID_KEY``
signature mismatch          401     ``INVALID_SIGNATURE``
==========================  ======  =====================================================
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import unquote_plus

from sniper.core.signing import Credentials, Signer, body_sha512, rest_signature_payload, verify

KeyLookup = Callable[[str], "tuple[int, str] | None"]
"""``api_key -> (uid, secret)`` or ``None`` (the engine's ``user_by_key``)."""

TIMESTAMP_WINDOW_S = 60


class AuthFailedError(Exception):
    """Authentication failed; ``label``/``message``/``status`` are what Gate answers."""

    def __init__(self, label: str, message: str, status: int = 401) -> None:
        super().__init__(f"{label}: {message}")
        self.label = label
        self.message = message
        self.status = status


class Authenticator:
    """Verifies REST and WebSocket signatures against the simulator's users."""

    def __init__(self, lookup: KeyLookup) -> None:
        self._lookup = lookup
        self._signers: dict[str, tuple[int, Signer]] = {}

    def _signer(self, api_key: str) -> tuple[int, Signer]:
        cached = self._signers.get(api_key)
        if cached is not None:
            return cached
        found = self._lookup(api_key) if api_key else None
        if found is None:
            raise AuthFailedError("INVALID_KEY", "Invalid key provided")
        uid, secret = found
        entry = (uid, Signer(Credentials(api_key, secret)))
        self._signers[api_key] = entry
        return entry

    def verify_rest(
        self,
        method: str,
        path: str,
        raw_query: str,
        body: bytes,
        headers: Mapping[str, str],
        server_now_ms: int,
    ) -> int:
        """Check a signed REST request; return the user id or raise :class:`AuthFailedError`.

        ``path`` is the full request path (``/api/v4/...``), ``raw_query`` the query as sent.
        """
        api_key = headers.get("KEY")
        timestamp = headers.get("Timestamp")
        sign = headers.get("SIGN")
        for name, value in (("KEY", api_key), ("Timestamp", timestamp), ("SIGN", sign)):
            if not value:
                raise AuthFailedError("MISSING_REQUIRED_HEADER", f"Missing required header: {name}")
        assert api_key is not None
        assert timestamp is not None
        assert sign is not None
        check_timestamp(timestamp, server_now_ms)
        uid, signer = self._signer(api_key)
        digest = body_sha512(body)
        decoded = unquote_plus(raw_query)
        candidates = (decoded,) if decoded == raw_query else (decoded, raw_query)
        for query in candidates:
            payload = rest_signature_payload(method, path, query, digest, timestamp)
            if verify(signer.sign(payload), sign):
                return uid
        raise AuthFailedError("INVALID_SIGNATURE", "Signature mismatch")

    def verify_ws_channel(
        self, auth: Mapping[str, Any] | None, channel: str, event: str, time_s: Any
    ) -> int:
        """Check the ``auth`` object of a private-channel (un)subscribe; return the user id."""
        if not isinstance(auth, Mapping) or auth.get("method") != "api_key":
            raise AuthFailedError("MISSING_REQUIRED_HEADER", "auth required for private channel")
        uid, signer = self._signer(str(auth.get("KEY") or ""))
        expected = signer.sign(f"channel={channel}&event={event}&time={time_s}".encode())
        if not verify(expected, str(auth.get("SIGN") or "")):
            raise AuthFailedError("INVALID_SIGNATURE", "Signature mismatch")
        return uid

    def verify_ws_api(
        self,
        api_key: str,
        signature: str,
        timestamp: str,
        channel: str,
        req_param: Any,
        server_now_ms: int,
    ) -> int:
        """Check a WS trading API signature (``spot.login`` or a per-request signed call).

        The doc signs login over an empty ``req_param``; the official WS SDK signs ``"{}"`` for
        login and ``json.dumps(req_param)`` for other calls. All of them are accepted.
        """
        if not api_key or not signature or not timestamp:
            raise AuthFailedError(
                "MISSING_REQUIRED_HEADER", "api_key, signature and timestamp are required"
            )
        check_timestamp(timestamp, server_now_ms)
        uid, signer = self._signer(api_key)
        for param in _req_param_forms(req_param):
            if verify(signer.ws_api(channel, param, timestamp), signature):
                return uid
        raise AuthFailedError("INVALID_SIGNATURE", "Signature mismatch")


def check_timestamp(timestamp: str, server_now_ms: int) -> None:
    """Raise ``REQUEST_EXPIRED`` unless ``timestamp`` (seconds) is within 60 s of server time."""
    try:
        ts_s = Decimal(timestamp)
    except InvalidOperation:
        raise AuthFailedError("REQUEST_EXPIRED", f"invalid Timestamp {timestamp!r}") from None
    if not ts_s.is_finite() or abs(ts_s * 1000 - server_now_ms) > TIMESTAMP_WINDOW_S * 1000:
        raise AuthFailedError(
            "REQUEST_EXPIRED",
            f"gap between request Timestamp and server time exceeds {TIMESTAMP_WINDOW_S}",
        )


def _req_param_forms(req_param: Any) -> list[str]:
    if req_param in (None, "", {}):
        return ["", "{}"]
    if isinstance(req_param, str):
        return [req_param]
    return [
        json.dumps(req_param),
        json.dumps(req_param, separators=(",", ":")),
    ]
