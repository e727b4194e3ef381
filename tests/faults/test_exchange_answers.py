"""Faults suite, exchange answers: 429 (with and without Gate's rate-limit headers), 5xx,
connection resets, orders taken but never answered, and answers around the client's deadline,
on the REST polling, the REST sells and the WS trading API buys.

Measured and tallied like :mod:`tests.faults.test_network` (whose helpers are reused).
"""

from __future__ import annotations

import itertools
from decimal import Decimal
from typing import Any

import pytest

from sniper.sim.server import SimServer
from tests.e2e.conftest import E2E, PAIRS_PATH, DaemonProcess, builtin_scenario, our_orders
from tests.faults.test_network import (
    PAIR,
    config_with,
    injected,
    open_sells,
    steady,
    tally,
    tp_amount_from_trades,
    wait_tp,
)

ORDERS = "/spot/orders"
WS_PLACE = "spot.order_place"


def daemon_lead_ms(sim: SimServer) -> float:
    """How far the daemon's idea of exchange time runs ahead of the simulator's (the harness
    holds the exchange clock while the daemon starts; see tests/e2e/conftest.py)."""
    synced = sim.events.find("http_in", "/api/v4/spot/time")
    baseline = sim.events.find("http_out", PAIRS_PATH)[0]
    before = [e for e in synced if e.t_ns <= baseline.t_ns]
    return (baseline.t_ns - before[-1].t_ns) / 1e6 if before else 0.0


async def start(e2e: E2E, **config: Any) -> tuple[SimServer, DaemonProcess]:
    # flat for 1 s after the open: a re-fire finds the price within the (first ask) cap
    sim = await e2e.start_sim(steady(builtin_scenario("new_listing_fast")))
    config.setdefault("exit_", {"take_profit_pct": "900"})
    daemon = await e2e.start_daemon(config_with(e2e, **config))
    return sim, daemon


def sell_results(e2e: E2E) -> list[dict[str, Any]]:
    return [r.data for r in e2e.journal.rows("sell_result", PAIR)]


def assert_one_correct_tp(e2e: E2E, sim: SimServer, tp_text: str) -> None:
    """Exactly one sell rests: the journaled TP, sized from the fills."""
    sells = open_sells(sim)
    assert [o.text for o in sells] == [tp_text]
    assert sells[0].amount == tp_amount_from_trades(sim)


# -- polling ------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [429, 503])
async def test_polling_refused_keeps_polling_and_still_buys(e2e: E2E, status: int) -> None:
    """``currency_pairs`` answered 429 (no headers) / 503 four times in a row right after the
    baseline: retried with backoff, polling goes on, the listing is still found and bought."""
    sim, daemon = await start(e2e)
    sim.faults.fail_http(4, status, path_prefix="/spot/currency_pairs")

    tp = await wait_tp(e2e, daemon)
    assert injected(sim, f"http{status}") == 4
    answered = [e.status for e in sim.events.find("http_out", PAIRS_PATH)]
    assert answered.count(status) == 4
    assert answered[-1] == 200
    assert_one_correct_tp(e2e, sim, tp.data["text"])
    assert daemon.running
    tally(
        e2e,
        f"REST: {status} on currency_pairs polling" + (" (no headers)" * (status == 429)),
        "retried with jittered backoff, polling goes on; listing found and bought",
        f"test_exchange_answers::test_polling_refused_keeps_polling_and_still_buys[{status}]",
        injected=injected(sim, f"http{status}"),
    )


async def test_polling_429_with_reset_header_waits_for_the_reset(e2e: E2E) -> None:
    sim, daemon = await start(e2e)
    reset_ms = 1500
    sim.faults.fail_http(1, 429, path_prefix="/spot/currency_pairs", reset_after_ms=reset_ms)

    refused = await e2e.wait_sim(
        lambda e: e.kind == "http_out" and e.name == PAIRS_PATH and e.status == 429
    )
    retried = await e2e.wait_sim(
        lambda e: e.kind == "http_in" and e.name == PAIRS_PATH, timeout_s=5
    )
    waited_ms = (retried.t_ns - refused.t_ns) / 1e6
    # the daemon's clock runs ahead of the held-then-released simulator by daemon_lead_ms
    assert waited_ms >= reset_ms - daemon_lead_ms(sim) - 100, (waited_ms, daemon_lead_ms(sim))
    assert waited_ms >= 300  # not the 50 ms backoff of a 429 without headers
    tp = await wait_tp(e2e, daemon)
    assert_one_correct_tp(e2e, sim, tp.data["text"])
    tally(
        e2e,
        "REST: 429 with rate-limit headers on currency_pairs polling",
        "waits until the announced reset (at most 10 s), then polls again",
        "test_exchange_answers::test_polling_429_with_reset_header_waits_for_the_reset",
        injected=injected(sim, "http429"),
    )


