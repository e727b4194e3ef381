"""The daemon: discover -> arm -> fire -> exit -> remember, over whichever edges were assembled.

::

    poll currency_pairs --> ListingTracker --PairListed/PairOpened--> arm(): journal texts,
                                                                       watch book, prepare buy
    book stream --on_top--> ListingSession.on_top --Fire--> EntrySender.fire (one write)
    private channels --on_order/on_fill--> ListingSession --> ExitMachine --> Execution
    every decision --> Journal

Shutdown (SIGTERM/SIGINT): stop buying, leave exit orders resting, flush the journal, exit 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import structlog

from sniper.app.journal import Journal
from sniper.app.killswitch import is_halted
from sniper.app.ports import Edges, Handlers
from sniper.app.recovery import recover_sessions
from sniper.app.session import ListingSession, SessionSettings
from sniper.config import Config
from sniper.core.listing import ListingTracker, PairDelisted, PairListed, PairOpened
from sniper.core.models import Balance, Fill, Order, PairInfo
from sniper.errors import ExchangeError, JournalError

log = structlog.get_logger("sniper.daemon")

DAY_MS = 86_400_000
MAX_CLOCK_SKEW_MS = 30_000
"""Beyond this |offset| to Gate's clock the daemon refuses to arm or fire. Gate refuses requests
more than 60 s off its clock; an offset this large means the host clock is broken, so deadlines
and ``buy_start`` timing cannot be trusted either (``sniper doctor`` fails at the same limit)."""


@dataclass
class DaemonStatistics:
    polls: int = 0
    poll_errors: int = 0
    listings_seen: int = 0
    armed: int = 0
    skipped: int = 0
    last_poll_ms: int = 0
    armed_at_ns: dict[str, int] = field(default_factory=dict)


class Daemon:
    """Runs the pipeline until :meth:`request_stop`."""

    def __init__(
        self,
        config: Config,
        edges: Edges,
        journal: Journal,
        *,
        run_id: str,
        wall_ms: Callable[[], int],
        mono_ns: Callable[[], int],
        observer: Callable[[str, dict[str, Any]], None] | None = None,
        clock_offset_ms: Callable[[], int] | None = None,
    ) -> None:
        self.config = config
        self.clock_offset_ms = clock_offset_ms
        self.clock_refusal: str | None = None
        self.edges = edges
        self.journal = journal
        self.run_id = run_id
        self.wall_ms = wall_ms
        self.mono_ns = mono_ns
        self.observer = observer
        self.tracker = ListingTracker(
            config.listing.quote_currencies, include_premarket=config.listing.include_premarket
        )
        self.sessions: dict[str, ListingSession] = {}
        self.stats = DaemonStatistics()
        self.halted = False
        self.fatal: BaseException | None = None
        self._stop = asyncio.Event()
        self._ready = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self.settings = SessionSettings.from_config(config, run_id)

    # -- lifecycle ---------------------------------------------------------------------------

    def request_stop(self) -> None:
        self._stop.set()

    async def wait_ready(self) -> None:
        await self._ready.wait()

    async def run(self) -> int:
        """Start, serve until stopped, shut down cleanly. Returns an exit code."""
        self.edges.bind(self._handlers())
        await self.edges.start()
        try:
            self._check_clock()
            await self._recover()
            pairs = await self.edges.market.currency_pairs()
            self.tracker.observe(pairs, self.wall_ms() // 1000)  # the baseline: never bought
            self._emit("baseline", {"pairs": len(pairs)})
            self._ready.set()
            self._spawn(self._poll_loop(), "poll")
            self._spawn(self._tick_loop(), "tick")
            await self._stop.wait()
        finally:
            await self._shutdown()
        if isinstance(self.fatal, JournalError):
            return 1
        return 0

    async def _shutdown(self) -> None:
        for session in self.sessions.values():
            session.pause_buying()  # not stop_buying: a restart must still buy a pending listing
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.edges.stop()
        self._emit("stopped", {"sessions": len(self.sessions)})

    def _spawn(self, coro: Any, name: str) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            self.fail(exc)

    def fail(self, exc: BaseException) -> None:
        """A fatal error (journal unwritable, bug): stop buying, keep exits, stop the daemon."""
        if self.fatal is None:
            self.fatal = exc
            log.error("fatal", error=str(exc), kind=type(exc).__name__)
            self._emit("fatal", {"error": str(exc)})
        self._stop.set()

    def _check_clock(self) -> None:
        """After the clock sync: refuse to arm or fire while the offset to Gate is too large."""
        offset_ms = None if self.clock_offset_ms is None else self.clock_offset_ms()
        if offset_ms is None or abs(offset_ms) <= MAX_CLOCK_SKEW_MS:
            return
        self.clock_refusal = (
            f"local clock is {offset_ms:+d} ms off Gate's (limit {MAX_CLOCK_SKEW_MS} ms): "
            "not arming or firing; fix the host clock (NTP) and restart"
        )
        log.error("clock_skew", offset_ms=offset_ms, limit_ms=MAX_CLOCK_SKEW_MS,
                  detail=self.clock_refusal)
        self._emit("clock_skew", {"offset_ms": offset_ms, "limit_ms": MAX_CLOCK_SKEW_MS})

    # -- discovery ---------------------------------------------------------------------------

    async def _poll_loop(self) -> None:
        interval = self.config.listing.poll_interval_s
        while not self._stop.is_set():
            started = self.mono_ns()
            await self.poll_once()
            elapsed_s = (self.mono_ns() - started) / 1e9
            await asyncio.sleep(max(0.0, interval - elapsed_s))

    async def poll_once(self) -> None:
        """One discovery round: kill switch, pair list, listing events, arming."""
        self.halted = is_halted(self.journal)
        if self.halted:
            for session in self.sessions.values():
                session.stop_buying("halted")
        try:
            pairs = await self.edges.market.currency_pairs()
        except ExchangeError as exc:
            self.stats.poll_errors += 1
            log.warning("poll failed", error=str(exc))
            return
        self.stats.polls += 1
        now_ms = self.wall_ms()
        self.stats.last_poll_ms = now_ms
        for event in self.tracker.observe(pairs, now_ms // 1000):
            if isinstance(event, PairListed):
                self.stats.listings_seen += 1
                self._emit("listing", {"pair": event.pair.pair, "scheduled": event.scheduled,
                                       "buy_start_s": event.pair.buy_start_s})
                await self._arm(event.pair)
            elif isinstance(event, PairOpened):
                opened = self.sessions.get(event.pair.pair)
                if opened is not None:
                    opened.update_pair(event.pair)
                    self._emit("opened", {"pair": event.pair.pair})
            elif isinstance(event, PairDelisted):
                self._emit("delisted", {"pair": event.pair.pair})

    async def _arm(self, info: PairInfo) -> None:
        if info.pair in self.sessions:
            self.sessions[info.pair].update_pair(info)
            return
        reason = self._refuse_reason()
        if reason:
            self.stats.skipped += 1
            self.journal.append("skipped", info.pair, {"reason": reason}, ts_ms=self.wall_ms())
            self._emit("skipped", {"pair": info.pair, "reason": reason})
            return
        session = ListingSession.arm(
            info, self.settings, self.edges, self.journal,
            wall_ms=self.wall_ms, mono_ns=self.mono_ns, emit=self._emit, on_fatal=self.fail,
        )
        self.sessions[info.pair] = session
        try:
            await self.edges.market.watch_book(info.pair)
        except ExchangeError as exc:
            # a pending pair may be refused until it exists; the feed keeps retrying
            log.warning("watch failed", pair=info.pair, error=str(exc))
        self.stats.armed += 1
        self.stats.armed_at_ns[info.pair] = self.mono_ns()
        self._emit("armed", {"pair": info.pair, "texts": list(session.entry.texts)})

    def _refuse_reason(self) -> str | None:
        if self.halted:
            return "halted"
        if self.clock_refusal is not None:
            return "clock_skew"
        active = sum(1 for s in self.sessions.values() if not s.closed)
        if active >= self.config.risk.max_open_positions:
            return "max_open_positions"
        cap = self.config.risk.max_quote_per_day
        if cap is not None:
            since = self.wall_ms() - DAY_MS
            spent = sum(
                (s.quote_spent_since(since) for s in self.sessions.values()), Decimal(0)
            )
            if spent + self.config.entry.quote_amount > cap:
                return "max_quote_per_day"
        return None

    # -- routing (called by the edges; must not block) ----------------------------------------

    def _handlers(self) -> Handlers:
        return Handlers(on_top=self._on_top, on_order=self._on_order, on_fill=self._on_fill,
                        on_balance=self._on_balance, on_announcement=self._on_announcement)

    def _on_announcement(self, symbol: str, start_s: int | None) -> None:
        """A listing announced ahead of its pair: remember it and subscribe its book early."""
        if self.halted:
            return
        self._emit("announced", {"symbol": symbol, "start_s": start_s})
        for quote in self.config.listing.quote_currencies:
            pair = f"{symbol}_{quote}"
            if self.tracker.is_baseline(pair) or pair in self.sessions:
                continue
            self.tracker.add_announced(symbol, quote, start_s)
            self._spawn(self._prewatch(pair), f"prewatch-{pair}")

    async def _prewatch(self, pair: str) -> None:
        try:
            await self.edges.market.watch_book(pair)
        except ExchangeError as exc:
            # an unknown pair is refused until it exists; arming retries when it appears
            log.info("prewatch refused", pair=pair, error=str(exc))

    def _on_top(self, pair: str, bid: Any, ask: Any, recv_ns: int, opened: bool) -> None:
        session = self.sessions.get(pair)
        if session is not None:
            session.on_top(bid, ask, recv_ns, opened)

    def _on_order(self, order: Order) -> None:
        session = self.sessions.get(order.pair)
        if session is not None:
            session.on_order(order)

    def _on_fill(self, fill: Fill) -> None:
        session = self.sessions.get(fill.pair)
        if session is not None:
            session.on_fill(fill)

    def _on_balance(self, balance: Balance) -> None:
        for session in self.sessions.values():
            session.on_balance(balance)

    # -- timers ------------------------------------------------------------------------------

    async def _tick_loop(self) -> None:
        while not self._stop.is_set():
            now_ms = self.wall_ms()
            for session in list(self.sessions.values()):
                session.on_tick(now_ms)
                if not self.halted and session.busy_window_due(now_ms):
                    self._spawn(session.busy_window(), f"busy-{session.pair.pair}")
            await asyncio.sleep(0.1)

    # -- restart -----------------------------------------------------------------------------

    async def _recover(self) -> None:
        for session in recover_sessions(
            self.journal, self.settings, self.edges,
            wall_ms=self.wall_ms, mono_ns=self.mono_ns, emit=self._emit, on_fatal=self.fail,
        ):
            self.sessions[session.pair.pair] = session
            await session.reconcile()
            if self.clock_refusal is not None:
                session.pause_buying()  # exits are still managed; no buy from this process
            if not session.closed:
                with contextlib.suppress(ExchangeError):
                    await self.edges.market.watch_book(session.pair.pair)
            self._emit("recovered", {"pair": session.pair.pair, **session.describe()})

    def _emit(self, kind: str, data: dict[str, Any]) -> None:
        if self.observer is not None:
            self.observer(kind, data)


def install_signal_handlers(
    daemon: Daemon, *, before_stop: Callable[[], None] | None = None
) -> None:
    """SIGTERM/SIGINT stop the daemon (``before_stop`` first: e.g. systemd's STOPPING=1)."""
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        if before_stop is not None:
            with contextlib.suppress(Exception):
                before_stop()
        daemon.request_stop()

    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, on_signal)
