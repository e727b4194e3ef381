"""Faults suite, network: WebSockets dropped (before the open, during the fill, during the exit),
silently stalled, slowed down, and a book stream with a lost or out-of-order update.

Every test runs the real daemon against the simulator, injects the fault through
:class:`~sniper.sim.faults.Faults`, waits on the daemon's journal (never on fixed sleeps),
then measures from the simulator's own records what the daemon did: orders placed,
duplicates, oversells (:func:`measure`), and records one row of the reliability tally.

The helpers here (:func:`measure`, :func:`config_with`, :func:`other_user_buys`) are shared by
the other part-A fault modules.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from sniper.sim.scenarios import scenario_from_dict
from sniper.sim.script import ladder_prices, mid_at
from sniper.sim.server import SimServer
from tests.e2e.conftest import E2E, JournalRow, builtin_scenario, our_orders, our_trades
from tests.faults.tally import record

PAIR = "NEWCOIN_USDT"
BASE = "NEWCOIN"
BUDGET = Decimal("50")
SLIPPAGE_PCT = Decimal("10")

# -- what the daemon did, measured on the exchange ----------------------------------------------


@dataclass(frozen=True, slots=True)
class Counts:
    """What the daemon did on the exchange, from the simulator's records."""

    orders: int
    buys: int
    sells: int
    duplicates: int
    oversells: int


def measure(
    e2e: E2E,
    pair: str = PAIR,
    *,
    budget: Decimal = BUDGET,
    debits: Iterable[tuple[int, Decimal]] = (),
) -> Counts:
    """Orders, duplicates and oversells of the daemon's account on ``pair``.

    duplicates: a client id the exchange accepted twice, a buy whose client id the journal
    never allocated for ``pair``, and a buy spend beyond ``budget`` (a second buy it never
    decided). oversells: a sell whose amount exceeded the base held when it was placed (buy
    fills net of base fees, less earlier sell fills, external ``debits`` ``(time_ms, amount)``
    and what other sells still open at that time locked), from the simulator's trades/orders.
    """
    sim = e2e.sim
    assert sim is not None
    orders = our_orders(sim)
    mine = [o for o in orders if o.pair == pair]
    buys = [o for o in mine if o.side == "buy"]
    sells = [o for o in mine if o.side == "sell"]
    accepted = Counter(e.text for e in sim.events.find("order_accepted") if e.text)
    duplicates = sum(n - 1 for n in accepted.values() if n > 1)
    allowed: set[str] = set()
    for row in e2e.journal.rows("armed", pair):
        allowed.update(row.data["texts"])
    duplicates += sum(1 for o in buys if o.text not in allowed)
    if sum((o.filled_total for o in buys), Decimal(0)) > budget:
        duplicates += 1
    return Counts(len(orders), len(buys), len(sells), duplicates,
                  _oversells(sim, pair, sells, list(debits)))


def _oversells(
    sim: SimServer, pair: str, sells: list[Any], debits: list[tuple[int, Decimal]]
) -> int:
    base = sim.engine.pair_record(pair).base
    trades = our_trades(sim, pair)
    count = 0
    for sell in sorted(sells, key=lambda o: (o.create_time_ms, int(o.id))):
        t = sell.create_time_ms
        held = Decimal(0)
        for tr in trades:
            if tr.time_ms > t:
                continue
            if tr.side == "buy":
                held += tr.amount - (tr.fee if tr.fee_currency == base else Decimal(0))
            elif tr.order_id != sell.id:
                held -= tr.amount
        held -= sum((amount for at_ms, amount in debits if at_ms <= t), Decimal(0))
        for other in sells:
            if other is sell or (other.create_time_ms, int(other.id)) > (t, int(sell.id)):
                continue
            if other.status != "open" and other.update_time_ms <= t:
                continue  # finished before: its fills are in the trades
            sold = sum((tr.amount for tr in trades if tr.order_id == other.id
                        and tr.time_ms <= t), Decimal(0))
            held -= other.amount - sold
        if sell.amount > held:
            count += 1
    return count


def tally(
    e2e: E2E, fault: str, behaviour: str, test: str, *, injected: int, **measure_kw: Any
) -> Counts:
    """Measure, record the tally row, and assert the two numbers that must always be zero."""
    counts = measure(e2e, **measure_kw)
    record(fault, behaviour, test, injected=injected, orders=counts.orders,
           duplicates=counts.duplicates, oversells=counts.oversells)
    assert counts.duplicates == 0, counts
    assert counts.oversells == 0, counts
    return counts


