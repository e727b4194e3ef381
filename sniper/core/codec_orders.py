"""The private side of the codec: orders, fills and balances in; order requests out.

Wire names per project reference ``shared/gate-v4.md`` §2.4 (order body), §2.5 (Order), §2.7
(accounts, fills), §6.5 (private pushes) and §7.4 (WS trading API parameters). Follows the
decoder rules in :mod:`sniper.core.codec`, which re-exports everything here.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any, Final

import orjson

from sniper.core.codec_fields import (
    _SIDES,
    _ZERO,
    _amount,
    _bad,
    _choice,
    _dec,
    _each,
    _id,
    _ms,
    _name,
    _object,
    _opt_dec,
    _str,
)
from sniper.core.codec_ws import CH_BALANCES, CH_ORDERS, CH_USERTRADES
from sniper.core.models import (
    Balance,
    Fill,
    Order,
    OrderAck,
    OrderRequest,
    OrderStatus,
    OrderType,
    TimeInForce,
)
from sniper.errors import InvalidOrderError

__all__ = [
    "EXPTIME_HEADER",
    "decode_balance",
    "decode_balances",
    "decode_balances_push",
    "decode_fill",
    "decode_fills_push",
    "decode_order",
    "decode_order_ack",
    "decode_order_or_ack",
    "decode_orders_push",
    "encode_order",
    "encode_order_body",
    "encode_order_ref",
    "format_decimal",
]

EXPTIME_HEADER: Final = "x-gate-exptime"
"""Request header (and WS ``req_header`` key): Gate drops the request after this ms time (§1.3)."""

# Client order id rule (§2.4): "t-" then at most 28 bytes of [0-9A-Za-z_.-].
_TEXT_RE: Final = re.compile(r"t-[0-9A-Za-z_.\-]{1,28}")

_ROLES: Final[dict[str, str]] = {"maker": "maker", "taker": "taker"}
_ORDER_TYPES: Final[dict[str, OrderType]] = {"limit": "limit", "market": "market"}
_TIFS: Final[dict[str, TimeInForce]] = {"gtc": "gtc", "ioc": "ioc", "poc": "poc", "fok": "fok"}
_ORDER_STATUSES: Final = {status.value: status for status in OrderStatus}
_ACTION_MODES: Final = frozenset({"ACK", "RESULT", "FULL"})


# ---------------------------------------------------------------------------------------------
# orders, fills, balances


def decode_order(obj: Any, *, event: str | None = None) -> Order:
    """A REST Order (``FULL``/``RESULT``) or one ``spot.orders`` item (§2.5, §6.5).

    Fields a mode leaves out read as zero / empty. ``status`` missing (some WS pushes) is
    derived from ``event``/``finish_as``; ``filled_amount`` missing (older WS pushes) is
    ``amount - left`` where both are in base, zero otherwise.
    """
    where = "order"
    order = _object(obj, where)
    if event is None:
        pushed = order.get("event")
        event = pushed if type(pushed) is str else None
    order_type = _choice(order, "type", where, _ORDER_TYPES, default="limit")
    side = _choice(order, "side", where, _SIDES)
    amount = _amount(order, "amount", where)
    left = _amount(order, "left", where, default=_ZERO)
    finish_as = _str(order, "finish_as", where, default="")
    filled_amount = _opt_dec(order, "filled_amount", where)
    if filled_amount is None:
        # A market buy counts amount/left in quote, so base cannot be derived from them.
        in_base = not (order_type == "market" and side == "buy")
        filled_amount = amount - left if in_base and "left" in order else _ZERO
        if filled_amount < 0:
            raise _bad(order, where, "left", "greater than amount", left)
    elif filled_amount < 0:
        raise _bad(order, where, "filled_amount", "negative", filled_amount)
    filled_total = _opt_dec(order, "filled_total", where)
    if filled_total is None:
        filled_total = _dec(order, "fill_price", where, default=_ZERO)  # deprecated alias
    price = _opt_dec(order, "price", where)
    if order_type == "market" and price is not None and not price:
        price = None
    avg = _opt_dec(order, "avg_deal_price", where)
    return Order(
        id=_id(order, "id", where),
        text=_str(order, "text", where, default=""),
        pair=_name(order, "currency_pair", where),
        side=side,
        type=order_type,
        time_in_force=_choice(order, "time_in_force", where, _TIFS, default="gtc"),
        status=_order_status(order, where, event, finish_as, left),
        amount=amount,
        price=price,
        left=left,
        filled_amount=filled_amount,
        filled_total=filled_total,
        avg_deal_price=avg if avg else None,
        fee=_dec(order, "fee", where, default=_ZERO),
        fee_currency=_str(order, "fee_currency", where, default=""),
        finish_as=finish_as,
        create_time_ms=_ms(order, "create_time_ms", where, "create_time"),
        update_time_ms=_ms(order, "update_time_ms", where, "update_time"),
        event=event,
    )


def _order_status(
    order: dict[str, Any], where: str, event: str | None, finish_as: str, left: Decimal
) -> OrderStatus:
    if order.get("status") is not None:
        return _choice(order, "status", where, _ORDER_STATUSES)
    if event != "finish":
        return OrderStatus.OPEN
    if finish_as == "filled" or (not finish_as and not left):
        return OrderStatus.CLOSED
    return OrderStatus.CANCELLED


def decode_orders_push(result: Any) -> list[Order]:
    """A ``spot.orders`` result: an array of orders, each with its own ``event``."""
    return _each(result, CH_ORDERS, decode_order)


def decode_order_ack(obj: Any) -> OrderAck:
    """The ``action_mode=ACK`` answer to a placement: ``{id, text, amend_text}``."""
    where = "order_ack"
    ack = _object(obj, where)
    return OrderAck(id=_id(ack, "id", where), text=_str(ack, "text", where, default=""))


def decode_order_or_ack(obj: Any) -> Order | OrderAck:
    """A placement answer in any ``action_mode``: an :class:`Order` when it carries one."""
    if type(obj) is dict and "currency_pair" in obj:
        return decode_order(obj)
    return decode_order_ack(obj)


def decode_fill(obj: Any) -> Fill:
    """One of our trades: a ``spot.usertrades`` item or a ``/spot/my_trades`` entry.

    Lite channels drop the fee fields; they then read as zero / empty.
    """
    where = "user_trade"
    fill = _object(obj, where)
    role = _choice(fill, "role", where, _ROLES)
    return Fill(
        trade_id=_id(fill, "id", where),
        order_id=_id(fill, "order_id", where),
        text=_str(fill, "text", where, default=""),
        pair=_name(fill, "currency_pair", where),
        side=_choice(fill, "side", where, _SIDES),
        role="maker" if role == "maker" else "taker",
        price=_amount(fill, "price", where),
        amount=_amount(fill, "amount", where),
        fee=_dec(fill, "fee", where, default=_ZERO),
        fee_currency=_str(fill, "fee_currency", where, default=""),
        time_ms=_ms(fill, "create_time_ms", where, "create_time"),
    )


def decode_fills_push(result: Any) -> list[Fill]:
    """A ``spot.usertrades`` result (an array) or the ``/spot/my_trades`` array."""
    return _each(result, CH_USERTRADES, decode_fill)


def decode_balance(obj: Any) -> Balance:
    """A ``GET /spot/accounts`` entry: ``currency, available, locked``."""
    where = "account"
    account = _object(obj, where)
    return Balance(
        currency=_name(account, "currency", where),
        available=_dec(account, "available", where),
        locked=_dec(account, "locked", where),
    )


def decode_balances(obj: Any) -> list[Balance]:
    """The ``GET /spot/accounts`` array."""
    return _each(obj, "accounts", decode_balance)


def _balance_push(obj: Any) -> Balance:
    where = CH_BALANCES
    item = _object(obj, where)
    available = _dec(item, "available", where)
    locked = _opt_dec(item, "freeze", where)
    if locked is None:
        # Some SDK models omit ``freeze``; ``total`` then tells us what is locked.
        locked = _dec(item, "total", where) - available
    return Balance(currency=_name(item, "currency", where), available=available, locked=locked)


def decode_balances_push(result: Any) -> list[Balance]:
    """A ``spot.balances`` result: ``available`` and ``freeze`` (read as ``locked``)."""
    return _each(result, CH_BALANCES, _balance_push)


# ---------------------------------------------------------------------------------------------
# encoding


def format_decimal(value: Decimal) -> str:
    """Plain decimal text for Gate: no exponent, no trailing zeros (``1E+2`` → ``100``)."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def _positive(value: object, what: str) -> str:
    if not isinstance(value, Decimal) or not value.is_finite() or value <= 0:
        raise InvalidOrderError(f"order {what} must be a positive finite Decimal, got {value!r}")
    return format_decimal(value)


