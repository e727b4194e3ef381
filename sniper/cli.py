"""Command line: ``sniper <command>``. ``main(argv)`` is what tests call.

Exit codes: 0 ok; 2 usage; 78 configuration error (systemd must not restart-loop on it);
1 any other failure. One mapping from exceptions to exit codes lives in :func:`main`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from sniper import __version__
from sniper.errors import AuthError, ConfigError, SniperError

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_CONFIG = 78  # EX_CONFIG from sysexits.h


def _cmd_check_config(args: argparse.Namespace) -> int:
    from sniper.config import effective_config_text, load_config, load_credentials

    config = load_config(args.config)
    warnings: list[str] = []
    credentials = None if args.dry_run else load_credentials(warnings=warnings)
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    sys.stdout.write(effective_config_text(config, credentials))
    print("config OK", file=sys.stderr)
    return EXIT_OK


def _cmd_sim(args: argparse.Namespace) -> int:
    from sniper.sim.runner import main_sim

    return main_sim(
        host=args.host,
        port=args.port,
        scenario=args.scenario,
        faults=",".join(args.fault) if args.fault else None,
        event_log=args.event_log,
        time_scale=args.time_scale,
    )


def _cmd_demo(args: argparse.Namespace) -> int:
    from sniper.app.demo import main_demo

    return main_demo(verbose=args.verbose)


def _cmd_run(args: argparse.Namespace) -> int:
    from sniper.app.run import main_run

    return main_run(args.config, dry_run=args.dry_run)


def _cmd_halt(args: argparse.Namespace) -> int:
    from sniper.app.killswitch import main_halt

    return main_halt(args.config, halted=args.command == "halt")


def _cmd_doctor(args: argparse.Namespace) -> int:
    from sniper.app.doctor import main_doctor

    return main_doctor(args.config)


def _cmd_record(args: argparse.Namespace) -> int:
    from sniper.replay.recorder import main_record

    return main_record(args.config, args.out, duration_s=args.duration_s)


def _cmd_replay(args: argparse.Namespace) -> int:
    from sniper.replay.player import main_replay

    return main_replay(args.file, args.config, report_dir=args.report, latency_us=args.latency_us)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sniper", description="Snipe new spot listings on Gate.io (API v4)."
    )
    parser.add_argument("--version", action="version", version=f"sniper {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, handler: Callable[[argparse.Namespace], int], help_: str) -> (
        argparse.ArgumentParser
    ):
        p = sub.add_parser(name, help=help_, description=help_)
        p.set_defaults(handler=handler)
        return p

    p = add("run", _cmd_run, "run the daemon")
    p.add_argument("--config", required=True, metavar="FILE")
    p.add_argument("--dry-run", action="store_true", help="live data, paper execution, no keys")

    p = add("demo", _cmd_demo, "run the daemon against the bundled simulator (no keys, no network)")
    p.add_argument("--verbose", action="store_true", help="also print the daemon's log")

    p = add("sim", _cmd_sim, "run the bundled Gate v4 simulator on loopback")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--scenario", default="new_listing")
    p.add_argument("--fault", action="append", metavar="SPEC",
                   help="fault spec, e.g. http429=3@/spot/orders,skip_book=1,skew_ms=5000")
    p.add_argument("--time-scale", type=float, default=1.0, help="stretch scenario times")
    p.add_argument("--event-log", metavar="FILE", help="write the simulator's event log (JSONL)")

    p = add("record", _cmd_record, "record raw market data with receive timestamps")
    p.add_argument("--config", required=True, metavar="FILE")
    p.add_argument("--out", required=True, metavar="FILE")
    p.add_argument("--duration-s", type=float, default=None, help="stop after this long")

    p = add("replay", _cmd_replay, "dry-run a recording through the pipeline; write a report")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--config", required=True, metavar="FILE")
    p.add_argument("--report", metavar="DIR")
    p.add_argument("--latency-us", type=int, default=None)

    p = add("check-config", _cmd_check_config, "validate and print the effective config")
    p.add_argument("--config", required=True, metavar="FILE")
    p.add_argument("--dry-run", action="store_true", help="do not require API credentials")

    p = add("doctor", _cmd_doctor, "pre-flight checks against the configured exchange")
    p.add_argument("--config", required=True, metavar="FILE")

    for name, text in (("halt", "stop arming and firing (kill switch)"), ("resume", "undo halt")):
        p = add(name, _cmd_halt, text)
        p.add_argument("--config", required=True, metavar="FILE")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sniper`` console script; returns the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help/--version exit 0, usage errors exit 2
        return int(exc.code) if isinstance(exc.code, int) else EXIT_USAGE
    try:
        return int(args.handler(args))
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except AuthError as exc:
        # a wrong key, permission or clock does not get better by restarting (systemd: 78)
        print(f"authentication error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except SniperError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("sniper."):
            print(f"sniper {args.command}: not yet available in this build", file=sys.stderr)
            return EXIT_FAILURE
        raise
    except KeyboardInterrupt:
        return EXIT_OK


def console_main() -> None:  # pragma: no cover - thin wrapper for the console script
    sys.exit(main())
