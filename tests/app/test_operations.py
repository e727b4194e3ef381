"""Health, metrics and notifications wired around a daemon."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx

from sniper.app.clock import Clock
from sniper.app.journal import Journal
from sniper.app.operations import Operations, chain
from sniper.config import parse_config
from sniper.ops.notify import Notifier


class FakeDaemon:
    def __init__(self) -> None:
        self.stats = SimpleNamespace(last_poll_ms=0)
        self.sessions: dict[str, Any] = {}
        self.ready = asyncio.Event()

    async def wait_ready(self) -> None:
        await self.ready.wait()


async def test_healthz_follows_market_data_and_metrics_show_latency(tmp_path: Path) -> None:
    config = parse_config({"state_dir": str(tmp_path), "health": {"port": 0}})
    clock = Clock()
    ops = Operations(config, clock, notifier=Notifier([]))
    daemon = FakeDaemon()
    journal = Journal.in_dir(tmp_path)
    await ops.start(daemon, journal)  # type: ignore[arg-type]
    try:
        assert ops.health is not None
        url = ops.health.url
        assert url is not None
        async with httpx.AsyncClient() as client:
            stale = await client.get(f"{url}/healthz")
            assert stale.status_code == 503
            assert "no successful poll" in stale.text
            daemon.stats.last_poll_ms = clock.wall_ms()
            fresh = await client.get(f"{url}/healthz")
            assert fresh.status_code == 200, fresh.text
            ops.observe(
                "buy_sent",
                {
                    "pair": "X_USDT",
                    "filled": True,
                    "latency": {
                        "recv_ns": 1_000,
                        "decision_ns": 21_000,
                        "written_ns": 41_000,
                        "result_ns": 141_000,
                    },
                },
            )
            ops.observe("closed", {"pair": "X_USDT", "pnl_quote": Decimal("1.5")})
            metrics = (await client.get(f"{url}/metrics")).text
        assert "frame_to_decision" in metrics
        assert 'outcome="filled"' in metrics
        assert "1.5" in metrics
    finally:
        await ops.stop()
        journal.close()


def test_chain_isolates_failing_observers() -> None:
    seen: list[str] = []

    def broken(kind: str, data: dict[str, Any]) -> None:
        raise RuntimeError("boom")

    chain(broken, lambda k, d: seen.append(k))("listing", {})
    assert seen == ["listing"]