def injected(sim: SimServer, *names: str) -> int:
    """How many times the named faults fired."""
    fired = sim.faults.statistics()
    return sum(fired.get(n, 0) for n in names)


# -- setup helpers ------------------------------------------------------------------------------


def config_with(e2e: E2E, *, exchange: dict[str, Any] | None = None, **kw: Any) -> Path:
    """``e2e.write_config(**kw)`` plus ``exchange`` keys (timeouts, order path)."""
    path = e2e.write_config(**kw)
    data = yaml.safe_load(path.read_text("utf-8"))
    data["exchange"].update(exchange or {})
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def steady(raw: dict[str, Any], *, flat_s: float = 1.0, spike: str = "3") -> dict[str, Any]:
    """``raw`` with the listing's mid held flat for ``flat_s`` after the open, then a spike:
    the first ask is the only price the daemon can buy at, however loaded the machine."""
    raw["listings"][0]["price_path"] = [
        {"at_s": 0, "mid": "1"},
        {"at_s": flat_s, "mid": "1"},
        {"at_s": flat_s + 1, "mid": spike},
        {"at_s": flat_s + 3, "mid": "1.2"},
    ]
    return raw


def first_ask(raw: dict[str, Any], pair: str = PAIR) -> Decimal:
    """The best ask of the market maker's first ladder on ``pair`` (from the script)."""
    scenario = scenario_from_dict(raw)
    listing = next(li for li in scenario.listings if li.rules.pair == pair)
    mid = listing.open_price * mid_at(listing.price_path, listing.mm_delay_s)
    asks, _ = ladder_prices(mid, listing.ladder, listing.rules.precision)
    return asks[0]


def other_user_buys(sim: SimServer, pair: str, price: Decimal) -> None:
    """Someone else takes every ask up to ``price`` (our resting sell included), right now."""
    _, asks, _ = sim.engine.order_book(pair, 1000)
    amount = sum((size for level, size in asks if level <= price), Decimal(0))
    uid = sim.engine.add_user(f"other-{len(our_orders(sim))}-{price}", "x" * 64,
                              {"USDT": Decimal("100000")})
    _, happened = sim.engine.place_order(
        uid, {"currency_pair": pair, "side": "buy", "type": "limit", "price": str(price),
              "amount": str(amount), "time_in_force": "ioc", "text": "t-other"},
        sim.clock.now_ms(),
    )
    sim.dispatch(happened)


async def wait_tp(e2e: E2E, daemon: Any, *, after_seq: int = 0, timeout_s: float = 15.0
                  ) -> JournalRow:
    """The next take-profit placement the exchange accepted (journal ``sell_result`` ok)."""
    return await e2e.wait_journal(
        "sell_result", PAIR, daemon=daemon, after_seq=after_seq, timeout_s=timeout_s,
        where=lambda r: r.data.get("outcome") == "ok",
    )


def open_sells(sim: SimServer) -> list[Any]:
    return [o for o in sim.engine.list_orders(sim.uid, PAIR, "open") if o.side == "sell"]


def tp_amount_from_trades(sim: SimServer) -> Decimal:
    """What the daemon holds after its buys, net of base fees, at amount precision."""
    trades = [t for t in our_trades(sim, PAIR) if t.side == "buy"]
    held = sum((t.amount - (t.fee if t.fee_currency == BASE else 0) for t in trades), Decimal(0))
    step = Decimal(1).scaleb(-sim.engine.pair_record(PAIR).amount_precision)
    return held.quantize(step, rounding="ROUND_DOWN")


# -- WebSocket connections dropped --------------------------------------------------------------


async def test_all_ws_dropped_before_the_open_reconnects_and_buys(e2e: E2E) -> None:
    sim = await e2e.start_sim(builtin_scenario("new_listing_fast"))
    daemon = await e2e.start_daemon(e2e.write_config(exit_={"take_profit_pct": "900"}))
    await e2e.wait_journal("armed", PAIR, daemon=daemon)
    assert sim.engine.pair_record(PAIR).trade_status == "sellable"  # not open yet
    opens_before = len(sim.events.find("ws_open"))

    sim.faults.drop_ws_connections()

    tp = await wait_tp(e2e, daemon)
    assert len(sim.events.find("ws_open")) >= opens_before + 3  # market, private, trader
    assert [o.text for o in open_sells(sim)] == [tp.data["text"]]
    assert open_sells(sim)[0].amount == tp_amount_from_trades(sim)
    assert daemon.running
    counts = tally(e2e, "WS: all connections dropped before the open",
                   "reconnects, resubscribes, logs in again; buys at the open",
                   "test_network::test_all_ws_dropped_before_the_open_reconnects_and_buys",
                   injected=injected(sim, "drop_ws"))
    assert counts.buys >= 1


