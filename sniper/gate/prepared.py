"""Orders encoded ahead of time for the two hot paths, and the template cutting they share.

At arming, a sender encodes the whole request once with sentinel values in place of what is
only known at fire time (price, amount, and for the WebSocket trading API the request time
and ``x-gate-exptime``), finds each sentinel again by value and cuts the bytes around it
(:func:`cut_template`). At fire time only the segments and the value texts are joined, so no
field name or JSON encoder is needed on the hot path.

* :class:`PreparedOrder`: a ``POST /spot/orders`` body for
  :class:`~sniper.gate.rawhttp.RawHttpOrderSender` (gate-v4.md §2.4, §10).
* :class:`PreparedWsOrder`: a whole masked ``spot.order_place`` frame for
  :class:`~sniper.gate.trading.GateWsTrader` (gate-v4.md §7), with its :class:`WsOrderTiming`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import operator
import secrets
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

from sniper.core.codec import (
    CH_ORDER_PLACE,
    EXPTIME_HEADER,
    encode_order,
    encode_order_body,
    encode_ws_api_request,
    format_decimal,
)
from sniper.core.models import OrderRequest
from sniper.core.signing import Signer
from sniper.errors import ProtocolError
from sniper.gate.wsconn import client_text_frame

__all__ = [
    "PreparedOrder",
    "PreparedWsOrder",
    "WsOrderTiming",
    "cut_template",
    "prepare_order",
    "prepare_ws_order",
]

# Sentinels encoded into a template and found again by value, so no field name is needed
# here. Each must occur exactly once in the encoded bytes (checked by cut_template).
_PRICE_SENTINEL: Final = Decimal("918273645.546372819")
_AMOUNT_SENTINEL: Final = Decimal("192837465.564738291")
_TIME_SENTINEL: Final = 3_999_999_917
_EXPTIME_SENTINEL: Final = "5999999919597"

# Where each value goes: indexes into PreparedOrder.body's and PreparedWsOrder.render's values.
_SLOT_PRICE: Final = 0
_SLOT_AMOUNT: Final = 1
_WS_SLOT_TIME: Final = 0
_WS_SLOT_EXPTIME: Final = 1
_WS_SLOT_PRICE: Final = 2
_WS_SLOT_AMOUNT: Final = 3


def prepare_order(request: OrderRequest, *, action_mode: str, ttl_ms: int | None) -> PreparedOrder:
    """The ``POST /spot/orders`` body of ``request``, cut for :class:`PreparedOrder`.

    Validate ``request`` with :func:`~sniper.core.codec.encode_order` first: the template is
    encoded with sentinel price and amount, so the real values are not checked here.
    """
    body = encode_order_body(_with_sentinels(request), action_mode=action_mode)
    parts, slots = cut_template(body, _value_markers(request, _SLOT_PRICE, _SLOT_AMOUNT))
    return PreparedOrder(request, parts, slots, ttl_ms)


def prepare_ws_order(
    request: OrderRequest, req_id: str, *, action_mode: str, ttl_ms: int | None
) -> PreparedWsOrder:
    """The ``spot.order_place`` request of ``request``, cut for :class:`PreparedWsOrder`.

    ``ttl_ms=None`` sends no ``x-gate-exptime``. Validate ``request`` with
    :func:`~sniper.core.codec.encode_order` first, as for :func:`prepare_order`.
    """
    header = {EXPTIME_HEADER: _EXPTIME_SENTINEL} if ttl_ms is not None else None
    frame = encode_ws_api_request(
        CH_ORDER_PLACE,
        req_id,
        encode_order(_with_sentinels(request), action_mode=action_mode),
        time_s=_TIME_SENTINEL,
        req_header=header,
    )
    markers = [(str(_TIME_SENTINEL).encode(), _WS_SLOT_TIME)]
    if ttl_ms is not None:
        markers.append((_EXPTIME_SENTINEL.encode(), _WS_SLOT_EXPTIME))
    markers += _value_markers(request, _WS_SLOT_PRICE, _WS_SLOT_AMOUNT)
    parts, slots = cut_template(frame, markers)
    return PreparedWsOrder(request, req_id, parts, slots, ttl_ms)


def cut_template(
    template: bytes, markers: list[tuple[bytes, int]]
) -> tuple[tuple[bytes, ...], tuple[int, ...]]:
    """Split ``template`` around each marker, in template order: ``(parts, slots)``.

    ``markers`` are ``(marker bytes, slot)``. ``parts`` has one element more than ``slots``;
    the value of ``slots[i]`` goes between ``parts[i]`` and ``parts[i + 1]``. Raises
    :class:`~sniper.errors.ProtocolError` unless every marker occurs exactly once.
    """
    found: list[tuple[int, int, int]] = []
    for marker, slot in markers:
        position = template.find(marker)
        if position < 0 or template.find(marker, position + 1) >= 0:
            raise ProtocolError(f"order template: marker {marker!r} not unique", raw=template)
        found.append((position, len(marker), slot))
    found.sort()
    parts: list[bytes] = []
    slots: list[int] = []
    cursor = 0
    for position, length, slot in found:
        parts.append(template[cursor:position])
        slots.append(slot)
        cursor = position + length
    parts.append(template[cursor:])
    return tuple(parts), tuple(slots)


def _with_sentinels(request: OrderRequest) -> OrderRequest:
    return dataclasses.replace(
        request,
        price=None if request.price is None else _PRICE_SENTINEL,
        amount=_AMOUNT_SENTINEL,
    )


def _value_markers(
    request: OrderRequest, price_slot: int, amount_slot: int
) -> list[tuple[bytes, int]]:
    markers = [(format_decimal(_AMOUNT_SENTINEL).encode(), amount_slot)]
    if request.price is not None:
        markers.append((format_decimal(_PRICE_SENTINEL).encode(), price_slot))
    return markers


# ---------------------------------------------------------------------------------------------
# REST: a POST /spot/orders body


class PreparedOrder:
    """A placement encoded ahead of time; send it once with
    :meth:`~sniper.gate.rawhttp.RawHttpOrderSender.send`.

    ``written_ns``/``answered_ns`` are monotonic timestamps of the send (0 until it happens).
    """

    __slots__ = (
        "_cache",
        "_parts",
        "_sig_cache",
        "_slots",
        "answered_ns",
        "fired",
        "request",
        "ttl_ms",
        "written_ns",
    )

    def __init__(
        self,
        request: OrderRequest,
        parts: tuple[bytes, ...],
        slots: tuple[int, ...],
        ttl_ms: int | None,
    ) -> None:
        self.request = request
        self.ttl_ms = ttl_ms
        self._parts = parts
        self._slots = slots
        self._cache: tuple[Decimal | None, Decimal, bytes, str] | None = None
        self._sig_cache: tuple[str, str, str] | None = None  # (body hash, timestamp, sign)
        self.fired = False
        self.written_ns = 0
        self.answered_ns = 0

    @property
    def text(self) -> str:
        """The client id the body carries (allocated when the request was made)."""
        return self.request.text

    def body(self, price: Decimal | None, amount: Decimal) -> bytes:
        """The exact body bytes for these values."""
        values = [b"", b""]
        if price is not None:
            values[_SLOT_PRICE] = format_decimal(price).encode()
        values[_SLOT_AMOUNT] = format_decimal(amount).encode()
        parts = self._parts
        out = [parts[0]]
        for index, slot in enumerate(self._slots):
            out.append(values[slot])
            out.append(parts[index + 1])
        return b"".join(out)

    def precompute(self, price: Decimal | None, amount: Decimal) -> None:
        """Render the body and its SHA-512 now for the values expected at fire time."""
        body = self.body(price, amount)
        self._cache = (price, amount, body, hashlib.sha512(body).hexdigest())

    def body_and_hash(self, price: Decimal | None, amount: Decimal) -> tuple[bytes, str]:
        """Body bytes and their SHA-512 hex, from the precomputed ones when the values match."""
        cache = self._cache
        if cache is not None and cache[0] == price and cache[1] == amount:
            return cache[2], cache[3]
        body = self.body(price, amount)
        return body, hashlib.sha512(body).hexdigest()

    def sign(self, signer: Signer, path: str, body_hash: str, timestamp: str) -> str:
        """The REST signature of this body at ``timestamp`` (reused within the same second)."""
        cached = self._sig_cache
        if cached is not None and cached[0] == body_hash and cached[1] == timestamp:
            return cached[2]
        sign = signer.rest("POST", path, "", b"", timestamp, body_hash=body_hash)
        self._sig_cache = (body_hash, timestamp, sign)
        return sign


# ---------------------------------------------------------------------------------------------
# WebSocket trading API: a whole spot.order_place frame


@dataclass(slots=True)
class WsOrderTiming:
    """Monotonic timestamps (ns) of one trading-API request; 0 = did not happen.

    Filled in as the request progresses, hence not frozen. ``gate_in_us``/``gate_out_us`` are
    Gate's gateway receive/send times of the final reply (µs, exchange clock).
    """

    req_id: str
    text: str
    decision_ns: int = 0
    written_ns: int = 0
    ack_ns: int = 0
    result_ns: int = 0
    gate_in_us: int | None = None
    gate_out_us: int | None = None
    outcome: str = ""
    """``ok``, Gate's error label, ``error``, ``unknown`` (timeout / connection lost)."""


