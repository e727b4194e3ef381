"""Checks a ``POST /spot/orders`` body the way Gate does, before anything is locked.

shared/gate-v4.md §2.4 (fields), §3 (labels), §5 (minimums come back as
``INVALID_PARAM_VALUE`` "The minimum is 3 USDT"). Choices where Gate is silent:

- A pair that exists but is not open for the order's side (``sellable`` before ``buy_start``,
  ``untradable``) is refused with ``INVALID_CURRENCY_PAIR`` (400), message
  "Trading of ABC_USDT is not open for buy": the label the daemon must already treat as
  retryable around T0 (§5), and the one Gate is known to use for pairs it will not trade.
- Maximums come back as ``INVALID_PARAM_VALUE`` "The maximum is ..." (mirroring minimums).
- A missing required field is ``MISSING_REQUIRED_PARAM``; a malformed one ``INVALID_PARAM_VALUE``.
- Decimals must be plain (``123.45``); exponents, signs, NaN and infinities are malformed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from sniper.sim.entities import ZERO, SimPair, SimReject

_PLAIN_DECIMAL = re.compile(r"^[0-9]+(\.[0-9]+)?$")
_TEXT = re.compile(r"^t-[0-9A-Za-z_.\-]{1,28}$")
_SIDES = ("buy", "sell")
_TYPES = ("limit", "market")
_TIFS = ("gtc", "ioc", "poc", "fok")
_ACCOUNTS = ("spot", "unified")


@dataclass(frozen=True, slots=True)
class OrderSpec:
    """A validated order body. ``amount`` is quote for a market buy, base otherwise."""

    pair: str
    side: str
    type: str
    time_in_force: str
    price: Decimal | None
    amount: Decimal
    text: str
    account: str
    iceberg: Decimal

    @property
    def lock_currency_is_quote(self) -> bool:
        """A buy locks quote, a sell locks base."""
        return self.side == "buy"


def reject(label: str, message: str, status: int = 400) -> SimReject:
    """Shorthand for building a :class:`SimReject`."""
    return SimReject(label, message, status)


def parse_decimal(field: str, raw: str) -> Decimal:
    """A strictly plain, positive decimal, or ``INVALID_PARAM_VALUE``."""
    if not _PLAIN_DECIMAL.match(raw):
        raise reject("INVALID_PARAM_VALUE", f"Invalid parameter `{field}` with value: {raw}")
    value = Decimal(raw)
    if value <= 0:
        raise reject("INVALID_PARAM_VALUE", f"Invalid parameter `{field}` with value: {raw}")
    return value


def decimals(value: Decimal) -> int:
    """Number of decimal places written (``1.50`` has 2: Gate counts what was sent)."""
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)
    return max(0, -exponent)


def _choice(params: dict[str, str], field: str, allowed: tuple[str, ...], default: str) -> str:
    value = params.get(field) or default
    if value not in allowed:
        raise reject("INVALID_PARAM_VALUE", f"Invalid parameter `{field}` with value: {value}")
    return value


def parse_order(params: dict[str, str], pair: SimPair, *, default_text: str = "apiv4") -> OrderSpec:
    """Validate ``params`` (Gate body fields as strings) against ``pair``'s rules.

    ``pair`` is the already-resolved, visible pair named by ``currency_pair``.
    """
    side = params.get("side")
    if not side:
        raise reject("MISSING_REQUIRED_PARAM", "Missing required parameter: side")
    if side not in _SIDES:
        raise reject("INVALID_PARAM_VALUE", f"Invalid parameter `side` with value: {side}")
    order_type = _choice(params, "type", _TYPES, "limit")
    default_tif = "ioc" if order_type == "market" else "gtc"
    tif = _choice(params, "time_in_force", _TIFS, default_tif)
    if order_type == "market" and tif not in ("ioc", "fok"):
        raise reject("INVALID_PARAM_VALUE", f"Invalid parameter `time_in_force` with value: {tif}")
    account = _choice(params, "account", _ACCOUNTS, "spot")
    text = params.get("text") or default_text
    if "text" in params and params["text"] and not _TEXT.match(text):
        raise reject("INVALID_PARAM_VALUE", f"Invalid parameter `text` with value: {text}")
    raw_amount = params.get("amount")
    if not raw_amount:
        raise reject("MISSING_REQUIRED_PARAM", "Missing required parameter: amount")
    amount = parse_decimal("amount", raw_amount)
    iceberg = ZERO
    raw_iceberg = params.get("iceberg")
    if raw_iceberg and raw_iceberg != "0":
        iceberg = parse_decimal("iceberg", raw_iceberg)

    price: Decimal | None = None
    if order_type == "limit":
        raw_price = params.get("price")
        if not raw_price:
            raise reject("MISSING_REQUIRED_PARAM", "Missing required parameter: price")
        price = parse_decimal("price", raw_price)
        if decimals(price) > pair.precision:
            raise reject(
                "INVALID_PRECISION", f"Price precision is {pair.precision}, got {raw_price}"
            )
    market_buy = order_type == "market" and side == "buy"
    if not market_buy and decimals(amount) > pair.amount_precision:
        raise reject(
            "INVALID_PRECISION",
            f"Amount precision is {pair.amount_precision}, got {raw_amount}",
        )
    _check_open(pair, side)
    _check_limits(pair, side, order_type, price, amount)
    return OrderSpec(
        pair=pair.pair,
        side=side,
        type=order_type,
        time_in_force=tif,
        price=price,
        amount=amount,
        text=text,
        account=account,
        iceberg=iceberg,
    )


def _check_open(pair: SimPair, side: str) -> None:
    allowed = pair.can_buy if side == "buy" else pair.can_sell
    if not allowed:
        raise reject("INVALID_CURRENCY_PAIR", f"Trading of {pair.pair} is not open for {side}")


def _check_limits(
    pair: SimPair, side: str, order_type: str, price: Decimal | None, amount: Decimal
) -> None:
    if order_type == "market" and side == "buy":
        base_amount, quote_amount = None, amount
    elif order_type == "market":
        base_amount, quote_amount = amount, None
    else:
        assert price is not None
        base_amount, quote_amount = amount, amount * price
    if base_amount is not None:
        if pair.min_base_amount is not None and base_amount < pair.min_base_amount:
            raise _minimum(pair.min_base_amount, pair.base)
        if pair.max_base_amount is not None and base_amount > pair.max_base_amount:
            raise _maximum(pair.max_base_amount, pair.base)
    if quote_amount is not None:
        if pair.min_quote_amount is not None and quote_amount < pair.min_quote_amount:
            raise _minimum(pair.min_quote_amount, pair.quote)
        if pair.max_quote_amount is not None and quote_amount > pair.max_quote_amount:
            raise _maximum(pair.max_quote_amount, pair.quote)


def _minimum(value: Decimal, currency: str) -> SimReject:
    return reject("INVALID_PARAM_VALUE", f"The minimum is {value.normalize():f} {currency}")


def _maximum(value: Decimal, currency: str) -> SimReject:
    return reject("INVALID_PARAM_VALUE", f"The maximum is {value.normalize():f} {currency}")