async def test_polling_connection_reset_is_retried(e2e: E2E) -> None:
    sim, daemon = await start(e2e)
    sim.faults.reset_http(3, path_prefix="/spot/currency_pairs")

    tp = await wait_tp(e2e, daemon)
    assert injected(sim, "http_reset") == 3
    assert_one_correct_tp(e2e, sim, tp.data["text"])
    assert daemon.running
    tally(
        e2e,
        "REST: connection reset on currency_pairs polling",
        "an idempotent GET: retried on a new connection; polling goes on",
        "test_exchange_answers::test_polling_connection_reset_is_retried",
        injected=injected(sim, "http_reset"),
    )


# -- the sells (REST) ---------------------------------------------------------------------------


@pytest.mark.parametrize("reset_after_ms", [None, 1200])
async def test_take_profit_429_is_retried_after_the_window(
    e2e: E2E, reset_after_ms: int | None
) -> None:
    sim, daemon = await start(e2e)
    sim.faults.fail_http(2, 429, path_prefix=ORDERS, reset_after_ms=reset_after_ms)

    tp = await wait_tp(e2e, daemon)
    results = sell_results(e2e)
    assert [r["outcome"] for r in results] == ["rejected", "rejected", "ok"]
    assert {r["label"] for r in results[:2]} == {"TOO_MANY_REQUESTS"}
    assert_one_correct_tp(e2e, sim, tp.data["text"])
    sent = [e for e in sim.events.find("http_in", f"/api/v4{ORDERS}") if e.event == "POST"]
    assert len(sent) == 3
    if reset_after_ms is not None:  # each retry waited for the announced reset
        lead = daemon_lead_ms(sim)
        for earlier, later in itertools.pairwise(sent):
            assert (later.t_ns - earlier.t_ns) / 1e6 >= reset_after_ms - lead - 100
    assert daemon.running
    kind = "with" if reset_after_ms else "without"
    tally(
        e2e,
        f"REST: 429 {kind} rate-limit headers on the take-profit order",
        "not placed; retried (after the announced reset when given); one TP",
        f"test_exchange_answers::test_take_profit_429_is_retried_after_the_window[{kind}]",
        injected=injected(sim, "http429"),
    )


@pytest.mark.parametrize("fault", ["http502", "http_reset"])
async def test_take_profit_server_error_or_reset_is_reconciled_then_placed_once(
    e2e: E2E, fault: str
) -> None:
    """A 5xx or a reset after sending says nothing about the order: looked up by client id,
    found absent, placed again under a new client id."""
    sim, daemon = await start(e2e)
    if fault == "http502":
        sim.faults.fail_http(1, 502, path_prefix=ORDERS)
    else:
        sim.faults.reset_http(1, path_prefix=ORDERS)

    tp = await wait_tp(e2e, daemon)
    results = sell_results(e2e)
    assert [r["outcome"] for r in results] == ["unknown", "ok"]
    assert results[0]["text"] != results[1]["text"]
    assert_one_correct_tp(e2e, sim, tp.data["text"])
    assert injected(sim, fault) == 1
    assert daemon.running
    what = "502" if fault == "http502" else "connection reset"
    tally(
        e2e,
        f"REST: {what} on the take-profit order",
        "outcome unknown: looked up by client id, found absent, placed again once",
        f"test_exchange_answers::test_take_profit_server_error_or_reset_is_reconciled_then_"
        f"placed_once[{fault}]",
        injected=injected(sim, fault),
    )


