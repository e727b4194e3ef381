"""The simulator as a benchmark peer: in a child process pinned to its own core, or in-process.

The child (``python -m bench.simproc``) reads one JSON line of settings on stdin (scenario,
credentials, CPU), starts :class:`~sniper.sim.server.SimServer` on 127.0.0.1 with an ephemeral
port, prints one JSON line with its URLs, then answers line commands on stdin:

``arrivals``  one JSON line ``{"texts": [...], "t_ns": [...], "where": [...]}`` of every
              ``order_in`` event logged so far (monotonic ns, the simulator's event log)
``events K,K``  one JSON line: every logged event of those kinds, as ``[t_ns, kind, name,
              conn_id, detail, text]`` rows
``list PAIR``  make a scripted pair visible in ``currency_pairs`` now (``{}`` when done)
``stop``      stop the server and exit

The first answer also carries ``clock_t0_ns``: the monotonic time of the simulator clock's
start, so scenario times (``appear_at_s``) convert to monotonic ns in the parent.

Linux's ``CLOCK_MONOTONIC`` is one clock for the whole machine, so the child's ``t_ns`` and
the parent's ``time.monotonic_ns()`` are directly comparable. Credentials come in on stdin so
nothing secret is printed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import orjson

from sniper.core.signing import Credentials
from sniper.sim.server import SimServer

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True, slots=True)
class Arrivals:
    """When the simulator had each order in full: client id -> monotonic ns (first seen)."""

    t_ns_by_text: dict[str, int]


class SimPeer(Protocol):
    """A running simulator the benchmark talks to (child process or in-process)."""

    rest_url: str
    ws_url: str
    where: str
    """``"process pinned to CPU n"`` / ``"same process"``: goes into the results."""

    async def arrivals(self) -> Arrivals: ...

    async def stop(self) -> None: ...


def _arrivals_from(events: Any) -> dict[str, Any]:
    texts: list[str] = []
    times: list[int] = []
    where: list[str] = []
    for event in events.find("order_in"):
        if event.text:
            texts.append(event.text)
            times.append(event.t_ns)
            where.append(event.name)
    return {"texts": texts, "t_ns": times, "where": where}


def _to_arrivals(document: dict[str, Any]) -> Arrivals:
    out: dict[str, int] = {}
    for text, t_ns in zip(document["texts"], document["t_ns"], strict=True):
        out.setdefault(text, int(t_ns))
    return Arrivals(out)


class InProcessSim:
    """The simulator on the benchmark's own event loop (no pinning; shares the core)."""

    def __init__(self, server: SimServer) -> None:
        self.server = server
        assert server.urls is not None
        self.rest_url = server.urls.rest
        self.ws_url = server.urls.ws
        self.where = "same process, same event loop"

    @classmethod
    async def start(cls, scenario: str, credentials: Credentials) -> InProcessSim:
        """Start a simulator in this process."""
        server = SimServer(
            scenario, "127.0.0.1", 0, credentials=credentials, enforce_rate_limits=False
        )
        await server.start()
        return cls(server)

    async def arrivals(self) -> Arrivals:
        """Every order arrival logged so far."""
        return _to_arrivals(_arrivals_from(self.server.events))

    async def stop(self) -> None:
        """Stop the simulator."""
        await self.server.stop()


