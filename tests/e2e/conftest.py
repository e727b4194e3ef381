"""End-to-end harness: the real daemon (``python -m sniper run``) against the in-process simulator.

The simulator runs in the test's event loop on 127.0.0.1 (ephemeral port) with a *held* clock:
exchange time stands still until the daemon has taken its baseline (its first
``/spot/currency_pairs`` answer), then follows real time. A listing scripted ``appear_at_s``
after the start therefore always appears *after* the baseline however long the daemon took to
start on a loaded machine, and the rest of the script keeps its real-time pace. The daemon
measured its clock offset while the clock was held, so it runs a little ahead of the exchange
(by its own start-up time between ``/spot/time`` and the baseline): like a real host with a
small skew, harmless for signatures and ``x-gate-exptime``.

Tests wait on events (the simulator's :class:`~sniper.sim.eventlog.EventLog`, or the daemon's
journal polled every 20 ms with a deadline), never on fixed sleeps. A daemon that exits early
fails the wait at once, with its log.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from sniper.sim.eventlog import LoggedEvent
from sniper.sim.scenarios import Scenario, scenario_from_dict
from sniper.sim.server import SimServer

REPO = Path(__file__).resolve().parents[2]
PAIRS_PATH = "/api/v4/spot/currency_pairs"
POLL_S = 0.02
"""How often the journal is polled while waiting."""
START_TIMEOUT_S = 30.0
"""Daemon start-up to baseline, generous for a loaded 2-core machine."""


def builtin_scenario(name: str) -> dict[str, Any]:
    """A bundled scenario as a plain dict, to be edited and passed to ``scenario_from_dict``."""
    text = resources.files("sniper.sim").joinpath("scenarios", f"{name}.yaml").read_text("utf-8")
    data = yaml.safe_load(text)
    assert isinstance(data, dict)
    return data


# -- the daemon's journal, read from outside ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class JournalRow:
    """One journal event as the daemon wrote it."""

    seq: int
    ts_ms: int
    kind: str
    pair: str
    data: dict[str, Any]


class JournalView:
    """Reads the daemon's SQLite journal (WAL: committed rows are visible at once)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = None

    def rows(
        self, kind: str | None = None, pair: str | None = None, *, after_seq: int = 0
    ) -> list[JournalRow]:
        """Events in journal order, filtered by kind / pair / sequence."""
        if self._db is None:
            if not self.path.exists():
                return []
            self._db = sqlite3.connect(self.path, timeout=5.0)
        found = self._db.execute(
            "SELECT seq, ts_ms, kind, pair, data FROM events WHERE seq > ? ORDER BY seq",
            (after_seq,),
        ).fetchall()
        return [
            JournalRow(seq, ts, k, p, orjson.loads(blob))
            for seq, ts, k, p, blob in found
            if (kind is None or k == kind) and (pair is None or p == pair)
        ]

    def last_seq(self) -> int:
        rows = self.rows()
        return rows[-1].seq if rows else 0

    def kinds(self, pair: str | None = None) -> list[str]:
        return [r.kind for r in self.rows(pair=pair)]

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


# -- the daemon process ------------------------------------------------------------------------


class DaemonProcess:
    """``python -m sniper run --config FILE`` as a child process, output in a log file."""

    def __init__(self, proc: asyncio.subprocess.Process, log_path: Path) -> None:
        self.proc = proc
        self.log_path = log_path

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def running(self) -> bool:
        return self.proc.returncode is None

    def log_text(self) -> str:
        return self.log_path.read_text("utf-8", errors="replace") if self.log_path.exists() else ""

    def describe(self, last_lines: int = 40) -> str:
        tail = "\n".join(self.log_text().splitlines()[-last_lines:])
        return f"daemon pid {self.pid} rc={self.proc.returncode}; log tail:\n{tail}"

    async def wait_exit(self, timeout_s: float) -> int:
        """The exit code (negative: killed by that signal); fails after ``timeout_s``."""
        try:
            async with asyncio.timeout(timeout_s):
                return await self.proc.wait()
        except TimeoutError:
            pytest.fail(f"daemon still running after {timeout_s} s\n{self.describe()}")

    def send_signal(self, sig: int) -> None:
        if self.running:
            self.proc.send_signal(sig)

    async def kill(self) -> None:
        """SIGKILL this child (only this pid) and reap it."""
        if self.running:
            self.proc.kill()
        await self.proc.wait()


