"""Ledger: idempotent fills, fee currencies, averages, realized PnL, balance caps."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sniper.core.ledger import Ledger, Position
from sniper.core.models import Balance, Fill, PairInfo, Side, TradeStatus

D = Decimal
PAIR = PairInfo(
    pair="NEW_USDT", base="NEW", quote="USDT", trade_status=TradeStatus.TRADABLE,
    buy_start_s=0, sell_start_s=0, amount_precision=2, price_precision=4,
    min_base_amount=D("1"), min_quote_amount=D("3"),
)
OTHER = PairInfo(
    pair="OLD_USDT", base="OLD", quote="USDT", trade_status=TradeStatus.TRADABLE,
    buy_start_s=0, sell_start_s=0, amount_precision=2, price_precision=4,
    min_base_amount=None, min_quote_amount=None,
)


def fill(
    trade_id: str, side: Side, price: str, amount: str, fee: str = "0", fee_currency: str = "",
    order_id: str = "o1", pair: str = "NEW_USDT", time_ms: int = 1000,
) -> Fill:
    if not fee_currency:
        fee_currency = "NEW" if side == "buy" else "USDT"
    return Fill(
        trade_id=trade_id, order_id=order_id, text="t-x", pair=pair, side=side, role="taker",
        price=D(price), amount=D(amount), fee=D(fee), fee_currency=fee_currency, time_ms=time_ms,
    )


def test_buy_fee_in_base_reduces_held_not_avg_price() -> None:
    p = Position.for_pair(PAIR)
    assert p.apply_fill(fill("1", "buy", "0.1", "100", "0.2"))
    assert p.apply_fill(fill("2", "buy", "0.12", "50", "0.1"))
    assert p.held == D("149.7")
    assert p.base_bought == D("150")
    assert p.quote_spent == D("16")
    assert p.avg_entry_price == D("16") / D("150")
    snap = p.snapshot()
    assert snap.held == D("149.7")
    assert snap.base_received == D("149.7")
    assert snap.buy_fills == 2
    assert snap.sell_fills == 0
    assert snap.avg_exit_price is None


@pytest.mark.parametrize(
    ("fee_currency", "held", "quote_fees", "other"),
    [
        ("NEW", "99.8", "0", ()),
        ("USDT", "100", "0.2", ()),
        ("GT", "100", "0", (("GT", D("0.2")),)),
        ("POINT", "100", "0", (("POINT", D("0.2")),)),
    ],
)
def test_buy_fee_currency_decides_what_it_reduces(
    fee_currency: str, held: str, quote_fees: str, other: tuple[tuple[str, Decimal], ...]
) -> None:
    p = Position.for_pair(PAIR)
    p.apply_fill(fill("1", "buy", "0.1", "100", "0.2", fee_currency))
    snap = p.snapshot()
    assert snap.held == D(held)
    assert snap.quote_fees == D(quote_fees)
    assert snap.other_fees == other
    assert snap.avg_entry_price == D("0.1")


def test_duplicate_trade_ids_are_applied_once() -> None:
    p = Position.for_pair(PAIR)
    f = fill("1", "buy", "0.1", "100", "0.2")
    assert p.apply_fill(f) is True
    assert p.apply_fill(f) is False
    assert p.apply_fill(fill("1", "buy", "0.2", "999")) is False  # same id, whatever the body
    assert p.held == D("99.8")
    assert p.has_trade("1")
    assert p.snapshot().buy_fills == 1


def test_fill_for_another_pair_is_a_bug() -> None:
    with pytest.raises(ValueError, match="OLD_USDT"):
        Position.for_pair(PAIR).apply_fill(fill("1", "buy", "1", "1", pair="OLD_USDT"))


def test_sell_realizes_pnl_net_of_all_fees() -> None:
    p = Position.for_pair(PAIR)
    p.apply_fill(fill("1", "buy", "0.1", "100", "0.2"))  # 10 USDT for 99.8 NEW
    p.apply_fill(fill("2", "sell", "0.13", "99.8", "0.025948", order_id="tp"))
    snap = p.snapshot()
    assert snap.held == 0
    assert snap.base_sold == D("99.8")
    assert snap.quote_received == D("12.974") - D("0.025948")
    assert snap.realized_pnl == D("12.974") - D("0.025948") - D("10")
    assert snap.avg_exit_price == D("0.13")
    assert p.sold_by_order("tp") == D("99.8")
    assert p.sold_by_order("other") == 0


def test_partial_sell_realizes_proportional_cost_and_marks_the_rest() -> None:
    p = Position.for_pair(PAIR)
    p.apply_fill(fill("1", "buy", "0.1", "100"))
    p.apply_fill(fill("2", "sell", "0.2", "40", order_id="s", fee="0"))
    assert p.realized_pnl == D("8") - D("4")
    assert p.held == D("60")
    assert p.unrealized_pnl(D("0.15")) == D("3")


def test_fills_in_any_order_give_the_same_totals() -> None:
    fills = [
        fill("1", "buy", "0.1", "100", "0.2"),
        fill("2", "buy", "0.11", "30", "0.06"),
        fill("3", "sell", "0.2", "50", "0.02", order_id="a"),
        fill("4", "sell", "0.21", "20", "0.0084", order_id="b"),
    ]
    forward, backward = Position.for_pair(PAIR), Position.for_pair(PAIR)
    for f in fills:
        forward.apply_fill(f)
    for f in reversed(fills):
        backward.apply_fill(f)
    assert forward.snapshot() == backward.snapshot()


def test_realized_pnl_without_buys() -> None:
    p = Position.for_pair(PAIR)
    p.apply_fill(fill("9", "sell", "1", "2"))
    assert p.realized_pnl == D("2")
    assert p.held == 0  # never negative
    assert p.cost_per_unit is None


def test_balance_lower_than_fills_caps_held_and_later_balances_win() -> None:
    p = Position.for_pair(PAIR)
    p.apply_fill(fill("1", "buy", "0.1", "100", "0.2"))
    assert p.apply_balance(Balance("USDT", D("0"), D("0"))) is False  # other currency
    assert p.apply_balance(Balance("NEW", D("90"), D("5"))) is True
    assert p.held == D("95")
    assert p.balance_shortfall == D("4.8")
    # a later buy still counts on top of the shortfall
    p.apply_fill(fill("2", "buy", "0.1", "10"))
    assert p.held == D("105")
    # a balance at or above what fills say clears the cap but never adds base
    assert p.apply_balance(Balance("NEW", D("500"), D("0"))) is True
    assert p.held == D("109.8")
    assert p.apply_balance(Balance("NEW", D("500"), D("0"))) is False
    assert p.apply_balance(Balance("NEW", D("0"), D("0"))) is True
    assert p.held == 0


def test_first_buy_time_is_the_earliest_buy_fill() -> None:
    p = Position.for_pair(PAIR)
    assert p.first_buy_ms is None
    p.apply_fill(fill("2", "buy", "0.1", "1", time_ms=2000))
    p.apply_fill(fill("1", "buy", "0.1", "1", time_ms=1500))
    p.apply_fill(fill("3", "buy", "0.1", "1", time_ms=0))  # a missing time is ignored
    assert p.first_buy_ms == 1500


def test_ledger_routes_and_lists_open_positions() -> None:
    ledger = Ledger()
    new = ledger.open(PAIR)
    assert ledger.open(PAIR) is new
    old = ledger.open(OTHER)
    assert len(ledger) == 2
    assert ledger.open_positions() == []  # armed, nothing bought
    assert ledger.apply_fill(fill("1", "buy", "0.1", "100", "0.2")) is True
    assert ledger.apply_fill(fill("1", "buy", "0.1", "100", "0.2")) is False
    assert ledger.apply_fill(fill("x", "buy", "1", "1", pair="ZZZ_USDT")) is False
    assert ledger.get("NEW_USDT") is new
    assert ledger.get("ZZZ_USDT") is None
    assert ledger.open_positions() == [new]
    assert ledger.apply_balance(Balance("NEW", D("50"), D("0"))) == [new]
    assert new.held == D("50")
    new.mark_closed()
    assert ledger.open_positions() == []
    assert [s.pair for s in ledger.snapshot()] == ["NEW_USDT", "OLD_USDT"]
    assert list(ledger) == [new, old]
    assert ledger.snapshot()[0].closed is True


amounts = st.decimals(min_value=D("0.01"), max_value=D("1000"), places=2)
prices = st.decimals(min_value=D("0.0001"), max_value=D("10"), places=4)


@given(st.lists(st.tuples(st.sampled_from(["buy", "sell"]), prices, amounts), max_size=20),
       st.randoms())
def test_replaying_with_duplicates_and_shuffles_rebuilds_the_same_position(
    events: list[tuple[Side, Decimal, Decimal]], rnd: random.Random
) -> None:
    fills = [
        fill(str(i), side, str(price), str(amount), str(amount / 1000))
        for i, (side, price, amount) in enumerate(events)
    ]
    first = Position.for_pair(PAIR)
    for f in fills:
        first.apply_fill(f)
    replay = fills + fills[: len(fills) // 2]
    rnd.shuffle(replay)
    second = Position.for_pair(PAIR)
    for f in replay:
        second.apply_fill(f)
    assert first.snapshot() == second.snapshot()
    assert first.held >= 0
