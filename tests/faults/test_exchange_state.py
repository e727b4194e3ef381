"""Faults suite, exchange state: a thin book (partial fills), fees charged in base, a balance
lower than the fills say, a take-profit cancelled by someone else, the pair suspended after
the buy.

Measured and tallied like :mod:`tests.faults.test_network` (whose helpers are reused).
"""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal
from typing import Any

from sniper.sim.server import SimServer
from tests.e2e.conftest import (
    E2E,
    PAIRS_PATH,
    balance,
    builtin_scenario,
    our_orders,
    our_trades,
)
from tests.faults.test_network import (
    BASE,
    BUDGET,
    PAIR,
    SLIPPAGE_PCT,
    first_ask,
    injected,
    open_sells,
    steady,
    tally,
    tp_amount_from_trades,
    wait_tp,
)


async def let_polls_pass(e2e: E2E, n: int = 3) -> None:
    """Let the daemon run ``n`` more discovery rounds (time passes on its own clock too)."""
    for _ in range(n):
        await e2e.wait_sim(lambda e: e.kind == "http_out" and e.name == PAIRS_PATH)


def step(sim: SimServer) -> Decimal:
    return Decimal(1).scaleb(-sim.engine.pair_record(PAIR).amount_precision)


async def test_thin_book_partial_fills_refire_within_budget_and_caps(e2e: E2E) -> None:
    raw = steady(builtin_scenario("new_listing_fast"), flat_s=2.0)
    raw["listings"][0]["ladder"]["amount"] = "100"  # ~37 USDT within the cap: a partial fill
    sim = await e2e.start_sim(raw)
    daemon = await e2e.start_daemon(e2e.write_config(exit_={"take_profit_pct": "900"}))
    armed = await e2e.wait_journal("armed", PAIR, daemon=daemon)

    done = await e2e.wait_journal("entry_done", PAIR, daemon=daemon)
    tp = await wait_tp(e2e, daemon)
    buys = [o for o in our_orders(sim, PAIR) if o.side == "buy"]
    assert len(buys) >= 2, "a thin book must leave budget for a second buy"
    assert buys[0].filled_amount < buys[0].amount  # partially filled IOC
    cap = first_ask(raw) * (1 + SLIPPAGE_PCT / 100)
    assert all(o.time_in_force == "ioc" for o in buys)
    assert all(o.price <= cap for o in buys), ([o.price for o in buys], cap)  # first-ask cap
    assert [o.text for o in buys] == armed.data["texts"][: len(buys)]  # in order, never reused
    spent = sum((o.filled_total for o in buys), Decimal(0))
    assert Decimal(done.data["quote_spent"]) == spent
    assert spent <= BUDGET
    assert [o.text for o in open_sells(sim)] == [tp.data["text"]]
    assert open_sells(sim)[0].amount == tp_amount_from_trades(sim)  # every partial fill counted
    assert daemon.running
    tally(e2e, "Exchange: thin book at the open (partial fills)",
          "each partial IOC fill counted; re-fires within budget and caps; one TP for all",
          "test_exchange_state::test_thin_book_partial_fills_refire_within_budget_and_caps",
          injected=sum(1 for o in buys if o.filled_amount < o.amount))


async def test_fee_in_base_is_left_out_of_every_sell(e2e: E2E) -> None:
    raw = steady(builtin_scenario("new_listing_fast"))
    raw["fees"] = {"taker": "0.01", "maker": "0.01"}  # 1 %: the effect is not lost in rounding
    sim = await e2e.start_sim(raw)
    daemon = await e2e.start_daemon(e2e.write_config())

    closed = await e2e.wait_journal("closed", PAIR, daemon=daemon, timeout_s=15)
    assert closed.data["reason"] == "take_profit"
    buy_fills = [t for t in our_trades(sim, PAIR) if t.side == "buy"]
    assert buy_fills
    assert {t.fee_currency for t in buy_fills} == {BASE}
    gross = sum((t.amount for t in buy_fills), Decimal(0))
    fees = sum((t.fee for t in buy_fills), Decimal(0))
    assert fees == (gross * Decimal("0.01")).quantize(fees)  # 1 % charged in base
    tps = [o for o in our_orders(sim, PAIR) if o.side == "sell"]
    assert [o.amount for o in tps] == [(gross - fees).quantize(step(sim), rounding=ROUND_DOWN)]
    assert Decimal(0) <= balance(sim, BASE) < step(sim)  # only dust is left
    assert daemon.running
    tally(e2e, "Exchange: fee charged in base (1 %)",
          "the TP sells bought amount minus base fees, rounded down; dust left",
          "test_exchange_state::test_fee_in_base_is_left_out_of_every_sell",
          injected=len(buy_fills))


