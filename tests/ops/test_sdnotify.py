"""sd_notify against a real AF_UNIX datagram socket (path and abstract namespace)."""

from __future__ import annotations

import asyncio
import os
import socket
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from sniper.ops.sdnotify import SdNotifier, Watchdog


class Listener:
    """The systemd side: a bound datagram socket we read notifications from."""

    def __init__(self, sock: socket.socket, env_value: str) -> None:
        self.sock = sock
        self.env_value = env_value

    def recv(self) -> bytes:
        self.sock.settimeout(2.0)
        return self.sock.recv(4096)

    def pending(self) -> list[bytes]:
        """Every datagram already queued (sends are synchronous, so this is exact)."""
        self.sock.setblocking(False)
        out: list[bytes] = []
        while True:
            try:
                out.append(self.sock.recv(4096))
            except BlockingIOError:
                return out


@pytest.fixture
def path_listener() -> Iterator[Listener]:
    # tmp_path can exceed the 108-byte AF_UNIX path limit; keep it short.
    with tempfile.TemporaryDirectory(prefix="sdn") as d:
        path = str(Path(d) / "notify")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(path)
        try:
            yield Listener(sock, path)
        finally:
            sock.close()


@pytest.fixture
def abstract_listener() -> Iterator[Listener]:
    name = f"sniper-test-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    try:
        yield Listener(sock, "@" + name)
    finally:
        sock.close()


@pytest.fixture(params=["path", "abstract"])
def listener(
    request: pytest.FixtureRequest, path_listener: Listener, abstract_listener: Listener
) -> Listener:
    return path_listener if request.param == "path" else abstract_listener


def test_no_socket_means_noop() -> None:
    notifier = SdNotifier.from_env({})
    assert not notifier.enabled
    assert notifier.watchdog_interval_s() is None
    assert notifier.ready() is False
    assert notifier.status("x") is False
    assert notifier.watchdog() is False
    assert notifier.stopping() is False
    notifier.close()


def test_messages_reach_the_socket(listener: Listener) -> None:
    notifier = SdNotifier.from_env({"NOTIFY_SOCKET": listener.env_value})
    assert notifier.enabled
    try:
        assert notifier.ready("armed on 2 listings")
        assert listener.recv() == b"READY=1\nSTATUS=armed on 2 listings"
        assert notifier.ready()
        assert listener.recv() == b"READY=1"
        assert notifier.status("polling\nsecond line is dropped")
        assert listener.recv() == b"STATUS=polling"
        assert notifier.watchdog()
        assert listener.recv() == b"WATCHDOG=1"
        assert notifier.stopping("flushing journal")
        assert listener.recv() == b"STOPPING=1\nSTATUS=flushing journal"
        assert listener.pending() == []
    finally:
        notifier.close()
        notifier.close()  # idempotent


def test_send_failure_is_swallowed() -> None:
    with tempfile.TemporaryDirectory(prefix="sdn") as d:
        notifier = SdNotifier.from_env({"NOTIFY_SOCKET": str(Path(d) / "nobody-listens")})
        assert notifier.enabled
        assert notifier.ready() is False
        notifier.close()


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"WATCHDOG_USEC": "10000000"}, 10.0),
        ({"WATCHDOG_USEC": "500000", "WATCHDOG_PID": str(os.getpid())}, 0.5),
        ({"WATCHDOG_USEC": "500000", "WATCHDOG_PID": str(os.getpid() + 1)}, None),
        ({"WATCHDOG_USEC": "abc"}, None),
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "-5"}, None),
        ({}, None),
    ],
)
def test_watchdog_interval_from_env(env: dict[str, str], expected: float | None) -> None:
    notifier = SdNotifier.from_env({"NOTIFY_SOCKET": "/run/systemd/notify", **env})
    assert notifier.watchdog_interval_s() == expected


def test_watchdog_needs_a_socket() -> None:
    assert SdNotifier.from_env({"WATCHDOG_USEC": "1000000"}).watchdog_interval_s() is None


def test_unsupported_socket_kinds_are_ignored() -> None:
    assert not SdNotifier.from_env({"NOTIFY_SOCKET": "vsock:2:1234"}).enabled


def test_watchdog_tick_pets_only_when_healthy(path_listener: Listener) -> None:
    notifier = SdNotifier.from_env(
        {"NOTIFY_SOCKET": path_listener.env_value, "WATCHDOG_USEC": "2000000"}
    )
    state = {"healthy": True}
    dog = Watchdog(notifier, lambda: state["healthy"], max_loop_lag_s=0.5)
    assert dog.interval_s == 1.0  # half the timeout

    assert dog.tick() is True
    assert path_listener.pending() == [b"WATCHDOG=1"]

    state["healthy"] = False  # stuck but alive: must stop petting
    assert dog.tick() is False
    assert path_listener.pending() == []

    state["healthy"] = True
    assert dog.tick(loop_lag_s=0.7) is False  # event loop starved
    assert path_listener.pending() == []

    stats = dog.statistics()
    assert (stats.ticks, stats.pets, stats.skipped_unhealthy, stats.skipped_loop_lag) == (
        3,
        1,
        1,
        1,
    )
    assert stats.last_loop_lag_s == 0.7
    notifier.close()


def test_watchdog_check_that_raises_counts_as_unhealthy(path_listener: Listener) -> None:
    notifier = SdNotifier.from_env({"NOTIFY_SOCKET": path_listener.env_value})

    def broken() -> bool:
        raise RuntimeError("feed state unavailable")

    dog = Watchdog(notifier, broken, interval_s=1.0)
    assert dog.tick() is False
    assert path_listener.pending() == []
    assert dog.statistics().skipped_unhealthy == 1
    notifier.close()


async def test_watchdog_run_stops_petting_when_health_fails(abstract_listener: Listener) -> None:
    notifier = SdNotifier.from_env(
        {"NOTIFY_SOCKET": abstract_listener.env_value, "WATCHDOG_USEC": "10000"}
    )
    calls = 0
    enough = asyncio.Event()

    def healthy() -> bool:
        nonlocal calls
        calls += 1
        if calls >= 5:
            enough.set()
        return calls <= 2  # healthy twice, then the feed goes stale

    # A generous lag limit: this test is about the health predicate, not the loop's latency.
    dog = Watchdog(notifier, healthy, max_loop_lag_s=60.0)
    assert dog.interval_s == 0.005
    task = asyncio.create_task(dog.run())
    await asyncio.wait_for(enough.wait(), timeout=5.0)
    dog.stop()
    await asyncio.wait_for(task, timeout=5.0)

    assert abstract_listener.pending() == [b"WATCHDOG=1", b"WATCHDOG=1"]
    stats = dog.statistics()
    assert stats.pets == 2
    assert stats.skipped_unhealthy == stats.ticks - 2 >= 3
    notifier.close()


async def test_watchdog_run_returns_at_once_without_systemd() -> None:
    dog = Watchdog(SdNotifier.from_env({}), lambda: True)
    assert dog.interval_s is None
    await asyncio.wait_for(dog.run(), timeout=1.0)
    assert dog.statistics().ticks == 0
