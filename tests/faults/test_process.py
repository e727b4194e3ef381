"""Process faults: ``kill -9`` at every journal write point of a listing, then a restart.

Each case SIGKILLs the real daemon (``python -m sniper run``) right after the ``N``-th journal
append of one kind (the journal's ``SNIPER_CRASH_AFTER`` hook: the row is committed, nothing
after it happens, no cleanup runs), restarts it on the same state directory, and checks what
the exchange shows: one buy set (every buy uses a client id the journal armed, none after the
restart unless no buy existed before it, never beyond the budget), one resting take-profit of
the right size (or, after ``closed``, nothing new at all), and no sell beyond holdings.

The write points are the kinds ``sniper/app/session.py`` documents, in the order a listing
writes them. ``quote_amount`` 150 makes the buy cross two ladder levels, so there are two buy
fills (``fill:2``) and several order updates (``order:3``); ``buy_result`` is only written when
a buy's answer is not a plain success, so that case loses the first buy's answer (the exchange
takes the order and drops the connection): the first ``buy_result`` is then that outcome, or
the refusal of a re-fire while the order connection is down, whichever the daemon writes first.
"""

from __future__ import annotations

import signal
from decimal import ROUND_DOWN, Decimal
from pathlib import Path

import pytest

from sniper.app.journal import Journal
from sniper.sim.server import SimServer
from tests.e2e.conftest import E2E, JournalView, builtin_scenario, our_orders, our_trades
from tests.faults.conftest import wait_until
from tests.faults.tally import exposure, record

PAIR = "NEWCOIN_USDT"
BASE = "NEWCOIN"
QUOTE_AMOUNT = Decimal("150")
AMOUNT_STEP = Decimal("0.01")  # new_listing_fast: NEWCOIN_USDT amount_precision 2
BOOK_FRAME = "spot.order_book_update"

# (crash spec, what the case injects besides the kill)
CRASH_POINTS = [
    ("armed", None),            # ids journaled, nothing sent: the restart must still buy
    ("buy_sent", None),         # the buy is out and answered; the restart must not buy again
    ("buy_result", "lost"),     # the buy's answer was lost (outcome unknown), then the kill
    ("order:1", None),          # the buy's result journaled
    ("order:3", None),          # a later order update (buy push / take-profit answer)
    ("fill", None),             # first buy fill journaled, entry not finished
    ("fill:2", None),           # second buy fill journaled
    ("entry_done", None),       # entry finished, take-profit not yet sent
    ("sell_sent", None),        # take-profit journaled as sent, killed before the bytes leave
    ("sell_result", None),      # take-profit placed and journaled; the restart adopts it
    ("closed", None),           # take-profit filled, listing closed: the restart does nothing
]


def held_after_fees(sim: object) -> Decimal:
    fills = [t for t in our_trades(sim, PAIR) if t.side == "buy"]  # type: ignore[arg-type]
    return sum((t.amount - (t.fee if t.fee_currency == BASE else 0) for t in fills), Decimal(0))