class PreparedWsOrder:
    """A placement encoded ahead of time; fire it once with
    :meth:`~sniper.gate.trading.GateWsTrader.fire`.

    Keeps the last rendered time/price/amount texts: the value a rehearsal rendered is
    reused at fire time when equal (a comparison instead of a formatting).
    """

    __slots__ = (
        "_amount",
        "_amount_text",
        "_future",
        "_mask",
        "_pick",
        "_price",
        "_price_text",
        "_second",
        "_second_text",
        "_template",
        "fired",
        "req_id",
        "request",
        "timing",
        "ttl_ms",
    )

    def __init__(
        self,
        request: OrderRequest,
        req_id: str,
        parts: tuple[bytes, ...],
        slots: tuple[int, ...],
        ttl_ms: int | None,
        mask: bytes | None = None,
    ) -> None:
        self.request = request
        self.req_id = req_id
        self.ttl_ms = ttl_ms
        # The frame with each slot as ``%s`` (literal ``%`` doubled); ``_pick`` orders the
        # slot values as they occur in the frame (at least time and amount: always a tuple).
        self._template = b"%s".join(part.replace(b"%", b"%%") for part in parts)
        self._pick = operator.itemgetter(*slots)
        self._mask = mask if mask is not None else secrets.token_bytes(4)
        self.fired = False
        self.timing = WsOrderTiming(req_id=req_id, text=request.text)
        self._future: asyncio.Future[Any] | None = None
        self._second = -1
        self._second_text = b""
        self._price: Decimal | None = None
        self._price_text = b""
        self._amount: Decimal | None = None
        self._amount_text = b""

    def render(self, time_s: float, price: Decimal | None, amount: Decimal) -> bytes:
        """The request JSON for these values (``time_s`` is Gate's time, fractional seconds)."""
        second = int(time_s)
        if second != self._second:
            self._second_text = str(second).encode()
            self._second = second
        exptime = b"" if self.ttl_ms is None else str(int(time_s * 1000) + self.ttl_ms).encode()
        if price is not None and price != self._price:
            self._price_text = format_decimal(price).encode()
            self._price = price
        if amount != self._amount:
            self._amount_text = format_decimal(amount).encode()
            self._amount = amount
        # One C-level bytes formatting instead of a Python join loop (~4x cheaper).
        values = (self._second_text, exptime, self._price_text, self._amount_text)
        rendered: bytes = self._template % self._pick(values)
        return rendered

    def frame(self, time_s: float, price: Decimal | None, amount: Decimal) -> bytes:
        """The complete masked WebSocket frame of :meth:`render`'s request (ready to write)."""
        return client_text_frame(self.render(time_s, price, amount), self._mask)