async def test_all_ws_dropped_right_after_the_first_buy_loses_nothing(e2e: E2E) -> None:
    """The buy fills, every connection drops before its answer or any push leaves."""
    sim = await e2e.start_sim(builtin_scenario("new_listing_fast"))
    daemon = await e2e.start_daemon(e2e.write_config(exit_={"take_profit_pct": "900"}))
    await e2e.wait_journal("armed", PAIR, daemon=daemon)
    sim.faults.after_next_order(lambda _order: sim.faults.drop_ws_connections(), side="buy")

    tp = await wait_tp(e2e, daemon)
    first = await e2e.wait_journal("buy_result", PAIR, daemon=daemon)
    assert first.data["outcome"] == "unknown"  # answer lost: reconciled by client id
    assert injected(sim, "drop_ws") == 1
    # the position was rebuilt from the exchange: the TP sells exactly what was bought
    sells = open_sells(sim)
    assert [o.text for o in sells] == [tp.data["text"]]
    assert sells[0].amount == tp_amount_from_trades(sim)
    journaled = {r.data["trade_id"] for r in e2e.journal.rows("fill", PAIR)}
    assert journaled == {str(t.id) for t in our_trades(sim, PAIR)}
    assert daemon.running
    tally(e2e, "WS: all connections dropped during the fill",
          "the lost buy answer and fills are reconciled by client id; TP sized from them",
          "test_network::test_all_ws_dropped_right_after_the_first_buy_loses_nothing",
          injected=injected(sim, "drop_ws"))


async def test_all_ws_dropped_while_the_take_profit_rests_and_fills(e2e: E2E) -> None:
    """The TP fills while the daemon is disconnected: no push ever tells it."""
    sim = await e2e.start_sim(builtin_scenario("new_listing_fast"))
    daemon = await e2e.start_daemon(e2e.write_config(exit_={"take_profit_pct": "900"}))
    tp = await wait_tp(e2e, daemon)
    [resting] = open_sells(sim)
    assert resting.text == tp.data["text"]

    sim.faults.drop_ws_connections()
    orders_before = len(e2e.journal.rows("order", PAIR))
    other_user_buys(sim, PAIR, resting.price)  # fills it while we are away

    closed = await e2e.wait_journal("closed", PAIR, daemon=daemon, timeout_s=15)
    assert closed.data["reason"] == "take_profit"
    assert sim.engine.get_order(sim.uid, PAIR, resting.id).status == "closed"
    assert open_sells(sim) == []
    assert len([o for o in our_orders(sim, PAIR) if o.side == "sell"]) == 1  # never re-placed
    # the lookups that found it journaled the TP once per change, not once per lookup
    tp_rows = [r for r in e2e.journal.rows("order", PAIR)[orders_before:]
               if r.data["id"] == resting.id]
    assert [r.data["status"] for r in tp_rows] == ["closed"]
    assert daemon.running
    tally(e2e, "WS: all connections dropped during the exit (TP fills meanwhile)",
          "reconnects; the resting TP's fill is found by lookup; closed, nothing re-sold",
          "test_network::test_all_ws_dropped_while_the_take_profit_rests_and_fills",
          injected=injected(sim, "drop_ws"))


# -- silence and slowness -----------------------------------------------------------------------


async def test_silent_stall_of_every_ws_is_detected_and_the_listing_bought(e2e: E2E) -> None:
    """No frame, no close: the daemon must notice the silence itself."""
    raw = builtin_scenario("new_listing_fast")
    raw["listings"][0]["opens_after_s"] = 4.0  # the open comes while the links are dead
    raw["listings"][0]["announce_lead_s"] = 5.0
    sim = await e2e.start_sim(raw)
    daemon = await e2e.start_daemon(
        e2e.write_config(entry={"deadline_s": 25}, exit_={"take_profit_pct": "900"}))
    await e2e.wait_journal("armed", PAIR, daemon=daemon)
    opens_before = len(sim.events.find("ws_open"))

    sim.faults.stall_ws_connections()

    await wait_tp(e2e, daemon, timeout_s=30)  # 6 s of silence to notice, then reconnect
    assert injected(sim, "stall_ws") == 1
    assert sim.events.find("ws_stall"), "nothing was silenced"
    reopened = sim.events.find("ws_open")[opens_before:]
    assert len(reopened) >= 3
    assert sim.events.find("order_in")[0].t_ns > reopened[0].t_ns  # bought on a new link
    assert [o.text for o in open_sells(sim)] == [r.data["text"] for r in
                                                 e2e.journal.rows("sell_result", PAIR)]
    assert daemon.running
    tally(e2e, "WS: silent stall (no frames, no close)",
          "silence > 6 s drops and reopens each connection; buys after reconnecting",
          "test_network::test_silent_stall_of_every_ws_is_detected_and_the_listing_bought",
          injected=injected(sim, "stall_ws"))


