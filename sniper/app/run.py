"""``sniper run``: assemble the edges for the chosen mode (the one place that chooses) and serve."""

from __future__ import annotations

import asyncio
import secrets
import sys
from collections.abc import Callable
from typing import Any

from sniper.app.clock import Clock
from sniper.app.daemon import Daemon, install_signal_handlers
from sniper.app.journal import Journal
from sniper.app.operations import Operations, chain
from sniper.app.ports import Edges
from sniper.config import Config, load_config, load_credentials

RUN_ID_FLAG = "run_id"


def journal_run_id(journal: Journal) -> str:
    """The daemon's stable id (client ids derive from it, so it survives restarts)."""
    run_id = journal.get_flag(RUN_ID_FLAG)
    if run_id is None:
        run_id = secrets.token_hex(6)
        journal.set_flag(RUN_ID_FLAG, run_id)
    return run_id


def build_edges(config: Config, *, dry_run: bool, clock: Clock) -> Edges:
    """The mode is chosen here and nowhere below."""
    if dry_run:
        from sniper.replay.paper import build_paper_edges

        edges: Edges = build_paper_edges(config, clock)  # loads no secret, signs nothing
        return edges
    from sniper.app.live import build_live_edges
    from sniper.log import register_secret

    warnings: list[str] = []
    credentials = load_credentials(warnings=warnings)
    register_secret(credentials.secret)
    register_secret(credentials.key)
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return build_live_edges(config, credentials, clock)


async def serve(
    config: Config,
    edges: Edges,
    *,
    clock: Clock,
    observer: Callable[[str, dict[str, Any]], None] | None = None,
    signals: bool = True,
) -> int:
    journal = Journal.in_dir(config.state_dir)
    try:
        ops = Operations(config, clock)
        observers = (ops.observe,) if observer is None else (observer, ops.observe)
        daemon = Daemon(config, edges, journal, run_id=journal_run_id(journal),
                        wall_ms=clock.wall_ms, mono_ns=clock.mono_ns, observer=chain(*observers),
                        clock_offset_ms=lambda: clock.offset_ms)
        if signals:
            install_signal_handlers(daemon, before_stop=ops.stopping)
        await ops.start(daemon, journal)
        try:
            return await daemon.run()
        finally:
            await ops.stop()
    finally:
        journal.close()


def install_uvloop() -> None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def main_run(config_path: str, *, dry_run: bool = False) -> int:
    from sniper.log import configure_logging, get_logger

    config = load_config(config_path)
    configure_logging(config.log.level, config.log.format)
    clock = Clock()
    edges = build_edges(config, dry_run=dry_run, clock=clock)
    log = get_logger("sniper")

    def observe(kind: str, data: dict[str, Any]) -> None:
        log.info(kind, **data)

    install_uvloop()
    return asyncio.run(serve(config, edges, clock=clock, observer=observe))
