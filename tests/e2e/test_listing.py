"""A full listing end to end: detected, bought within the caps, take-profit sized right, closed;
and nothing else is ever traded (baseline pairs, pending baseline pairs, other quote currencies).
"""

from __future__ import annotations

from decimal import ROUND_DOWN, ROUND_UP, Decimal, localcontext
from typing import Any

from sniper.sim.scenarios import scenario_from_dict
from sniper.sim.script import ladder_prices, mid_at
from tests.e2e.conftest import E2E, balance, builtin_scenario, our_orders, our_trades

PAIR = "NEWCOIN_USDT"
QUOTE_AMOUNT = Decimal("50")
SLIPPAGE_PCT = Decimal("10")
TP_PCT = Decimal("30")


def steady_open_scenario() -> dict[str, Any]:
    """``new_listing_fast`` with the mid held flat for the first second after the open.

    The caps are checked against the *first* ask the book showed; a flat first second keeps that
    the only ask the daemon can react to while it buys, however loaded the machine is. The
    spike (3x) still comes, so the take-profit fills.
    """
    raw = builtin_scenario("new_listing_fast")
    raw["listings"][0]["price_path"] = [
        {"at_s": 0, "mid": "1"},
        {"at_s": 1, "mid": "1"},
        {"at_s": 2, "mid": "3"},
        {"at_s": 4, "mid": "1.2"},
    ]
    return raw


def first_ask(raw: dict[str, Any]) -> Decimal:
    """The best ask of the market maker's first ladder on the listing (computed from the script)."""
    scenario = scenario_from_dict(raw)
    listing = next(li for li in scenario.listings if li.rules.pair == PAIR)
    mid = listing.open_price * mid_at(listing.price_path, listing.mm_delay_s)
    asks, _ = ladder_prices(mid, listing.ladder, listing.rules.precision)
    return asks[0]


async def test_full_listing_buys_within_caps_and_places_a_correct_take_profit(e2e: E2E) -> None:
    raw = steady_open_scenario()
    sim = await e2e.start_sim(raw)
    daemon = await e2e.start_daemon(e2e.write_config())

    armed = await e2e.wait_journal("armed", PAIR, daemon=daemon)
    closed = await e2e.wait_journal("closed", PAIR, daemon=daemon, timeout_s=20)
    assert closed.data["reason"] == "take_profit"
    assert armed.data["info"]["pair"] == PAIR

    rules = scenario_from_dict(raw).listings[0].rules
    amount_step = Decimal(1).scaleb(-rules.amount_precision)
    price_step = Decimal(1).scaleb(-rules.precision)
    orders = our_orders(sim)
    assert {o.pair for o in orders} == {PAIR}
    buys = [o for o in orders if o.side == "buy"]
    sells = [o for o in orders if o.side == "sell"]

    # bought, within the caps, with the journaled client ids only
    ask0 = first_ask(raw)
    cap = ask0 * (1 + SLIPPAGE_PCT / 100)
    assert buys, "no buy reached the exchange"
    assert {o.text for o in buys} <= set(armed.data["texts"])
    for order in buys:
        assert order.type == "limit"
        assert order.time_in_force == "ioc"
        assert order.price <= cap, (order.price, cap)
        assert order.status != "open"
    spent = sum((o.filled_total for o in buys), Decimal(0))
    assert Decimal(0) < spent <= QUOTE_AMOUNT
    buy_fills = [t for t in our_trades(sim, PAIR) if t.side == "buy"]
    assert min(t.price for t in buy_fills) == ask0  # it bought at the first ask

    # the take-profit: all that is held after fees, rounded down; avg x 1.3 rounded up
    gross = sum((t.amount for t in buy_fills), Decimal(0))
    base_fees = sum((t.fee for t in buy_fills if t.fee_currency == rules.base), Decimal(0))
    with localcontext() as ctx:
        ctx.prec = 60
        avg = sum((t.price * t.amount for t in buy_fills), Decimal(0)) / gross
        tp_price = (avg * (1 + TP_PCT / 100)).quantize(price_step, rounding=ROUND_UP)
    held = gross - base_fees
    tp_amount = held.quantize(amount_step, rounding=ROUND_DOWN)
    tps = [o for o in sells if o.time_in_force == "gtc"]
    assert len(tps) == 1, tps
    tp = tps[0]
    assert (tp.amount, tp.price) == (tp_amount, tp_price)
    assert tp.create_time_ms >= max(o.create_time_ms for o in buys)
    assert tp.status == "closed"
    assert tp.left == 0
    assert all(o.time_in_force == "gtc" for o in sells), "no stop sell was expected"

    # the exchange agrees with the journal and nothing but dust is left
    journaled = {r.data["trade_id"] for r in e2e.journal.rows("fill", PAIR)}
    assert journaled == {str(t.id) for t in our_trades(sim, PAIR)}
    assert balance(sim, rules.base) == held - tp_amount
    entry_done = e2e.journal.rows("entry_done", PAIR)
    assert len(entry_done) == 1
    assert Decimal(entry_done[0].data["quote_spent"]) == spent
    assert daemon.running


def mixed_scenario() -> dict[str, Any]:
    """``new_listing_fast`` plus a pending pair that exists before the daemon starts (in its
    baseline, opening later) and a new listing quoted in BTC (not a configured quote)."""
    raw = builtin_scenario("new_listing_fast")
    template = raw["listings"][0]
    raw["balances"] = {"USDT": "10000", "BTC": "1"}
    raw["listings"].append({**template, "pair": "OLDCOIN_USDT", "appear_at_s": 0,
                            "announce_lead_s": None})
    raw["listings"].append({
        **template, "pair": "NEWBTC_BTC", "precision": 10, "open_price": "0.000001",
        "min_quote_amount": "0.00001", "announce_lead_s": None,
    })
    return raw


async def test_baseline_pairs_and_other_quote_currencies_are_never_traded(e2e: E2E) -> None:
    sim = await e2e.start_sim(mixed_scenario())
    # OLDCOIN_USDT appears at the very start: it is in the daemon's baseline, still pending
    await sim.advance(1)
    assert sim.engine.pair_record("OLDCOIN_USDT").visible
    assert sim.engine.pair_record("OLDCOIN_USDT").trade_status == "sellable"
    daemon = await e2e.start_daemon(e2e.write_config())

    closed = await e2e.wait_journal("closed", PAIR, daemon=daemon, timeout_s=20)
    assert closed.data["reason"] == "take_profit"  # the one real listing was traded
    # Every other pair is open with a book by now; let the daemon poll them twice more.
    for name in ("OLDCOIN_USDT", "NEWBTC_BTC"):
        assert sim.engine.pair_record(name).trade_status == "tradable"
        assert sim.engine.book(name).best_ask() is not None
    for _ in range(2):
        await e2e.wait_sim(lambda e: e.kind == "http_out" and e.name.endswith("/currency_pairs"))

    assert {o.pair for o in our_orders(sim)} == {PAIR}
    assert {t.pair for t in our_trades(sim)} == {PAIR}
    assert {r.pair for r in e2e.journal.rows("armed")} == {PAIR}
    assert balance(sim, "BTC") == Decimal(1)
    assert balance(sim, "OLDCOIN") == 0
    assert balance(sim, "NEWBTC") == 0
    assert balance(sim, "ETH") == 0
    known_texts = {o.text for o in our_orders(sim)}
    assert {e.text for e in sim.events.find("order_in")} <= known_texts
