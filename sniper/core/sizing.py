"""Order sizing: prices and amounts rounded to a pair's precision, checked against its limits.

Gate's ``amount_precision`` and ``precision`` are numbers of decimal places, and an amount or
price with more places is refused (``INVALID_PRECISION``); see gate-v4.md section 2.1 and
fact 5 of section 11. Rounding directions are chosen so that no order can ask for more than
we have or meant to spend:

* buy amounts round **down** (the quote cost stays within the budget);
* sell amounts round **down** (never more than is held);
* the buy price cap rounds **down** (never above the configured slippage/absolute cap);
* a take-profit price rounds **up** (never below the target, so the profit is at least
  ``take_profit_pct``);
* a stop sell price rounds **down** (stays marketable against the bid it was derived from).

Every function is pure and uses :data:`_CTX`, a wide decimal context, so a quotient or product
is never rounded *up* at the 28th digit by the default context before it is truncated.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_UP, Context, Decimal
from typing import Final

from sniper.core.models import PairInfo

# Wide enough for any Gate price or amount (NT-GATE saw 14 price decimals); ROUND_DOWN so an
# inexact quotient errs on the side of a smaller amount.
_CTX: Final = Context(prec=60, rounding=ROUND_DOWN)
_ZERO: Final = Decimal(0)
_HUNDRED: Final = Decimal(100)

# Reasons an entry is skipped or an amount is unsellable (stable strings: journaled and tested).
NO_ASK: Final = "no_ask"
NO_BUDGET: Final = "no_budget"
PRICE_CAP_BELOW_ASK: Final = "price_cap_below_ask"
AMOUNT_ZERO: Final = "amount_zero"
BELOW_MIN_BASE: Final = "below_min_base_amount"
BELOW_MIN_QUOTE: Final = "below_min_quote_amount"


def step(places: int) -> Decimal:
    """The smallest increment with ``places`` decimal places (``step(2) == Decimal("0.01")``)."""
    if places < 0:
        raise ValueError(f"decimal places must be >= 0, got {places}")
    return Decimal(1).scaleb(-places)


def round_down(value: Decimal, places: int) -> Decimal:
    """Truncate ``value`` towards zero to ``places`` decimal places."""
    return value.quantize(step(places), rounding=ROUND_DOWN, context=_CTX)


def round_up(value: Decimal, places: int) -> Decimal:
    """Round ``value`` away from zero to ``places`` decimal places."""
    return value.quantize(step(places), rounding=ROUND_UP, context=_CTX)


def cost(price: Decimal, amount: Decimal) -> Decimal:
    """``price * amount`` without the default context's 28-digit rounding."""
    return _CTX.multiply(price, amount)


@dataclass(frozen=True, slots=True)
class EntryPlan:
    """A buy that fits the caps: limit ``price``, base ``amount``, ``quote_cost = price*amount``."""

    price: Decimal
    amount: Decimal
    quote_cost: Decimal


@dataclass(frozen=True, slots=True)
class EntrySkip:
    """No buy now. ``reason`` is one of this module's reason constants; ``detail`` has numbers."""

    reason: str
    detail: str = ""


def plan_entry(
    pair: PairInfo,
    best_ask: Decimal,
    *,
    quote_budget: Decimal,
    max_slippage_pct: Decimal,
    max_price: Decimal | None,
) -> EntryPlan | EntrySkip:
    """Size an IOC limit buy against ``best_ask`` (DESIGN.md section 1, step 3).

    ``price = min(best_ask * (1 + max_slippage_pct/100), max_price)`` rounded down; if that is
    below the ask the cap cannot be met now. ``amount = quote_budget / price`` rounded down,
    clamped to ``max_base_amount``/``max_quote_amount``, then checked against the minimums.
    """
    if best_ask <= 0:
        return EntrySkip(NO_ASK, f"best ask {best_ask}")
    if quote_budget <= 0:
        return EntrySkip(NO_BUDGET, f"quote budget {quote_budget}")
    cap = cost(best_ask, 1 + max_slippage_pct / _HUNDRED)
    if max_price is not None and max_price < cap:
        cap = max_price
    price = round_down(cap, pair.price_precision)
    if price < best_ask or price <= 0:
        return EntrySkip(PRICE_CAP_BELOW_ASK, f"cap {price} < ask {best_ask}")
    amount = round_down(_CTX.divide(quote_budget, price), pair.amount_precision)
    amount = _clamp_to_max(amount, price, pair)
    reason = _below_minimum(amount, price, pair)
    if reason is not None:
        return reason
    return EntryPlan(price=price, amount=amount, quote_cost=cost(price, amount))


def _clamp_to_max(amount: Decimal, price: Decimal | None, pair: PairInfo) -> Decimal:
    if pair.max_base_amount is not None:
        amount = min(amount, round_down(pair.max_base_amount, pair.amount_precision))
    if pair.max_quote_amount is not None and price is not None and price > 0:
        most = round_down(_CTX.divide(pair.max_quote_amount, price), pair.amount_precision)
        amount = min(amount, most)
    return max(amount, _ZERO)


def _below_minimum(amount: Decimal, price: Decimal | None, pair: PairInfo) -> EntrySkip | None:
    if amount <= 0:
        return EntrySkip(AMOUNT_ZERO, f"amount rounds to 0 at {pair.amount_precision} places")
    if pair.min_base_amount is not None and amount < pair.min_base_amount:
        return EntrySkip(BELOW_MIN_BASE, f"{amount} < min_base_amount {pair.min_base_amount}")
    if price is not None and pair.min_quote_amount is not None:
        value = cost(price, amount)
        if value < pair.min_quote_amount:
            return EntrySkip(
                BELOW_MIN_QUOTE, f"{amount} x {price} = {value} < min_quote_amount "
                f"{pair.min_quote_amount}"
            )
    return None


def sellable_amount(held: Decimal, pair: PairInfo, price: Decimal | None = None) -> Decimal:
    """The largest sell of ``held`` Gate accepts: rounded down, clamped to the maximums.

    Returns 0 when that amount is below ``min_base_amount`` or (with ``price``) below
    ``min_quote_amount``: the holding is dust. :func:`unsellable_reason` says why.
    """
    amount = _clamp_to_max(round_down(max(held, _ZERO), pair.amount_precision), price, pair)
    if _below_minimum(amount, price, pair) is not None:
        return _ZERO
    return amount


def unsellable_reason(held: Decimal, pair: PairInfo, price: Decimal | None = None) -> str | None:
    """Why :func:`sellable_amount` returns 0 for ``held`` (a reason constant), or ``None``."""
    amount = _clamp_to_max(round_down(max(held, _ZERO), pair.amount_precision), price, pair)
    skip = _below_minimum(amount, price, pair)
    return None if skip is None else skip.reason


def take_profit_price(avg_price: Decimal, pct: Decimal, pair: PairInfo) -> Decimal:
    """``avg_price * (1 + pct/100)`` rounded **up**: the sell never rests below the target."""
    return round_up(cost(avg_price, 1 + pct / _HUNDRED), pair.price_precision)


def stop_sell_price(best_bid: Decimal, slippage_pct: Decimal, pair: PairInfo) -> Decimal:
    """Price of a marketable IOC limit sell: ``best_bid * (1 - slippage_pct/100)`` rounded down.

    Never below one price step: Gate refuses a zero price, and one step still crosses any bid.
    """
    price = round_down(cost(best_bid, 1 - slippage_pct / _HUNDRED), pair.price_precision)
    return max(price, step(pair.price_precision))
