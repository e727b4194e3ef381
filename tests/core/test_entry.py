"""EntryMachine: one buy in flight, budget never exceeded, unknown outcomes reconciled."""

from __future__ import annotations

from decimal import Decimal

from sniper.core.entry import (
    EntryFinished,
    EntryMachine,
    EntryRules,
    EntryState,
    Fire,
    Reconcile,
)
from sniper.core.models import Order, OrderStatus, PairInfo, TradeStatus

PAIR = PairInfo(
    pair="NEW_USDT",
    base="NEW",
    quote="USDT",
    trade_status=TradeStatus.TRADABLE,
    buy_start_s=1000,
    sell_start_s=1000,
    amount_precision=2,
    price_precision=4,
    min_base_amount=Decimal("1"),
    min_quote_amount=Decimal("3"),
)
TEXTS = ("t-b1", "t-b2", "t-b3")


def machine(
    budget: str = "20", max_price: str | None = None, deadline_ms: int = 10_000
) -> EntryMachine:
    rules = EntryRules(
        Decimal(budget), Decimal("10"), Decimal(max_price) if max_price else None, deadline_ms
    )
    return EntryMachine(PAIR, rules, TEXTS)


def result(
    text: str, filled_amount: str, filled_total: str, status: OrderStatus = OrderStatus.CANCELLED
) -> Order:
    return Order(
        id="1",
        text=text,
        pair="NEW_USDT",
        side="buy",
        type="limit",
        time_in_force="ioc",
        status=status,
        amount=Decimal("100"),
        price=Decimal("0.11"),
        left=Decimal(0),
        filled_amount=Decimal(filled_amount),
        filled_total=Decimal(filled_total),
        avg_deal_price=None,
        fee=Decimal(0),
        fee_currency="NEW",
        finish_as="ioc",
        create_time_ms=0,
        update_time_ms=0,
    )


def test_fires_within_slippage_cap_and_budget() -> None:
    m = machine()
    action = m.on_top(Decimal("0.1"), now_ms=1)
    assert isinstance(action, Fire)
    assert action.price == Decimal("0.11")  # 0.1 * 1.10
    assert action.amount == Decimal("181.81")  # 20 / 0.11 rounded down to 2 places
    assert action.price * action.amount <= Decimal("20")
    assert action.text == "t-b1"
    assert m.state is EntryState.IN_FLIGHT
    # nothing else fires while one order is in flight
    assert m.on_top(Decimal("0.1"), now_ms=2) is None


def test_refires_with_remaining_budget_then_finishes_on_budget() -> None:
    m = machine()
    first = m.on_top(Decimal("0.1"), now_ms=1)
    assert isinstance(first, Fire)
    assert m.on_result(result("t-b1", "100", "10.5")) is None
    assert m.state is EntryState.ARMED
    second = m.on_top(Decimal("0.1"), now_ms=2)
    assert isinstance(second, Fire)
    assert second.text == "t-b2"
    assert second.price * second.amount <= Decimal("9.5")
    done = m.on_result(result("t-b2", "86", "9.46"))
    # 0.04 USDT left is below min_quote_amount (3): finished for budget
    assert isinstance(done, EntryFinished)
    assert done.reason == "budget"
    assert m.quote_spent == Decimal("19.96")


def test_price_cap_below_ask_does_not_fire() -> None:
    m = machine(max_price="0.05")
    assert m.on_top(Decimal("0.1"), now_ms=1) is None
    assert m.state is EntryState.ARMED
    assert m.on_top(None, now_ms=1) is None


def test_unknown_outcome_blocks_until_reconciled() -> None:
    m = machine()
    fire = m.on_top(Decimal("0.1"), now_ms=1)
    assert isinstance(fire, Fire)
    assert m.on_unknown("t-b1") == Reconcile("t-b1")
    assert m.state is EntryState.RECONCILING
    assert m.on_top(Decimal("0.1"), now_ms=2) is None  # never fires blind
    # the order turns up filled through spot.orders
    assert m.on_result(result("t-b1", "50", "5", OrderStatus.CANCELLED)) is None
    assert m.state is EntryState.ARMED
    assert m.quote_spent == Decimal("5")