class ChildProcessSim:
    """The simulator in a child process (see the module docstring for the protocol)."""

    def __init__(self, proc: asyncio.subprocess.Process, urls: dict[str, Any]) -> None:
        self._proc = proc
        self.rest_url = str(urls["rest"])
        self.ws_url = str(urls["ws"])
        cpu = urls.get("cpu")
        self.where = f"child process pinned to CPU {cpu}" if cpu is not None else "child process"
        self.loop_name = str(urls.get("loop", "?"))
        self.clock_t0_ns = int(urls.get("clock_t0_ns", 0))
        self.pid = proc.pid

    @classmethod
    async def start(
        cls,
        scenario: str,
        credentials: Credentials,
        cpu: int | None,
        use_uvloop: bool,
        *,
        spin: bool = False,
    ) -> ChildProcessSim:
        """Spawn ``python -m bench.simproc`` and wait until it listens."""
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.simproc",
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=REPO_ROOT,  # so ``-m bench.simproc`` resolves from any working directory
            limit=64 * 1024 * 1024,  # the arrivals line of a full run is a few hundred KiB
        )
        assert proc.stdin is not None
        assert proc.stdout is not None
        settings = {
            "scenario": scenario,
            "key": credentials.key,
            "secret": credentials.secret,
            "cpu": cpu,
            "uvloop": use_uvloop,
            "spin": spin,
        }
        proc.stdin.write(orjson.dumps(settings) + b"\n")
        await proc.stdin.drain()
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        if not line:
            await proc.wait()
            raise RuntimeError(f"simulator child exited with {proc.returncode} before listening")
        return cls(proc, orjson.loads(line))

    async def _ask(self, command: bytes) -> bytes:
        assert self._proc.stdin is not None
        assert self._proc.stdout is not None
        self._proc.stdin.write(command + b"\n")
        await self._proc.stdin.drain()
        return await asyncio.wait_for(self._proc.stdout.readline(), 30)

    async def arrivals(self) -> Arrivals:
        """Every order arrival the child logged so far."""
        return _to_arrivals(orjson.loads(await self._ask(b"arrivals")))

    async def events(self, kinds: tuple[str, ...]) -> list[tuple[int, str, str, Any, Any, Any]]:
        """Every event of ``kinds`` the child logged so far (see the module docstring)."""
        rows = orjson.loads(await self._ask(b"events " + ",".join(kinds).encode()))
        return [tuple(row) for row in rows]

    async def list_pair(self, pair: str) -> None:
        """Make the scripted ``pair`` visible in the simulator's ``currency_pairs`` now."""
        await self._ask(b"list " + pair.encode())

    async def stop(self) -> None:
        """Ask the child to stop; kill it if it does not within 10 s."""
        with contextlib.suppress(OSError, TimeoutError, ConnectionError):
            await self._ask(b"stop")
        try:
            await asyncio.wait_for(self._proc.wait(), 10)
        except TimeoutError:
            self._proc.kill()
            await self._proc.wait()


# -- the child ---------------------------------------------------------------------------------


async def _child_main(settings: dict[str, Any]) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    credentials = Credentials(settings["key"], settings["secret"])
    server = SimServer(
        settings["scenario"],
        "127.0.0.1",
        0,
        credentials=credentials,
        enforce_rate_limits=False,  # thousands of orders per second is the point here
    )
    urls = await server.start()
    spinner = asyncio.create_task(_spin()) if settings.get("spin") else None
    out = sys.stdout.buffer
    answer = {
        "rest": urls.rest,
        "ws": urls.ws,
        "cpu": settings.get("pinned_cpu"),
        "loop": type(loop).__module__,
        # benchmark-only introspection: scenario times -> the shared monotonic clock
        "clock_t0_ns": getattr(server.clock, "_t0_ns", 0),
    }
    out.write(orjson.dumps(answer) + b"\n")
    out.flush()
    try:
        while True:
            command = (await reader.readline()).strip()
            if command == b"arrivals":
                out.write(orjson.dumps(_arrivals_from(server.events)) + b"\n")
                out.flush()
            elif command.startswith(b"events "):
                kinds = set(command[7:].decode().split(","))
                rows = [
                    (e.t_ns, e.kind, e.name, e.conn_id, e.detail, e.text)
                    for e in server.events.snapshot()
                    if e.kind in kinds
                ]
                out.write(orjson.dumps(rows) + b"\n")
                out.flush()
            elif command.startswith(b"list "):
                server.dispatch(server.engine.list_pair(command[5:].decode()))
                out.write(b"{}\n")
                out.flush()
            elif command in (b"stop", b""):  # b"": the parent went away
                with contextlib.suppress(BrokenPipeError):
                    out.write(b"{}\n")
                    out.flush()
                return
    finally:
        if spinner is not None:
            spinner.cancel()
        await server.stop()


async def _spin() -> None:
    """Keep the loop polling instead of sleeping in epoll (an exchange gateway is never idle)."""
    while True:  # noqa: ASYNC110 - spinning is the point: no event to wait for
        await asyncio.sleep(0)


def child_entry() -> None:
    """Entry point of ``python -m bench.simproc``: read settings, pin, pick the loop, serve."""
    # The parent writes the settings line and then waits for our answer, so this blocking
    # read cannot swallow a later command into sys.stdin's buffer.
    settings = orjson.loads(sys.stdin.buffer.readline())
    cpu = settings.get("cpu")
    settings["pinned_cpu"] = cpu if pin_to_cpu(cpu) else None
    if settings.get("uvloop"):
        import uvloop

        uvloop.run(_child_main(settings))
    else:
        asyncio.run(_child_main(settings))


def pin_to_cpu(cpu: int | None) -> bool:
    """Pin this process to ``cpu``; False when not possible (non-Linux, CPU absent)."""
    if cpu is None or not hasattr(os, "sched_setaffinity"):
        return False
    try:
        os.sched_setaffinity(0, {cpu})
    except OSError:
        return False
    return True


if __name__ == "__main__":
    child_entry()
