"""The only place Gate's wire field names live: JSON <-> :mod:`sniper.core.models`.

Reference: https://www.gate.com/docs/developers/apiv4/en/ (project notes ``shared/gate-v4.md``
§2 REST objects, §3 errors, §4 rate-limit headers, §6 WebSocket pushes). This module holds the
market-data decoders, errors and rate limits, and re-exports the rest of the codec, so callers
import every name from here:

* :mod:`sniper.core.codec_orders`: orders, fills, balances, and the order encoders;
* :mod:`sniper.core.codec_ws`: WebSocket envelopes and channel names;
* :mod:`sniper.core.codec_fields`: the field readers all of them share (private).

Rules every decoder follows:

* Malformed input of any kind (wrong type, missing field, bad or non-finite decimal) raises
  :class:`~sniper.errors.ProtocolError` whose message names the field and whose ``raw`` is
  the offending payload. No other exception type escapes.
* Unknown extra fields are ignored: Gate adds fields often.
* Gate's types wobble (ids int or str, ``create_time_ms`` int in REST, str with fractional ms
  on WS), so the general readers accept every documented spelling.

The two market-data decoders on the hot path (``decode_book_update``, ``decode_book_ticker``)
try a straight-line fast path for the exact wire types first and fall back to the general,
field-by-field reader, which either decodes the odd-but-valid payload or names the bad field.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Final

import orjson

from sniper.core.codec_fields import (
    _SIDES,
    _amount,
    _bad,
    _choice,
    _dec,
    _each,
    _int,
    _label_and_message,
    _lenient_int,
    _levels_general,
    _list,
    _ms,
    _name,
    _object,
    _opt_dec,
    _short,
    _str,
    reset_to_ms,
)
from sniper.core.codec_orders import *  # noqa: F403 - orders, fills, balances, encoders
from sniper.core.codec_ws import *  # noqa: F403 - the WebSocket half of the codec, re-exported
from sniper.core.codec_ws import CH_BOOK_TICKER, CH_BOOK_UPDATE, CH_OBU, CH_ORDER_BOOK
from sniper.core.models import (
    BookSnapshot,
    BookTop,
    BookUpdate,
    Level,
    PairInfo,
    PublicTrade,
    RateLimit,
    Ticker,
    TradeStatus,
)
from sniper.errors import ExchangeError, ProtocolError, error_for_label

_MAX_PRECISION: Final = 40
_TRADE_STATUSES: Final = {status.value: status for status in TradeStatus}


# ---------------------------------------------------------------------------------------------
# hot path: order book deltas and best bid/ask


_NUMERIC_START: Final = frozenset("0123456789.")


def _levels_fast(levels: object) -> tuple[Level, ...]:
    # Exact wire types only ([[str, str], ...]); anything else raises and the caller falls back.
    if type(levels) is not list:
        raise TypeError
    out: list[Level] = []
    append = out.append
    dec = Decimal
    for level in levels:
        if type(level) is not list:
            raise TypeError
        price, amount = level
        if type(price) is not str or type(amount) is not str:
            raise TypeError
        # A leading digit or "." rules out signs, NaN, Infinity and blanks before the costlier
        # Decimal checks would (an empty string raises IndexError: the slow path reports it).
        if price[0] not in _NUMERIC_START or amount[0] not in _NUMERIC_START:
            raise ValueError
        append((dec(price), dec(amount)))
    return tuple(out)


_FAST_ERRORS: Final = (LookupError, TypeError, ValueError, ArithmeticError, AttributeError)


def decode_book_update(result: Any) -> BookUpdate:
    """``spot.order_book_update`` result: ``s, U, u, t, b, a, full?``. Amounts are absolute."""
    try:
        pair = result["s"]
        first_id = result["U"]
        last_id = result["u"]
        time_ms = result["t"]
        full = result.get("full", False)
        if (
            type(pair) is str
            and pair
            and type(first_id) is int
            and type(last_id) is int
            and type(time_ms) is int
            and type(full) is bool
            and first_id <= last_id
        ):
            return BookUpdate(
                pair,
                first_id,
                last_id,
                _levels_fast(result["a"]),
                _levels_fast(result["b"]),
                time_ms,
                full,
            )
    except _FAST_ERRORS:
        pass
    return _book_update_general(result, CH_BOOK_UPDATE, obu=False)


def decode_obu(result: Any) -> BookUpdate:
    """``spot.obu`` (order book v2) result: ``s`` is ``ob.<pair>.<depth>``; no ``U`` when full."""
    return _book_update_general(result, CH_OBU, obu=True)


def _book_update_general(result: object, where: str, *, obu: bool) -> BookUpdate:
    obj = _object(result, where)
    pair = _name(obj, "s", where)
    if obu:
        parts = pair.split(".")
        if len(parts) != 3 or parts[0] != "ob" or not parts[1]:
            raise _bad(obj, where, "s", "not ob.<pair>.<depth>", pair)
        pair = parts[1]
    full = obj.get("full", False)
    if type(full) is not bool:
        raise _bad(obj, where, "full", "not a boolean", full)
    last_id = _int(obj, "u", where)
    first_id = _int(obj, "U", where, default=last_id if full else None)
    if first_id > last_id:
        raise _bad(obj, where, "U", "greater than u", first_id)
    return BookUpdate(
        pair=pair,
        first_id=first_id,
        last_id=last_id,
        asks=_levels_general(obj, "a", where),
        bids=_levels_general(obj, "b", where),
        time_ms=_int(obj, "t", where, default=0),
        full=full,
    )


def _side_fast(price: str, size: str) -> tuple[Decimal | None, Decimal | None]:
    if type(price) is not str or type(size) is not str:
        raise TypeError
    if not price:
        return None, None
    p = Decimal(price)
    s = Decimal(size)
    if not (p.is_finite() and s.is_finite()) or p.is_signed() or s.is_signed():
        raise ValueError
    return p, s


def decode_book_ticker(result: Any) -> BookTop:
    """``spot.book_ticker`` result: ``t, u, s, b, B, a, A``; an empty side reads as ``None``."""
    try:
        pair = result["s"]
        update_id = result["u"]
        time_ms = result["t"]
        if type(pair) is str and pair and type(update_id) is int and type(time_ms) is int:
            bid, bid_size = _side_fast(result["b"], result["B"])
            ask, ask_size = _side_fast(result["a"], result["A"])
            return BookTop(pair, update_id, time_ms, bid, bid_size, ask, ask_size)
    except _FAST_ERRORS:
        pass
    return _book_ticker_general(result)


def _book_ticker_general(result: object) -> BookTop:
    where = CH_BOOK_TICKER
    obj = _object(result, where)
    bid, bid_size = _top_side(obj, "b", "B", where)
    ask, ask_size = _top_side(obj, "a", "A", where)
    return BookTop(
        pair=_name(obj, "s", where),
        update_id=_int(obj, "u", where),
        time_ms=_int(obj, "t", where),
        bid=bid,
        bid_size=bid_size,
        ask=ask,
        ask_size=ask_size,
    )


def _top_side(
    obj: dict[str, Any], price_key: str, size_key: str, where: str
) -> tuple[Decimal | None, Decimal | None]:
    # An empty price means an empty side, whatever the size says.
    price = _opt_dec(obj, price_key, where)
    if price is None:
        return None, None
    size = _dec(obj, size_key, where)
    if price.is_signed():
        raise _bad(obj, where, price_key, "negative", price)
    if size.is_signed():
        raise _bad(obj, where, size_key, "negative", size)
    return price, size


# ---------------------------------------------------------------------------------------------
# REST market data: pairs, snapshots, tickers, trades, server time


def decode_pair(obj: Any) -> PairInfo:
    """One ``GET /spot/currency_pairs`` entry (§2.1). ``fee`` stays in percent."""
    where = "currency_pair"
    pair = _object(obj, where)
    fee = _opt_dec(pair, "fee", where)
    return PairInfo(
        pair=_name(pair, "id", where),
        base=_name(pair, "base", where),
        quote=_name(pair, "quote", where),
        trade_status=_choice(pair, "trade_status", where, _TRADE_STATUSES),
        buy_start_s=_int(pair, "buy_start", where, default=0),
        sell_start_s=_int(pair, "sell_start", where, default=0),
        amount_precision=_precision(pair, "amount_precision", where),
        price_precision=_precision(pair, "precision", where),
        min_base_amount=_opt_dec(pair, "min_base_amount", where),
        min_quote_amount=_opt_dec(pair, "min_quote_amount", where),
        max_base_amount=_opt_dec(pair, "max_base_amount", where),
        max_quote_amount=_opt_dec(pair, "max_quote_amount", where),
        fee_pct=Decimal("0.2") if fee is None else fee,
        premarket=_str(pair, "type", where, default="normal") == "premarket",
        delisting_time_s=_int(pair, "delisting_time", where, default=0),
    )


def _precision(obj: dict[str, Any], key: str, where: str) -> int:
    places = _int(obj, key, where)
    if not 0 <= places <= _MAX_PRECISION:
        raise _bad(obj, where, key, "not a number of decimal places", places)
    return places


def decode_pairs(obj: Any) -> list[PairInfo]:
    """The whole ``GET /spot/currency_pairs`` answer; one bad entry fails the lot."""
    return _each(obj, "currency_pairs", decode_pair)


def decode_pairs_lenient(obj: Any) -> tuple[list[PairInfo], list[ProtocolError]]:
    """Like :func:`decode_pairs`, but a bad entry is skipped and reported instead of fatal.

    The listing poller should not go blind on every pair because Gate sent one odd entry.
    The answer itself must still be an array.
    """
    items = _list(obj, "currency_pairs")
    pairs: list[PairInfo] = []
    errors: list[ProtocolError] = []
    for item in items:
        try:
            pairs.append(decode_pair(item))
        except ProtocolError as exc:
            errors.append(exc)
    return pairs, errors


def decode_book_snapshot(obj: Any, pair: str) -> BookSnapshot:
    """``GET /spot/order_book?with_id=true``: ``id`` (required), ``current`` ms, asks, bids."""
    where = "order_book"
    book = _object(obj, where)
    return BookSnapshot(
        pair=pair,
        update_id=_int(book, "id", where),
        asks=_levels_general(book, "asks", where),
        bids=_levels_general(book, "bids", where),
        time_ms=_int(book, "current", where, default=0),
    )


def decode_book_snapshot_push(result: Any) -> BookSnapshot:
    """``spot.order_book`` (top-N snapshot channel): ``t, lastUpdateId, s, asks, bids``."""
    where = CH_ORDER_BOOK
    book = _object(result, where)
    return BookSnapshot(
        pair=_name(book, "s", where),
        update_id=_int(book, "lastUpdateId", where),
        asks=_levels_general(book, "asks", where),
        bids=_levels_general(book, "bids", where),
        time_ms=_int(book, "t", where, default=0),
    )


def decode_ticker(obj: Any) -> Ticker:
    """A ``/spot/tickers`` entry or a ``spot.tickers`` result; empty prices read as ``None``."""
    where = "ticker"
    ticker = _object(obj, where)
    return Ticker(
        pair=_name(ticker, "currency_pair", where),
        last=_opt_dec(ticker, "last", where),
        lowest_ask=_opt_dec(ticker, "lowest_ask", where),
        highest_bid=_opt_dec(ticker, "highest_bid", where),
    )


def decode_tickers(obj: Any) -> list[Ticker]:
    """The ``GET /spot/tickers`` array."""
    return _each(obj, "tickers", decode_ticker)


def decode_public_trade(obj: Any) -> PublicTrade:
    """A ``spot.trades`` result or a ``/spot/trades`` entry; ``side`` is the taker's."""
    where = "trade"
    trade = _object(obj, where)
    return PublicTrade(
        pair=_name(trade, "currency_pair", where),
        trade_id=_int(trade, "id", where),
        side=_choice(trade, "side", where, _SIDES),
        price=_amount(trade, "price", where),
        amount=_amount(trade, "amount", where),
        time_ms=_ms(trade, "create_time_ms", where, "create_time"),
    )


