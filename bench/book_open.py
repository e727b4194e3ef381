"""Benchmark 2: book open -> order at the exchange, through the whole daemon.

``t0`` = the simulator's ``ws_out`` record of the first book frame of a newly opened pair
(the market maker's first ladder: the first frame with asks) on the subscriber's
connection; ``t1`` = the simulator's ``order_in`` record of the first buy for that pair.
Both are the simulator's own ``CLOCK_MONOTONIC`` readings, so client-side clocks play no part.

Two subscribers race on one simulator, on different pairs that open in alternation:

* ``daemon``: :class:`sniper.app.daemon.Daemon` with live edges (its own book-stream
  connection, ``BookFeed``/``BookSync``, the entry machine, ``GateWsTrader``), in this
  process. Its pairs (``Dnnn_USDT``) appear after its start-up, are discovered by polling
  and armed; it fires on the first ask.
* ``raw_baseline``: :mod:`bench.rawclient` in a child process: websockets ``recv``, one
  ``orjson.loads``, and a pre-built masked order frame written with ``transport.write``. Its
  pairs (``Bnnn_USDC``) exist from the start, so the daemon never buys them.

Per second of the script, ``per_second`` listings open at once and their market maker posts
``1/per_second`` s apart, daemon and baseline alternating (the first one swaps every
second), so every book opening meets an idle client.
"""

from __future__ import annotations

import asyncio
import math
import secrets
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from bench.common import BenchResult, LatencyStats, TargetCheck, VariantResult, ratio
from bench.daemonrig import listing, scenario_dict, scenario_file, start_daemon
from bench.simproc import REPO_ROOT, ChildProcessSim
from sniper.sim.server import generate_credentials

NAME = "book_open"
TITLE = "Book open -> order at the exchange, through the whole daemon (t0, t1: simulator log)"
FIRST_GROUP_S = 3.0
"""Script time of the first group's appearance: after the daemon's start-up and baseline."""
OPENS_AFTER_S = 1.0
BOOK_CHANNELS = ("spot.order_book_update", "spot.book_ticker")
SPLIT = {
    "split_recv": "frame sent -> daemon's recv returned",
    "split_decide": "recv -> decision (BookFeed, BookSync, routing, entry)",
    "split_write": "decision -> order written (GateWsTrader.fire_nowait)",
    "split_wire": "written -> simulator has the order",
}
"""The daemon's latency split into consecutive parts (its own stamps between the
simulator's t0 and t1)."""

# DESIGN.md section 5
BASELINE_RATIO_MAX = 1.3
TAIL_RATIO_MAX = 3.0


@dataclass(frozen=True, slots=True)
class Settings:
    """How one invocation measures."""

    listings: int = 40
    """Book openings per side per run."""
    per_second: int = 4
    runs: int = 1
    client_cpu: int | None = 0
    server_cpu: int | None = 1
    uvloop: bool = True
    hot_server: bool = True


@dataclass(frozen=True, slots=True)
class _Plan:
    daemon_pairs: tuple[str, ...]
    baseline_pairs: tuple[str, ...]
    scenario: dict[str, Any]
    duration_s: float


def plan(settings: Settings, tag: str) -> _Plan:
    """The scenario: ``listings`` pairs per side, ``per_second`` openings per script second."""
    total = 2 * settings.listings
    step = 1.0 / settings.per_second
    daemon_pairs: list[str] = []
    baseline_pairs: list[str] = []
    items: list[dict[str, Any]] = []
    for slot in range(total):
        group, position = divmod(slot, settings.per_second)
        ours = (position + group) % 2 == 0  # alternate, and swap who goes first each second
        mm_delay_s = 0.05 + position * step
        appear_s = FIRST_GROUP_S + group
        if ours and len(daemon_pairs) < settings.listings:
            pair = f"D{tag}{len(daemon_pairs):03d}_USDT"
            daemon_pairs.append(pair)
            items.append(
                listing(
                    pair, appear_at_s=appear_s, opens_after_s=OPENS_AFTER_S, mm_delay_s=mm_delay_s
                )
            )
        else:
            pair = f"B{tag}{len(baseline_pairs):03d}_USDC"
            baseline_pairs.append(pair)
            # present from the start (so in the daemon's baseline), opening in the same second
            items.append(
                listing(
                    pair,
                    appear_at_s=0.0,
                    opens_after_s=appear_s + OPENS_AFTER_S,
                    mm_delay_s=mm_delay_s,
                )
            )
    groups = math.ceil(total / settings.per_second)
    duration_s = FIRST_GROUP_S + groups + OPENS_AFTER_S + 2.0
    return _Plan(
        tuple(daemon_pairs), tuple(baseline_pairs), scenario_dict("book_open", items), duration_s
    )


