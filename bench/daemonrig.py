"""The whole daemon against a simulator child, for the book-open and detection benchmarks.

The daemon is :class:`sniper.app.daemon.Daemon` with the live edges of
:func:`sniper.app.live.build_live_edges` pointed at the simulator (as ``sniper demo`` does),
on this process's event loop. The simulator runs a scenario built here from a dict (checked
with :func:`sniper.sim.scenarios.scenario_from_dict`, then written as YAML for the child)
with many listings, so one run gives many samples.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bench.simproc import ChildProcessSim
from sniper.app.clock import Clock
from sniper.app.daemon import Daemon
from sniper.app.journal import Journal
from sniper.app.live import build_live_edges
from sniper.app.run import journal_run_id
from sniper.config import Config, parse_config
from sniper.core.signing import Credentials
from sniper.sim.scenarios import scenario_from_dict

POLL_INTERVAL_S = 0.2
"""The daemon's ``listing.poll_interval_s`` in these benchmarks (the shipped default)."""


def listing(
    pair: str,
    *,
    appear_at_s: float,
    opens_after_s: float,
    mm_delay_s: float = 0.0,
    open_price: str = "1",
) -> dict[str, Any]:
    """One scripted listing: a market maker ladder ``mm_delay_s`` after the open, no crowd."""
    return {
        "pair": pair,
        "appear_at_s": appear_at_s,
        "opens_after_s": opens_after_s,
        "initial_status": "sellable",
        "amount_precision": 2,
        "precision": 4,
        "min_base_amount": "1",
        "min_quote_amount": "1",
        "open_price": open_price,
        "ladder": {"levels": 5, "spread_pct": "1", "step_pct": "1", "amount": "1000"},
        "mm_delay_s": mm_delay_s,
        "requote_every_s": 600,  # one ladder, then quiet: no frames but the one measured
    }


PRESENT_AT_START = listing("OLD_USDC", appear_at_s=0.0, opens_after_s=3600.0)
"""A pair listed from the start: the daemon's first snapshot must not be empty (the tracker
takes the first non-empty one as its baseline, like a real exchange's thousands of pairs)."""


def scenario_dict(name: str, listings: list[dict[str, Any]]) -> dict[str, Any]:
    """A scenario with only these listings and plenty of USDT and USDC."""
    return {
        "name": name,
        "seed": 11,
        "balances": {"USDT": "1000000", "USDC": "1000000"},
        "established": [],
        "listings": listings,
    }


@contextlib.contextmanager
def scenario_file(raw: dict[str, Any]) -> Iterator[Path]:
    """``raw`` validated as a scenario and written to a temporary YAML file for the child."""
    scenario_from_dict(raw)  # fail here, with the key's path, not in the child
    with tempfile.TemporaryDirectory(prefix="sniper-bench-") as tmp:
        path = Path(tmp) / f"{raw['name']}.yaml"
        path.write_text(yaml.safe_dump(raw, sort_keys=False))
        yield path


def daemon_config(rest_url: str, ws_url: str, state_dir: Path, *, positions: int) -> Config:
    """The daemon's config: orders over the WS trading API, small IOC buys, quiet logging."""
    return parse_config(
        {
            "exchange": {"rest_url": rest_url, "ws_url": ws_url, "order_path": "ws"},
            "state_dir": str(state_dir),
            "listing": {"quote_currencies": ["USDT"], "poll_interval_s": POLL_INTERVAL_S},
            "entry": {"quote_amount": "5", "max_slippage_pct": "10", "deadline_s": 30},
            "exit": {"take_profit_pct": "50", "stop_loss_pct": "50", "max_hold_s": 3600},
            "risk": {"max_open_positions": min(100, positions)},
            "log": {"level": "warning"},
        }
    )


@dataclass
class RunningDaemon:
    """A daemon serving on this loop; :meth:`stop` shuts it down and closes its journal."""

    daemon: Daemon
    task: asyncio.Task[int]
    journal: Journal
    events: list[tuple[str, dict[str, Any]]]

    async def stop(self) -> int:
        """Request a stop, wait for the clean shutdown, close the journal; the exit code."""
        self.daemon.request_stop()
        try:
            return await asyncio.wait_for(self.task, 30)
        finally:
            self.journal.close()


async def start_daemon(
    sim: ChildProcessSim, credentials: Credentials, state_dir: Path, *, positions: int
) -> RunningDaemon:
    """Assemble and start the daemon against ``sim``; returns once it took its baseline."""
    config = daemon_config(sim.rest_url, sim.ws_url, state_dir, positions=positions)
    clock = Clock()
    edges = build_live_edges(config, credentials, clock)
    journal = Journal.in_dir(config.state_dir)
    events: list[tuple[str, dict[str, Any]]] = []
    daemon = Daemon(
        config,
        edges,
        journal,
        run_id=journal_run_id(journal),
        wall_ms=clock.wall_ms,
        mono_ns=clock.mono_ns,
        observer=lambda kind, data: events.append((kind, data)),
    )
    task = asyncio.get_running_loop().create_task(daemon.run())
    ready = asyncio.get_running_loop().create_task(daemon.wait_ready())
    done, _ = await asyncio.wait({task, ready}, timeout=30, return_when=asyncio.FIRST_COMPLETED)
    if ready not in done:
        ready.cancel()
        if task.done():
            journal.close()
            raise RuntimeError(f"daemon ended before it was ready: {task.result()}")
        raise RuntimeError("daemon not ready after 30 s")
    return RunningDaemon(daemon, task, journal, events)
