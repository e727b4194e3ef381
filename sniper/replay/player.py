"""``sniper replay``: a recording through the real daemon on virtual time, with paper execution.

::

    recording ──records──▶ Player feeder (virtual clock = each record's receive time)
        R currency_pairs ──▶ ReplayMarket.pairs ◀── Daemon poll loop (its own interval)
        W book frames ─────▶ ReplayBook (BookSync) ──on_top──▶ PaperExchange, Daemon
        R order_book ──────▶ ReplayBook snapshot
    Daemon (tracker, sessions: entry, exits, ledger, journal in memory) ──▶ PaperExchange

The daemon is :class:`sniper.app.daemon.Daemon`, unchanged, with replay edges; its sleeps run
on :class:`~sniper.replay.vloop.VirtualTimeLoop`, so timers interleave with the recorded inputs
exactly as their timestamps say, and two runs make the same decisions in the same order.
Nothing is written to ``config.state_dir``: the journal lives in memory.

A corrupt or truncated recording stops the replay at the last good record; the report of what
was replayed is still written (with the error in it), then the error is raised.
"""

from __future__ import annotations

import itertools
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Final, TextIO

import structlog

from sniper.app.daemon import Daemon
from sniper.app.journal import Journal
from sniper.app.ports import Edges, Handlers
from sniper.config import Config, load_config
from sniper.core.book import BookSync
from sniper.core.codec import (
    CH_BOOK_TICKER,
    CH_BOOK_UPDATE,
    CH_TRADES,
    WsFrame,
    decode_book_snapshot,
    decode_book_ticker,
    decode_book_update,
    decode_pairs,
    decode_public_trade,
    decode_ws_message,
    loads,
)
from sniper.core.models import BookSnapshot, Level, PairInfo
from sniper.errors import ProtocolError
from sniper.replay.format import (
    KIND_REST,
    KIND_WS,
    META_BOOK_PREFIX,
    META_PAIRS,
    Record,
    RecordingError,
    iter_records,
    read_header,
)
from sniper.replay.paper import PAPER_QUOTE_BALANCE, PaperExchange, chain_top
from sniper.replay.vloop import VirtualTimeLoop

log = structlog.get_logger("sniper.replay")

REPLAY_RUN_ID: Final = "replay"
DRAIN_AFTER_END_S: Final = 2.0
"""Virtual seconds the daemon keeps running after the last record (in-flight answers land)."""
_PROGRESS_EVERY: Final = 20_000


@dataclass
class PairSeries:
    """Top of book and trades of one watched pair over time (for the report's chart)."""

    tops: list[tuple[int, Decimal | None, Decimal | None]] = field(default_factory=list)
    trades: list[tuple[int, Decimal, Decimal, str]] = field(default_factory=list)


class ReplayBook:
    """One pair's book from recorded frames; reports tops the way ``BookFeed`` does."""

    __slots__ = ("opened", "sync", "watched")

    def __init__(self, pair: str) -> None:
        self.sync = BookSync(pair)
        self.watched = False
        self.opened = False


