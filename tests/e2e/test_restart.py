"""``kill -9`` at a precise point (the journal's crash hook), restart: one buy, one take-profit."""

from __future__ import annotations

import signal
from decimal import ROUND_DOWN, Decimal

import pytest

from sniper.app.journal import parse_crash_spec
from sniper.errors import ConfigError
from tests.e2e.conftest import E2E, builtin_scenario, our_orders, our_trades

PAIR = "NEWCOIN_USDT"
AMOUNT_STEP = Decimal("0.01")  # new_listing_fast: NEWCOIN_USDT amount_precision 2


@pytest.mark.parametrize(
    ("spec", "expected"),
    [(None, None), ("", None), ("fill", ("fill", 1)), ("sell_sent:2", ("sell_sent", 2))],
)
def test_crash_spec_parses(spec: str | None, expected: tuple[str, int] | None) -> None:
    assert parse_crash_spec(spec) == expected


@pytest.mark.parametrize("spec", ["fill:0", "fill:x", ":2"])
def test_crash_spec_refuses_nonsense(spec: str) -> None:
    with pytest.raises(ConfigError):
        parse_crash_spec(spec)


@pytest.mark.parametrize(
    ("crash_after", "entry_done_before_crash"),
    [
        # the first buy fill is journaled; the entry is not finished, no take-profit placed
        ("fill", False),
        # the take-profit is journaled as sent; the hook kills before the bytes leave
        ("sell_sent", True),
    ],
)
async def test_restart_after_kill_9_has_one_buy_and_one_take_profit(
    e2e: E2E, crash_after: str, entry_done_before_crash: bool
) -> None:
    sim = await e2e.start_sim(builtin_scenario("new_listing_fast"))
    # a take-profit far above the spike: it must still be resting at the end
    config = e2e.write_config(exit_={"take_profit_pct": "900"})
    first = await e2e.start_daemon(config, crash_after=crash_after)

    assert await first.wait_exit(20) == -signal.SIGKILL, first.describe()
    crash_seq = e2e.journal.rows(crash_after, PAIR)[-1].seq
    buy_texts = set(e2e.journal.rows("armed", PAIR)[0].data["texts"])
    buys_before = {(o.id, o.text) for o in our_orders(sim, PAIR) if o.side == "buy"}
    assert buys_before, "the crash point is after a buy fill"
    assert {text for _, text in buys_before} <= buy_texts
    assert not [o for o in our_orders(sim, PAIR) if o.side == "sell"]
    assert bool(e2e.journal.rows("entry_done", PAIR)) == entry_done_before_crash
    assert not e2e.journal.rows("closed", PAIR)

    second = await e2e.start_daemon(config, release=False)
    placed = await e2e.wait_journal(
        "sell_result", PAIR, after_seq=crash_seq, daemon=second,
        where=lambda r: r.data.get("outcome") == "ok",
    )
    entry_done = e2e.journal.rows("entry_done", PAIR)
    assert len(entry_done) == 1
    if not entry_done_before_crash:
        assert entry_done[0].data["reason"] == "restart"
        assert entry_done[0].seq > crash_seq
    # Let the restarted daemon see more of the market (book frames go out every requote and
    # every trade): no second buy may follow.
    for _ in range(5):
        await e2e.wait_sim(lambda e: e.kind == "ws_out" and e.name == "spot.order_book_update")

    buys_after = {(o.id, o.text) for o in our_orders(sim, PAIR) if o.side == "buy"}
    assert buys_after == buys_before
    open_orders = sim.engine.list_orders(sim.uid, PAIR, "open")
    assert len(open_orders) == 1, open_orders
    tp = open_orders[0]
    assert (tp.side, tp.time_in_force, tp.id) == ("sell", "gtc", placed.data["id"])
    sells = [o for o in our_orders(sim, PAIR) if o.side == "sell"]
    assert [o.id for o in sells] == [tp.id], "exactly one sell ever placed"
    fills = [t for t in our_trades(sim, PAIR) if t.side == "buy"]
    held = sum((t.amount - (t.fee if t.fee_currency == "NEWCOIN" else 0) for t in fills),
               Decimal(0))
    assert tp.amount == held.quantize(AMOUNT_STEP, rounding=ROUND_DOWN)
    # the restarted daemon journaled the fills it missed, each once
    journaled = [r.data["trade_id"] for r in e2e.journal.rows("fill", PAIR)]
    assert sorted(journaled) == sorted(str(t.id) for t in fills)
    assert not e2e.journal.rows("closed", PAIR)
    assert second.running