async def _start_baseline(
    sim: ChildProcessSim, credentials: Any, orders: dict[str, str], settings: Settings
) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.rawclient",
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=REPO_ROOT,
    )
    assert proc.stdin is not None
    assert proc.stdout is not None
    proc.stdin.write(
        orjson.dumps(
            {
                "ws_url": sim.ws_url,
                "key": credentials.key,
                "secret": credentials.secret,
                "orders": orders,
                "price": "0.5",
                "amount": "10",  # 5 USDC, under the ask: no fill
                "cpu": settings.client_cpu,
                "uvloop": settings.uvloop,
            }
        )
        + b"\n"
    )
    await proc.stdin.drain()
    line = await asyncio.wait_for(proc.stdout.readline(), 30)
    if b"ready" not in line:
        await proc.wait()
        raise RuntimeError(f"baseline client failed to start (exit {proc.returncode})")
    return proc


def first_book_frames(rows: list[tuple[Any, ...]]) -> dict[str, int]:
    """Per pair, ``t_ns`` of the first book frame sent after the subscription's full push."""
    first: dict[str, int] = {}
    for t_ns, kind, name, _conn, detail, _text in rows:
        if kind != "ws_out" or name not in BOOK_CHANNELS or not detail or ":full:" in detail:
            continue
        pair = detail.split(":", 1)[0]
        if pair not in first or t_ns < first[pair]:
            first[pair] = t_ns
    return first


def first_orders(rows: list[tuple[Any, ...]], pair_of_text: dict[str, str]) -> dict[str, int]:
    """Per pair, ``t_ns`` of the first order the simulator received for it."""
    first: dict[str, int] = {}
    for t_ns, kind, _name, _conn, _detail, text in rows:
        pair = pair_of_text.get(text) if kind == "order_in" and text else None
        if pair is not None and (pair not in first or t_ns < first[pair]):
            first[pair] = t_ns
    return first


async def _one_run(settings: Settings, run_index: int) -> dict[str, list[int]]:
    tag = f"{run_index}{secrets.token_hex(1)}".upper()
    the_plan = plan(settings, tag[:2])
    credentials = generate_credentials()
    baseline_texts = {p: f"t-bl{tag}{i}" for i, p in enumerate(the_plan.baseline_pairs)}
    with scenario_file(the_plan.scenario) as path, tempfile.TemporaryDirectory() as state:
        sim = await ChildProcessSim.start(
            str(path),
            credentials,
            settings.server_cpu,
            settings.uvloop,
            spin=settings.hot_server,
        )
        baseline = None
        running = None
        try:
            baseline = await _start_baseline(sim, credentials, baseline_texts, settings)
            running = await start_daemon(
                sim, credentials, Path(state), positions=settings.listings + 2
            )
            await asyncio.sleep(max(0.0, the_plan.duration_s - _elapsed_s(sim)))
            rows = await sim.events(("ws_out", "order_in"))
        finally:
            if running is not None:
                await running.stop()
            if baseline is not None and baseline.stdin is not None:
                baseline.stdin.close()
                await asyncio.wait_for(baseline.wait(), 10)
            await sim.stop()
    pair_of_text = {text: pair for pair, text in baseline_texts.items()}
    assert running is not None
    for pair, session in running.daemon.sessions.items():
        pair_of_text.update(dict.fromkeys(session.buy_texts, pair))
    frames = first_book_frames(rows)
    orders = first_orders(rows, pair_of_text)
    out: dict[str, list[int]] = {
        "daemon": [],
        "raw_baseline": [],
        "missed_daemon": [],
        "missed_baseline": [],
    }
    out.update({part: [] for part in SPLIT})
    for pair, session in running.daemon.sessions.items():
        t0, t1 = frames.get(pair), orders.get(pair)
        stamps = session.latencies[0] if session.latencies else {}
        points = [
            t0,
            stamps.get("recv_ns"),
            stamps.get("decision_ns"),
            stamps.get("written_ns"),
            t1,
        ]
        known = [int(p) for p in points if p]
        if len(known) == len(points):
            for part, start, end in zip(SPLIT, known, known[1:], strict=False):
                out[part].append(end - start)
    for side, pairs in (
        ("daemon", the_plan.daemon_pairs),
        ("raw_baseline", the_plan.baseline_pairs),
    ):
        for pair in pairs:
            t0, t1 = frames.get(pair), orders.get(pair)
            if t0 is None or t1 is None:
                out["missed_daemon" if side == "daemon" else "missed_baseline"].append(1)
                continue
            out[side].append(t1 - t0)
    return out


