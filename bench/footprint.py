"""Benchmark 4: footprint -- daemon RSS while armed on several listings, start-up to armed.

The daemon runs as users run it, ``python -m sniper run --config FILE`` in a subprocess
(credentials in ``GATE_API_KEY``/``GATE_API_SECRET``, JSON logs on stderr), against a
simulator child. Timeline per run:

1. ``t_spawn``: just before the subprocess is created (interpreter start and imports count).
2. ``t_ready``: its ``baseline`` log line is read (connections up, logged in, first pair
   snapshot taken): from here on a new pair is a listing.
3. The simulator is told to list ``listings`` new pairs at once (``list PAIR`` on its control
   channel); ``t_armed``: the last of their ``armed`` log lines is read.
4. One second later, ``VmRSS`` and ``VmHWM`` (peak) are read from ``/proc/PID/status``;
   then SIGTERM, and the exit code must be 0.
"""

from __future__ import annotations

import asyncio
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import yaml

from bench.common import BenchResult, LatencyStats, TargetCheck, VariantResult
from bench.daemonrig import POLL_INTERVAL_S, PRESENT_AT_START, listing, scenario_dict, scenario_file
from bench.simproc import REPO_ROOT, ChildProcessSim
from sniper.sim.server import generate_credentials

NAME = "footprint"
TITLE = "Footprint: `sniper run` as a subprocess, armed on several listings"
RSS_MAX_MIB = 60.0  # DESIGN.md section 5
STARTUP_MAX_S = 1.0


@dataclass(frozen=True, slots=True)
class Settings:
    """How one invocation measures."""

    listings: int = 5
    runs: int = 3
    server_cpu: int | None = 1
    settle_s: float = 1.0


@dataclass(frozen=True, slots=True)
class _Run:
    ready_ns: int
    armed_ns: int
    rss_kib: int
    peak_kib: int
    exit_code: int | None