# -- the whole setup ---------------------------------------------------------------------------


class E2E:
    """One test's world: a simulator, a state dir, a config, the daemon process(es)."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.state_dir = tmp / "state"
        self.sim: SimServer | None = None
        self.daemons: list[DaemonProcess] = []
        self.journal = JournalView(self.state_dir / "journal.sqlite3")
        self._driver: asyncio.Task[None] | None = None
        self._released = asyncio.Event()
        self.released_at_ms: int | None = None

    # -- simulator --------------------------------------------------------------------------

    async def start_sim(self, scenario: Scenario | str | dict[str, Any]) -> SimServer:
        """Start the simulator with its clock held (see module docstring)."""
        source = scenario_from_dict(scenario) if isinstance(scenario, dict) else scenario
        sim = SimServer(source, host="127.0.0.1", port=0, manual_clock=True)
        await sim.start()
        self.sim = sim
        self._driver = asyncio.get_running_loop().create_task(self._drive(sim), name="sim-clock")
        return sim

    def release_clock(self) -> None:
        """Let exchange time follow real time from now on."""
        self._released.set()

    async def _drive(self, sim: SimServer) -> None:
        # What SimServer's own tick loop does, but only once released; the clock advances by
        # the real time elapsed since the release.
        await self._released.wait()
        base_ms = sim.clock.now_ms()
        self.released_at_ms = base_ms
        t0_ns = time.monotonic_ns()
        while True:
            target_ms = base_ms + (time.monotonic_ns() - t0_ns) // 1_000_000
            try:
                await sim.advance(max(0, target_ms - sim.clock.now_ms()))
            except Exception as exc:  # noqa: BLE001 - one bad step must not stop the exchange
                sim.events.record("error", "tick", detail=repr(exc))
            due_ms = sim.engine.next_event_ms()
            wait_s = 0.01
            if due_ms is not None:
                wait_s = min(wait_s, max(0.001, (due_ms - sim.clock.now_ms()) / 1000))
            await asyncio.sleep(wait_s)

    # -- config and daemon ------------------------------------------------------------------

    def write_config(
        self,
        *,
        entry: dict[str, Any] | None = None,
        exit_: dict[str, Any] | None = None,
        listing: dict[str, Any] | None = None,
    ) -> Path:
        """A daemon config pointing at the simulator, state under this test's tmp dir."""
        assert self.sim is not None
        assert self.sim.urls is not None
        config = {
            "exchange": {"rest_url": self.sim.urls.rest, "ws_url": self.sim.urls.ws,
                         "order_path": "ws"},
            "state_dir": str(self.state_dir),
            "listing": {"quote_currencies": ["USDT"], "poll_interval_s": 0.1, **(listing or {})},
            "entry": {"quote_amount": "50", "max_slippage_pct": "10", "deadline_s": 5,
                      **(entry or {})},
            "exit": {"take_profit_pct": "30", "stop_loss_pct": "20", "max_hold_s": 120,
                     **(exit_ or {})},
            "risk": {"max_open_positions": 2},
            "log": {"level": "info", "format": "json"},
        }
        path = self.tmp / "config.yaml"
        path.write_text(yaml.safe_dump(config), encoding="utf-8")
        return path

    async def start_daemon(
        self, config: Path, *, crash_after: str | None = None, release: bool = True
    ) -> DaemonProcess:
        """Spawn the daemon; return once it has taken its baseline (then release the clock)."""
        sim = self.sim
        assert sim is not None
        env = dict(os.environ)
        env.pop("SNIPER_CRASH_AFTER", None)
        env.update(GATE_API_KEY=sim.credentials.key, GATE_API_SECRET=sim.credentials.secret,
                   PYTHONUNBUFFERED="1")
        if crash_after is not None:
            env["SNIPER_CRASH_AFTER"] = crash_after
        baseline = asyncio.ensure_future(
            sim.events.wait_for(lambda e: e.kind == "http_out" and e.name == PAIRS_PATH,
                                timeout_s=START_TIMEOUT_S)
        )
        log_path = self.tmp / f"daemon-{len(self.daemons)}.log"
        with log_path.open("wb") as log:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "sniper", "run", "--config", str(config),
                stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=asyncio.subprocess.STDOUT,
                env=env, cwd=REPO,
            )
        daemon = DaemonProcess(proc, log_path)
        self.daemons.append(daemon)
        exited = asyncio.ensure_future(proc.wait())
        await asyncio.wait({baseline, exited}, return_when=asyncio.FIRST_COMPLETED)
        if not baseline.done():
            baseline.cancel()
            pytest.fail(f"daemon exited before its baseline\n{daemon.describe()}")
        exited.cancel()
        baseline.result()
        if release:
            self.release_clock()
        return daemon

    # -- waiting ----------------------------------------------------------------------------

    async def wait_journal(
        self,
        kind: str,
        pair: str | None = None,
        *,
        after_seq: int = 0,
        where: Callable[[JournalRow], bool] | None = None,
        timeout_s: float = 15.0,
        daemon: DaemonProcess | None = None,
    ) -> JournalRow:
        """The first journal row of ``kind`` (and ``pair``, ``where``) after ``after_seq``."""
        deadline = time.monotonic() + timeout_s
        while True:
            for row in self.journal.rows(kind, pair, after_seq=after_seq):
                if where is None or where(row):
                    return row
            if daemon is not None and not daemon.running:
                # one last look: the row may have been committed right before the exit
                for row in self.journal.rows(kind, pair, after_seq=after_seq):
                    if where is None or where(row):
                        return row
                pytest.fail(f"daemon exited while waiting for {kind!r}\n{daemon.describe()}")
            if time.monotonic() > deadline:
                pytest.fail(
                    f"no journal {kind!r} for {pair} within {timeout_s} s; journal: "
                    f"{self.journal.kinds()}\n" + (daemon.describe() if daemon else "")
                )
            await asyncio.sleep(POLL_S)

    async def wait_sim(
        self, predicate: Callable[[LoggedEvent], bool], timeout_s: float = 10.0
    ) -> LoggedEvent:
        """The next simulator event-log record matching ``predicate``."""
        assert self.sim is not None
        return await self.sim.events.wait_for(predicate, timeout_s=timeout_s)

    async def close(self) -> None:
        for daemon in self.daemons:
            await daemon.kill()
        if self._driver is not None:
            self._driver.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._driver
        self.journal.close()
        if self.sim is not None:
            await self.sim.stop()


@pytest.fixture
async def e2e(tmp_path: Path) -> AsyncIterator[E2E]:
    """A fresh end-to-end world; daemon logs are printed on failure (captured otherwise)."""
    world = E2E(tmp_path)
    try:
        yield world
    finally:
        for daemon in world.daemons:
            print(daemon.describe(last_lines=60))
        await world.close()


# -- assertions on the exchange ----------------------------------------------------------------


def our_orders(sim: SimServer, pair: str | None = None) -> list[Any]:
    """Every order of the daemon's account (open and finished), oldest first."""
    open_ = sim.engine.list_orders(sim.uid, pair, "open")
    finished = sim.engine.list_orders(sim.uid, pair, "finished")
    return sorted([*open_, *finished], key=lambda o: (o.create_time_ms, int(o.id)))


def our_trades(sim: SimServer, pair: str | None = None) -> list[Any]:
    """Every fill of the daemon's account, oldest first."""
    return list(reversed(sim.engine.my_trades(sim.uid, pair, limit=10_000)))


def balance(sim: SimServer, currency: str) -> Decimal:
    """Available + locked of ``currency`` on the daemon's account."""
    available, locked = sim.engine.balances(sim.uid).get(currency, (Decimal(0), Decimal(0)))
    return available + locked
