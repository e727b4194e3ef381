"""systemd ``sd_notify`` without libsystemd, and a watchdog that only pets a healthy daemon.

Protocol (``man sd_notify``): newline-separated ``KEY=VALUE`` fields sent as one datagram to the
``AF_UNIX``/``SOCK_DGRAM`` socket named by ``$NOTIFY_SOCKET``; a leading ``@`` names an abstract
socket (the ``@`` becomes a NUL byte). ``$WATCHDOG_USEC`` is the watchdog timeout; when
``$WATCHDOG_PID`` is set, the watchdog is meant for that process only. Outside systemd there is
no socket and every call is a no-op.

With ``NotifyAccess=main`` only the main process may notify, which is us (``ExecStart`` runs the
Python process itself).

The :class:`Watchdog` deliberately does *not* pet unconditionally from a timer: a process whose
market data stopped or whose event loop is starved is alive but useless, and systemd restarting
it is exactly what the watchdog is for.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

from sniper.log import get_logger

_log = get_logger("sniper.ops.sdnotify")

DEFAULT_MAX_LOOP_LAG_S: Final = 1.0
"""A watchdog wake-up this late means the event loop is starved (blocked by sync work)."""


class SdNotifier:
    """Sends sd_notify datagrams; every method is a no-op when ``address`` is ``None``.

    Send failures (systemd gone, socket full) are logged once at debug and otherwise ignored:
    notification is best effort and must never take the daemon down.
    """

    __slots__ = ("_sock", "_watchdog_usec", "address")

    def __init__(self, address: str | None, *, watchdog_usec: int | None = None) -> None:
        self.address = address
        self._watchdog_usec = watchdog_usec
        self._sock: socket.socket | None = None

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, *, pid: int | None = None
    ) -> SdNotifier:
        """Build from ``NOTIFY_SOCKET`` / ``WATCHDOG_USEC`` / ``WATCHDOG_PID``.

        A ``WATCHDOG_PID`` that is not ours (``pid`` defaults to this process) disables the
        watchdog, as does a malformed or zero ``WATCHDOG_USEC``.
        """
        env = os.environ if env is None else env
        address = env.get("NOTIFY_SOCKET") or None
        if address is not None and not address.startswith(("/", "@")):
            address = None  # systemd also supports vsock:...; we do not need it
        usec: int | None = None
        raw = env.get("WATCHDOG_USEC")
        if raw:
            try:
                usec = int(raw)
            except ValueError:
                usec = None
            if usec is not None and usec <= 0:
                usec = None
            wd_pid = env.get("WATCHDOG_PID")
            me = os.getpid() if pid is None else pid
            if wd_pid and wd_pid.strip() != str(me):
                usec = None
        return cls(address, watchdog_usec=usec)

    @property
    def enabled(self) -> bool:
        """True when running under systemd with a notify socket."""
        return self.address is not None

    def watchdog_interval_s(self) -> float | None:
        """The watchdog timeout in seconds, or ``None`` when no watchdog is configured.

        Pet at half of it at most (systemd's own recommendation).
        """
        if self._watchdog_usec is None or self.address is None:
            return None
        return self._watchdog_usec / 1_000_000

    def notify(self, *fields: str) -> bool:
        """Send ``fields`` (``"READY=1"``...) as one datagram; ``True`` if it was sent."""
        if self.address is None:
            return False
        payload = "\n".join(fields).encode()
        try:
            sock = self._sock
            if sock is None:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                sock.setblocking(False)  # never wait on systemd from the event loop
                self._sock = sock
            target = "\0" + self.address[1:] if self.address.startswith("@") else self.address
            sock.sendto(payload, target)
        except OSError as exc:
            _log.debug("sd_notify_failed", error=str(exc), fields=fields)
            return False
        return True

    def ready(self, status: str | None = None) -> bool:
        """``READY=1``: start-up finished (Type=notify units stay 'activating' until this)."""
        return self.notify("READY=1", *((f"STATUS={status}",) if status else ()))

    def status(self, text: str) -> bool:
        """``STATUS=...``: one line shown by ``systemctl status``."""
        return self.notify(f"STATUS={text.splitlines()[0] if text else ''}")

    def watchdog(self) -> bool:
        """``WATCHDOG=1``: we are alive *and* healthy."""
        return self.notify("WATCHDOG=1")

    def stopping(self, status: str | None = None) -> bool:
        """``STOPPING=1``: shutdown began (so a slow flush is not mistaken for a hang)."""
        return self.notify("STOPPING=1", *((f"STATUS={status}",) if status else ()))

    def close(self) -> None:
        """Close the socket (idempotent)."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None


@dataclass(frozen=True, slots=True)
class WatchdogStats:
    """A snapshot of what the watchdog did."""

    ticks: int
    pets: int
    skipped_unhealthy: int
    skipped_loop_lag: int
    last_loop_lag_s: float


class Watchdog:
    """Pets the systemd watchdog only while ``healthy()`` is true and the loop is responsive.

    ``healthy`` is injected (market data fresh, journal writable...). It must be cheap and
    must not raise; if it does, that counts as unhealthy. ``interval_s`` defaults to half of the
    notifier's watchdog timeout; without a watchdog, :meth:`run` returns at once.
    """

    __slots__ = (
        "_healthy",
        "_last_lag_s",
        "_max_loop_lag_s",
        "_notifier",
        "_pets",
        "_skip_lag",
        "_skip_unhealthy",
        "_stop",
        "_ticks",
        "interval_s",
    )

    def __init__(
        self,
        notifier: SdNotifier,
        healthy: Callable[[], bool],
        *,
        interval_s: float | None = None,
        max_loop_lag_s: float = DEFAULT_MAX_LOOP_LAG_S,
    ) -> None:
        self._notifier = notifier
        self._healthy = healthy
        timeout_s = notifier.watchdog_interval_s()
        self.interval_s = interval_s if interval_s is not None else (
            timeout_s / 2 if timeout_s is not None else None
        )
        self._max_loop_lag_s = max_loop_lag_s
        self._stop = asyncio.Event()
        self._ticks = self._pets = self._skip_unhealthy = self._skip_lag = 0
        self._last_lag_s = 0.0

    def tick(self, loop_lag_s: float = 0.0) -> bool:
        """Check health once and pet if healthy; ``True`` when a ``WATCHDOG=1`` was sent."""
        self._ticks += 1
        self._last_lag_s = loop_lag_s
        if loop_lag_s > self._max_loop_lag_s:
            self._skip_lag += 1
            return False
        try:
            ok = bool(self._healthy())
        except Exception:  # noqa: BLE001 - a broken check means unhealthy, not a dead watchdog
            _log.exception("watchdog_check_failed")
            ok = False
        if not ok:
            self._skip_unhealthy += 1
            return False
        sent = self._notifier.watchdog()
        if sent:
            self._pets += 1
        return sent

    async def run(self) -> None:
        """Tick every ``interval_s`` until :meth:`stop`; returns at once without a watchdog."""
        interval_s = self.interval_s
        if interval_s is None or not self._notifier.enabled:
            return
        loop = asyncio.get_running_loop()
        self.tick()
        while not self._stop.is_set():
            due = loop.time() + interval_s
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=interval_s)
            if self._stop.is_set():
                break
            # A sleep that ends much later than asked means the loop was blocked.
            self.tick(loop_lag_s=max(0.0, loop.time() - due))

    def stop(self) -> None:
        """Make :meth:`run` return."""
        self._stop.set()

    def statistics(self) -> WatchdogStats:
        """Counters for the health endpoint and tests."""
        return WatchdogStats(
            ticks=self._ticks,
            pets=self._pets,
            skipped_unhealthy=self._skip_unhealthy,
            skipped_loop_lag=self._skip_lag,
            last_loop_lag_s=self._last_lag_s,
        )
