"""``sniper run --dry-run``: live data from the simulator, paper fills, and never an order.

Checked against the simulator's event log: no order arrives (``order_in``), no private REST
endpoint is called, no WS login or private channel, no trading-API request, and no credentials
are even loaded.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import pytest

import sniper.app.run
import sniper.config
from sniper.app.clock import Clock
from sniper.app.daemon import Daemon
from sniper.app.journal import Journal
from sniper.app.run import build_edges
from sniper.replay.paper import PaperExchange
from sniper.replay.sample import sim_config
from sniper.sim.server import SimServer

PUBLIC_PATHS = ("/spot/time", "/spot/currency_pairs", "/spot/order_book", "/spot/tickers")
PRIVATE_WS = {"spot.login", "spot.orders", "spot.usertrades", "spot.balances",
              "spot.order_place", "spot.order_cancel", "spot.order_status"}


async def test_dry_run_trades_on_paper_and_never_orders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_credentials(**_: Any) -> None:
        raise AssertionError("dry-run must not load credentials")

    monkeypatch.setattr(sniper.config, "load_credentials", no_credentials)
    monkeypatch.setattr(sniper.app.run, "load_credentials", no_credentials)
    monkeypatch.setenv("GATE_API_KEY", "must-not-be-used")
    server = SimServer("new_listing_fast", host="127.0.0.1", port=0)
    urls = await server.start()
    events: list[tuple[str, dict[str, Any]]] = []
    closed = asyncio.Event()

    def observe(kind: str, data: dict[str, Any]) -> None:
        events.append((kind, data))
        if kind in ("closed", "fatal"):
            closed.set()

    try:
        config = sim_config(urls.rest, urls.ws, tmp_path / "state")
        clock = Clock()
        edges = build_edges(config, dry_run=True, clock=clock)  # the `run --dry-run` path
        assert isinstance(edges.entry, PaperExchange)
        assert edges.execution is edges.entry
        journal = Journal.in_dir(config.state_dir)
        daemon = Daemon(config, edges, journal, run_id="dry", wall_ms=clock.wall_ms,
                        mono_ns=clock.mono_ns, observer=observe)
        task = asyncio.get_running_loop().create_task(daemon.run())
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(8):
                await closed.wait()
        daemon.request_stop()
        assert await task == 0
        journal.close()
    finally:
        await server.stop()

    kinds = [k for k, _ in events]
    assert "buy_sent" in kinds, events
    buy_fills = [d for k, d in events if k == "fill" and d["side"] == "buy"]
    assert buy_fills, "paper filled the buy against the live book"
    assert buy_fills[0]["fee_currency"] == "NEWCOIN"
    log = server.events
    assert log.find("order_in") == []
    paths = {e.name for e in log.find("http_in")}
    assert paths, "the dry-run did use the REST API"
    assert all(p.endswith(PUBLIC_PATHS) for p in paths), paths
    ws_channels = {e.name for e in log.find("ws_in")}
    assert not ws_channels & PRIVATE_WS, ws_channels