def decode_server_time(obj: Any) -> int:
    """``GET /spot/time`` → Gate's clock in ms (``server_time``)."""
    return _int(_object(obj, "time"), "server_time", "time")


# ---------------------------------------------------------------------------------------------
# errors and rate limits


def decode_error(body: object, status: int | None) -> ExchangeError:
    """The typed error for a failed answer (§3): ``{"label", "message" | "detail"}``.

    ``body`` may be the raw bytes/str of an HTTP body or an already parsed object (WS API
    ``data.errs``). A body that is not Gate's error JSON (an HTML 502 from the proxy) is typed
    by ``status`` alone. Never raises.
    """
    parsed: object = body
    if isinstance(body, bytes | bytearray | memoryview | str):
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError:
            parsed = None
    if type(parsed) is dict:
        label, message = _label_and_message(parsed)
        if label is not None or message:
            return error_for_label(label, message or _fallback_message(body, status), status)
    return error_for_label(None, _fallback_message(body, status), status)


def _fallback_message(body: object, status: int | None) -> str:
    if isinstance(body, bytes | bytearray | memoryview):
        text = bytes(body[:200]).decode("utf-8", "replace")
    elif isinstance(body, str):
        text = body[:200]
    else:
        text = _short(body)
    text = text.strip()
    prefix = f"HTTP {status}" if status is not None else "error"
    return f"{prefix}: {text}" if text else prefix


_RL_REMAIN: Final = "x-gate-ratelimit-requests-remain"
_RL_LIMIT: Final = "x-gate-ratelimit-limit"
_RL_RESET: Final = "x-gate-ratelimit-reset-timestamp"


def decode_rate_limit(headers: Mapping[str, str]) -> RateLimit:
    """Gate's per-endpoint rate-limit headers (§1.3, §4), matched case-insensitively.

    The reset time is returned in ms (values that look like seconds are scaled). Absent or
    unparseable headers read as ``None``: they are advice, never a reason to fail a reply.
    """
    remaining = limit = reset = None
    for name, value in headers.items():
        lowered = name.lower() if type(name) is str else ""
        if lowered == _RL_REMAIN:
            remaining = _lenient_int(value)
        elif lowered == _RL_LIMIT:
            limit = _lenient_int(value)
        elif lowered == _RL_RESET:
            reset = reset_to_ms(value)
    return RateLimit(remaining=remaining, limit=limit, reset_ms=reset)
