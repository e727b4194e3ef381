"""SIGTERM with a take-profit resting: exit 0 quickly, the TP stays on the exchange."""

from __future__ import annotations

import signal

from tests.e2e.conftest import E2E, builtin_scenario, our_orders

PAIR = "NEWCOIN_USDT"


async def test_sigterm_leaves_the_take_profit_resting_and_exits_0(e2e: E2E) -> None:
    sim = await e2e.start_sim(builtin_scenario("new_listing_fast"))
    daemon = await e2e.start_daemon(e2e.write_config(exit_={"take_profit_pct": "900"}))
    placed = await e2e.wait_journal(
        "sell_result", PAIR, daemon=daemon, where=lambda r: r.data.get("outcome") == "ok"
    )
    resting = sim.engine.list_orders(sim.uid, PAIR, "open")
    assert [o.id for o in resting] == [placed.data["id"]]
    orders_before = {o.id for o in our_orders(sim)}

    daemon.send_signal(signal.SIGTERM)
    assert await daemon.wait_exit(5) == 0, daemon.describe()

    still = sim.engine.list_orders(sim.uid, PAIR, "open")
    assert [(o.id, o.side, o.left) for o in still] == [(o.id, o.side, o.left) for o in resting]
    assert {o.id for o in our_orders(sim)} == orders_before  # nothing placed or cancelled
    assert not e2e.journal.rows("closed")
    assert '"event":"stopped"' in daemon.log_text()


async def test_sigterm_while_armed_does_not_forfeit_the_listing(e2e: E2E) -> None:
    """A restart before the open (a deploy, systemd) must still buy the pending listing."""
    sim = await e2e.start_sim(builtin_scenario("new_listing_fast"))
    config = e2e.write_config(exit_={"take_profit_pct": "900"})
    first = await e2e.start_daemon(config)
    await e2e.wait_journal("armed", PAIR, daemon=first)
    assert sim.engine.pair_record(PAIR).trade_status == "sellable"  # not open yet

    first.send_signal(signal.SIGTERM)
    assert await first.wait_exit(5) == 0, first.describe()
    assert e2e.journal.kinds(PAIR) == ["armed"]  # stopped buying, but did not give up on it
    assert not our_orders(sim, PAIR)

    second = await e2e.start_daemon(config, release=False)
    fill = await e2e.wait_journal(
        "fill", PAIR, daemon=second, where=lambda r: r.data["side"] == "buy"
    )
    await e2e.wait_journal("sell_result", PAIR, after_seq=fill.seq, daemon=second)
    buys = [o for o in our_orders(sim, PAIR) if o.side == "buy"]
    assert buys
    assert {o.text for o in buys} <= set(e2e.journal.rows("armed", PAIR)[0].data["texts"])
    assert len(e2e.journal.rows("armed", PAIR)) == 1  # recovered, not armed a second time
