"""Operations around a running daemon: health/metrics endpoint, systemd notify + watchdog,
notifications, and the observer that turns the daemon's facts into metrics and messages.

Nothing here is on the hot path: the daemon calls the observer after the send.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sniper.app.clock import Clock
from sniper.app.journal import Journal
from sniper.config import Config
from sniper.errors import ConfigError
from sniper.ops.health import CheckResult, HealthServer, directory_writable, within_limit
from sniper.ops.metrics import LatencyStage, Metrics, OrderOutcome
from sniper.ops.notify import Notifier, build_notifier
from sniper.ops.sdnotify import SdNotifier, Watchdog

if TYPE_CHECKING:
    from sniper.app.daemon import Daemon

NOTIFY_KINDS = frozenset(
    {
        "listing",
        "buy_sent",
        "entry_done",
        "sell_placed",
        "closed",
        "exit_triggered",
        "fatal",
        "buy_rejected",
    }
)
MAX_SKEW_MS = 5_000
STATUS_EVERY_S = 1.0
"""How often the systemd STATUS= line is refreshed (sent only when its text changed)."""


class Operations:
    """Starts and stops the operational side-cars of one daemon run."""

    def __init__(self, config: Config, clock: Clock, *, notifier: Notifier | None = None) -> None:
        self.config = config
        self.clock = clock
        self.metrics = Metrics()
        self.notifier = (
            notifier
            if notifier is not None
            else build_notifier(config.notify, metrics=self.metrics)
        )
        self.sd = SdNotifier.from_env()
        self.health: HealthServer | None = None
        self.watchdog: Watchdog | None = None
        self._daemon: Daemon | None = None
        self._journal: Journal | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.pnl = Decimal(0)
        self._stopping_sent = False
        self._baseline_ms = 0  # the start-up pair list counts as the first successful poll

    # -- the observer --------------------------------------------------------------------------

    def observe(self, kind: str, data: dict[str, Any]) -> None:
        """The daemon's observer: metrics always, notifications for the important facts."""
        m = self.metrics
        if kind == "baseline":
            self._baseline_ms = self.clock.wall_ms()
        elif kind == "listing":
            m.listing_seen()
        elif kind == "buy_sent":
            stamps = data.get("latency") or {}
            recv, decision = stamps.get("recv_ns"), stamps.get("decision_ns")
            written, result = stamps.get("written_ns"), stamps.get("result_ns")
            if recv and decision:
                m.observe_latency_ns(LatencyStage.FRAME_TO_DECISION, decision - recv)
            if decision and written:
                m.observe_latency_ns(LatencyStage.DECISION_TO_WRITTEN, written - decision)
            if written and result:
                m.observe_latency_ns(LatencyStage.WRITTEN_TO_ACK, result - written)
            m.order(OrderOutcome.FILLED if data.get("filled") else OrderOutcome.UNFILLED)
        elif kind == "buy_rejected":
            m.order(OrderOutcome.REJECTED)
        elif kind == "buy_unknown":
            m.order(OrderOutcome.UNKNOWN)
        elif kind == "closed":
            pnl = data.get("pnl_quote")
            if isinstance(pnl, Decimal):
                self.pnl += pnl
                m.set_pnl_quote(self.pnl)
        if self._daemon is not None:
            m.set_open_positions(sum(1 for s in self._daemon.sessions.values() if not s.closed))
        if kind in NOTIFY_KINDS:
            self.notifier.notify_nowait({"event": kind, **data})

    # -- lifecycle -------------------------------------------------------------------------------

    def market_fresh(self) -> CheckResult:
        """Fresh while the last successful pair-list poll (or the start-up baseline) is at most
        max(5 s, 20 poll intervals) old."""
        daemon = self._daemon
        last_ms = max(daemon.stats.last_poll_ms if daemon is not None else 0, self._baseline_ms)
        if not last_ms:
            return CheckResult(False, "no successful poll yet")
        age_s = (self.clock.wall_ms() - last_ms) / 1000
        limit_s = max(5.0, 20 * self.config.listing.poll_interval_s)
        return CheckResult(age_s <= limit_s, f"last pair-list poll {age_s:.1f} s ago")

    def kill_switch(self) -> CheckResult:
        """Informational (never fails): whether ``sniper halt`` is in force."""
        halted = bool(getattr(self._daemon, "halted", False))
        return CheckResult(True, "HALTED: not arming or firing" if halted else "not halted")

    def status_line(self) -> str:
        """The one-line state shown by ``systemctl status`` (STATUS=)."""
        daemon = self._daemon
        text = f"watching {self.config.exchange.rest_url}"
        if daemon is None:
            return text
        open_ = sum(1 for s in daemon.sessions.values() if not s.closed)
        text += f"; {open_} open position{'' if open_ == 1 else 's'}"
        if getattr(daemon, "halted", False):
            text = "HALTED (sniper resume to re-arm); " + text
        if not self.market_fresh().ok:
            text = "MARKET DATA STALE; " + text
        return text

    def journal_ok(self) -> CheckResult:
        journal = self._journal
        ok = journal is not None and journal.writable()
        return CheckResult(ok, "journal writable" if ok else "journal NOT writable")

    def sample_edges(self, metrics: Metrics) -> None:
        """Copy the edges' own counters into the metrics (run at every scrape).

        Reconnects: the sum over every connection that reports ``statistics().reconnects``.
        Rate-limit headroom: the last ``X-Gate-RateLimit-Requests-Remain`` per REST endpoint.
        """
        daemon = self._daemon
        extra: dict[str, Any] = getattr(getattr(daemon, "edges", None), "extra", None) or {}
        reconnects = 0
        for part in extra.values():
            statistics = getattr(part, "statistics", None)
            count = getattr(statistics(), "reconnects", None) if callable(statistics) else None
            if isinstance(count, int):
                reconnects += count
            limits = getattr(part, "last_rate_limit", None)
            if isinstance(limits, dict):
                for endpoint, limit in limits.items():
                    remaining = getattr(limit, "remaining", None)
                    if isinstance(remaining, int):
                        metrics.set_rate_limit_remaining(str(endpoint), remaining)
        metrics.set_ws_reconnects(reconnects)

    async def start(self, daemon: Daemon, journal: Journal) -> None:
        """Serve health/metrics (if configured), start notifications and the watchdog task.

        An endpoint that cannot be bound is a :class:`ConfigError` naming ``health.port``
        (nothing else has been started then).
        """
        self._daemon = daemon
        self._journal = journal
        self.metrics.before_render(self.sample_edges)
        health = self.config.health
        if health.port is not None:
            server = HealthServer(
                host=health.host,
                port=health.port,
                metrics=self.metrics,
                checks={
                    "market_data": self.market_fresh,
                    "journal": self.journal_ok,
                    "clock_skew": within_limit(lambda: float(self.clock.offset_ms), MAX_SKEW_MS),
                    "state_dir": directory_writable(self.config.state_dir),
                    "kill_switch": self.kill_switch,
                },
            )
            try:
                await server.start()
            except OSError as exc:
                raise ConfigError(
                    "health.port",
                    f"cannot listen on {health.host}:{health.port}: {exc.strerror or exc}",
                ) from None
            self.health = server
        self.notifier.start()
        self.watchdog = Watchdog(self.sd, lambda: self.market_fresh().ok and self.journal_ok().ok)
        self._tasks.append(asyncio.get_running_loop().create_task(self._ready(daemon)))

    async def _ready(self, daemon: Daemon) -> None:
        await daemon.wait_ready()
        status = self.status_line()
        self.sd.ready(status=status)
        if not self.sd.enabled:
            return
        loop = asyncio.get_running_loop()
        if self.watchdog is not None:
            self._tasks.append(loop.create_task(self.watchdog.run(), name="watchdog"))
        # Halt/resume and staleness show up in `systemctl status` within a second.
        while True:
            await asyncio.sleep(STATUS_EVERY_S)
            line = self.status_line()
            if line != status:
                status = line
                self.sd.status(line)

    def stopping(self) -> None:
        """Tell systemd we are stopping (as soon as the signal arrives; idempotent)."""
        if not self._stopping_sent:
            self._stopping_sent = True
            self.sd.stopping()

    async def stop(self) -> None:
        self.stopping()
        if self.watchdog is not None:
            self.watchdog.stop()
        while self._tasks:  # _ready() may have added the watchdog's task meanwhile
            task = self._tasks.pop()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self.health is not None:
            await self.health.stop()
        await self.notifier.aclose(timeout_s=2.0)
        self.sd.close()


def chain(
    *observers: Callable[[str, dict[str, Any]], None],
) -> Callable[[str, dict[str, Any]], None]:
    """One observer calling several (a failing one never stops the others)."""

    def observe(kind: str, data: dict[str, Any]) -> None:
        for observer in observers:
            with contextlib.suppress(Exception):
                observer(kind, data)

    return observe


def monotonic_s() -> float:
    return time.monotonic()