def proc_status_kib(pid: int, field: str) -> int:
    """A ``kB`` field of ``/proc/PID/status`` (``VmRSS``, ``VmHWM``), 0 when unreadable."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return 0
    return 0


def _config(sim: ChildProcessSim, state_dir: Path, positions: int) -> dict[str, Any]:
    return {
        "exchange": {"rest_url": sim.rest_url, "ws_url": sim.ws_url, "order_path": "ws"},
        "state_dir": str(state_dir),
        "listing": {"quote_currencies": ["USDT"], "poll_interval_s": POLL_INTERVAL_S},
        "entry": {"quote_amount": "5", "max_slippage_pct": "10"},
        "risk": {"max_open_positions": positions},
        "log": {"level": "info", "format": "json"},
    }


async def _lines_until(
    stream: asyncio.StreamReader, wanted: str, count: int, timeout_s: float
) -> int:
    """Read JSON log lines until ``count`` with ``event == wanted``; monotonic ns of the last."""
    seen = 0
    async with asyncio.timeout(timeout_s):
        while True:
            line = await stream.readline()
            if not line:
                raise RuntimeError(f"daemon exited before {count} {wanted!r} log lines")
            try:
                event = orjson.loads(line).get("event")
            except orjson.JSONDecodeError:
                continue
            if event == wanted:
                seen += 1
                if seen >= count:
                    return time.monotonic_ns()


async def _one_run(settings: Settings, run_index: int) -> _Run:
    pairs = [f"F{run_index}X{i:02d}_USDT" for i in range(settings.listings)]
    raw = scenario_dict(
        "footprint",
        [listing(p, appear_at_s=3600.0, opens_after_s=600.0) for p in pairs] + [PRESENT_AT_START],
    )
    credentials = generate_credentials()
    with scenario_file(raw) as path, tempfile.TemporaryDirectory() as tmp:
        sim = await ChildProcessSim.start(str(path), credentials, settings.server_cpu, True)
        config_path = Path(tmp) / "config.yaml"
        config_path.write_text(
            yaml.safe_dump(_config(sim, Path(tmp) / "state", settings.listings + 2))
        )
        env = dict(os.environ, GATE_API_KEY=credentials.key, GATE_API_SECRET=credentials.secret)
        proc = None
        try:
            spawn_ns = time.monotonic_ns()
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "sniper",
                "run",
                "--config",
                str(config_path),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                cwd=REPO_ROOT,
                env=env,
                limit=1 << 20,
            )
            assert proc.stderr is not None
            ready_ns = await _lines_until(proc.stderr, "baseline", 1, 20)
            for pair in pairs:
                await sim.list_pair(pair)
            armed_ns = await _lines_until(proc.stderr, "armed", len(pairs), 20)
            drain = asyncio.get_running_loop().create_task(_drain(proc.stderr))
            await asyncio.sleep(settings.settle_s)
            rss = proc_status_kib(proc.pid, "VmRSS")
            peak = proc_status_kib(proc.pid, "VmHWM")
            proc.send_signal(signal.SIGTERM)
            code = await asyncio.wait_for(proc.wait(), 20)
            drain.cancel()
        finally:
            if proc is not None and proc.returncode is None:
                proc.kill()
                await proc.wait()
            await sim.stop()
    return _Run(ready_ns - spawn_ns, armed_ns - spawn_ns, rss, peak, code)


async def _drain(stream: asyncio.StreamReader) -> None:
    while await stream.readline():
        pass


async def run(settings: Settings) -> BenchResult:
    """``settings.runs`` daemon start-ups."""
    runs = [await _one_run(settings, i) for i in range(settings.runs)]
    ready = LatencyStats.from_ns([r.ready_ns for r in runs])
    armed = LatencyStats.from_ns([r.armed_ns for r in runs])
    rss_mib = max(r.rss_kib for r in runs) / 1024
    peak_mib = max(r.peak_kib for r in runs) / 1024
    bad_exits = sum(1 for r in runs if r.exit_code != 0)
    variants = (
        VariantResult(
            "start-up to ready",
            "spawn -> `baseline` logged (connections up, logged in, first snapshot taken)",
            ready,
            bad_exits,
        ),
        VariantResult(
            f"start-up to armed on {settings.listings}",
            f"spawn -> last `armed` logged; {settings.listings} pairs listed the "
            "moment it was ready (includes up to one poll interval)",
            armed,
            bad_exits,
            extra_us={"rss": rss_mib, "peak": peak_mib},
        ),
    )
    armed_s = armed.max_us / 1e6
    targets = (
        TargetCheck(
            f"RSS armed on {settings.listings} listings (worst run)",
            f"<= {RSS_MAX_MIB:.0f} MiB",
            f"{rss_mib:.1f} MiB (peak {peak_mib:.1f})",
            rss_mib <= RSS_MAX_MIB if rss_mib else None,
        ),
        TargetCheck(
            "start-up to armed (worst run)",
            f"<= {STARTUP_MAX_S:.0f} s",
            "n/a" if math.isnan(armed_s) else f"{armed_s:.2f} s",
            None if math.isnan(armed_s) else armed_s <= STARTUP_MAX_S,
        ),
    )
    return BenchResult(
        name=NAME,
        title=TITLE,
        variants=variants,
        ratio_columns=(),
        extra_columns=(("rss", "RSS MiB"), ("peak", "peak RSS MiB")),
        targets=targets,
        setup={
            "runs": settings.runs,
            "listings_armed": settings.listings,
            "settle_s": settings.settle_s,
            "per_run": [
                {
                    "ready_ms": r.ready_ns / 1e6,
                    "armed_ms": r.armed_ns / 1e6,
                    "rss_kib": r.rss_kib,
                    "peak_kib": r.peak_kib,
                    "exit_code": r.exit_code,
                }
                for r in runs
            ],
        },
        notes=(
            f"{settings.runs} run(s). Times in µs from spawn; RSS read from /proc/PID/status "
            f"{settings.settle_s:g} s after the last `armed`. `errors` = runs whose SIGTERM "
            "shutdown did not exit 0.",
        ),
    )


def main_sync(settings: Settings) -> BenchResult:
    """Run on a fresh event loop (uvloop)."""
    import uvloop

    return uvloop.run(run(settings))
