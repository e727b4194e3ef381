"""Gate spot WebSocket v4 envelopes: bytes in, :class:`WsFrame` / :class:`WsApiReply` out.

Channel payloads (``result``) are decoded by :mod:`sniper.core.codec`; this module only knows the
envelopes and the channel names. Protocol: https://www.gate.com/docs/developers/apiv4/ws/en/
(project reference ``shared/gate-v4.md`` §6 for subscriptions and pushes, §7 for the trading API).

Two envelope kinds arrive on the same socket:

* pushes and subscribe/ping replies: ``{time, time_ms, id?, channel, event, error, result}``;
* trading-API replies (``event: "api"`` requests): ``{request_id, ack?, header: {status, ...},
  data: {result | errs}}``. ``header.status`` is a *string*; the rate-limit reset field is
  spelled ``x_gat_ratelimit_reset_timestamp`` in the doc tables and ``x_gate_...`` in one
  example, so both are read.

Anything malformed raises :class:`~sniper.errors.ProtocolError` carrying the raw bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import orjson

from sniper.core.codec_fields import _label_and_message, _lenient_int, reset_to_ms
from sniper.core.models import RateLimit
from sniper.errors import (
    AuthError,
    ExchangeError,
    InvalidOrderError,
    PairNotTradableError,
    ProtocolError,
    RejectedError,
    TransientError,
)

__all__ = [
    "ALL_PAIRS",
    "CH_BALANCES",
    "CH_BOOK_TICKER",
    "CH_BOOK_UPDATE",
    "CH_LOGIN",
    "CH_OBU",
    "CH_ORDERS",
    "CH_ORDER_AMEND",
    "CH_ORDER_BOOK",
    "CH_ORDER_CANCEL",
    "CH_ORDER_CANCEL_CP",
    "CH_ORDER_CANCEL_IDS",
    "CH_ORDER_LIST",
    "CH_ORDER_PLACE",
    "CH_ORDER_STATUS",
    "CH_PING",
    "CH_PONG",
    "CH_TICKERS",
    "CH_TRADES",
    "CH_USERTRADES",
    "EV_API",
    "EV_SUBSCRIBE",
    "EV_UNSUBSCRIBE",
    "EV_UPDATE",
    "EV_UPGRADE",
    "WsApiReply",
    "WsFrame",
    "book_update_payload",
    "decode_ws_error",
    "decode_ws_message",
    "encode_ws_api_request",
    "encode_ws_login",
    "encode_ws_ping",
    "encode_ws_request",
    "loads",
    "obu_payload",
    "ws_auth",
]

# Channel names (§6.4, §6.5, §7.4). No other module spells them.
CH_PING: Final = "spot.ping"
CH_PONG: Final = "spot.pong"
CH_TICKERS: Final = "spot.tickers"
CH_TRADES: Final = "spot.trades"
CH_BOOK_TICKER: Final = "spot.book_ticker"
CH_ORDER_BOOK: Final = "spot.order_book"
CH_BOOK_UPDATE: Final = "spot.order_book_update"
CH_OBU: Final = "spot.obu"
CH_ORDERS: Final = "spot.orders"
CH_USERTRADES: Final = "spot.usertrades"
CH_BALANCES: Final = "spot.balances"
CH_LOGIN: Final = "spot.login"
CH_ORDER_PLACE: Final = "spot.order_place"
CH_ORDER_CANCEL: Final = "spot.order_cancel"
CH_ORDER_CANCEL_IDS: Final = "spot.order_cancel_ids"
CH_ORDER_CANCEL_CP: Final = "spot.order_cancel_cp"
CH_ORDER_AMEND: Final = "spot.order_amend"
CH_ORDER_STATUS: Final = "spot.order_status"
CH_ORDER_LIST: Final = "spot.order_list"

EV_SUBSCRIBE: Final = "subscribe"
EV_UNSUBSCRIBE: Final = "unsubscribe"
EV_UPDATE: Final = "update"
EV_API: Final = "api"
EV_UPGRADE: Final = "upgrade"
"""Server asks the client to reconnect (seen in the official SDK, not in the docs)."""

ALL_PAIRS: Final = "!all"
"""Private-channel payload meaning "every pair" (``spot.orders``, ``spot.usertrades``)."""

# WS ``error.code`` (§6.1); ccxt pro also treats 6 and 11 as authentication failures.
_WS_ERROR_CLASSES: Final[dict[int, type[ExchangeError]]] = {
    1: InvalidOrderError,
    2: RejectedError,
    3: TransientError,
    4: AuthError,
    6: AuthError,
    11: AuthError,
}


@dataclass(frozen=True, slots=True)
class WsFrame:
    """A push or a subscribe/unsubscribe/ping reply. ``result`` is still wire-shaped."""

    channel: str
    event: str
    result: Any
    error_code: int | None
    error_message: str | None
    id: int | None
    time_ms: int


@dataclass(frozen=True, slots=True)
class WsApiReply:
    """A trading-API reply. ``ack`` is Gate's receipt (not a placement); ``status`` is HTTP-like.

    ``result`` is ``data.result`` (REST-shaped, decode with :mod:`sniper.core.codec`);
    ``error_label``/``error_message`` come from ``data.errs`` on failure.
    """

    request_id: str
    ack: bool
    status: int
    channel: str
    result: Any
    error_label: str | None
    error_message: str | None
    rate_limit: RateLimit
    x_in_time_us: int | None
    x_out_time_us: int | None


def loads(data: bytes | str) -> Any:
    """Parse JSON with orjson; anything unparseable raises :class:`ProtocolError` (``raw=data``).

    NaN/Infinity literals and numbers that overflow a double are rejected by orjson itself.
    """
    try:
        return orjson.loads(data)
    except (orjson.JSONDecodeError, TypeError) as exc:
        raise ProtocolError(f"not JSON: {exc}", raw=data) from None


def decode_ws_message(data: bytes | str) -> WsFrame | WsApiReply:
    """Decode one text frame from the spot WebSocket into its envelope."""
    obj = loads(data)
    if type(obj) is not dict:
        raise ProtocolError("ws: message is not a JSON object", raw=data)
    if "request_id" in obj:
        return _api_reply(obj, data)
    channel = obj.get("channel")
    if type(channel) is not str:
        raise ProtocolError("ws.channel: missing or not a string", raw=data)
    event = obj.get("event")
    if event is None:
        event = ""  # pong and spot.obu pushes carry no (or an empty) event
    elif type(event) is not str:
        raise ProtocolError("ws.event: not a string", raw=data)
    error = obj.get("error")
    code: int | None = None
    message: str | None = None
    if error is not None:
        if type(error) is not dict:
            raise ProtocolError("ws.error: not an object", raw=data)
        code = error.get("code")
        if type(code) is not int:
            raise ProtocolError("ws.error.code: missing or not an integer", raw=data)
        raw_message = error.get("message")
        message = raw_message if type(raw_message) is str else ""
    time_ms = obj.get("time_ms")
    if type(time_ms) is not int:
        time_ms = _time_ms_fallback(obj, data)
    frame_id = obj.get("id")
    if frame_id is not None and type(frame_id) is not int:
        raise ProtocolError("ws.id: not an integer", raw=data)
    return WsFrame(channel, event, obj.get("result"), code, message, frame_id, time_ms)


def _time_ms_fallback(obj: dict[str, Any], data: bytes | str) -> int:
    if "time_ms" in obj:
        raise ProtocolError("ws.time_ms: not an integer", raw=data)
    seconds = obj.get("time")
    if seconds is None:
        return 0
    if type(seconds) is not int:
        raise ProtocolError("ws.time: not an integer", raw=data)
    return seconds * 1000


def _api_reply(obj: dict[str, Any], data: bytes | str) -> WsApiReply:
    request_id = obj["request_id"]
    if type(request_id) is int:
        request_id = str(request_id)
    elif type(request_id) is not str:
        raise ProtocolError("ws_api.request_id: not a string", raw=data)
    header = obj.get("header")
    if type(header) is not dict:
        raise ProtocolError("ws_api.header: missing or not an object", raw=data)
    status = header.get("status")
    if type(status) is str and status.isascii() and status.isdigit() and len(status) < 6:
        status = int(status)
    elif type(status) is not int:
        raise ProtocolError("ws_api.header.status: missing or not a number", raw=data)
    channel = header.get("channel", "")
    if type(channel) is not str:
        raise ProtocolError("ws_api.header.channel: not a string", raw=data)
    ack = obj.get("ack", False)
    if type(ack) is not bool:
        raise ProtocolError("ws_api.ack: not a boolean", raw=data)
    body = obj.get("data")
    result: Any = None
    label: str | None = None
    message: str | None = None
    if body is not None:
        if type(body) is not dict:
            raise ProtocolError("ws_api.data: not an object", raw=data)
        result = body.get("result")
        errs = body.get("errs")
        if errs is not None:
            if type(errs) is not dict:
                raise ProtocolError("ws_api.data.errs: not an object", raw=data)
            label, message = _label_and_message(errs)
    if label is None and message is None and status >= 400:
        message = f"status {status}"
    reset = header.get("x_gat_ratelimit_reset_timestamp")
    if reset is None:
        reset = header.get("x_gate_ratelimit_reset_timestamp")
    rate_limit = RateLimit(
        remaining=_lenient_int(header.get("x_gate_ratelimit_requests_remain")),
        limit=_lenient_int(header.get("x_gate_ratelimit_limit")),
        reset_ms=reset_to_ms(reset),
    )
    return WsApiReply(
        request_id=request_id,
        ack=ack,
        status=status,
        channel=channel,
        result=result,
        error_label=label,
        error_message=message,
        rate_limit=rate_limit,
        x_in_time_us=_lenient_int(header.get("x_in_time")),
        x_out_time_us=_lenient_int(header.get("x_out_time")),
    )


def decode_ws_error(code: int, message: str | None) -> ExchangeError:
    """The typed error for a WS ``error`` object (``{"code", "message"}``, §6.1).

    Code 2 with "unknown currency pair" means the pair is not (yet) known to the stream.
    """
    text = message or f"ws error code {code}"
    if code == 2 and "currency pair" in text:
        return PairNotTradableError(text, label=None, status=None)
    cls = _WS_ERROR_CLASSES.get(code, RejectedError)
    return cls(text, label=None, status=None)


def ws_auth(key: str, sign: str) -> dict[str, str]:
    """The ``auth`` object of a private-channel request (§6.2)."""
    return {"method": "api_key", "KEY": key, "SIGN": sign}


def encode_ws_request(
    channel: str,
    event: str,
    payload: Any,
    *,
    time_s: int,
    id: int | None = None,  # Gate's envelope field is called ``id``
    auth: dict[str, str] | None = None,
) -> bytes:
    """A subscribe/unsubscribe (or other channel) request. ``payload=None`` is left out."""
    msg: dict[str, Any] = {"time": time_s}
    if id is not None:
        msg["id"] = id
    msg["channel"] = channel
    msg["event"] = event
    if payload is not None:
        msg["payload"] = payload
    if auth is not None:
        msg["auth"] = auth
    return orjson.dumps(msg)


def encode_ws_ping(*, time_s: int) -> bytes:
    """The application-level ping; it also resets Gate's idle timer (§6.3)."""
    return orjson.dumps({"time": time_s, "channel": CH_PING})


