"""``sniper sim`` as a user runs it: a subprocess on an ephemeral port, driven by its banner.

The child's stdout is a pipe (block-buffered), so reading the banner at all proves it is
flushed. Nothing here sets ``PYTHONUNBUFFERED``.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass

import httpx
import pytest

from sniper.core.signing import Credentials, Signer, mask

STARTUP_TIMEOUT_S = 60.0  # a cold interpreter on a shared 2-core host
EXIT_TIMEOUT_S = 20.0
BANNER_END = "Ctrl-C stops it."


@dataclass(frozen=True, slots=True)
class Banner:
    """What ``sniper sim`` printed before serving."""

    text: str
    rest: str
    ws: str
    ann: str
    key: str
    secret: str

    @property
    def port(self) -> int:
        """The port in the REST URL."""
        match = re.fullmatch(r"http://127\.0\.0\.1:(\d+)/api/v4", self.rest)
        assert match, self.rest
        return int(match.group(1))


def parse_banner(text: str) -> Banner:
    """Pick the URLs and credentials out of the banner lines."""
    fields: dict[str, str] = {}
    for label, name in (
        ("REST", "rest"),
        ("WebSocket", "ws"),
        ("Announcements", "ann"),
        ("API key", "key"),
        ("API secret", "secret"),
    ):
        match = re.search(rf"^  {label} +(\S+)", text, re.MULTILINE)
        assert match, f"no {label!r} line in banner:\n{text}"
        fields[name] = match.group(1)
    return Banner(text=text, **fields)


def child_env(**extra: str) -> dict[str, str]:
    """The test's environment without Gate credentials (and without unbuffered output)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("GATE_API_KEY", "GATE_API_SECRET", "PYTHONUNBUFFERED")
    }
    env.update(extra)
    return env


@dataclass(slots=True)
class SimProcess:
    """A running ``python -m sniper sim`` and the banner it printed."""

    proc: asyncio.subprocess.Process
    banner: Banner

    async def interrupt(self) -> tuple[int, str]:
        """Send SIGINT (Ctrl-C); return the exit code and what went to stderr."""
        self.proc.send_signal(signal.SIGINT)
        async with asyncio.timeout(EXIT_TIMEOUT_S):
            _, stderr = await self.proc.communicate()
        assert self.proc.returncode is not None
        return self.proc.returncode, stderr.decode(errors="replace")


async def read_banner(proc: asyncio.subprocess.Process) -> str:
    """Lines from the child's stdout up to the banner's last line."""
    assert proc.stdout is not None
    lines: list[str] = []
    async with asyncio.timeout(STARTUP_TIMEOUT_S):
        while True:
            raw = await proc.stdout.readline()
            if not raw:
                stderr = b"" if proc.stderr is None else await proc.stderr.read()
                raise AssertionError(f"sniper sim exited early: {lines} {stderr!r}")
            line = raw.decode().rstrip("\n")
            lines.append(line)
            if line == BANNER_END:
                return "\n".join(lines)


StartSim = Callable[..., Awaitable[SimProcess]]


@pytest.fixture
async def start_sim() -> AsyncIterator[StartSim]:
    """A factory for ``sniper sim`` children; any child still running at the end is killed."""
    children: list[asyncio.subprocess.Process] = []

    async def start(*args: str, env: Mapping[str, str] | None = None) -> SimProcess:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "sniper",
            "sim",
            "--host",
            "127.0.0.1",
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=dict(env) if env is not None else child_env(),
        )
        children.append(proc)
        return SimProcess(proc, parse_banner(await read_banner(proc)))

    yield start
    for proc in children:
        if proc.returncode is None:
            proc.kill()
            await proc.communicate()


async def test_sim_on_port_zero_serves_signed_requests_and_stops_on_sigint(
    start_sim: StartSim,
) -> None:
    sim = await start_sim("--port", "0", "--scenario", "new_listing_fast")
    banner = sim.banner
    assert "'new_listing_fast'" in banner.text
    assert banner.port > 0
    assert banner.ws == f"ws://127.0.0.1:{banner.port}/ws/v4/"
    assert banner.ann == f"ws://127.0.0.1:{banner.port}/ws/v4/ann"
    assert f"rest_url: {banner.rest}" in banner.text
    assert "10000 USDT" in banner.text
    assert re.fullmatch(r"[0-9a-f]{32}", banner.key)
    assert re.fullmatch(r"[0-9a-f]{64}", banner.secret)

    signer = Signer(Credentials(banner.key, banner.secret))
    async with httpx.AsyncClient(timeout=10.0) as client:
        r = await client.get(f"{banner.rest}/spot/time")
        assert r.status_code == 200
        server_ms = r.json()["server_time"]
        assert abs(server_ms - time.time() * 1000) < 5_000

        headers = signer.rest_headers(
            "GET", "/api/v4/spot/accounts", "", b"", str(int(time.time()))
        )
        r = await client.get(f"{banner.rest}/spot/accounts", headers=headers)
        assert r.status_code == 200, r.text
        usdt = {row["currency"]: row for row in r.json()}["USDT"]
        assert (usdt["available"], usdt["locked"]) == ("10000", "0")

        # The printed secret is the one the simulator checks: a different one is refused.
        wrong = Signer(Credentials(banner.key, "0" * 64))
        headers = wrong.rest_headers("GET", "/api/v4/spot/accounts", "", b"", str(int(time.time())))
        r = await client.get(f"{banner.rest}/spot/accounts", headers=headers)
        assert r.status_code == 401
        assert r.json()["label"] == "INVALID_SIGNATURE"

    code, stderr = await sim.interrupt()
    assert code == 0, stderr
    assert "Traceback" not in stderr


async def test_sim_honours_gate_credentials_from_the_environment(start_sim: StartSim) -> None:
    key, secret = "simenvkey0123456789", "simenvsecret0123456789abcdef"
    env = child_env(GATE_API_KEY=key, GATE_API_SECRET=secret)
    sim = await start_sim("--port", "0", "--scenario", "quiet", env=env)
    banner = sim.banner
    assert banner.key == key
    assert f"{key} (from GATE_API_KEY)" in banner.text
    assert secret not in banner.text
    assert banner.secret == mask(secret) == "sime***"
    assert "(from GATE_API_SECRET)" in banner.text

    signer = Signer(Credentials(key, secret))
    async with httpx.AsyncClient(timeout=10.0) as client:
        headers = signer.rest_headers(
            "GET", "/api/v4/spot/accounts", "", b"", str(int(time.time()))
        )
        r = await client.get(f"{banner.rest}/spot/accounts", headers=headers)
        assert r.status_code == 200, r.text

    code, stderr = await sim.interrupt()
    assert code == 0, stderr


async def test_sim_refuses_a_busy_port_with_the_config_exit_code() -> None:
    # Bind a listener first; the child must say so and exit 78, not print a traceback.
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "sniper", "sim", "--port", str(port),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=child_env(),
        )  # fmt: skip
        async with asyncio.timeout(STARTUP_TIMEOUT_S):
            stdout, stderr = await proc.communicate()
    finally:
        server.close()
        await server.wait_closed()
    assert proc.returncode == 78
    assert stdout == b""
    assert f"cannot listen on 127.0.0.1:{port}" in stderr.decode()
    assert b"Traceback" not in stderr
