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
takes the order and drops the connection).
"""

from __future__ import annotations

import signal
from decimal import ROUND_DOWN, Decimal

import pytest

from tests.e2e.conftest import E2E, builtin_scenario, our_orders, our_trades
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
    if kind == "buy_result":
        assert e2e.journal.rows("buy_result", PAIR)[-1].data["outcome"] == "unknown"
        assert buys_before, "the lost buy exists on the exchange"

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
    record(
        f"kill -9 after journal `{spec}`",
        "restart reconciles by client id: no new buy once one was sent; one take-profit "
        "(adopted or placed once)" if not closing else "restart: closed listing left alone",
        f"test_process.py::test_kill_9_at_every_journal_write_point[{spec}]",
        injected=1 + (inject is not None), orders=counts.orders,
        duplicates=counts.duplicates, oversells=counts.oversells,
    )
    assert counts.duplicates == 0, counts.detail
    assert counts.oversells == 0, counts.detail
