from __future__ import annotations

import os
import signal
from decimal import ROUND_DOWN, Decimal

import pytest

from tests.e2e.conftest import E2E, builtin_scenario, our_orders, our_trades

PAIR = "NEWCOIN_USDT"
KINDS = os.environ.get("EXPLORE", "sell_result").split(",")


@pytest.mark.parametrize("crash_after", KINDS)
async def test_explore(e2e: E2E, crash_after: str) -> None:
    sim = await e2e.start_sim(builtin_scenario("new_listing_fast"))
    config = e2e.write_config(exit_={"take_profit_pct": "900"})
    if crash_after == "TERM":
        first = await e2e.start_daemon(config)
        await e2e.wait_journal("sell_result", PAIR, daemon=first)
        first.send_signal(signal.SIGTERM)
        assert await first.wait_exit(5) == 0
    else:
        first = await e2e.start_daemon(config, crash_after=crash_after)
        rc = await first.wait_exit(20)
        assert rc == -9, first.describe()
    crash_seq = e2e.journal.last_seq()
    print("journal at crash", e2e.journal.kinds())
    buys_before = {(o.id, o.text) for o in our_orders(sim, PAIR) if o.side == "buy"}
    second = await e2e.start_daemon(config, release=False)
    if crash_after in ("sell_result", "TERM"):
        await e2e.wait_sim(lambda e: e.kind == "http_out" and e.name.endswith("/currency_pairs"))
    else:
        await e2e.wait_journal("sell_result", PAIR, after_seq=crash_seq, daemon=second,
                               where=lambda r: r.data.get("outcome") == "ok")
    for _ in range(8):
        await e2e.wait_sim(lambda e: e.kind == "ws_out" and e.name == "spot.order_book_update")
    print("journal after", e2e.journal.kinds())
    buys_after = {(o.id, o.text) for o in our_orders(sim, PAIR) if o.side == "buy"}
    if buys_before:
        assert buys_after == buys_before
    assert sum(o.filled_total for o in our_orders(sim, PAIR) if o.side == "buy") <= 50
    open_orders = sim.engine.list_orders(sim.uid, PAIR, "open")
    assert len(open_orders) == 1, open_orders
    sells = [o for o in our_orders(sim, PAIR) if o.side == "sell"]
    assert len(sells) == 1, sells
    fills = [t for t in our_trades(sim, PAIR) if t.side == "buy"]
    held = sum((t.amount - (t.fee if t.fee_currency == "NEWCOIN" else 0) for t in fills), Decimal(0))
    assert sells[0].amount == held.quantize(Decimal("0.01"), rounding=ROUND_DOWN)
    assert second.running
    journaled = [r.data["trade_id"] for r in e2e.journal.rows("fill", PAIR)]
    assert sorted(journaled) == sorted(str(t.id) for t in fills)
