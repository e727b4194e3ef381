"""Fault-suite wiring: reuse the e2e harness; write the reliability tally at the end.

Also small helpers shared by the fault tests (waiting on a condition with a deadline, the
daemon's JSON log lines, running ``python -m sniper ...`` to completion).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
import pytest

from tests.e2e.conftest import *  # noqa: F403 - the e2e fixtures (e2e, sim helpers)
from tests.e2e.conftest import REPO, DaemonProcess
from tests.faults.tally import dump_if_requested

POLL_S = 0.02


@pytest.fixture(scope="session", autouse=True)
def _reliability_tally() -> Iterator[None]:
    yield
    dump_if_requested()


async def wait_until(
    condition: Callable[[], bool],
    what: str,
    *,
    timeout_s: float = 15.0,
    daemon: DaemonProcess | None = None,
) -> None:
    """Poll ``condition`` every 20 ms until it holds; fail (with the daemon's log) after
    ``timeout_s`` or as soon as ``daemon`` exits. For state that has no event to wait on
    (the simulator's books, a file)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if daemon is not None and not daemon.running:
            if condition():
                return
            pytest.fail(f"daemon exited while waiting for {what}\n{daemon.describe()}")
        if time.monotonic() > deadline:
            detail = daemon.describe() if daemon is not None else ""
            pytest.fail(f"not within {timeout_s} s: {what}\n{detail}")
        await asyncio.sleep(POLL_S)


def json_logs(text: str) -> list[dict[str, Any]]:
    """Every JSON log line in ``text`` (other output, e.g. warnings, is skipped)."""
    events = []
    for line in text.splitlines():
        if line.startswith("{"):
            with contextlib.suppress(orjson.JSONDecodeError):
                events.append(orjson.loads(line))
    return events


def free_port() -> int:
    """A port nothing listens on right now (the daemon binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True, slots=True)
class Completed:
    """A finished ``python -m sniper ...``."""

    code: int
    stdout: str
    stderr: str


def sniper_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The test's environment without any credential or hook variable, plus ``extra``."""
    env = {
        k: v for k, v in os.environ.items()
        if not k.startswith(("GATE_API", "CREDENTIALS_", "SNIPER_CRASH", "NOTIFY_",
                             "WATCHDOG_", "TELEGRAM_"))
    }
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


async def run_sniper(
    *args: str, env: Mapping[str, str] | None = None, timeout_s: float = 20.0
) -> Completed:
    """Run ``python -m sniper ARGS`` to completion (killed and failed after ``timeout_s``)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sniper", *args,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=sniper_env(env), cwd=REPO,
    )
    try:
        async with asyncio.timeout(timeout_s):
            out, err = await proc.communicate()
    except TimeoutError:
        proc.kill()
        out, err = await proc.communicate()
        pytest.fail(f"sniper {' '.join(args)} still running after {timeout_s} s:\n"
                    f"{out.decode(errors='replace')[-3000:]}\n{err.decode(errors='replace')[-3000:]}")
    assert proc.returncode is not None
    return Completed(proc.returncode, out.decode(errors="replace"), err.decode(errors="replace"))
