"""Shared pieces of the benchmark suite: statistics, targets, the results file and table.

Every benchmark module returns a :class:`BenchResult`; :mod:`bench.run` collects them, adds
the run's :func:`machine_info`, and writes ``bench/results/latest.json`` (machine-readable)
and ``bench/results/latest.md`` (the table README quotes). Latencies are kept in integer
nanoseconds and reported in microseconds.
"""

from __future__ import annotations

import math
import os
import platform
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def percentile(sorted_values: Sequence[int | float], pct: float) -> float:
    """The ``pct`` percentile (0..100) of already-sorted values, linearly interpolated.

    Interpolation (numpy's default "linear") keeps p99 of a few hundred samples from jumping
    to the single worst one.
    """
    if not sorted_values:
        return math.nan
    if not 0 <= pct <= 100:
        raise ValueError(f"percentile {pct} outside 0..100")
    rank = (len(sorted_values) - 1) * pct / 100
    low = math.floor(rank)
    high = math.ceil(rank)
    if low == high:
        return float(sorted_values[low])
    weight = rank - low
    return float(sorted_values[low]) * (1 - weight) + float(sorted_values[high]) * weight


@dataclass(frozen=True, slots=True)
class LatencyStats:
    """Summary of one variant's samples, in microseconds."""

    n: int
    p50_us: float
    p90_us: float
    p99_us: float
    mean_us: float
    min_us: float
    max_us: float

    @classmethod
    def from_ns(cls, samples_ns: Iterable[int]) -> LatencyStats:
        """Summarise samples given in nanoseconds."""
        ordered = sorted(samples_ns)
        if not ordered:
            nan = math.nan
            return cls(0, nan, nan, nan, nan, nan, nan)
        us = 1e-3
        return cls(
            n=len(ordered),
            p50_us=percentile(ordered, 50) * us,
            p90_us=percentile(ordered, 90) * us,
            p99_us=percentile(ordered, 99) * us,
            mean_us=sum(ordered) / len(ordered) * us,
            min_us=ordered[0] * us,
            max_us=ordered[-1] * us,
        )


def ratio(value: float, baseline: float) -> float:
    """``value / baseline``, NaN when either is missing or the baseline is zero."""
    if math.isnan(value) or math.isnan(baseline) or baseline == 0:
        return math.nan
    return value / baseline


@dataclass(frozen=True, slots=True)
class VariantResult:
    """One line of a benchmark table."""

    name: str
    description: str
    stats: LatencyStats
    errors: int = 0
    ratios: dict[str, float] = field(default_factory=dict)
    """Named p50 ratios, e.g. ``{"vs_floor": 1.12}``."""
    extra_us: dict[str, float] = field(default_factory=dict)
    """Other figures in µs (e.g. the client's share of the latency), by column key."""


@dataclass(frozen=True, slots=True)
class TargetCheck:
    """A DESIGN.md section 5 target evaluated on this run."""

    name: str
    target: str
    measured: str
    met: bool | None
    """``None`` when the run could not evaluate it (a variant is missing)."""


@dataclass(frozen=True, slots=True)
class BenchResult:
    """What one benchmark module hands back to :mod:`bench.run`."""

    name: str
    title: str
    variants: tuple[VariantResult, ...]
    ratio_columns: tuple[tuple[str, str], ...]
    """(key in ``VariantResult.ratios``, column header) pairs, in table order."""
    extra_columns: tuple[tuple[str, str], ...] = ()
    """(key in ``VariantResult.extra_us``, column header) pairs, shown after the percentiles."""
    targets: tuple[TargetCheck, ...] = ()
    setup: dict[str, Any] = field(default_factory=dict)
    """How it was measured: rounds, warm-up, pinning, event loop; copied into the results."""
    notes: tuple[str, ...] = ()


def _fmt(value: float, digits: int = 1) -> str:
    return "n/a" if math.isnan(value) else f"{value:,.{digits}f}"


def _fmt_ratio(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.2f}x"