class ReplayMarket:
    """``MarketData`` from a recording. Every pair's book is kept from the first frame (the
    recorder subscribed on its own schedule); tops are reported only for watched pairs."""

    def __init__(self, wall_ms: Callable[[], int]) -> None:
        self.wall_ms = wall_ms
        self.pairs: list[PairInfo] = []
        self.pair_map: dict[str, PairInfo] = {}
        self.books: dict[str, ReplayBook] = {}
        self.series: dict[str, PairSeries] = {}
        self.on_top: Callable[[str, Any, Any, int, bool], None] | None = None
        self.pair_lists = 0
        self.frames = 0
        self.skipped = 0
        self.decode_errors = 0

    # -- MarketData ------------------------------------------------------------------------

    async def currency_pairs(self) -> list[PairInfo]:
        return list(self.pairs)

    async def order_book(self, pair: str, limit: int = 100) -> BookSnapshot:
        book = self._book(pair).sync
        return BookSnapshot(pair, book.update_id, book.asks(limit), book.bids(limit),
                            self.wall_ms())

    async def watch_book(self, pair: str) -> None:
        book = self._book(pair)
        if book.watched:
            return
        book.watched = True
        self.series.setdefault(pair, PairSeries())
        sync = book.sync
        if sync.is_live:  # a fresh subscription would show the current book at once
            self._emit(pair, book, sync.best_bid(), sync.best_ask(), 0)

    async def unwatch_book(self, pair: str) -> None:
        book = self.books.get(pair)
        if book is not None:
            book.watched = False

    # -- inputs ----------------------------------------------------------------------------

    def pair_of(self, pair: str) -> PairInfo | None:
        return self.pair_map.get(pair)

    def book(self, pair: str) -> BookSync | None:
        book = self.books.get(pair)
        return None if book is None else book.sync

    def _book(self, pair: str) -> ReplayBook:
        book = self.books.get(pair)
        if book is None:
            book = self.books[pair] = ReplayBook(pair)
        return book

    def feed(self, rec: Record, recv_ns: int) -> None:
        """Apply one record (the clock already says its receive time)."""
        try:
            if rec.kind == KIND_WS:
                self._frame(rec.payload, recv_ns)
            elif rec.kind == KIND_REST:
                if rec.meta == META_PAIRS:
                    self.pairs = decode_pairs(loads(rec.payload))
                    self.pair_map = {p.pair: p for p in self.pairs}
                    self.pair_lists += 1
                elif rec.meta.startswith(META_BOOK_PREFIX):
                    pair = rec.meta[len(META_BOOK_PREFIX):]
                    self._snapshot(decode_book_snapshot(loads(rec.payload), pair), recv_ns)
        except ProtocolError as exc:
            self.decode_errors += 1
            log.warning("replay_undecodable", offset=rec.offset, error=str(exc))

    def _frame(self, payload: bytes, recv_ns: int) -> None:
        self.frames += 1
        frame = decode_ws_message(payload)
        if not isinstance(frame, WsFrame) or frame.event != "update":
            self.skipped += 1  # subscribe acks, pongs
            return
        channel = frame.channel
        result = frame.result
        if channel == CH_BOOK_UPDATE:
            update = decode_book_update(result)
            book = self._book(update.pair)
            sync = book.sync
            outcome = sync.on_update(update)
            if outcome.top_changed and sync.is_live and book.watched:
                self._emit(update.pair, book, sync.best_bid(), sync.best_ask(), recv_ns)
        elif channel == CH_BOOK_TICKER:
            top = decode_book_ticker(result)
            book = self._book(top.pair)
            if book.watched:
                bid = (top.bid, top.bid_size) if top.bid is not None and top.bid_size else None
                ask = (top.ask, top.ask_size) if top.ask is not None and top.ask_size else None
                self._emit(top.pair, book, bid, ask, recv_ns)
        elif channel == CH_TRADES:
            trade = decode_public_trade(result)
            series = self.series.get(trade.pair)
            if series is not None:
                series.trades.append((self.wall_ms(), trade.price, trade.amount, trade.side))
        else:
            self.skipped += 1

    def _snapshot(self, snapshot: BookSnapshot, recv_ns: int) -> None:
        book = self._book(snapshot.pair)
        sync = book.sync
        outcome = sync.on_snapshot(snapshot)
        if outcome.top_changed and sync.is_live and book.watched:
            self._emit(snapshot.pair, book, sync.best_bid(), sync.best_ask(), recv_ns)

    def _emit(self, pair: str, book: ReplayBook, bid: Level | None, ask: Level | None,
              recv_ns: int) -> None:
        opened = False
        if not book.opened and ask is not None:
            book.opened = opened = True
        series = self.series.get(pair)
        if series is not None:
            series.tops.append((self.wall_ms(), None if bid is None else bid[0],
                                None if ask is None else ask[0]))
        if self.on_top is not None:
            self.on_top(pair, bid, ask, recv_ns, opened)