def test_reconciled_absent_allows_next_attempt() -> None:
    m = machine()
    m.on_top(Decimal("0.1"), now_ms=1)
    m.on_unknown("t-b1")
    assert m.on_reconciled_absent("t-b1") is None
    assert m.state is EntryState.ARMED


def test_retryable_and_final_rejections() -> None:
    m = machine()
    m.on_top(Decimal("0.1"), now_ms=1)
    assert m.on_rejected("t-b1", "INVALID_CURRENCY_PAIR") is None
    assert m.state is EntryState.ARMED
    m.on_top(Decimal("0.1"), now_ms=2)
    done = m.on_rejected("t-b2", "BALANCE_NOT_ENOUGH")
    assert isinstance(done, EntryFinished)
    assert done.reason == "BALANCE_NOT_ENOUGH"


def test_attempts_and_deadline_bound_the_entry() -> None:
    m = machine()
    for i, text in enumerate(TEXTS):
        fire = m.on_top(Decimal("0.1"), now_ms=i)
        assert isinstance(fire, Fire)
        assert fire.text == text
        outcome = m.on_rejected(text, "INVALID_CURRENCY_PAIR")
    assert isinstance(outcome, EntryFinished)
    assert outcome.reason == "attempts"
    late = machine(deadline_ms=5)
    finished = late.on_top(Decimal("0.1"), now_ms=6)
    assert isinstance(finished, EntryFinished)
    assert finished.reason == "deadline"
    assert machine(deadline_ms=5).on_tick(6) == EntryFinished("deadline", Decimal(0), Decimal(0))


def test_halt_while_in_flight_sends_nothing_more() -> None:
    m = machine()
    m.on_top(Decimal("0.1"), now_ms=1)
    assert m.halt() is None
    done = m.on_result(result("t-b1", "10", "1"))
    assert isinstance(done, EntryFinished)
    assert m.on_top(Decimal("0.1"), now_ms=2) is None
    assert machine().halt() == EntryFinished("halted", Decimal(0), Decimal(0))


def test_duplicate_results_are_not_double_counted() -> None:
    m = machine()
    m.on_top(Decimal("0.1"), now_ms=1)
    r = result("t-b1", "100", "10")
    m.on_result(r)
    m.on_result(r)
    assert m.quote_spent == Decimal("10")
    assert m.on_result(result("t-other", "1", "1")) is None


def test_refire_cap_is_anchored_to_the_first_ask() -> None:
    m = machine(budget="50")
    first = m.on_top(Decimal("0.1"), now_ms=1)
    assert isinstance(first, Fire)
    assert first.price == Decimal("0.11")
    m.on_result(result("t-b1", "100", "10"))  # a partial fill ate the book
    # the ask is now 0.105: ask * 1.1 would be 0.1155, above the first order's cap
    second = m.on_top(Decimal("0.105"), now_ms=2)
    assert isinstance(second, Fire)
    assert second.price == Decimal("0.11")
    # and an ask above the anchored cap does not fire at all
    m.on_result(result("t-b2", "1", "0.11"))
    assert m.on_top(Decimal("0.12"), now_ms=3) is None


def test_a_leftover_below_a_tenth_of_the_budget_ends_the_entry() -> None:
    m = machine(budget="50")
    m.on_top(Decimal("0.1"), now_ms=1)
    done = m.on_result(result("t-b1", "400", "45.5"))  # 4.5 left: above min_quote, below 10 %
    assert isinstance(done, EntryFinished)
    assert done.reason == "budget"
    # a rejection (nothing spent) keeps the whole budget and the entry armed
    m2 = machine(budget="50")
    m2.on_top(Decimal("0.1"), now_ms=1)
    assert m2.on_rejected("t-b1", "INVALID_CURRENCY_PAIR") is None
    assert m2.state is EntryState.ARMED