def markdown_table(result: BenchResult) -> str:
    """The result as a GitHub markdown table (µs, ratios at p50) plus targets and notes."""
    headers = ["variant", "n", "p50 µs", "p90 µs", "p99 µs", "errors"]
    headers += [title for _, title in result.extra_columns]
    headers += [title for _, title in result.ratio_columns]
    lines = [
        "| " + " | ".join(headers) + " |",
        "|" + "|".join(["---"] + ["---:"] * (len(headers) - 1)) + "|",
    ]
    for variant in result.variants:
        s = variant.stats
        row = [
            f"{variant.name}",
            str(s.n),
            _fmt(s.p50_us),
            _fmt(s.p90_us),
            _fmt(s.p99_us),
            str(variant.errors),
        ]
        row += [_fmt(variant.extra_us.get(key, math.nan)) for key, _ in result.extra_columns]
        row += [_fmt_ratio(variant.ratios.get(key, math.nan)) for key, _ in result.ratio_columns]
        lines.append("| " + " | ".join(row) + " |")
    out = [f"### {result.title}", "", *lines, ""]
    out += [f"- `{v.name}`: {v.description}" for v in result.variants]
    if result.targets:
        out += ["", "| target | wanted | measured | met |", "|---|---|---|:---:|"]
        for check in result.targets:
            met = "n/a" if check.met is None else ("yes" if check.met else "**no**")
            out.append(f"| {check.name} | {check.target} | {check.measured} | {met} |")
    if result.notes:
        out += ["", *[f"- {note}" for note in result.notes]]
    return "\n".join(out) + "\n"


def machine_info() -> dict[str, Any]:
    """Where and on what this run happened (for the results header)."""
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        load = os.getloadavg()
    except OSError:
        load = (math.nan, math.nan, math.nan)
    return {
        "date_utc": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "host": platform.node(),
        "platform": platform.platform(),
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "loadavg_at_start": [round(x, 2) for x in load],
        "python": sys.version.split()[0],
        "commit": _git_commit(),
    }


def _git_commit() -> str:
    """The checked-out commit (read-only ``git rev-parse``), or ``unknown``."""
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],  # noqa: S607 - git from PATH, fixed args
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
            cwd=Path(__file__).resolve().parent,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return done.stdout.strip() or "unknown"


def _jsonable(value: Any) -> Any:
    """NaN is not JSON: write it as ``null``."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def results_document(results: Sequence[BenchResult], meta: dict[str, Any]) -> dict[str, Any]:
    """The machine-readable results: ``meta`` plus one entry per benchmark."""
    document: dict[str, Any] = _jsonable(
        {"meta": meta, "benchmarks": {result.name: asdict(result) for result in results}}
    )
    return document


def write_results(
    results: Sequence[BenchResult],
    meta: dict[str, Any],
    out_dir: Path = RESULTS_DIR,
    stem: str = "latest",
) -> tuple[Path, Path]:
    """Write ``<stem>.json`` and ``<stem>.md`` into ``out_dir``; return both paths.

    Each file is written to a temporary name and renamed, so a reader never sees half a file.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / f"{stem}.json"
    md_path = out_dir / f"{stem}.md"
    document = results_document(results, meta)
    _write_atomic(json_path, orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n")
    _write_atomic(md_path, render_markdown(results, meta).encode())
    return json_path, md_path


def render_markdown(results: Sequence[BenchResult], meta: dict[str, Any]) -> str:
    """The whole markdown report: a header naming the run, then each benchmark's table."""
    head = [
        "## Latest benchmark results",
        "",
        f"- date: {meta.get('date_utc', '?')}; commit `{meta.get('commit', '?')}`",
        f"- machine: {meta.get('cpu', '?')}, {meta.get('cpus', '?')} CPUs, "
        f"{meta.get('platform', '?')}, Python {meta.get('python', '?')}; "
        f"load average at start {meta.get('loadavg_at_start', '?')}",
        f"- command: `{meta.get('command', '?')}`",
        "",
    ]
    return "\n".join(head) + "\n".join(markdown_table(r) for r in results)


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