def encode_ws_api_request(
    channel: str,
    req_id: str,
    req_param: Any,
    *,
    time_s: int,
    req_header: dict[str, str] | None = None,
) -> bytes:
    """A trading-API request on a logged-in connection (§7.1); ``req_param`` is the REST body."""
    payload: dict[str, Any] = {"req_id": req_id}
    if req_header:
        payload["req_header"] = req_header
    payload["req_param"] = req_param
    return orjson.dumps({"time": time_s, "channel": channel, "event": EV_API, "payload": payload})


def encode_ws_login(key: str, signature: str, timestamp: str, req_id: str, *, time_s: int) -> bytes:
    """The ``spot.login`` request (§7.2); sign with ``Signer.ws_api(CH_LOGIN, "", timestamp)``."""
    return orjson.dumps(
        {
            "time": time_s,
            "channel": CH_LOGIN,
            "event": EV_API,
            "payload": {
                "api_key": key,
                "signature": signature,
                "timestamp": timestamp,
                "req_id": req_id,
            },
        }
    )


def book_update_payload(pair: str, interval: str = "20ms") -> list[str]:
    """Subscribe payload of ``spot.order_book_update``: ``20ms`` (20 levels) or ``100ms``."""
    return [pair, interval]


def obu_payload(pair: str, depth: int = 50) -> list[str]:
    """Subscribe payload of ``spot.obu`` (order book v2): depth 50 (20 ms) or 400 (100 ms)."""
    return [f"ob.{pair}.{depth}"]
