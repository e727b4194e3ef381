"""One pair's book, kept from Gate's stream: subscriptions + REST snapshots + ``BookSync``.

Protocol: gate-v4.md §6.4 and §6.6 (method A: ``spot.order_book_update`` with a REST
``/spot/order_book?with_id=true`` snapshot; ``full`` pushes replace the book) and the
``spot.book_ticker`` best bid/ask stream. The sequencing rules live in the pure
:class:`sniper.core.book.BookSync`; this module only does what needs I/O: subscribe, fetch a
snapshot when the sync asks for one (never two fetches at once, with backoff on failure), and
call the ``on_top`` listeners with the new best bid/ask.

Wiring (one connection carries one or more pairs)::

    router = BookRouter()
    feed = GateFeed(ws_url, router.on_frame)
    book = BookFeed("ABC_USDT", feed, rest.order_book_snapshot, on_top=trigger.on_top)
    router.add(book)
    feed.start(); await book.start()
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Final, Protocol

import structlog

from sniper.core.backoff import Backoff
from sniper.core.book import BookStatistics, BookSync
from sniper.core.codec import (
    CH_BOOK_TICKER,
    CH_BOOK_UPDATE,
    WsFrame,
    book_update_payload,
    decode_book_ticker,
    decode_book_update,
)
from sniper.core.models import BookSnapshot, BookTop, BookUpdate, Level
from sniper.errors import ExchangeError, ProtocolError
from sniper.gate.wsconn import BackoffPolicy

TopHandler = Callable[[str, Level | None, Level | None, int, bool], None]
"""``on_top(pair, best_bid, best_ask, recv_ns, opened)``; ``opened`` is True exactly once: the
first time this pair shows an ask (the book opened)."""

SnapshotFetcher = Callable[[str], Awaitable[BookSnapshot]]
"""``fetch_snapshot(pair)``: the REST depth snapshot with its update id."""

UPDATE_INTERVALS: Final = ("20ms", "100ms")

_log = structlog.get_logger(__name__)


class Subscriber(Protocol):
    """What BookFeed needs of a feed connection (:class:`sniper.gate.ws.GateFeed` fits)."""

    async def subscribe(
        self,
        channel: str,
        payload: Sequence[str] = (),
        *,
        private: bool = False,
        timeout_s: float | None = None,
    ) -> None: ...

    async def unsubscribe(
        self, channel: str, payload: Sequence[str] = (), *, timeout_s: float | None = None
    ) -> None: ...


@dataclass(frozen=True, slots=True)
class BookFeedStatistics:
    """Counters of one pair's feed plus its book's own counters."""

    pair: str
    tops: int
    snapshots_fetched: int
    snapshot_failures: int
    tickers: int
    book: BookStatistics


class BookFeed:
    """Keeps ``pair``'s book in sync and reports best bid/ask changes.

    ``updates`` subscribes ``spot.order_book_update`` at ``interval`` (``20ms`` or ``100ms``);
    ``ticker`` subscribes ``spot.book_ticker``. With both, listeners hear whichever is first.
    Listeners are only called while the local book is live (ticker tops always are).
    """

    def __init__(
        self,
        pair: str,
        feed: Subscriber,
        fetch_snapshot: SnapshotFetcher,
        *,
        on_top: TopHandler | None = None,
        updates: bool = True,
        ticker: bool = False,
        interval: str = "100ms",
        book: BookSync | None = None,
        backoff: BackoffPolicy | None = None,
        rand: Callable[[], float] = random.random,
    ) -> None:
        if interval not in UPDATE_INTERVALS:
            raise ValueError(f"interval must be one of {UPDATE_INTERVALS}, not {interval!r}")
        if not (updates or ticker):
            raise ValueError("subscribe at least one of updates / ticker")
        self.pair = pair
        self.book = book if book is not None else BookSync(pair)
        self._feed = feed
        self._fetch = fetch_snapshot
        self._listeners: list[TopHandler] = [on_top] if on_top is not None else []
        self._updates = updates
        self._ticker = ticker
        self._interval = interval
        self._backoff: BackoffPolicy = backoff if backoff is not None else Backoff(0.2, 5.0)
        self._rand = rand
        self._resync_task: asyncio.Task[None] | None = None
        self._opened = False
        self._closed = False
        self._tops = 0
        self._fetched = 0
        self._fetch_failures = 0
        self._tickers = 0

    def add_listener(self, on_top: TopHandler) -> None:
        """Add another ``on_top`` listener."""
        self._listeners.append(on_top)

    @property
    def opened(self) -> bool:
        """True once the pair has shown an ask."""
        return self._opened

    async def start(self) -> None:
        """Subscribe the configured streams, one request each (an unknown pair raises)."""
        if self._updates:
            await self._feed.subscribe(
                CH_BOOK_UPDATE, book_update_payload(self.pair, self._interval)
            )
        if self._ticker:
            await self._feed.subscribe(CH_BOOK_TICKER, [self.pair])

    async def close(self) -> None:
        """Unsubscribe (best effort) and stop any snapshot fetch."""
        self._closed = True
        task, self._resync_task = self._resync_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        with contextlib.suppress(ExchangeError):
            if self._updates:
                await self._feed.unsubscribe(
                    CH_BOOK_UPDATE, book_update_payload(self.pair, self._interval)
                )
            if self._ticker:
                await self._feed.unsubscribe(CH_BOOK_TICKER, [self.pair])

    def statistics(self) -> BookFeedStatistics:
        """Counters since construction."""
        return BookFeedStatistics(
            pair=self.pair,
            tops=self._tops,
            snapshots_fetched=self._fetched,
            snapshot_failures=self._fetch_failures,
            tickers=self._tickers,
            book=self.book.statistics(),
        )

    # -- inputs (hot path) -------------------------------------------------------------------

    def on_frame(self, frame: WsFrame, recv_ns: int) -> None:
        """A GateFeed push; frames of other channels or pairs are ignored."""
        if frame.channel == CH_BOOK_UPDATE:
            update = decode_book_update(frame.result)
            if update.pair == self.pair:
                self.handle_update(update, recv_ns)
        elif frame.channel == CH_BOOK_TICKER:
            top = decode_book_ticker(frame.result)
            if top.pair == self.pair:
                self.handle_ticker(top, recv_ns)

    def handle_update(self, update: BookUpdate, recv_ns: int) -> None:
        """Feed one decoded ``spot.order_book_update`` of this pair."""
        book = self.book
        result = book.on_update(update)
        if result.need_snapshot:
            self._request_snapshot()
        if result.top_changed and book.is_live:
            self._emit(book.best_bid(), book.best_ask(), recv_ns)

    def handle_ticker(self, top: BookTop, recv_ns: int) -> None:
        """Feed one decoded ``spot.book_ticker`` of this pair."""
        self._tickers += 1
        bid = (top.bid, top.bid_size) if top.bid is not None and top.bid_size is not None else None
        ask = (top.ask, top.ask_size) if top.ask is not None and top.ask_size is not None else None
        self._emit(bid, ask, recv_ns)

    def _emit(self, bid: Level | None, ask: Level | None, recv_ns: int) -> None:
        opened = False
        if not self._opened and ask is not None:
            self._opened = opened = True
        self._tops += 1
        for listener in self._listeners:
            listener(self.pair, bid, ask, recv_ns, opened)

    # -- snapshots ---------------------------------------------------------------------------

    def _request_snapshot(self) -> None:
        if self._closed or (self._resync_task is not None and not self._resync_task.done()):
            return  # one fetch at a time; BookSync asks again if the answer does not fit
        self._resync_task = asyncio.get_running_loop().create_task(
            self._resync(), name=f"book-snapshot-{self.pair}"
        )

    async def _resync(self) -> None:
        try:
            await self._resync_until_fit()
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - a fetcher bug must not leave the book waiting forever
            _log.exception("book_snapshot_crashed", pair=self.pair)
            self.book.snapshot_failed()

    async def _resync_until_fit(self) -> None:
        book = self.book
        while True:
            try:
                snapshot = await self._fetch(self.pair)
            except ExchangeError as exc:
                self._fetch_failures += 1
                _log.warning("book_snapshot_failed", pair=self.pair, error=str(exc))
                await asyncio.sleep(self._backoff.next_delay(self._rand()))
                book.snapshot_failed()  # the next update asks again
                return
            recv_ns = time.monotonic_ns()
            self._fetched += 1
            self._backoff.reset()
            result = book.on_snapshot(snapshot)
            if result.top_changed and book.is_live:
                self._emit(book.best_bid(), book.best_ask(), recv_ns)
            if not result.need_snapshot:
                return
            _log.info("book_snapshot_refetch", pair=self.pair, outcome=result.outcome.value)


class BookRouter:
    """Decodes each book push once and hands it to the :class:`BookFeed` of its pair.

    Pass :meth:`on_frame` as the GateFeed's ``on_frame``. Undecodable pushes are counted and
    dropped (the book notices the missing ids and resyncs).
    """

    def __init__(self) -> None:
        self._books: dict[str, BookFeed] = {}
        self.decode_errors = 0
        self.unrouted = 0

    def add(self, book: BookFeed) -> None:
        """Route this pair's pushes to ``book``."""
        self._books[book.pair] = book

    def remove(self, pair: str) -> None:
        """Stop routing ``pair``."""
        self._books.pop(pair, None)

    def on_frame(self, frame: WsFrame, recv_ns: int) -> None:
        """GateFeed handler."""
        channel = frame.channel
        try:
            if channel == CH_BOOK_UPDATE:
                update = decode_book_update(frame.result)
                book = self._books.get(update.pair)
                if book is not None:
                    book.handle_update(update, recv_ns)
                    return
            elif channel == CH_BOOK_TICKER:
                top = decode_book_ticker(frame.result)
                book = self._books.get(top.pair)
                if book is not None:
                    book.handle_ticker(top, recv_ns)
                    return
        except ProtocolError as exc:
            self.decode_errors += 1
            _log.warning("book_push_undecodable", channel=channel, error=str(exc))
            return
        self.unrouted += 1
