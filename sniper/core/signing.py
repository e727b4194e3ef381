"""Gate API v4 signatures, as pure functions over the exact bytes that are sent.

REST (https://www.gate.com/docs/developers/apiv4/en/#authentication)::

    SIGN = hex(HMAC_SHA512(secret, METHOD \\n /api/v4/PATH \\n QUERY \\n sha512hex(BODY) \\n TS))

The path is the *full* path including ``/api/v4``; the query is the raw (unencoded) query in
wire order; the body hash is over the exact body bytes (the hash of ``b""`` when there is none).

WebSocket private channels: ``hex(HMAC_SHA512(secret, "channel=C&event=E&time=T"))``.
WebSocket trading API login: ``hex(HMAC_SHA512(secret, "api\\nspot.login\\n\\nTS"))``.

Nothing here reads a clock: the timestamp is always an argument.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from typing import Final

EMPTY_BODY_SHA512: Final = hashlib.sha512(b"").hexdigest()
REST_PREFIX: Final = "/api/v4"


@dataclass(frozen=True, slots=True)
class Credentials:
    """An API key pair. The secret never appears in ``repr``/``str``."""

    key: str
    secret: str = field(repr=False)

    def __post_init__(self) -> None:
        # A pasted trailing newline gives INVALID_SIGNATURE with no other hint.
        object.__setattr__(self, "key", self.key.strip())
        object.__setattr__(self, "secret", self.secret.strip())

    def __repr__(self) -> str:
        return f"Credentials(key={mask(self.key)!r}, secret='***')"

    __str__ = __repr__


def mask(value: str) -> str:
    """Mask a credential for display: first 4 characters then ``***``."""
    if len(value) <= 8:
        return "***"
    return value[:4] + "***"


def body_sha512(body: bytes) -> str:
    """Lower-case hex SHA-512 of the request body bytes."""
    if not body:
        return EMPTY_BODY_SHA512
    return hashlib.sha512(body).hexdigest()


def rest_signature_payload(
    method: str, path: str, query: str, body_hash: str, timestamp: str
) -> bytes:
    """The exact string Gate signs for a REST request (``path`` must include ``/api/v4``)."""
    return f"{method.upper()}\n{path}\n{query}\n{body_hash}\n{timestamp}".encode()


class Signer:
    """HMAC-SHA512 signer with the key schedule computed once (``hmac.copy`` per signature)."""

    __slots__ = ("_base", "key")

    def __init__(self, credentials: Credentials) -> None:
        self.key = credentials.key
        self._base = hmac.new(credentials.secret.encode(), digestmod=hashlib.sha512)

    def __repr__(self) -> str:
        return f"Signer(key={mask(self.key)!r})"

    def sign(self, message: bytes) -> str:
        """Hex HMAC-SHA512 of ``message``."""
        mac = self._base.copy()
        mac.update(message)
        return mac.hexdigest()

    def rest(
        self,
        method: str,
        path: str,
        query: str,
        body: bytes,
        timestamp: str,
        *,
        body_hash: str | None = None,
    ) -> str:
        """Signature of a REST request. ``body_hash`` may be passed when precomputed."""
        digest = body_hash if body_hash is not None else body_sha512(body)
        return self.sign(rest_signature_payload(method, path, query, digest, timestamp))

    def rest_headers(
        self, method: str, path: str, query: str, body: bytes, timestamp: str
    ) -> dict[str, str]:
        """The ``KEY``/``Timestamp``/``SIGN`` headers for a REST request."""
        return {
            "KEY": self.key,
            "Timestamp": timestamp,
            "SIGN": self.rest(method, path, query, body, timestamp),
        }

    def ws_channel(self, channel: str, event: str, time_s: int) -> str:
        """Signature for a private-channel subscribe/unsubscribe (``time`` of that request)."""
        return self.sign(f"channel={channel}&event={event}&time={time_s}".encode())

    def ws_api(self, channel: str, req_param: str, timestamp: str, event: str = "api") -> str:
        """Signature for the WS trading API; for ``spot.login`` ``req_param`` is ``""``."""
        return self.sign(f"{event}\n{channel}\n{req_param}\n{timestamp}".encode())


def sign_rest(
    secret: str, method: str, path: str, query: str, body: bytes, timestamp: str
) -> str:
    """One-shot REST signature (see :class:`Signer` for the reusable form)."""
    return Signer(Credentials("", secret)).rest(method, path, query, body, timestamp)


def verify(expected_hex: str, given_hex: str) -> bool:
    """Constant-time comparison of two hex signatures."""
    return hmac.compare_digest(expected_hex.encode(), given_hex.encode())
