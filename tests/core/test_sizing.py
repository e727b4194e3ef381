"""Sizing: rounding directions, entry caps and limits, sellable amounts, exit prices."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal, localcontext

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sniper.core import sizing
from sniper.core.models import PairInfo, TradeStatus
from sniper.core.sizing import (
    EntryPlan,
    EntrySkip,
    plan_entry,
    round_down,
    round_up,
    sellable_amount,
    stop_sell_price,
    take_profit_price,
    unsellable_reason,
)

D = Decimal
PAIR = PairInfo(
    pair="NEW_USDT", base="NEW", quote="USDT", trade_status=TradeStatus.TRADABLE,
    buy_start_s=0, sell_start_s=0, amount_precision=2, price_precision=4,
    min_base_amount=D("1"), min_quote_amount=D("3"),
)


@pytest.mark.parametrize(
    ("value", "places", "down", "up"),
    [
        ("1.239", 2, "1.23", "1.24"),
        ("1.23", 2, "1.23", "1.23"),
        ("0.00999", 2, "0.00", "0.01"),
        ("5", 0, "5", "5"),
        ("5.5", 0, "5", "6"),
        ("-1.239", 2, "-1.23", "-1.24"),
        ("123456789012345678901234567.123456789", 8,
         "123456789012345678901234567.12345678", "123456789012345678901234567.12345679"),
        ("0.000000000000001", 14, "0.00000000000000", "0.00000000000001"),
    ],
)
def test_round_down_and_up(value: str, places: int, down: str, up: str) -> None:
    assert round_down(D(value), places) == D(down)
    assert round_up(D(value), places) == D(up)
    assert round_down(D(value), places).as_tuple().exponent == -places


def test_negative_places_refused() -> None:
    with pytest.raises(ValueError, match="decimal places"):
        round_down(D(1), -1)


@pytest.mark.parametrize(
    ("ask", "budget", "slip", "max_price", "price", "amount"),
    [
        ("0.1", "20", "10", None, "0.11", "181.81"),
        ("0.1", "20", "10", "0.105", "0.105", "190.47"),  # absolute cap below slippage cap
        ("0.1", "20", "0", None, "0.1", "200"),
        ("0.12345", "20", "10", None, "0.1357", "147.38"),  # 0.135795 rounded down
        ("2", "20", "10", "2", "2", "10"),  # cap exactly at the ask holds
    ],
)
def test_plan_entry_sizes_within_budget(
    ask: str, budget: str, slip: str, max_price: str | None, price: str, amount: str
) -> None:
    plan = plan_entry(
        PAIR, D(ask), quote_budget=D(budget), max_slippage_pct=D(slip),
        max_price=D(max_price) if max_price else None,
    )
    assert plan == EntryPlan(D(price), D(amount), D(price) * D(amount))
    assert plan.quote_cost <= D(budget)


@pytest.mark.parametrize(
    ("ask", "budget", "max_price", "pair_changes", "reason"),
    [
        ("0", "20", None, {}, sizing.NO_ASK),
        ("0.1", "0", None, {}, sizing.NO_BUDGET),
        ("0.1", "20", "0.09", {}, sizing.PRICE_CAP_BELOW_ASK),
        # cap 0.10009 rounds down to 0.1000 < ask 0.10005
        ("0.10005", "20", "0.10009", {}, sizing.PRICE_CAP_BELOW_ASK),
        ("0.1", "0.0001", None, {"min_base_amount": None, "min_quote_amount": None},
         sizing.AMOUNT_ZERO),
        ("10", "5", None, {"min_base_amount": D("1")}, sizing.BELOW_MIN_BASE),  # 0.45 < 1
        ("0.1", "2", None, {}, sizing.BELOW_MIN_QUOTE),  # 2 USDT < 3
        # clamped by max_base to 2 -> 2 x 0.11 = 0.22 < 3
        ("0.1", "20", None, {"max_base_amount": D("2")}, sizing.BELOW_MIN_QUOTE),
    ],
)
def test_plan_entry_skips_with_precise_reason(
    ask: str, budget: str, max_price: str | None, pair_changes: dict[str, object], reason: str
) -> None:
    pair = replace(PAIR, **pair_changes)  # type: ignore[arg-type]
    skip = plan_entry(
        pair, D(ask), quote_budget=D(budget), max_slippage_pct=D("10"),
        max_price=D(max_price) if max_price else None,
    )
    assert isinstance(skip, EntrySkip)
    assert skip.reason == reason
    assert skip.detail


def test_plan_entry_clamps_to_maximums() -> None:
    by_base = plan_entry(
        replace(PAIR, max_base_amount=D("100.555")), D("0.1"),
        quote_budget=D("20"), max_slippage_pct=D("10"), max_price=None,
    )
    assert isinstance(by_base, EntryPlan)
    assert by_base.amount == D("100.55")
    by_quote = plan_entry(
        replace(PAIR, max_quote_amount=D("5")), D("0.1"),
        quote_budget=D("20"), max_slippage_pct=D("10"), max_price=None,
    )
    assert isinstance(by_quote, EntryPlan)
    assert by_quote.amount == D("45.45")  # 5 / 0.11 rounded down
    assert by_quote.quote_cost <= D("5")


@given(
    ask=st.decimals(min_value=D("0.00000001"), max_value=D("100000"), places=8),
    budget=st.decimals(min_value=D("0.01"), max_value=D("1000000"), places=6),
    slip=st.decimals(min_value=D("0"), max_value=D("50"), places=3),
    amount_places=st.integers(0, 10),
    price_places=st.integers(8, 14),
)
def test_plan_entry_never_exceeds_budget_or_cap(
    ask: Decimal, budget: Decimal, slip: Decimal, amount_places: int, price_places: int
) -> None:
    pair = replace(PAIR, amount_precision=amount_places, price_precision=price_places)
    plan = plan_entry(pair, ask, quote_budget=budget, max_slippage_pct=slip, max_price=None)
    if isinstance(plan, EntryPlan):
        with localcontext() as ctx:  # exact: the default 28 digits would round the product
            ctx.prec = 80
            assert plan.quote_cost == plan.price * plan.amount
            assert plan.quote_cost <= budget
            assert ask <= plan.price <= ask * (1 + slip / 100)
        assert plan.amount >= 1
        assert plan.quote_cost >= 3
        assert plan.amount == round_down(plan.amount, amount_places)
        assert plan.price == round_down(plan.price, price_places)


@pytest.mark.parametrize(
    ("held", "price", "amount", "reason"),
    [
        ("10.129", None, "10.12", None),
        ("0.999", None, "0", sizing.BELOW_MIN_BASE),
        ("0.001", None, "0", sizing.AMOUNT_ZERO),
        ("0", None, "0", sizing.AMOUNT_ZERO),
        ("-1", None, "0", sizing.AMOUNT_ZERO),
        ("10", "0.2", "0", sizing.BELOW_MIN_QUOTE),  # 2 USDT < 3
        ("10", "0.3", "10", None),  # exactly 3 USDT
    ],
)
def test_sellable_amount_and_reason(
    held: str, price: str | None, amount: str, reason: str | None
) -> None:
    p = D(price) if price else None
    assert sellable_amount(D(held), PAIR, p) == D(amount)
    assert unsellable_reason(D(held), PAIR, p) == reason


def test_sellable_amount_clamps_to_max_base() -> None:
    assert sellable_amount(D("500"), replace(PAIR, max_base_amount=D("100"))) == D("100")


@pytest.mark.parametrize(
    ("avg", "pct", "price"),
    [
        ("0.1", "30", "0.13"),
        ("0.10001", "30", "0.1301"),  # 0.130013 rounded up, never below the target
        ("0.123456", "10", "0.1359"),  # 0.1358016 up
    ],
)
def test_take_profit_price_rounds_up(avg: str, pct: str, price: str) -> None:
    got = take_profit_price(D(avg), D(pct), PAIR)
    assert got == D(price)
    assert got >= D(avg) * (1 + D(pct) / 100)


@pytest.mark.parametrize(
    ("bid", "slip", "price"),
    [
        ("0.1", "5", "0.095"),
        ("0.12345", "5", "0.1172"),  # 0.1172775 down
        ("0.0001", "50", "0.0001"),  # 0.00005 rounds to 0: one step instead
        ("0.2", "0", "0.2"),
    ],
)
def test_stop_sell_price_rounds_down_and_stays_positive(bid: str, slip: str, price: str) -> None:
    got = stop_sell_price(D(bid), D(slip), PAIR)
    assert got == D(price)
    assert got <= D(bid)