def encode_order(req: OrderRequest, *, action_mode: str = "ACK") -> dict[str, str]:
    """The ``POST /spot/orders`` body (also the WS ``spot.order_place`` ``req_param``).

    Raises :class:`~sniper.errors.InvalidOrderError` for a request Gate would refuse anyway
    (bad client id, non-positive amount or price, limit without price, market not IOC/FOK),
    so a bad order is caught while it is being armed rather than at the open.
    """
    if _TEXT_RE.fullmatch(req.text) is None:
        raise InvalidOrderError(f"order text {req.text!r}: must be t- and 1-28 of [0-9A-Za-z_.-]")
    if req.side not in _SIDES:
        raise InvalidOrderError(f"order side {req.side!r}")
    if req.time_in_force not in _TIFS:
        raise InvalidOrderError(f"order time_in_force {req.time_in_force!r}")
    if action_mode not in _ACTION_MODES:
        raise InvalidOrderError(f"action_mode {action_mode!r}")
    if not req.pair or not req.account:
        raise InvalidOrderError("order pair and account must be set")
    body = {
        "currency_pair": req.pair,
        "side": req.side,
        "type": req.type,
        "amount": _positive(req.amount, "amount"),
    }
    if req.type == "limit":
        body["price"] = _positive(req.price, "price")
    elif req.type == "market":
        if req.time_in_force not in ("ioc", "fok"):
            raise InvalidOrderError("market orders accept only ioc or fok")
    else:
        raise InvalidOrderError(f"order type {req.type!r}")
    body["time_in_force"] = req.time_in_force
    body["text"] = req.text
    body["account"] = req.account
    body["action_mode"] = action_mode
    return body


def encode_order_body(req: OrderRequest, *, action_mode: str = "ACK") -> bytes:
    """:func:`encode_order` as the exact JSON bytes to send (and to sign)."""
    return orjson.dumps(encode_order(req, action_mode=action_mode))


def encode_order_ref(order_id: str, pair: str) -> dict[str, str]:
    """``req_param`` of ``spot.order_cancel`` / ``spot.order_status``: one order by id (§7.4)."""
    return {"order_id": order_id, "currency_pair": pair}
