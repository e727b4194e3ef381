"""ExitMachine: every row of the transition table, unknown outcomes, partial fills, invariants."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sniper.core.clientid import Purpose, parse_text
from sniper.core.exits import (
    Accepted,
    CancelOrder,
    Closed,
    ExitAction,
    ExitMachine,
    ExitRules,
    ExitState,
    ExitTriggered,
    PlaceSell,
    ReadBalance,
    ReconcileOrder,
    Rejected,
    Unknown,
)
from sniper.core.models import (
    Balance,
    BookTop,
    Fill,
    Order,
    OrderRequest,
    OrderStatus,
    PairInfo,
    Side,
    TradeStatus,
)

D = Decimal
PAIR = PairInfo(
    pair="NEW_USDT", base="NEW", quote="USDT", trade_status=TradeStatus.TRADABLE,
    buy_start_s=0, sell_start_s=0, amount_precision=2, price_precision=4,
    min_base_amount=D("1"), min_quote_amount=D("3"),
)
RULES = ExitRules(
    take_profit_pct=D("30"), stop_loss_pct=D("20"), trailing_stop_pct=None, max_hold_s=3600,
    stop_slippage_pct=D("5"),
)
T0 = 1_000_000  # exchange ms of the first buy


def machine(rules: ExitRules = RULES) -> ExitMachine:
    return ExitMachine(PAIR, rules, run_id="run")


_trade_ids = iter(range(10**9))


def fill(side: Side, price: str, amount: str, fee: str = "0", order_id: str = "b1",
         text: str = "t-buy", pair: str = "NEW_USDT") -> Fill:
    return Fill(
        trade_id=str(next(_trade_ids)), order_id=order_id, text=text, pair=pair, side=side,
        role="taker", price=D(price), amount=D(amount), fee=D(fee),
        fee_currency="NEW" if side == "buy" else "USDT", time_ms=T0,
    )


def order(sell: PlaceSell, order_id: str, status: OrderStatus, filled: str = "0") -> Order:
    return Order(
        id=order_id, text=sell.text, pair=sell.pair, side="sell", type="limit",
        time_in_force=sell.time_in_force, status=status, amount=sell.amount, price=sell.price,
        left=sell.amount - D(filled), filled_amount=D(filled),
        filled_total=D(filled) * sell.price, avg_deal_price=sell.price if D(filled) else None,
        fee=D(0), fee_currency="USDT", finish_as="", create_time_ms=T0, update_time_ms=T0,
    )


def top(bid: str | None, pair: str = "NEW_USDT") -> BookTop:
    return BookTop(pair=pair, update_id=1, time_ms=T0, bid=D(bid) if bid else None,
                   bid_size=D(1), ask=None, ask_size=None)


def only(actions: list[ExitAction], kind: type) -> object:
    assert len(actions) == 1, actions
    assert isinstance(actions[0], kind), actions
    return actions[0]


def holding(amount: str = "100", price: str = "0.1", fee: str = "0.2") -> ExitMachine:
    m = machine()
    assert m.on_fill(fill("buy", price, amount, fee)) == []
    return m


def resting_tp(
    m: ExitMachine | None = None, order_id: str = "tp1"
) -> tuple[ExitMachine, PlaceSell]:
    m = m or holding()
    tp = only(m.entry_done(now_ms=T0), PlaceSell)
    assert isinstance(tp, PlaceSell)
    assert m.on_place_result(tp.text, Accepted(order_id)) == []
    assert m.state is ExitState.TP_RESTING
    return m, tp


# -- FLAT / HOLDING ---------------------------------------------------------------------------


def test_flat_then_entry_done_without_fills_closes_no_fill() -> None:
    m = machine()
    assert m.state is ExitState.FLAT
    assert m.on_top(top("0.01"), T0) == []  # no position: no stops
    assert m.entry_done() == [Closed("no_fill", D(0))]
    assert m.state is ExitState.CLOSED
    assert m.position.closed


def test_buy_fills_aggregate_and_tp_waits_for_entry_done() -> None:
    m = machine()
    assert m.on_fill(fill("buy", "0.1", "60", "0.12")) == []
    assert m.state is ExitState.HOLDING
    assert m.on_fill(fill("buy", "0.12", "40", "0.08")) == []
    assert m.on_tick(T0) == []
    tp = only(m.entry_done(now_ms=T0), PlaceSell)
    assert isinstance(tp, PlaceSell)
    # avg = (6 + 4.8) / 100 = 0.108; x 1.3 = 0.1404; held = 100 - 0.2 = 99.8
    assert (tp.amount, tp.price, tp.time_in_force, tp.purpose) == (
        D("99.8"), D("0.1404"), "gtc", "take_profit")
    parsed = parse_text(tp.text)
    assert parsed is not None
    assert (parsed.purpose, parsed.attempt) == (Purpose.TAKE_PROFIT, 0)
    assert m.state is ExitState.TP_PENDING
    assert m.live_sell == tp.text
    assert tp.request() == OrderRequest(
        pair="NEW_USDT", side="sell", amount=D("99.8"), price=D("0.1404"), text=tp.text,
        time_in_force="gtc",
    )


def test_tp_amount_is_rounded_down_after_fees() -> None:
    m = holding("100.005", "0.1", "0.2001")
    tp = only(m.entry_done(), PlaceSell)
    assert isinstance(tp, PlaceSell)
    assert tp.amount == D("99.80")  # 99.8049 down


@pytest.mark.parametrize(("amount", "price"), [("0.5", "10"), ("20", "0.1")])
def test_entry_done_with_dust_closes(amount: str, price: str) -> None:
    m = holding(amount, price, "0")  # 0.5 < min_base 1; 20 x 0.13 = 2.6 < min_quote 3
    assert m.entry_done() == [Closed("dust", D(amount))]


def test_entry_done_waits_for_reported_fills_then_gives_up_waiting() -> None:
    m = machine()
    assert m.entry_done(base_filled=D("100"), now_ms=T0) == []
    assert m.state is ExitState.FLAT  # the buy order said 100 filled: trades are coming
    assert m.on_fill(fill("buy", "0.1", "60")) == []
    assert m.on_tick(T0 + 1000) == []
    tp = only(m.on_tick(T0 + RULES.reconcile_after_ms), PlaceSell)
    assert isinstance(tp, PlaceSell)
    assert tp.amount == D("60")


def test_entry_done_places_tp_once_all_reported_fills_arrived() -> None:
    m = machine()
    m.on_fill(fill("buy", "0.1", "60"))
    assert m.entry_done(base_filled=D("100"), now_ms=T0) == []
    tp = only(m.on_fill(fill("buy", "0.1", "40")), PlaceSell)
    assert isinstance(tp, PlaceSell)
    assert tp.amount == D("100")
    assert m.entry_done() == []  # a second call changes nothing


# -- TP_PENDING -------------------------------------------------------------------------------


def test_tp_order_push_before_the_reply_means_resting() -> None:
    m = holding()
    tp = only(m.entry_done(), PlaceSell)
    assert isinstance(tp, PlaceSell)
    assert m.on_order(order(tp, "tp1", OrderStatus.OPEN)) == []
    assert m.state is ExitState.TP_RESTING
    assert m.on_place_result(tp.text, Accepted("tp1")) == []  # late reply: no change
    assert m.state is ExitState.TP_RESTING


def test_tp_unknown_outcome_is_reconciled_never_assumed_rejected() -> None:
    m = holding()
    tp = only(m.entry_done(now_ms=T0), PlaceSell)
    assert isinstance(tp, PlaceSell)
    assert m.on_place_result(tp.text, Unknown()) == [ReconcileOrder(tp.text, "NEW_USDT", None)]
    assert m.state is ExitState.TP_PENDING
    assert m.on_tick(T0 + 1) == []  # nothing new is placed while it may exist
    assert m.on_top(top("0.1"), T0 + 2) == []
    assert m.on_order(order(tp, "tp1", OrderStatus.OPEN)) == []
    assert m.state is ExitState.TP_RESTING


def test_tp_unknown_then_absent_places_a_new_id() -> None:
    m = holding()
    tp = only(m.entry_done(), PlaceSell)
    assert isinstance(tp, PlaceSell)
    m.on_place_result(tp.text, Unknown())
    again = only(m.on_reconciled_absent(tp.text), PlaceSell)
    assert isinstance(again, PlaceSell)
    assert again.text != tp.text
    assert again.amount == tp.amount
    assert m.on_reconciled_absent(tp.text) == []  # stale


def test_tp_rejected_retries_on_tick_until_the_failure_cap() -> None:
    m = machine(replace(RULES, max_tp_failures=2))
    m.on_fill(fill("buy", "0.1", "100"))
    tp = only(m.entry_done(), PlaceSell)
    assert isinstance(tp, PlaceSell)
    assert m.on_place_result(tp.text, Rejected("TOO_MANY_REQUESTS")) == []
    assert m.state is ExitState.HOLDING
    retry = only(m.on_tick(T0 + 100), PlaceSell)
    assert isinstance(retry, PlaceSell)
    assert retry.text != tp.text
    assert m.on_place_result(retry.text, Rejected("INVALID_PARAM_VALUE")) == []
    assert m.on_tick(T0 + 200) == []  # two failures: hold, stops stay armed
    assert m.state is ExitState.HOLDING
    assert isinstance(m.on_top(top("0.07"), T0 + 300)[0], ExitTriggered)


def test_tp_balance_not_enough_reads_balance_and_resizes() -> None:
    m = holding()
    tp = only(m.entry_done(), PlaceSell)
    assert isinstance(tp, PlaceSell)
    assert m.on_place_result(tp.text, Rejected("BALANCE_NOT_ENOUGH")) == [ReadBalance("NEW")]
    assert m.state is ExitState.BALANCE_CHECK
    assert m.on_fill(fill("buy", "0.1", "1")) == []  # waits for the balance
    assert m.on_balance(Balance("USDT", D(5), D(0))) == []  # not our base
    again = only(m.on_balance(Balance("NEW", D("90.555"), D(0))), PlaceSell)
    assert isinstance(again, PlaceSell)
    assert again.amount == D("90.55")


def test_balance_not_enough_forever_closes_instead_of_looping() -> None:
    m = machine(replace(RULES, max_balance_reads=1))
    m.on_fill(fill("buy", "0.1", "100"))
    tp = only(m.entry_done(), PlaceSell)
    assert isinstance(tp, PlaceSell)
    m.on_place_result(tp.text, Rejected("BALANCE_NOT_ENOUGH"))
    again = only(m.on_balance(Balance("NEW", D("100"), D(0))), PlaceSell)
    assert isinstance(again, PlaceSell)
    assert m.on_place_result(again.text, Rejected("BALANCE_NOT_ENOUGH")) == [
        Closed("balance_not_enough", D("100"))]


def test_lost_balance_read_is_asked_again() -> None:
    m = holding()
    tp = only(m.entry_done(now_ms=T0), PlaceSell)
    assert isinstance(tp, PlaceSell)
    m.on_place_result(tp.text, Rejected("BALANCE_NOT_ENOUGH"))
    assert m.on_tick(T0 + 1) == []
    assert m.on_tick(T0 + RULES.reconcile_after_ms) == [ReadBalance("NEW")]


def test_unanswered_placement_is_reconciled_after_timeout() -> None:
    m = holding()
    tp = only(m.entry_done(), PlaceSell)  # sent before any clock reading
    assert isinstance(tp, PlaceSell)
    assert m.on_tick(T0) == []
    assert m.on_tick(T0 + RULES.reconcile_after_ms - 1) == []
    assert m.on_tick(T0 + RULES.reconcile_after_ms) == [ReconcileOrder(tp.text, "NEW_USDT", None)]
    assert m.on_tick(T0 + RULES.reconcile_after_ms + 1) == []


# -- TP_RESTING -------------------------------------------------------------------------------


def test_tp_filled_closes_take_profit_whatever_arrives_first() -> None:
    m, tp = resting_tp()
    # the order's final state arrives before its trades
    assert m.on_order(order(tp, "tp1", OrderStatus.CLOSED, "99.8")) == [
        Closed("take_profit", D(0))]
    assert m.free_base() == 0
    assert m.on_fill(fill("sell", "0.13", "99.8", order_id="tp1", text=tp.text)) == []
    assert m.position.held == 0


def test_tp_partial_fills_then_filled() -> None:
    m, tp = resting_tp()
    assert m.on_fill(fill("sell", "0.13", "40", order_id="tp1", text=tp.text)) == []
    assert m.on_order(order(tp, "tp1", OrderStatus.OPEN, "40")) == []
    assert m.state is ExitState.TP_RESTING
    assert m.on_fill(fill("sell", "0.13", "59.8", order_id="tp1", text=tp.text)) == []
    closed = m.on_order(order(tp, "tp1", OrderStatus.CLOSED, "99.8"))
    assert closed == [Closed("take_profit", D(0))]
    assert m.close_reason == "take_profit"
    assert m.on_tick(T0 + 10) == []
    assert m.on_fill(fill("buy", "0.1", "5")) == []  # closed stays closed


def test_tp_cancelled_by_someone_else_is_replaced_a_bounded_number_of_times() -> None:
    m = machine(replace(RULES, max_tp_replacements=1))
    m.on_fill(fill("buy", "0.1", "100"))
    m, tp = resting_tp(m)
    again = only(m.on_order(order(tp, "tp1", OrderStatus.CANCELLED, "10")), PlaceSell)
    assert isinstance(again, PlaceSell)
    assert again.amount == D("90")  # the 10 sold is not sold twice (trades not in yet)
    assert again.text != tp.text
    m.on_place_result(again.text, Accepted("tp2"))
    assert m.on_order(order(again, "tp2", OrderStatus.CANCELLED)) == []
    assert m.state is ExitState.HOLDING
    assert m.on_tick(T0 + 1) == []  # holds; a human wants it gone
    acts = m.on_top(top("0.07"), T0 + 2)
    assert acts[0] == ExitTriggered("stop_loss")
    sell = acts[1]
    assert isinstance(sell, PlaceSell)
    assert sell.time_in_force == "ioc"
    assert sell.amount == D("90")


def test_late_buy_fill_cancels_and_replaces_the_tp() -> None:
    m, tp = resting_tp()
    cancel = m.on_fill(fill("buy", "0.12", "50", "0.1"))
    assert cancel == [CancelOrder("tp1", "NEW_USDT")]
    assert m.state is ExitState.TP_CANCELLING
    assert m.on_cancel_result("tp1", Accepted("tp1")) == []
    new = only(m.on_order(order(tp, "tp1", OrderStatus.CANCELLED)), PlaceSell)
    assert isinstance(new, PlaceSell)
    assert new.amount == D("149.7")
    assert new.price == D("0.1387")  # avg 16/150 = 0.10667 x 1.3 = 0.138667 up
    assert m.tp_replacements == 0  # our own cancel is not someone else's


def test_small_late_fill_that_does_not_change_the_tp_is_left_alone() -> None:
    m, _tp = resting_tp()
    assert m.on_fill(fill("buy", "0.1", "0.004", "0")) == []  # 99.804 still rounds to 99.80
    assert m.state is ExitState.TP_RESTING


def test_tp_resting_without_order_id_is_cancelled_by_text() -> None:
    m = holding()
    tp = only(m.entry_done(), PlaceSell)
    assert isinstance(tp, PlaceSell)
    m.on_place_result(tp.text, Accepted(""))
    acts = m.on_top(top("0.07"), T0)
    assert acts == [ExitTriggered("stop_loss"), CancelOrder(tp.text, "NEW_USDT")]


# -- stops ------------------------------------------------------------------------------------


def test_stop_loss_cancels_tp_then_sells_everything_ioc() -> None:
    m, tp = resting_tp()
    assert m.on_top(top("0.081"), T0 + 1) == []  # above 0.1 x 0.8
    acts = m.on_top(top("0.08"), T0 + 2)
    assert acts == [ExitTriggered("stop_loss"), CancelOrder("tp1", "NEW_USDT")]
    assert m.on_top(top("0.079"), T0 + 3) == []  # one trigger, one cancel
    sell = only(m.on_order(order(tp, "tp1", OrderStatus.CANCELLED)), PlaceSell)
    assert isinstance(sell, PlaceSell)
    assert (sell.amount, sell.price, sell.time_in_force, sell.purpose) == (
        D("99.8"), D("0.075"), "ioc", "stop")  # 0.079 x 0.95 = 0.07505 down
    assert m.state is ExitState.SELLING
    m.on_place_result(sell.text, Accepted("s1"))
    m.on_fill(fill("sell", "0.079", "99.8", order_id="s1", text=sell.text))
    assert m.on_order(order(sell, "s1", OrderStatus.CLOSED, "99.8")) == [
        Closed("stop_loss", D(0))]


def test_tp_fills_while_being_cancelled_for_a_stop() -> None:
    m, tp = resting_tp()
    m.on_top(top("0.05"), T0)
    assert m.state is ExitState.TP_CANCELLING
    assert m.on_cancel_result("tp1", Rejected("ORDER_CLOSED")) == [
        ReconcileOrder(tp.text, "NEW_USDT", "tp1")]
    assert m.on_order(order(tp, "tp1", OrderStatus.CLOSED, "99.8")) == [
        Closed("take_profit", D(0))]


def test_cancel_refused_while_still_open_is_sent_again() -> None:
    m, tp = resting_tp()
    m.on_top(top("0.05"), T0)
    assert m.on_cancel_result("tp1", Unknown()) == [ReconcileOrder(tp.text, "NEW_USDT", "tp1")]
    assert m.on_order(order(tp, "tp1", OrderStatus.OPEN)) == [CancelOrder("tp1", "NEW_USDT")]
    assert m.on_order(order(tp, "tp1", OrderStatus.OPEN)) == []  # not again without cause
    assert m.on_cancel_result("other", Accepted()) == []
    sell = m.on_order(order(tp, "tp1", OrderStatus.CANCELLED, "30"))
    placed = only(sell, PlaceSell)
    assert isinstance(placed, PlaceSell)
    assert placed.amount == D("69.8")


def test_stop_while_tp_placement_in_flight_waits_for_the_answer() -> None:
    m = holding()
    tp = only(m.entry_done(), PlaceSell)
    assert isinstance(tp, PlaceSell)
    assert m.on_top(top("0.05"), T0) == [ExitTriggered("stop_loss")]
    assert m.state is ExitState.TP_PENDING
    assert m.on_place_result(tp.text, Accepted("tp1")) == [CancelOrder("tp1", "NEW_USDT")]


def test_stop_while_tp_placement_rejected_sells_at_once() -> None:
    m = holding()
    tp = only(m.entry_done(), PlaceSell)
    assert isinstance(tp, PlaceSell)
    m.on_top(top("0.05"), T0)
    sell = only(m.on_place_result(tp.text, Rejected("INVALID_PARAM_VALUE")), PlaceSell)
    assert isinstance(sell, PlaceSell)
    assert sell.purpose == "stop"


def test_trailing_stop_follows_the_high_water_bid() -> None:
    m = machine(replace(RULES, trailing_stop_pct=D("10"), stop_loss_pct=None))
    m.on_fill(fill("buy", "0.1", "100"))
    m, _tp = resting_tp(m)
    for bid in ("0.11", "0.15", "0.2", "0.181"):
        assert m.on_top(top(bid), T0) == []
    assert m.high_water_bid == D("0.2")
    assert m.on_top(top("0.18"), T0) == [ExitTriggered("trailing_stop"),
                                         CancelOrder("tp1", "NEW_USDT")]


def test_max_hold_triggers_on_tick_and_sells_on_the_next_bid() -> None:
    m, tp = resting_tp()
    assert m.on_tick(T0 + 3_599_999) == []
    acts = m.on_tick(T0 + 3_600_000)
    assert acts == [ExitTriggered("max_hold"), CancelOrder("tp1", "NEW_USDT")]
    assert m.on_order(order(tp, "tp1", OrderStatus.CANCELLED)) == []  # no bid known yet
    assert m.state is ExitState.STOPPING
    sell = only(m.on_top(top("0.2"), T0 + 3_600_001), PlaceSell)
    assert isinstance(sell, PlaceSell)
    assert sell.price == D("0.19")


def test_max_hold_counts_from_first_tick_when_fills_carry_no_time() -> None:
    m = machine(replace(RULES, max_hold_s=1))
    m.on_fill(replace(fill("buy", "0.1", "100"), time_ms=0))
    assert m.on_tick(50) == []
    assert m.on_tick(1049) == []
    assert m.on_tick(1050) == [ExitTriggered("max_hold")]


def test_no_stops_configured_never_trigger() -> None:
    m = machine(replace(RULES, stop_loss_pct=None, max_hold_s=None))
    m.on_fill(fill("buy", "0.1", "100"))
    assert m.on_top(top("0.0001"), T0) == []
    assert m.on_tick(T0 + 10**9) == []


def test_stop_during_entry_sells_and_keeps_selling_later_buys() -> None:
    m = holding()
    acts = m.on_top(top("0.05"), T0)
    assert acts[0] == ExitTriggered("stop_loss")
    sell = acts[1]
    assert isinstance(sell, PlaceSell)
    m.on_place_result(sell.text, Accepted("s1"))
    m.on_fill(fill("sell", "0.05", "99.8", order_id="s1", text=sell.text))
    m.on_fill(fill("buy", "0.1", "100"))  # a buy that was already in flight
    second = only(m.on_order(order(sell, "s1", OrderStatus.CLOSED, "99.8")), PlaceSell)
    assert isinstance(second, PlaceSell)
    assert second.amount == D("100")
    m.on_place_result(second.text, Accepted("s2"))
    m.on_fill(fill("sell", "0.05", "99.5", order_id="s2", text=second.text))
    # 0.5 left is dust, but the entry is still open: more may come, so not closed yet
    assert m.on_order(order(second, "s2", OrderStatus.CANCELLED, "99.5")) == []
    assert m.entry_done() == [Closed("stop_loss", D("0.5"))]


# -- SELLING ----------------------------------------------------------------------------------


def stopping() -> tuple[ExitMachine, PlaceSell]:
    m = holding("1000", "0.1", "2")
    m.entry_done()
    tp_text = m.live_sell
    assert tp_text is not None
    m.on_place_result(tp_text, Rejected("TOO_FAST"))
    acts = m.on_top(top("0.05"), T0)
    assert acts[0] == ExitTriggered("stop_loss")
    sell = acts[1]
    assert isinstance(sell, PlaceSell)
    return m, sell


def test_ioc_partial_fill_resells_the_rest_at_once_and_no_fill_waits_for_a_bid() -> None:
    m, sell = stopping()
    m.on_place_result(sell.text, Accepted("s1"))
    # partly filled IOC: progress, so the rest goes out at once (trades not yet in)
    again = only(m.on_order(order(sell, "s1", OrderStatus.CANCELLED, "600")), PlaceSell)
    assert isinstance(again, PlaceSell)
    assert again.amount == D("398")
    m.on_place_result(again.text, Accepted("s2"))
    assert m.on_order(order(again, "s2", OrderStatus.CANCELLED, "0")) == []  # nothing filled
    assert m.state is ExitState.STOPPING
    third = only(m.on_top(top("0.04"), T0 + 1), PlaceSell)
    assert isinstance(third, PlaceSell)
    assert third.amount == D("398")
    assert third.price == D("0.038")


def test_sell_unknown_outcome_reconciled_then_absent_resells() -> None:
    m, sell = stopping()
    assert m.on_place_result(sell.text, Unknown()) == [ReconcileOrder(sell.text, "NEW_USDT", None)]
    assert m.on_top(top("0.05"), T0 + 1) == []  # still possibly live: no second sell
    again = only(m.on_reconciled_absent(sell.text), PlaceSell)
    assert isinstance(again, PlaceSell)
    assert again.text != sell.text


def test_sell_rejected_waits_for_the_next_top() -> None:
    m, sell = stopping()
    assert m.on_place_result(sell.text, Rejected("TOO_MANY_REQUESTS")) == []
    assert m.state is ExitState.STOPPING
    assert m.on_tick(T0 + 1) == []
    assert isinstance(only(m.on_top(top("0.05"), T0 + 2), PlaceSell), PlaceSell)


def test_sell_balance_not_enough_reads_balance_then_sells_what_is_there() -> None:
    m, sell = stopping()
    assert m.on_place_result(sell.text, Rejected("BALANCE_NOT_ENOUGH")) == [ReadBalance("NEW")]
    again = only(m.on_balance(Balance("NEW", D("500"), D("0"))), PlaceSell)
    assert isinstance(again, PlaceSell)
    assert again.amount == D("500")
    assert again.purpose == "stop"


def test_stop_with_unsellable_remainder_closes() -> None:
    m, sell = stopping()
    m.on_place_result(sell.text, Accepted("s1"))
    m.on_fill(fill("sell", "0.05", "997.5", order_id="s1", text=sell.text))
    # 0.5 left is below min_base_amount: dust left behind, the exit is still a stop loss
    assert m.on_order(order(sell, "s1", OrderStatus.CANCELLED, "997.5")) == [
        Closed("stop_loss", D("0.5"))]


def test_stop_on_a_position_worth_less_than_min_quote_is_dust() -> None:
    m = holding("40", "0.1", "0")
    acts = m.on_top(top("0.05"), T0)  # 40 x 0.0475 < 3 USDT
    assert acts == [ExitTriggered("stop_loss")]
    assert m.entry_done() == [Closed("dust", D("40"))]


# -- robustness -------------------------------------------------------------------------------


def test_order_we_thought_absent_turns_up_open_and_is_cancelled() -> None:
    m = holding()
    tp = only(m.entry_done(), PlaceSell)
    assert isinstance(tp, PlaceSell)
    m.on_place_result(tp.text, Unknown())
    again = only(m.on_reconciled_absent(tp.text), PlaceSell)
    assert isinstance(again, PlaceSell)
    assert m.on_order(order(tp, "ghost", OrderStatus.OPEN)) == [CancelOrder("ghost", "NEW_USDT")]
    assert m.on_order(order(tp, "ghost", OrderStatus.OPEN)) == []
    assert m.on_order(order(tp, "ghost", OrderStatus.CANCELLED)) == []
    assert m.on_order(order(tp, "ghost", OrderStatus.OPEN)) == []  # stale after its finish


def test_foreign_events_are_ignored() -> None:
    m, _tp = resting_tp()
    assert m.on_fill(fill("buy", "1", "1", pair="OLD_USDT")) == []
    assert m.on_top(top("0.01", pair="OLD_USDT"), T0) == []
    assert m.on_balance(Balance("OLD", D(0), D(0))) == []
    foreign = PlaceSell("t-other", "NEW_USDT", D(1), D(1), "gtc", "take_profit")
    assert m.on_order(order(foreign, "x", OrderStatus.CANCELLED)) == []
    assert m.on_place_result("t-other", Accepted("x")) == []
    assert m.on_cancel_result("t-other", Rejected(None)) == []
    assert m.state is ExitState.TP_RESTING


def test_machine_rebuilt_on_an_existing_position_starts_holding() -> None:
    m = holding()
    rebuilt = ExitMachine(PAIR, RULES, run_id="run", position=m.position)
    assert rebuilt.state is ExitState.HOLDING
    tp = only(rebuilt.entry_done(), PlaceSell)
    assert isinstance(tp, PlaceSell)
    assert tp.amount == D("99.8")


# -- property: random event sequences against a truthful fake exchange ------------------------


# op codes of FakeExchange.step, weighted towards answers and deliveries
_OPS = (0, 0, 1, 2, 2, 2, 3, 3, 4, 4, 4, 5, 5, 5, 5, 6, 7, 8, 8, 9, 9, 10, 10, 11)


class FakeExchange:
    """Tells the machine only the truth, in any order, with any delay; checks the invariants."""

    def __init__(self, m: ExitMachine) -> None:
        self.m = m
        self.held = D(0)  # base really on the account
        self.bought = D(0)
        self.orders: dict[str, Order] = {}  # text -> current state on the exchange
        self.places: dict[str, PlaceSell] = {}  # sent, not answered
        self.unresolved: set[str] = set()  # answered Unknown, not yet settled for the machine
        self.cancels: list[str] = []
        self.reconciles: list[ReconcileOrder] = []
        self.balance_reads = 0
        self.outbox: list[Fill | Order] = []  # pushes not yet delivered
        self.now = T0
        self.next_id = 0
        self.sells = 0

    def open_sells(self) -> int:
        return sum(1 for o in self.orders.values() if o.status is OrderStatus.OPEN)

    def feed(self, actions: list[ExitAction]) -> None:
        for action in actions:
            if isinstance(action, PlaceSell):
                self.sells += 1
                # never two live sells: nothing open, nothing unanswered, nothing unresolved
                assert self.open_sells() == 0, self.orders
                assert not self.places
                assert not self.unresolved
                assert action.amount <= self.held, (action.amount, self.held)
                assert action.amount > 0
                self.places[action.text] = action
            elif isinstance(action, CancelOrder):
                self.cancels.append(action.order_id)
            elif isinstance(action, ReconcileOrder):
                self.reconciles.append(action)
            elif isinstance(action, ReadBalance):
                self.balance_reads += 1

    def exist(self, sell: PlaceSell, fraction: Decimal) -> Order:
        self.next_id += 1
        oid = f"o{self.next_id}"
        filled = D(0)
        status = OrderStatus.OPEN
        if sell.time_in_force == "ioc":
            filled = (sell.amount * fraction).quantize(D("0.01"))
            status = OrderStatus.CLOSED if filled == sell.amount else OrderStatus.CANCELLED
            self.trade(sell.text, oid, filled, sell.price)
        o = order(sell, oid, status, str(filled))
        self.orders[sell.text] = o
        self.outbox.append(o)
        return o

    def trade(self, text: str, oid: str, amount: Decimal, price: Decimal) -> None:
        if amount > 0:
            self.held -= amount
            assert self.held >= 0, "sold more than held"
            self.outbox.append(fill("sell", str(price), str(amount), order_id=oid, text=text))

    def step(self, data: st.DataObject) -> None:
        m = self.m
        op = data.draw(st.sampled_from(_OPS))
        if op == 0 and m.entry_open:
            amount = data.draw(st.sampled_from([D("3"), D("40"), D("100.37"), D("250")]))
            fee = (amount / 500).quantize(D("0.0001"))
            self.held += amount - fee
            self.bought += amount
            self.outbox.append(fill("buy", "0.1", str(amount), str(fee)))
        elif op == 1 and (self.bought or data.draw(st.integers(0, 9)) == 0):
            self.feed(m.entry_done(
                data.draw(st.sampled_from([None, self.bought])), now_ms=self.now))
        elif op == 2:
            bid = data.draw(st.sampled_from(["0.2", "0.13", "0.1", "0.085", "0.05", None]))
            self.feed(m.on_top(top(bid), self.now))
        elif op == 3:
            self.now += data.draw(st.sampled_from([1, 1000, 6000, 4_000_000]))
            self.feed(m.on_tick(self.now))
        elif op == 4 and self.places:
            text = data.draw(st.sampled_from(sorted(self.places)))
            sell = self.places.pop(text)
            answer = data.draw(st.integers(0, 3))
            fraction = data.draw(st.sampled_from([D(0), D("0.5"), D(1)]))
            if answer == 0:
                o = self.exist(sell, fraction)
                self.feed(m.on_place_result(text, Accepted(o.id)))
            elif answer == 1:
                label = data.draw(st.sampled_from(["BALANCE_NOT_ENOUGH", "TOO_FAST", None]))
                self.feed(m.on_place_result(text, Rejected(label)))
            else:
                if answer == 3:
                    self.exist(sell, fraction)
                self.unresolved.add(text)
                self.feed(m.on_place_result(text, Unknown()))
        elif op == 5 and self.outbox:
            event = self.outbox.pop(data.draw(st.integers(0, len(self.outbox) - 1)))
            if isinstance(event, Fill):
                self.feed(m.on_fill(event))
            else:
                if event.status is not OrderStatus.OPEN:
                    self.unresolved.discard(event.text)
                self.feed(m.on_order(event))
        elif op == 6 and self.open_sells():
            o = next(o for o in self.orders.values() if o.status is OrderStatus.OPEN)
            part = (o.left / 2).quantize(D("0.01")) if o.left > 1 else o.left
            self.trade(o.text, o.id, part, o.price or D(1))
            left = o.left - part
            status = OrderStatus.CLOSED if left == 0 else OrderStatus.OPEN
            new = replace(o, left=left, filled_amount=o.filled_amount + part, status=status)
            self.orders[o.text] = new
            self.outbox.append(new)
        elif op == 7 and self.open_sells():
            o = next(o for o in self.orders.values() if o.status is OrderStatus.OPEN)
            self.orders[o.text] = replace(o, status=OrderStatus.CANCELLED)
            self.outbox.append(self.orders[o.text])
        elif op == 8 and self.cancels:
            key = self.cancels.pop(0)
            found = [o for o in self.orders.values() if key in (o.id, o.text)]
            if found and found[0].status is OrderStatus.OPEN:
                cancelled = replace(found[0], status=OrderStatus.CANCELLED)
                self.orders[cancelled.text] = cancelled
                self.outbox.append(cancelled)
                self.feed(m.on_cancel_result(key, Accepted(cancelled.id)))
            else:
                self.feed(m.on_cancel_result(key, Rejected("ORDER_CLOSED")))
        elif op == 9 and self.reconciles:
            ask = self.reconciles.pop(0)
            if ask.text in self.orders:
                current = self.orders[ask.text]
                if current.status is not OrderStatus.OPEN:
                    self.unresolved.discard(ask.text)
                self.feed(m.on_order(current))
            elif ask.text not in self.places:
                self.unresolved.discard(ask.text)
                self.feed(m.on_reconciled_absent(ask.text))
        elif op in (10, 11) and (self.balance_reads or op == 11):
            self.balance_reads = max(0, self.balance_reads - 1)
            locked = sum((o.left for o in self.orders.values()
                          if o.status is OrderStatus.OPEN), D(0))
            self.feed(m.on_balance(Balance("NEW", self.held - locked, locked)))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_random_sequences_never_oversell_nor_double_sell(data: st.DataObject) -> None:
    rules = replace(RULES, trailing_stop_pct=data.draw(st.sampled_from([None, D("10")])))
    exchange = FakeExchange(ExitMachine(PAIR, rules, run_id="prop"))
    for _ in range(data.draw(st.integers(5, 120))):
        exchange.step(data)
    # whatever happened, the machine's view never exceeds the truth by more than pending fills
    assert exchange.m.free_base() >= 0
