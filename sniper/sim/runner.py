"""``sniper sim``: run the simulator in the foreground until Ctrl-C / SIGTERM.

It honours ``GATE_API_KEY``/``GATE_API_SECRET`` (the names the daemon reads) so a config that
already works against Gate works against the simulator unchanged; otherwise it makes a test
pair and prints it. An environment secret is never printed, only masked.

The banner is printed (and flushed) once the port is bound, so ``--port 0`` shows the port the
system chose; a wrapper script can read it from a pipe. See ``docs/simulator.md``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import TextIO

from sniper.core.signing import Credentials, mask
from sniper.errors import ConfigError
from sniper.sim.faults import Faults
from sniper.sim.server import SimServer, SimUrls, generate_credentials

DEFAULT_PORT = 8765


def credentials_from_env(env: Mapping[str, str] | None = None) -> tuple[Credentials, bool]:
    """``(credentials, from_env)``: the environment's pair when both are set, else a new one."""
    env = os.environ if env is None else env
    key = env.get("GATE_API_KEY", "").strip()
    secret = env.get("GATE_API_SECRET", "").strip()
    if key and secret:
        return Credentials(key, secret), True
    return generate_credentials(), False


def describe(
    urls: SimUrls,
    credentials: Credentials,
    from_env: bool,
    scenario: str,
    uid: int,
    balances: Mapping[str, Decimal] | None = None,
) -> str:
    """The banner ``sniper sim`` prints: URLs, credentials and how to point a client at it."""
    secret = (
        f"{mask(credentials.secret)} (from GATE_API_SECRET)" if from_env else credentials.secret
    )
    key = f"{credentials.key} (from GATE_API_KEY)" if from_env else credentials.key
    funds = ", ".join(f"{amount} {cur}" for cur, amount in sorted((balances or {}).items()))
    return "\n".join(
        [
            f"sniper sim: Gate v4 simulator, scenario {scenario!r}, user id {uid}",
            f"  REST          {urls.rest}",
            f"  WebSocket     {urls.ws}",
            f"  Announcements {urls.ann}",
            f"  API key       {key}",
            f"  API secret    {secret}",
            f"  Balances      {funds or 'none'}",
            "Point a config at it:",
            f"  exchange: {{rest_url: {urls.rest}, ws_url: {urls.ws}, ann_ws_url: {urls.ann}}}",
            "or the official SDK: gate_api.Configuration(host=REST_URL, key=KEY, secret=SECRET)",
            "Ctrl-C stops it.",
        ]
    )


async def run_sim(
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    scenario: str = "new_listing",
    *,
    faults: str | None = None,
    event_log: Path | str | None = None,
    balances: dict[str, Decimal] | None = None,
    time_scale: float = 1.0,
    out: TextIO | None = None,
    env: Mapping[str, str] | None = None,
    stop: asyncio.Event | None = None,
    started: asyncio.Future[SimServer] | None = None,
) -> int:
    """Serve until SIGINT/SIGTERM (or ``stop`` is set); return the exit code (0).

    ``faults`` is a :meth:`Faults.from_spec` string; ``started`` (optional) receives the
    running server, which lets ``sniper demo`` and tests use it in-process.
    Raises :class:`~sniper.errors.ConfigError` for a bad scenario or fault spec, or when the
    port cannot be bound.
    """
    out = sys.stdout if out is None else out
    credentials, from_env = credentials_from_env(env)
    server = SimServer(
        scenario,
        host,
        port,
        credentials=credentials,
        balances=balances,
        faults=Faults.from_spec(faults) if faults else None,
        event_log_path=event_log,
        time_scale=time_scale,
    )
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
    try:
        try:
            urls = await server.start()
        except OSError as exc:
            # Usually "address already in use": the user must pick another --port.
            raise ConfigError("port", f"cannot listen on {host}:{port}: {exc}") from exc
        start = {cur: amount for cur, (amount, _) in server.engine.balances(server.uid).items()}
        banner = describe(urls, credentials, from_env, scenario, server.uid, start)
        print(banner, file=out, flush=True)
        if started is not None and not started.done():
            started.set_result(server)
        await stop.wait()
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
        await server.stop()
    return 0


def main_sim(
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    scenario: str = "new_listing",
    **kwargs: object,
) -> int:
    """Blocking entry point for the CLI: ``asyncio.run(run_sim(...))``."""
    return asyncio.run(run_sim(host, port, scenario, **kwargs))  # type: ignore[arg-type]