def blackhole_first_sell(sim: SimServer) -> None:
    """The exchange takes the first sell and closes the connection instead of answering."""

    def after_buy(_order: Any) -> None:
        sim.faults.after_next_order(lambda _o: sim.faults.blackhole_orders(1, "close"), side="sell")

    sim.faults.after_next_order(after_buy, side="buy")


async def test_take_profit_accepted_but_answer_lost_is_adopted_never_resent(e2e: E2E) -> None:
    sim, daemon = await start(e2e)
    blackhole_first_sell(sim)

    unknown = await e2e.wait_journal(
        "sell_result", PAIR, daemon=daemon, where=lambda r: r.data["outcome"] == "unknown"
    )
    order_row = await e2e.wait_journal(
        "order", PAIR, daemon=daemon, where=lambda r: r.data["text"] == unknown.data["text"]
    )
    assert order_row.data["status"] == "open"  # found by its client id
    assert injected(sim, "order_blackhole") == 1
    # let two more polls pass: nothing else may be sold
    for _ in range(2):
        await e2e.wait_sim(lambda e: e.kind == "http_out" and e.name == PAIRS_PATH)
    assert_one_correct_tp(e2e, sim, unknown.data["text"])
    assert [o.text for o in our_orders(sim, PAIR) if o.side == "sell"] == [unknown.data["text"]]
    assert daemon.running
    tally(
        e2e,
        "REST: take-profit accepted, answer lost (connection closed)",
        "outcome unknown: found open by client id and adopted; never re-sent",
        "test_exchange_answers::test_take_profit_accepted_but_answer_lost_is_adopted_never_resent",
        injected=injected(sim, "order_blackhole"),
    )


@pytest.mark.parametrize("delay_ms", [600, 1500])
async def test_take_profit_answer_around_the_deadline(e2e: E2E, delay_ms: int) -> None:
    """Processed at once, answered ``delay_ms`` later, with a 1 s client timeout: before the
    deadline it is an answer; after it, an unknown outcome reconciled by client id."""
    sim, daemon = await start(e2e, exchange={"request_timeout_s": 1.0})
    sim.faults.delay_http(delay_ms, 1, path_prefix=ORDERS)

    first = await e2e.wait_journal("sell_result", PAIR, daemon=daemon)
    if delay_ms < 1000:
        assert first.data["outcome"] == "ok"
    else:
        assert first.data["outcome"] == "unknown"
        await e2e.wait_journal(
            "order", PAIR, daemon=daemon, where=lambda r: r.data["text"] == first.data["text"]
        )
    for _ in range(2):
        await e2e.wait_sim(lambda e: e.kind == "http_out" and e.name == PAIRS_PATH)
    assert_one_correct_tp(e2e, sim, first.data["text"])
    assert len([o for o in our_orders(sim, PAIR) if o.side == "sell"]) == 1
    assert injected(sim, "http_delay") == 1
    assert daemon.running
    side = "before" if delay_ms < 1000 else "after"
    tally(
        e2e,
        f"REST: take-profit answered {delay_ms} ms late (timeout 1 s, {side})",
        "an answer in time is used; a late one is an unknown outcome, found by client id",
        f"test_exchange_answers::test_take_profit_answer_around_the_deadline[{delay_ms}]",
        injected=injected(sim, "http_delay"),
    )


# -- the buys (WS trading API) ------------------------------------------------------------------


async def test_buy_answered_503_by_the_ws_api_is_reconciled_then_fires_the_next_id(
    e2e: E2E,
) -> None:
    """A 5xx does not prove the order was not taken: the daemon looks the first client id up
    (absent), and only then fires the next one."""
    sim = await e2e.start_sim(steady(builtin_scenario("new_listing_fast"), flat_s=4.0))
    daemon = await e2e.start_daemon(
        config_with(e2e, entry={"deadline_s": 8}, exit_={"take_profit_pct": "900"})
    )
    armed = await e2e.wait_journal("armed", PAIR, daemon=daemon)
    sim.faults.fail_http(1, 503, path_prefix=WS_PLACE)

    tp = await wait_tp(e2e, daemon)
    first = armed.data["texts"][0]
    outcomes = [
        r.data["outcome"] for r in e2e.journal.rows("buy_result", PAIR) if r.data["text"] == first
    ]
    assert outcomes == ["unknown", "absent"]
    buys = [o for o in our_orders(sim, PAIR) if o.side == "buy"]
    assert buys
    assert first not in {o.text for o in buys}  # refused: never placed, never re-sent
    assert len(sim.events.find("order_in", WS_PLACE, text=first)) == 1
    assert_one_correct_tp(e2e, sim, tp.data["text"])
    assert daemon.running
    tally(
        e2e,
        "WS API: 503 on the first buy",
        "outcome unknown: looked up by client id (absent), then the next client id fires",
        "test_exchange_answers::test_buy_answered_503_by_the_ws_api_is_reconciled_then_fires_"
        "the_next_id",
        injected=injected(sim, "http503"),
    )


