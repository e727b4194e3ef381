"""One command for the whole benchmark suite: ``python -m bench.run [--quick]``.

Runs every benchmark in :data:`BENCHMARKS`, prints the markdown table, and writes
``bench/results/latest.json`` and ``bench/results/latest.md``. A benchmark is a module with a
``Settings`` dataclass and ``main_sync(settings) -> BenchResult``.
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import structlog

from bench import book_open, decision_to_exchange, detection, footprint, replay_throughput
from bench.common import RESULTS_DIR, BenchResult, machine_info, render_markdown, write_results
from bench.simproc import pin_to_cpu

FULL_ROUNDS = 1000
FULL_WARMUP = 50
FULL_RUNS = 3
QUICK_ROUNDS = 60
QUICK_WARMUP = 10


def _decision_to_exchange(args: argparse.Namespace, *, hot_server: bool = True) -> BenchResult:
    rounds = args.rounds or (QUICK_ROUNDS if args.quick else FULL_ROUNDS)
    warmup = (
        args.warmup if args.warmup is not None else (QUICK_WARMUP if args.quick else FULL_WARMUP)
    )
    settings = decision_to_exchange.Settings(
        rounds=rounds,
        warmup=warmup,
        runs=args.runs or (1 if args.quick else FULL_RUNS),
        separate_process=not args.same_process,
        client_cpu=None if args.no_pin or args.same_process else 0,
        server_cpu=None if args.no_pin else 1,
        uvloop=args.loop == "uvloop",
        hot_server=hot_server,
        only=tuple(args.only.split(",")) if args.only else (),
        gap_us=args.gap_us,
    )
    return decision_to_exchange.main_sync(settings)


def _pins(args: argparse.Namespace) -> tuple[int | None, int | None]:
    return (None if args.no_pin else 0), (None if args.no_pin else 1)


def _book_open(args: argparse.Namespace) -> BenchResult:
    client, server = _pins(args)
    settings = book_open.Settings(
        listings=args.rounds or (10 if args.quick else 40),
        runs=args.runs or (1 if args.quick else 2),
        client_cpu=client,
        server_cpu=server,
        uvloop=args.loop == "uvloop",
    )
    return book_open.main_sync(settings)


def _detection(args: argparse.Namespace) -> BenchResult:
    client, server = _pins(args)
    settings = detection.Settings(
        listings=min(98, args.rounds or (10 if args.quick else 40)),
        runs=args.runs or 1,
        client_cpu=client,
        server_cpu=server,
        uvloop=args.loop == "uvloop",
    )
    return detection.main_sync(settings)


def _footprint(args: argparse.Namespace) -> BenchResult:
    _, server = _pins(args)
    return footprint.main_sync(
        footprint.Settings(runs=args.runs or (1 if args.quick else 3), server_cpu=server)
    )


def _replay(args: argparse.Namespace) -> BenchResult:
    settings = replay_throughput.Settings(
        record_s=3.0 if args.quick else 10.0, runs=args.runs or (2 if args.quick else 3)
    )
    return replay_throughput.main_sync(settings)


BENCHMARKS: dict[str, Callable[[argparse.Namespace], BenchResult]] = {
    decision_to_exchange.NAME: _decision_to_exchange,
    decision_to_exchange.NAME_IDLE_SIM: lambda args: _decision_to_exchange(args, hot_server=False),
    book_open.NAME: _book_open,
    detection.NAME: _detection,
    footprint.NAME: _footprint,
    replay_throughput.NAME: _replay,
}
"""Name -> runner (``--bench NAME[,NAME]`` selects; ``--rounds`` is the number of listings
for book_open and detection)."""


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line (see ``--help``)."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.run", description="sniper latency benchmarks (bench/README.md)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="a few hundred orders instead of thousands"
    )
    parser.add_argument(
        "--bench",
        default=",".join(BENCHMARKS),
        help=f"comma-separated benchmarks to run (default: all: {', '.join(BENCHMARKS)})",
    )
    parser.add_argument("--rounds", type=int, default=0, help="measured rounds per run")
    parser.add_argument("--warmup", type=int, default=None, help="discarded rounds per run")
    parser.add_argument(
        "--runs",
        type=int,
        default=0,
        help=f"fresh simulator per run, samples pooled (default {FULL_RUNS}; --quick: 1)",
    )
    parser.add_argument(
        "--same-process",
        action="store_true",
        help="run the simulator on the benchmark's own event loop instead of a pinned child",
    )
    parser.add_argument("--no-pin", action="store_true", help="do not pin client/server to CPUs")
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    parser.add_argument(
        "--gap-us",
        type=int,
        default=0,
        help="pause between orders, polling the loop (0: back to back)",
    )
    parser.add_argument("--only", default="", help="comma-separated contender names")
    parser.add_argument(
        "--out",
        type=Path,
        default=RESULTS_DIR,
        help="results directory (default bench/results)",
    )
    parser.add_argument("--stem", default="latest", help="results file name without extension")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the selected benchmarks; 0 on success, 2 on an unknown benchmark name."""
    args = parse_args(argv)
    names = [n for n in args.bench.split(",") if n]
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}", file=sys.stderr)
        return 2
    if args.runs < 0 or args.rounds < 0:
        print("--runs and --rounds must be positive", file=sys.stderr)
        return 2
    # The clients under test log connects at info level; keep the table readable.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    meta = machine_info()
    shown = sys.argv[1:] if argv is None else list(argv)
    meta["command"] = shlex.join([".venv/bin/python", "-m", "bench.run", *shown])
    if not args.no_pin and not args.same_process:
        meta["client_pinned"] = pin_to_cpu(0)
    results = [BENCHMARKS[name](args) for name in names]
    json_path, md_path = write_results(results, meta, args.out, args.stem)
    print(render_markdown(results, meta))
    print(f"wrote {os.path.relpath(json_path)} and {os.path.relpath(md_path)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