@dataclass
class ReplayResult:
    """Everything the report is made of. ``timing`` holds host measurements (not
    deterministic: kept out of ``report.json``)."""

    path: str
    header: dict[str, Any]
    config: Config
    latency_us: int
    records: int = 0
    frames: int = 0
    first_wall_ms: int = 0
    last_wall_ms: int = 0
    events: list[tuple[int, str, dict[str, Any]]] = field(default_factory=list)
    daemon: Daemon | None = None
    paper: PaperExchange | None = None
    market: ReplayMarket | None = None
    error: RecordingError | None = None
    timing: dict[str, Any] = field(default_factory=dict)
    frame_cost_ns: list[int] = field(default_factory=list)


class Player:
    """Replays one recording (series) through a fresh daemon; see module docstring."""

    def __init__(self, path: Path | str, config: Config, *, latency_us: int = 0,
                 progress: TextIO | None = None, measure: bool = True) -> None:
        if latency_us < 0:
            raise ValueError("latency_us must not be negative")
        self.path = Path(path)
        # On the virtual clock time only moves when the loop would sleep: the live busy
        # window (a loop that never sleeps) would stop it, and it changes no decision.
        self.config = config.model_copy(
            update={"entry": config.entry.model_copy(update={"busy_window_s": 0.0})}
        )
        self.latency_us = latency_us
        self.progress = progress if progress is not None and progress.isatty() else None
        self.measure = measure

    def run(self) -> ReplayResult:
        """Replay the whole file on a fresh virtual-time loop (blocking)."""
        header = read_header(self.path)
        result = ReplayResult(str(self.path), header, self.config, self.latency_us)
        loop = VirtualTimeLoop()
        started = time.perf_counter_ns()
        cpu = time.process_time_ns()
        try:
            loop.run_until_complete(self._main(loop, result))
        finally:
            loop.close()
        elapsed_ns = time.perf_counter_ns() - started
        result.timing = {
            "wall_s": elapsed_ns / 1e9,
            "cpu_s": (time.process_time_ns() - cpu) / 1e9,
            "records_per_s": result.records / (elapsed_ns / 1e9) if elapsed_ns else 0.0,
            "frames_per_s": result.frames / (elapsed_ns / 1e9) if elapsed_ns else 0.0,
        }
        return result

    async def _main(self, loop: VirtualTimeLoop, result: ReplayResult) -> None:
        records = iter_records(self.path)
        try:
            first = next(records)
        except StopIteration:
            raise RecordingError(self.path, None, "no records: nothing to replay") from None
        base_mono, base_wall = first.mono_ns, first.wall_ms
        result.first_wall_ms = result.last_wall_ms = base_wall

        def mono_ns() -> int:
            return base_mono + loop.now_ns

        def wall_ms() -> int:
            return base_wall + loop.now_ns // 1_000_000

        market = ReplayMarket(wall_ms)
        balances = dict.fromkeys(self.config.listing.quote_currencies, PAPER_QUOTE_BALANCE)
        paper = PaperExchange(pair_of=market.pair_of, book_of=market.book, wall_ms=wall_ms,
                              mono_ns=mono_ns, balances=balances, latency_us=self.latency_us)

        def bind(handlers: Handlers) -> None:
            paper.bind(handlers)
            market.on_top = chain_top(paper.on_top, handlers.on_top)

        async def nothing() -> None:
            return None

        async def server_time_ms() -> int:
            return wall_ms()

        edges = Edges(market=market, entry=paper, execution=paper,
                      server_time_ms=server_time_ms, bind=bind, start=nothing, stop=nothing,
                      describe=f"replay ({self.path.name}, paper execution)")

        def observe(kind: str, data: dict[str, Any]) -> None:
            result.events.append((wall_ms(), kind, dict(data)))

        journal = Journal(Path(":memory:"))  # never config.state_dir
        daemon = Daemon(self.config, edges, journal, run_id=REPLAY_RUN_ID, wall_ms=wall_ms,
                        mono_ns=mono_ns, observer=observe)
        result.daemon, result.paper, result.market = daemon, paper, market
        try:
            pending: Record | None = self._prime(first, records, market, loop, base_mono,
                                                 result)
            task = loop.create_task(daemon.run(), name="daemon")
            await daemon.wait_ready()
            try:
                if pending is not None:
                    await self._feed(pending, records, market, loop, base_mono, result)
            except RecordingError as exc:
                result.error = exc
            await loop.sleep_until(loop.now_ns + int(DRAIN_AFTER_END_S * 1e9))
            daemon.request_stop()
            await task
        finally:
            journal.close()
        if self.progress is not None:
            self.progress.write("\n")

    def _prime(self, first: Record, records: Iterator[Record], market: ReplayMarket,
               loop: VirtualTimeLoop, base_mono: int, result: ReplayResult) -> Record | None:
        """Feed records up to the first pair list (the daemon's baseline); returns the next."""
        rec: Record | None = first
        while rec is not None:
            loop.advance_to(rec.mono_ns - base_mono)
            self._count(rec, result)
            market.feed(rec, rec.mono_ns)
            if rec.kind == KIND_REST and rec.meta == META_PAIRS:
                return next(records, None)
            rec = next(records, None)
        raise RecordingError(self.path, None, "no currency_pairs answer: nothing to replay")

    async def _feed(self, rec: Record, records: Iterator[Record], market: ReplayMarket,
                    loop: VirtualTimeLoop, base_mono: int, result: ReplayResult) -> None:
        # The hot loop of a replay: locals only, no per-record calls that can be avoided.
        measure = self.measure
        costs = result.frame_cost_ns
        perf = time.perf_counter_ns
        feed = market.feed
        idle_until = loop.idle_until
        advance_to = loop.advance_to
        progress = self.progress
        n_records, n_frames, last_wall = result.records, result.frames, result.last_wall_ms
        try:
            for item in itertools.chain((rec,), records):
                t_ns = item.mono_ns - base_mono
                if idle_until(t_ns):
                    advance_to(t_ns)
                else:
                    await loop.sleep_until(t_ns)
                n_records += 1
                if item.kind == KIND_WS:
                    n_frames += 1
                if item.wall_ms > last_wall:
                    last_wall = item.wall_ms
                if measure:
                    t0 = perf()
                    feed(item, item.mono_ns)
                    costs.append(perf() - t0)
                else:
                    feed(item, item.mono_ns)
                if progress is not None and n_records % _PROGRESS_EVERY == 0:
                    result.records, result.last_wall_ms = n_records, last_wall
                    self._show_progress(result)
        finally:
            result.records, result.frames, result.last_wall_ms = n_records, n_frames, last_wall

    @staticmethod
    def _count(rec: Record, result: ReplayResult) -> None:
        result.records += 1
        if rec.kind == KIND_WS:
            result.frames += 1
        if rec.wall_ms > result.last_wall_ms:
            result.last_wall_ms = rec.wall_ms

    def _show_progress(self, result: ReplayResult) -> None:
        assert self.progress is not None
        seconds = (result.last_wall_ms - result.first_wall_ms) / 1000
        width = 30
        filled = int(seconds) % (width + 1)  # size unknown until the end: a moving bar
        bar = "#" * filled + "-" * (width - filled)
        self.progress.write(f"\r[{bar}] {result.records:,} records, {seconds:,.1f} s replayed")
        self.progress.flush()


def main_replay(file: str, config_path: str, *, report_dir: str | None = None,
                latency_us: int | None = None, out: TextIO | None = None) -> int:
    """``sniper replay``: returns the exit code; raises RecordingError on a bad file (after
    writing the report of what could be replayed)."""
    from sniper.log import configure_logging
    from sniper.replay.report import write_report

    config = load_config(config_path)
    configure_logging("warning", config.log.format)
    out = out or sys.stdout
    player = Player(file, config, latency_us=latency_us or 0, progress=sys.stderr)
    result = player.run()
    write_report(result, Path(report_dir) if report_dir else None, out=out)
    if result.error is not None:
        raise result.error
    return 0