async def test_balance_lower_than_the_fills_say_resizes_the_sell(e2e: E2E) -> None:
    """Right after the buy fills, 30 % of the coins leave the account behind the daemon's back."""
    sim = await e2e.start_sim(builtin_scenario("new_listing_fast"))
    daemon = await e2e.start_daemon(e2e.write_config(exit_={"take_profit_pct": "900"}))
    await e2e.wait_journal("armed", PAIR, daemon=daemon)
    debits: list[tuple[int, Decimal]] = []

    def debit(order: Any) -> None:
        amount = (order.filled_amount * Decimal("0.3")).quantize(step(sim))
        sim.dispatch(sim.engine.withdraw(sim.uid, BASE, amount, sim.clock.now_ms()))
        debits.append((sim.clock.now_ms(), amount))

    sim.faults.after_next_order(debit, side="buy")

    tp = await wait_tp(e2e, daemon)
    await let_polls_pass(e2e)
    [resting] = open_sells(sim)
    assert resting.text == tp.data["text"]
    left = balance(sim, BASE)
    assert resting.amount == left.quantize(step(sim), rounding=ROUND_DOWN)  # all that is left
    withdrawn = sum((amount for _, amount in debits), Decimal(0))
    assert resting.amount == tp_amount_from_trades(sim) - withdrawn  # not what the fills say
    sent = e2e.journal.rows("sell_sent", PAIR)
    assert len(sent) <= 2, [r.data for r in sent]  # at most one refused try, no loop
    assert daemon.running
    tally(e2e, "Exchange: balance lower than the fills say (30 % withdrawn after the buy)",
          "the TP is sized from the balance the exchange reports; no oversell, no loop",
          "test_exchange_state::test_balance_lower_than_the_fills_say_resizes_the_sell",
          injected=len(debits), debits=debits)


async def test_take_profit_cancelled_by_someone_else_is_replaced_a_bounded_number_of_times(
    e2e: E2E,
) -> None:
    sim = await e2e.start_sim(builtin_scenario("new_listing_fast"))
    daemon = await e2e.start_daemon(e2e.write_config(exit_={"take_profit_pct": "900"}))
    tp = await wait_tp(e2e, daemon)
    cancels = 0
    for _ in range(4):  # ExitRules.max_tp_replacements = 3
        [resting] = open_sells(sim)
        assert resting.text == tp.data["text"]
        _, happened = sim.engine.cancel_order(sim.uid, PAIR, resting.id, sim.clock.now_ms())
        sim.dispatch(happened)
        cancels += 1
        await e2e.wait_journal("order", PAIR, daemon=daemon, after_seq=tp.seq,
                               where=lambda r, oid=resting.id: r.data["id"] == oid
                               and r.data["status"] == "cancelled")
        if cancels <= 3:
            tp = await wait_tp(e2e, daemon, after_seq=tp.seq)
            assert tp.data["text"] != resting.text

    await let_polls_pass(e2e)
    sells = [o for o in our_orders(sim, PAIR) if o.side == "sell"]
    assert len(sells) == 4  # the first TP and three replacements, then it holds
    assert open_sells(sim) == []
    assert len({o.amount for o in sells}) == 1  # every replacement sells the same holding
    assert e2e.journal.rows("closed", PAIR) == []  # the position is kept, not forgotten
    assert balance(sim, BASE) >= tp_amount_from_trades(sim)  # nothing sold
    assert daemon.running
    tally(e2e, "Exchange: the TP cancelled by someone else (4 times)",
          "re-placed up to 3 times, then held (a human keeps cancelling it); stops stay armed",
          "test_exchange_state::test_take_profit_cancelled_by_someone_else_is_replaced_a_"
          "bounded_number_of_times", injected=cancels)


async def test_pair_suspended_after_the_buy_keeps_the_position_retries_bounded(
    e2e: E2E,
) -> None:
    sim = await e2e.start_sim(builtin_scenario("new_listing_fast"))
    daemon = await e2e.start_daemon(e2e.write_config(exit_={"take_profit_pct": "900"}))
    await e2e.wait_journal("armed", PAIR, daemon=daemon)
    sim.faults.after_next_order(
        lambda _o: sim.dispatch(sim.engine.set_trade_status(PAIR, "untradable")), side="buy")

    done = await e2e.wait_journal("entry_done", PAIR, daemon=daemon)
    assert Decimal(done.data["base_filled"]) > 0
    await e2e.wait_journal("sell_result", PAIR, daemon=daemon)
    await let_polls_pass(e2e, 5)
    results = [r.data for r in e2e.journal.rows("sell_result", PAIR)]
    assert results
    assert all(r["outcome"] == "rejected" for r in results)
    assert {r["label"] for r in results} == {"INVALID_CURRENCY_PAIR"}
    assert len(results) <= 5  # ExitRules.max_tp_failures: bounded, then it holds
    assert [o for o in our_orders(sim, PAIR) if o.side == "sell"] == []
    assert balance(sim, BASE) >= tp_amount_from_trades(sim) > 0  # all still held
    assert e2e.journal.rows("closed", PAIR) == []  # still a position
    assert daemon.running
    tally(e2e, "Exchange: pair suspended (untradable) right after the buy",
          "sells refused: retried at most 5 times, then held; position kept, no crash",
          "test_exchange_state::test_pair_suspended_after_the_buy_keeps_the_position_retries_"
          "bounded", injected=injected(sim, "after_order"))