@pytest.mark.parametrize(("spec", "inject"), CRASH_POINTS, ids=[p[0] for p in CRASH_POINTS])
async def test_kill_9_at_every_journal_write_point(
    e2e: E2E, spec: str, inject: str | None
) -> None:
    kind = spec.partition(":")[0]
    closing = kind == "closed"
    sim = await e2e.start_sim(builtin_scenario("new_listing_fast"))
    if inject == "lost":
        sim.faults.blackhole_orders(1, "close")
    # a take-profit far above the spike stays resting; for ``closed`` one that fills in it
    config = e2e.write_config(entry={"quote_amount": str(QUOTE_AMOUNT)},
                              exit_={"take_profit_pct": "30" if closing else "900"})

    first = await e2e.start_daemon(config, crash_after=spec)
    assert await first.wait_exit(25) == -signal.SIGKILL, first.describe()
    crash_seq = e2e.journal.rows(kind, PAIR)[-1].seq
    armed_texts = set(e2e.journal.rows("armed", PAIR)[0].data["texts"])
    orders_before = {o.id for o in our_orders(sim, PAIR)}
    buys_before = {(o.id, o.text) for o in our_orders(sim, PAIR) if o.side == "buy"}
    if inject == "lost":
        assert sim.faults.statistics().get("order_blackhole") == 1
        assert buys_before, "the buy whose answer was lost exists on the exchange"

    second = await e2e.start_daemon(config, release=False)
    if closing:
        # nothing is recovered: let it poll the pair list a few times; it must stay still
        for _ in range(3):
            await e2e.wait_sim(lambda e: e.kind == "http_out" and e.name.endswith(
                "/currency_pairs"))
        assert {o.id for o in our_orders(sim, PAIR)} == orders_before
        assert not sim.engine.list_orders(sim.uid, PAIR, "open")
        assert [r.seq for r in e2e.journal.rows("closed", PAIR)] == [crash_seq]
    else:
        def tp_resting() -> bool:
            open_ = sim.engine.list_orders(sim.uid, PAIR, "open")
            return len(open_) == 1 and open_[0].side == "sell"

        await wait_until(tp_resting, "one resting take-profit", daemon=second, timeout_s=20)
        # let the restarted daemon see more of the market: no second buy, no second sell
        for _ in range(5):
            await e2e.wait_sim(lambda e: e.kind == "ws_out" and e.name == BOOK_FRAME)

        buys_after = {(o.id, o.text) for o in our_orders(sim, PAIR) if o.side == "buy"}
        assert {text for _, text in buys_after} <= armed_texts
        if buys_before:
            assert buys_after == buys_before, "a buy was sent after the restart"
        else:
            assert buys_after, "the restarted daemon never bought the armed listing"
        open_orders = sim.engine.list_orders(sim.uid, PAIR, "open")
        assert len(open_orders) == 1, open_orders
        tp = open_orders[0]
        assert (tp.side, tp.time_in_force) == ("sell", "gtc")
        assert tp.amount == held_after_fees(sim).quantize(AMOUNT_STEP, rounding=ROUND_DOWN)
        sells = [o.id for o in our_orders(sim, PAIR) if o.side == "sell"]
        assert sells == [tp.id], "exactly one sell ever placed"
        assert len(e2e.journal.rows("entry_done", PAIR)) == 1
        placed = e2e.journal.rows("sell_result", PAIR)
        assert [r.data.get("id") for r in placed if r.data.get("outcome") == "ok"] == [tp.id]
        # the fills the first process missed were journaled by the second, each once
        journaled = [r.data["trade_id"] for r in e2e.journal.rows("fill", PAIR)]
        assert sorted(journaled) == sorted(str(t.id) for t in our_trades(sim, PAIR))
    assert second.running, second.describe()

    counts = exposure(sim, e2e.journal, QUOTE_AMOUNT)
    if closing:
        behaviour = "restart leaves the closed listing alone: no order at all"
    elif not buys_before:
        behaviour = "restart buys the armed listing once (its journaled ids); one take-profit"
    else:
        behaviour = "restart adopts the buys by client id, sends none; one take-profit"
    record(
        f"kill -9 after journal `{spec}`" + (" (buy answer lost)" if inject else ""),
        behaviour,
        f"test_process.py::test_kill_9_at_every_journal_write_point[{spec}]",
        injected=1 + (inject is not None), orders=counts.orders,
        duplicates=counts.duplicates, oversells=counts.oversells,
    )
    assert counts.duplicates == 0, counts.detail
    assert counts.oversells == 0, counts.detail


def test_the_counts_catch_duplicates_and_oversells(tmp_path: Path) -> None:
    """The measurement itself can fail: orders placed straight into the simulator's engine."""
    sim = SimServer("new_listing_fast", host="127.0.0.1", port=0)
    engine, uid = sim.engine, sim.uid
    now_ms = sim.clock.now_ms()
    engine.advance(now_ms + 500)  # the market maker quotes the established pairs
    journal = Journal(tmp_path / "journal.sqlite3")
    journal.append("armed", "BTC_USDT", {"texts": ["t-a-b0", "t-a-b1"]}, ts_ms=now_ms)

    def order(side: str, price: str, amount: str, text: str) -> None:
        engine.place_order(uid, {"currency_pair": "BTC_USDT", "side": side, "price": price,
                                 "amount": amount, "text": text, "time_in_force": "gtc"},
                           now_ms + 600)

    order("buy", "1000", "0.005", "t-a-b0")    # rests far below the market
    view = JournalView(journal.path)
    clean = exposure(sim, view, Decimal(50))
    assert (clean.orders, clean.duplicates, clean.oversells) == (1, 0, 0)

    order("buy", "1000", "0.005", "t-a-b0")    # the same client id again
    order("buy", "1000", "0.005", "t-other-b0")  # an id the journal never armed
    order("buy", "70000", "0.001", "t-a-b1")   # crosses the ask: spends 65+ > 50
    order("buy", "1000", "0.005", "t-a-b1")    # after the budget was spent (and a dup id)
    engine.user(uid).balances["BTC"] = [Decimal(1), Decimal(0)]  # from nowhere: not bought
    order("sell", "1000000", "0.5", "t-a-t0")
    journal.append("sell_result", "BTC_USDT", {"text": "t-a-t1", "outcome": "rejected",
                                               "label": "BALANCE_NOT_ENOUGH"}, ts_ms=now_ms)
    caught = exposure(sim, view, Decimal(50))
    assert caught.orders == 6
    assert caught.duplicates == 4, caught.detail
    assert caught.oversells == 1 + 1, caught.detail  # 0.5 > 0.001 held; one refused sell
    view.close()
    journal.close()