@pytest.mark.parametrize(("status", "reset_after_ms"), [(429, None), (429, 1000)])
async def test_buy_refused_by_the_ws_api_fires_again_with_a_new_client_id(
    e2e: E2E, status: int, reset_after_ms: int | None
) -> None:
    """The first buy is refused unprocessed (429): nothing was placed, so the next book
    update fires the next client id (after the 429's reset when given)."""
    sim, daemon = await start(e2e, entry={"deadline_s": 8})
    armed = await e2e.wait_journal("armed", PAIR, daemon=daemon)
    sim.faults.fail_http(1, status, path_prefix=WS_PLACE, reset_after_ms=reset_after_ms)

    tp = await wait_tp(e2e, daemon)
    results = [r.data for r in e2e.journal.rows("buy_result", PAIR)]
    assert results[0]["text"] == armed.data["texts"][0]
    assert results[0]["outcome"] in ("rejected", "not_sent")
    buys = [o for o in our_orders(sim, PAIR) if o.side == "buy"]
    assert buys
    assert armed.data["texts"][0] not in {o.text for o in buys}  # refused: never placed
    assert_one_correct_tp(e2e, sim, tp.data["text"])
    if reset_after_ms is not None:
        sent = sim.events.find("order_in", WS_PLACE)
        gap_ms = (sent[1].t_ns - sent[0].t_ns) / 1e6
        assert gap_ms >= reset_after_ms - daemon_lead_ms(sim) - 100, gap_ms
    assert injected(sim, f"http{status}") == 1
    assert daemon.running
    label = f"{status}" + (
        "" if status != 429 else " with headers" if reset_after_ms else " without headers"
    )
    tally(
        e2e,
        f"WS API: {label} on the first buy",
        "not placed; the next update fires the next client id"
        + (" after the reset" if reset_after_ms else ""),
        f"test_exchange_answers::test_buy_refused_by_the_ws_api_fires_again_with_a_new_"
        f"client_id[{status}-{reset_after_ms}]",
        injected=injected(sim, f"http{status}"),
    )


async def test_buy_accepted_but_never_answered_is_reconciled_not_resent(e2e: E2E) -> None:
    """The exchange takes the buy and stays silent on that connection (1 s timeout)."""
    sim, daemon = await start(e2e, exchange={"request_timeout_s": 1.0})
    armed = await e2e.wait_journal("armed", PAIR, daemon=daemon)
    sim.faults.blackhole_orders(1, "hang")

    tp = await wait_tp(e2e, daemon)
    first = armed.data["texts"][0]
    await e2e.wait_journal(
        "buy_result", PAIR, daemon=daemon, where=lambda r: r.data["text"] == first
    )
    results = [r.data for r in e2e.journal.rows("buy_result", PAIR) if r.data["text"] == first]
    assert [r["outcome"] for r in results] == ["unknown"]
    buys = [o for o in our_orders(sim, PAIR) if o.side == "buy"]
    assert buys[0].text == first
    assert sum((o.filled_total for o in buys), Decimal(0)) <= Decimal(50)
    assert len(sim.events.find("order_in", WS_PLACE, text=first)) == 1  # never re-sent
    assert_one_correct_tp(e2e, sim, tp.data["text"])
    assert daemon.running
    tally(
        e2e,
        "WS API: buy accepted, never answered (timeout)",
        "outcome unknown: reconciled by client id, its fills adopted; never re-sent",
        "test_exchange_answers::test_buy_accepted_but_never_answered_is_reconciled_not_resent",
        injected=injected(sim, "order_blackhole"),
    )
