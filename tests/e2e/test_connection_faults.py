"""Connection faults around the open: WebSockets dropped before it, a buy answer lost."""

from __future__ import annotations

from decimal import Decimal

from tests.e2e.conftest import E2E, builtin_scenario, our_orders

PAIR = "NEWCOIN_USDT"


async def test_ws_dropped_just_before_the_open_still_buys(e2e: E2E) -> None:
    sim = await e2e.start_sim(builtin_scenario("new_listing_fast"))
    daemon = await e2e.start_daemon(e2e.write_config(exit_={"take_profit_pct": "900"}))
    await e2e.wait_journal("armed", PAIR, daemon=daemon)
    assert sim.engine.pair_record(PAIR).trade_status == "sellable"  # not open yet
    sessions_before = len(sim.events.find("ws_open"))
    assert sessions_before >= 3  # market, private, trader

    sim.faults.drop_ws_connections()

    assert sim.faults.statistics().get("drop_ws") == 1
    buy_fill = await e2e.wait_journal(
        "fill", PAIR, daemon=daemon, where=lambda r: r.data["side"] == "buy"
    )
    tp = await e2e.wait_journal(
        "sell_result", PAIR, daemon=daemon, where=lambda r: r.data.get("outcome") == "ok"
    )
    assert buy_fill.seq < tp.seq
    # the daemon came back on new connections (all three) before it bought
    assert len(sim.events.find("ws_open")) >= sessions_before + 3
    buys = [o for o in our_orders(sim, PAIR) if o.side == "buy"]
    assert sum(o.filled_total for o in buys) > 0
    reopened = sim.events.find("ws_open")[sessions_before:]
    assert sim.events.find("order_in")[0].t_ns > reopened[0].t_ns
    assert daemon.running


async def test_buy_whose_answer_is_lost_is_reconciled_never_duplicated(e2e: E2E) -> None:
    """The exchange takes the first buy and drops the connection instead of answering."""
    sim = await e2e.start_sim(builtin_scenario("new_listing_fast"))
    daemon = await e2e.start_daemon(e2e.write_config(exit_={"take_profit_pct": "900"}))
    armed = await e2e.wait_journal("armed", PAIR, daemon=daemon)
    sim.faults.blackhole_orders(1, "close")

    first_text = armed.data["texts"][0]
    unknown = await e2e.wait_journal("buy_result", PAIR, daemon=daemon,
                                     where=lambda r: r.data["text"] == first_text)
    assert unknown.data["outcome"] == "unknown"  # never taken as a rejection
    await e2e.wait_journal(
        "sell_result", PAIR, daemon=daemon, where=lambda r: r.data.get("outcome") == "ok"
    )
    assert sim.faults.statistics().get("order_blackhole") == 1
    buys = [o for o in our_orders(sim, PAIR) if o.side == "buy"]
    assert buys[0].text == first_text  # the lost buy exists on the exchange...
    assert any(r.data["text"] == first_text and r.data["status"] != "open"
               for r in e2e.journal.rows("order", PAIR))  # ...and the daemon learned its fate
    assert len({o.text for o in buys}) == len(buys)  # no client id ever sent twice
    assert sum((o.filled_total for o in buys), Decimal(0)) <= Decimal(50)
    open_orders = sim.engine.list_orders(sim.uid, PAIR, "open")
    assert [(o.side, o.time_in_force) for o in open_orders] == [("sell", "gtc")]
    assert daemon.running