def _elapsed_s(sim: ChildProcessSim) -> float:
    return (time.monotonic_ns() - sim.clock_t0_ns) / 1e9 if sim.clock_t0_ns else 0.0


async def run(settings: Settings) -> BenchResult:
    """``settings.runs`` runs (fresh simulator, daemon and baseline each), samples pooled."""
    pooled: dict[str, list[int]] = {"daemon": [], "raw_baseline": []}
    split: dict[str, list[int]] = {part: [] for part in SPLIT}
    missed = {"daemon": 0, "raw_baseline": 0}
    per_run: list[dict[str, float]] = []
    for run_index in range(settings.runs):
        got = await _one_run(settings, run_index)
        for side in pooled:
            pooled[side] += got[side]
        for part in SPLIT:
            split[part] += got[part]
        missed["daemon"] += len(got["missed_daemon"])
        missed["raw_baseline"] += len(got["missed_baseline"])
        per_run.append({s: LatencyStats.from_ns(got[s]).p50_us for s in pooled})
    stats = {side: LatencyStats.from_ns(samples) for side, samples in pooled.items()}
    base = stats["raw_baseline"].p50_us
    ours = stats["daemon"]
    descriptions = {
        "daemon": "ours: the whole daemon (poll -> arm -> BookFeed -> entry -> "
        "GateWsTrader.fire_nowait), live edges, in the benchmark process",
        "raw_baseline": "baseline: websockets recv + orjson.loads + pre-built masked order "
        "frame, transport.write (bench/rawclient.py, own process)",
    }
    variants = tuple(
        VariantResult(
            name=side,
            description=descriptions[side],
            stats=stats[side],
            errors=missed[side],
            ratios={
                "vs_baseline": ratio(stats[side].p50_us, base),
                "p99_vs_p50": ratio(stats[side].p99_us, stats[side].p50_us),
            },
        )
        for side in ("raw_baseline", "daemon")
    )
    variants += tuple(
        VariantResult(
            name=f"daemon: {SPLIT[part]}",
            description=f"part of `daemon`: {SPLIT[part]}",
            stats=LatencyStats.from_ns(split[part]),
        )
        for part in SPLIT
    )
    r50 = ratio(ours.p50_us, base)
    r99 = ratio(ours.p99_us, ours.p50_us)
    targets = (
        TargetCheck(
            "daemon p50 vs raw baseline p50",
            f"<= {BASELINE_RATIO_MAX}x",
            _fmt(r50),
            None if math.isnan(r50) else r50 <= BASELINE_RATIO_MAX,
        ),
        TargetCheck(
            "daemon p99 vs its own p50",
            f"<= {TAIL_RATIO_MAX}x",
            _fmt(r99),
            None if math.isnan(r99) else r99 <= TAIL_RATIO_MAX,
        ),
    )
    setup = {
        "runs": settings.runs,
        "book_openings_per_side_per_run": settings.listings,
        "openings_per_second": settings.per_second,
        "simulator": f"child process pinned to CPU {settings.server_cpu}, loop "
        f"{'spinning' if settings.hot_server else 'idle between events'}",
        "client": f"daemon and baseline both pinned to CPU {settings.client_cpu}",
        "event_loop": "uvloop" if settings.uvloop else "asyncio",
        "p50_us_per_run": per_run,
    }
    notes = (
        "t0: the simulator's ws_out record of the pair's first book frame with asks (logged "
        "right after the frame was written to the socket); t1: its order_in record of the "
        "first buy for that pair. `errors` = openings without an order.",
        f"{settings.runs} run(s) x {settings.listings} openings per side; the raw baseline "
        "waits idle in epoll between openings; the daemon runs with its default busy window "
        "(entry.busy_window_s = 1: its loop spins from buy_start - 1 s until it has bought).",
    )
    return BenchResult(
        name=NAME,
        title=TITLE,
        variants=variants,
        ratio_columns=(("vs_baseline", "p50 / baseline p50"), ("p99_vs_p50", "own p99 / p50")),
        targets=targets,
        setup=setup,
        notes=notes,
    )


def _fmt(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.2f}x"


def main_sync(settings: Settings) -> BenchResult:
    """Run on a fresh event loop (uvloop when ``settings.uvloop``)."""
    if settings.uvloop:
        import uvloop

        return uvloop.run(run(settings))
    return asyncio.run(run(settings))
