"""Parity: what the daemon decides live against the simulator, it decides in replay too.

Two simulators run the same scenario (``new_listing_fast``, seeded) side by side: the real
daemon trades on one over loopback (signed orders, the simulator's matching engine), the
recorder records the other. The recording is then replayed through the daemon with paper
execution and no latency.

Parity, precisely (latency model 0):

* the same sequence of order decisions: ``buy_sent`` and ``sell_placed`` events in the same
  order, with the same sides/purposes and count;
* every buy's limit price and amount are equal (both come from the first asks of the open,
  which the scenario makes identical in both runs), and the take-profit price and amount are
  equal (they come from the fills);
* fill prices are equal level by level (the taker walks the same ladder). Only times differ:
  live is measured on the host clock, replay runs on the recorded one.
"""

from __future__ import annotations

import asyncio
import contextlib
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from sniper.app.clock import Clock
from sniper.app.daemon import Daemon
from sniper.app.journal import Journal
from sniper.app.live import build_live_edges
from sniper.replay.player import Player
from sniper.replay.sample import record_simulator, sim_config
from sniper.sim.server import SimServer

SCENARIO = "new_listing_fast"
ORDER_KINDS = ("buy_sent", "sell_placed")


def steady_scenario(directory: Path) -> str:
    """``new_listing_fast`` with the mid held flat for 1.5 s after the open: every buy then
    meets the same asks however long the live answers take on a loaded machine (replay runs
    with latency 0); the spike after it still fills the take-profit."""
    raw = yaml.safe_load(
        resources.files("sniper.sim")
        .joinpath(f"scenarios/{SCENARIO}.yaml")
        .read_text(encoding="utf-8")
    )
    raw["listings"][0]["price_path"] = [
        {"at_s": 0, "mid": "1"},
        {"at_s": 1.5, "mid": "1"},
        {"at_s": 2.5, "mid": "3"},
        {"at_s": 4.5, "mid": "1.2"},
    ]
    path = directory / "steady.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return str(path)


async def live_run(
    state_dir: Path, scenario: str, time_limit_s: float = 8.0
) -> list[tuple[str, dict[str, Any]]]:
    server = SimServer(scenario, host="127.0.0.1", port=0)
    urls = await server.start()
    events: list[tuple[str, dict[str, Any]]] = []
    closed = asyncio.Event()

    def observe(kind: str, data: dict[str, Any]) -> None:
        events.append((kind, data))
        if kind in ("closed", "fatal"):
            closed.set()

    try:
        config = sim_config(urls.rest, urls.ws, state_dir)
        clock = Clock()
        journal = Journal.in_dir(state_dir)
        daemon = Daemon(
            config,
            build_live_edges(config, server.credentials, clock),
            journal,
            run_id="parity",
            wall_ms=clock.wall_ms,
            mono_ns=clock.mono_ns,
            observer=observe,
        )
        task = asyncio.get_running_loop().create_task(daemon.run())
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(time_limit_s):
                await closed.wait()
        daemon.request_stop()
        assert await task == 0
        journal.close()
    finally:
        await server.stop()
    return events


def order_decisions(events: list[tuple[str, dict[str, Any]]]) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = []
    for kind, d in events:
        if kind == "buy_sent":
            out.append(("buy", str(d["price"]), str(d["amount"])))
        elif kind == "sell_placed":
            out.append(("sell", d["purpose"], str(d["price"]), str(d["amount"])))
    return out


def fills(events: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, str, str]]:
    return [(d["side"], str(d["price"]), str(d["amount"])) for k, d in events if k == "fill"]


def test_replay_decides_what_the_live_run_decided(tmp_path: Path) -> None:
    recording = tmp_path / "listing.rec.gz"
    scenario = steady_scenario(tmp_path)

    async def both() -> list[tuple[str, dict[str, Any]]]:
        live, _ = await asyncio.gather(
            live_run(tmp_path / "live-state", scenario),
            record_simulator(recording, scenario=scenario, duration_s=6.0),
        )
        return live

    live_events = asyncio.run(both())
    config = sim_config(
        "http://127.0.0.1:9/api/v4", "ws://127.0.0.1:9/ws/v4/", tmp_path / "replay-state"
    )
    result = Player(recording, config, latency_us=0).run()
    replay_events = [(kind, data) for _, kind, data in result.events]

    live_orders = order_decisions(live_events)
    assert live_orders, f"the live run placed nothing: {live_events}"
    assert live_orders[0][0] == "buy"
    assert any(o[0] == "sell" for o in live_orders)
    assert order_decisions(replay_events) == live_orders
    assert sorted(fills(replay_events)) == sorted(fills(live_events))
    live_close = [d["reason"] for k, d in live_events if k == "closed"]
    replay_close = [d["reason"] for k, d in replay_events if k == "closed"]
    assert replay_close == live_close
    assert not (tmp_path / "replay-state").exists()
