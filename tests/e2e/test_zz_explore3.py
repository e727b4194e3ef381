from __future__ import annotations

import pytest

from tests.e2e.conftest import E2E, builtin_scenario, our_orders

PAIR = "NEWCOIN_USDT"


@pytest.mark.parametrize("mode", ["hang", "close"])
async def test_blackhole(e2e: E2E, mode: str) -> None:
    sim = await e2e.start_sim(builtin_scenario("new_listing_fast"))
    config = e2e.write_config(exit_={"take_profit_pct": "900"})
    d = await e2e.start_daemon(config)
    await e2e.wait_journal("armed", PAIR, daemon=d)
    sim.faults.blackhole_orders(1, mode)  # type: ignore[arg-type]
    await e2e.wait_journal("sell_result", PAIR, daemon=d, timeout_s=20)
    for _ in range(8):
        await e2e.wait_sim(lambda e: e.kind == "ws_out" and e.name == "spot.order_book_update")
    print("journal", e2e.journal.kinds())
    for o in our_orders(sim, PAIR):
        print(o.side, o.text, o.amount, o.price, o.filled_total, o.status)
    buys = [o for o in our_orders(sim, PAIR) if o.side == "buy"]
    assert sum(o.filled_total for o in buys) <= 50
    assert len({o.text for o in buys}) == len(buys)
    assert len(sim.engine.list_orders(sim.uid, PAIR, "open")) == 1
    assert d.running