async def test_every_frame_delayed_still_buys_within_the_caps(e2e: E2E) -> None:
    raw = steady(builtin_scenario("new_listing_fast"))
    sim = await e2e.start_sim(raw)
    daemon = await e2e.start_daemon(e2e.write_config(exit_={"take_profit_pct": "900"}))
    await e2e.wait_journal("armed", PAIR, daemon=daemon)

    sim.faults.delay_frames(40)

    await wait_tp(e2e, daemon)
    delayed = sum(1 for _ in sim.events.find("ws_out"))
    cap = first_ask(raw) * (1 + SLIPPAGE_PCT / 100)
    buys = [o for o in our_orders(sim, PAIR) if o.side == "buy"]
    assert buys
    assert all(o.price <= cap for o in buys)
    assert open_sells(sim)[0].amount == tp_amount_from_trades(sim)
    assert daemon.running
    tally(e2e, "WS: every frame delayed 40 ms", "buys within the caps; TP sized from the fills",
          "test_network::test_every_frame_delayed_still_buys_within_the_caps",
          injected=delayed)


# -- the book stream ----------------------------------------------------------------------------


async def _book_fault_run(e2e: E2E, inject: str) -> tuple[Any, SimServer, dict[str, Any]]:
    """Only the update stream feeds the book (book_ticker frames are dropped), so the daemon
    can only see the open through a correctly resynced book."""
    raw = steady(builtin_scenario("new_listing_fast"))
    sim = await e2e.start_sim(raw)
    daemon = await e2e.start_daemon(e2e.write_config(exit_={"take_profit_pct": "900"}))
    await e2e.wait_journal("armed", PAIR, daemon=daemon)
    def full_book(e: Any) -> bool:
        return (e.kind == "ws_out" and e.name == "spot.order_book_update"
                and (e.detail or "").startswith(f"{PAIR}:full"))

    if not any(full_book(e) for e in sim.events.snapshot()):
        await e2e.wait_sim(full_book)
    sim.faults.drop_frames(1_000_000, channel="spot.book_ticker")
    if inject == "skip":
        sim.faults.skip_book_update(1, PAIR)
    else:
        sim.faults.reorder_book_update(1, PAIR)
    snapshots_before = len(sim.events.find("http_in", "/api/v4/spot/order_book"))

    await wait_tp(e2e, daemon)
    assert len(sim.events.find("http_in", "/api/v4/spot/order_book")) > snapshots_before, (
        "the book was not resynced from a REST snapshot")
    cap = first_ask(raw) * (1 + SLIPPAGE_PCT / 100)
    buys = [o for o in our_orders(sim, PAIR) if o.side == "buy"]
    assert buys
    assert all(o.price <= cap for o in buys), ([o.price for o in buys], cap)
    buy_fills = [t for t in our_trades(sim, PAIR) if t.side == "buy"]
    assert min(t.price for t in buy_fills) == first_ask(raw)
    assert daemon.running
    return daemon, sim, raw


async def test_skipped_book_update_resyncs_from_a_snapshot_and_buys_right(e2e: E2E) -> None:
    _, sim, _ = await _book_fault_run(e2e, "skip")
    assert injected(sim, "skip_book") == 1
    tally(e2e, "WS: a skipped order_book_update id",
          "gap detected; book cleared and rebuilt from the REST snapshot; buys at the first ask",
          "test_network::test_skipped_book_update_resyncs_from_a_snapshot_and_buys_right",
          injected=injected(sim, "skip_book"))


async def test_out_of_order_book_update_resyncs_and_buys_right(e2e: E2E) -> None:
    _, sim, _ = await _book_fault_run(e2e, "reorder")
    assert injected(sim, "reorder_book") == 1
    tally(e2e, "WS: an out-of-order order_book_update",
          "gap detected, the late update ignored as stale; resynced; buys at the first ask",
          "test_network::test_out_of_order_book_update_resyncs_and_buys_right",
          injected=injected(sim, "reorder_book"))
