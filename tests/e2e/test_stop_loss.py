"""The stop-loss path: the price dumps after the buy -> TP cancelled, IOC stop sell, closed."""

from __future__ import annotations

from decimal import Decimal

from tests.e2e.conftest import E2E, balance, builtin_scenario, our_orders, our_trades

PAIR = "DUMPCOIN_USDT"


async def test_dump_after_the_buy_cancels_the_tp_and_stops_out(e2e: E2E) -> None:
    sim = await e2e.start_sim(builtin_scenario("listing_dump"))
    daemon = await e2e.start_daemon(
        e2e.write_config(exit_={"take_profit_pct": "30", "stop_loss_pct": "20"})
    )
    tp_placed = await e2e.wait_journal(
        "sell_result", PAIR, daemon=daemon, where=lambda r: r.data.get("outcome") == "ok"
    )
    closed = await e2e.wait_journal("closed", PAIR, daemon=daemon, timeout_s=20)
    assert closed.data["reason"] == "stop_loss"

    fills = our_trades(sim, PAIR)
    buy_fills = [t for t in fills if t.side == "buy"]
    assert buy_fills
    received = sum((t.amount - (t.fee if t.fee_currency == "DUMPCOIN" else 0) for t in buy_fills),
                   Decimal(0))
    avg = sum((t.price * t.amount for t in buy_fills), Decimal(0)) / sum(
        (t.amount for t in buy_fills), Decimal(0))

    sells = [o for o in our_orders(sim, PAIR) if o.side == "sell"]
    tp, *stops = sells
    assert (tp.id, tp.time_in_force) == (tp_placed.data["id"], "gtc")
    assert tp.status == "cancelled"
    assert tp.filled_amount == 0
    assert stops, "no stop sell was placed"
    assert all(o.time_in_force == "ioc" and o.status != "open" for o in stops)
    assert min(o.create_time_ms for o in stops) >= tp.update_time_ms  # cancel confirmed first
    # no sell ever asked for more than was held when it was placed
    sold = Decimal(0)
    for order in sells:
        assert order.amount <= received - sold, (order.amount, received, sold)
        sold += order.filled_amount
    # sold when the bid was at least 20 % under the entry (stop price = bid less slippage)
    for order in stops:
        assert order.price <= avg * Decimal("0.8")
    assert sold > 0
    left = balance(sim, "DUMPCOIN")
    assert left == received - sold
    assert left < Decimal(1)  # min_base_amount: only unsellable dust remains
    assert not sim.engine.list_orders(sim.uid, PAIR, "open")
    assert daemon.running
