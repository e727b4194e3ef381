"""Benchmark 5: replay throughput -- recorded frames per second through the full pipeline.

A recording is made first with the same code as ``sniper record``
(:func:`sniper.replay.sample.record_simulator`: the bundled simulator on loopback for
``record_s`` seconds) of a busy scenario built here (``listings`` pairs opening at once, their
market maker re-quoting every 20 ms and a crowd trading every 10 ms), then replayed ``runs``
times by
:class:`sniper.replay.player.Player` (the real daemon on a virtual-time loop, paper
execution). Two figures per run: whole-file frames/s (``frames / wall time``, start-up of
the daemon included) and the steady per-frame rate implied by the player's own median
per-frame cost (``1e9 / median frame_cost_ns``). If the replay package is not there (it is
being written in parallel), the entry reports "not available" instead of failing the suite.
"""

from __future__ import annotations

import asyncio
import importlib
import math
import statistics
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import BenchResult, LatencyStats, TargetCheck, VariantResult
from bench.daemonrig import PRESENT_AT_START, listing, scenario_dict, scenario_file

NAME = "replay_throughput"
TITLE = "Replay: recorded frames per second through the full pipeline (virtual time)"
TARGET_FRAMES_PER_S = 100_000.0  # DESIGN.md section 5


@dataclass(frozen=True, slots=True)
class Settings:
    """How one invocation measures."""

    record_s: float = 10.0
    runs: int = 3
    listings: int = 4


def busy_scenario(listings: int) -> dict[str, Any]:
    """Pairs that appear at 0.5 s, open a second later and then move every few ms."""
    items = []
    for index in range(listings):
        item = listing(f"R{index:02d}_USDT", appear_at_s=0.5, opens_after_s=1.0)
        item.update(
            requote_every_s=0.02,
            price_path=[{"at_s": 0, "mid": "1"}, {"at_s": 30, "mid": "2"}],
            flow={"every_s": 0.01, "quote_min": "5", "quote_max": "50"},
        )
        items.append(item)
    return scenario_dict("replay_busy", [*items, PRESENT_AT_START])


def _load() -> tuple[Any, Any] | None:
    try:
        player = importlib.import_module("sniper.replay.player")
        sample = importlib.import_module("sniper.replay.sample")
    except ImportError:
        return None
    if not hasattr(player, "Player") or not hasattr(sample, "record_simulator"):
        return None
    return player, sample


def not_available(reason: str) -> BenchResult:
    """The stub entry: what is missing, no figures."""
    print(f"{NAME}: not available ({reason})")
    return BenchResult(
        name=NAME,
        title=TITLE + " -- not available",
        variants=(),
        ratio_columns=(),
        targets=(
            TargetCheck("replay frames/s", f">= {TARGET_FRAMES_PER_S:,.0f}", "not available", None),
        ),
        notes=(f"Not measured: {reason}.",),
    )


def main_sync(settings: Settings) -> BenchResult:
    """Record, then replay ``settings.runs`` times (blocking)."""
    modules = _load()
    if modules is None:
        return not_available("sniper.replay.player / sniper.replay.sample not importable")
    player_mod, sample_mod = modules
    with (
        tempfile.TemporaryDirectory(prefix="sniper-replay-bench-") as tmp,
        scenario_file(busy_scenario(settings.listings)) as scenario,
    ):
        recording = Path(tmp) / "bench.rec.gz"
        stats = asyncio.run(
            sample_mod.record_simulator(
                recording, scenario=str(scenario), duration_s=settings.record_s
            )
        )
        config = sample_mod.sim_config(
            "http://127.0.0.1:1/api/v4", "ws://127.0.0.1:1/ws/v4/", Path(tmp) / "state"
        )
        whole: list[float] = []
        steady: list[float] = []
        frames = 0
        errors = 0
        for _ in range(settings.runs):
            result = player_mod.Player(stats.path, config).run()
            frames = result.frames
            errors += result.error is not None
            whole.append(float(result.timing.get("frames_per_s", math.nan)))
            costs = [c for c in getattr(result, "frame_cost_ns", []) if c > 0]
            steady.append(1e9 / statistics.median(costs) if costs else math.nan)
    best_whole = statistics.median(whole)
    best_steady = statistics.median(steady)
    # The table is in µs: show the per-frame time; the rates go into targets and setup.
    variants = (
        VariantResult(
            "whole file",
            f"{frames:,} frames per replay: wall time / frames (daemon start-up included)",
            _per_frame_us(whole),
            errors,
            extra_us={"rate": best_whole},
        ),
        VariantResult(
            "per frame (player's median cost)",
            "1 / median per-frame cost measured by the player",
            _per_frame_us(steady),
            errors,
            extra_us={"rate": best_steady},
        ),
    )
    targets = (
        TargetCheck(
            "replay frames/s (whole file, median run)",
            f">= {TARGET_FRAMES_PER_S:,.0f}",
            f"{best_whole:,.0f}",
            None if math.isnan(best_whole) else best_whole >= TARGET_FRAMES_PER_S,
        ),
        TargetCheck(
            "replay frames/s (steady, median per-frame cost)",
            f">= {TARGET_FRAMES_PER_S:,.0f}",
            _rate(best_steady),
            None if math.isnan(best_steady) else best_steady >= TARGET_FRAMES_PER_S,
        ),
    )
    return BenchResult(
        name=NAME,
        title=TITLE,
        variants=variants,
        ratio_columns=(),
        extra_columns=(("rate", "frames/s"),),
        targets=targets,
        setup={
            "record_s": settings.record_s,
            "frames": frames,
            "runs": settings.runs,
            "frames_per_s_per_run": whole,
            "steady_frames_per_s_per_run": steady,
        },
        notes=(
            f"Recording: {settings.listings} busy listings (bench.replay_throughput."
            f"busy_scenario), {settings.record_s:g} s on loopback, {frames:,} frames; "
            f"{settings.runs} replays. The p50 µs column is the "
            "time per frame.",
        ),
    )


def _per_frame_us(rates: list[float]) -> LatencyStats:
    return LatencyStats.from_ns([int(1e9 / r) for r in rates if r and not math.isnan(r)])


def _rate(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:,.0f}"
