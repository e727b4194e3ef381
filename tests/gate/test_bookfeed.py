"""BookFeed: subscriptions, snapshot fetches driven by BookSync, top listeners, routing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from decimal import Decimal
from typing import Any

import pytest

from sniper.core.backoff import Backoff
from sniper.core.book import BookState
from sniper.core.codec import WsFrame
from sniper.core.models import BookSnapshot, BookTop, BookUpdate, Level
from sniper.errors import TransientError
from sniper.gate.bookfeed import BookFeed, BookRouter
from sniper.gate.ws import GateFeed
from tests.gate.wsserver import GateWsServer

PAIR = "ABC_USDT"
D = Decimal


def level(price: str, amount: str) -> Level:
    return (D(price), D(amount))


def update(
    first: int, last: int, asks: Any = (), bids: Any = (), *, full: bool = False
) -> BookUpdate:
    return BookUpdate(
        PAIR,
        first,
        last,
        tuple(level(p, a) for p, a in asks),
        tuple(level(p, a) for p, a in bids),
        full=full,
    )


def snapshot(update_id: int, asks: Any = (), bids: Any = ()) -> BookSnapshot:
    return BookSnapshot(
        PAIR,
        update_id,
        tuple(level(p, a) for p, a in asks),
        tuple(level(p, a) for p, a in bids),
    )


def wire_update(first: int, last: int, asks: Any = (), bids: Any = (), pair: str = PAIR) -> Any:
    """A ``spot.order_book_update`` result as Gate sends it."""
    return {
        "t": 1_700_000_000_000 + last,
        "l": "100",
        "e": "depthUpdate",
        "E": 1_700_000_000,
        "s": pair,
        "U": first,
        "u": last,
        "a": [list(x) for x in asks],
        "b": [list(x) for x in bids],
    }


class Tops:
    """An on_top listener that records calls and can be awaited."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Level | None, Level | None, int, bool]] = []
        self._changed = asyncio.Event()

    def __call__(
        self, pair: str, bid: Level | None, ask: Level | None, recv_ns: int, opened: bool
    ) -> None:
        self.calls.append((pair, bid, ask, recv_ns, opened))
        self._changed.set()

    async def wait(self, count: int) -> None:
        async with asyncio.timeout(5):
            while len(self.calls) < count:
                self._changed.clear()
                await self._changed.wait()

    def tops(self) -> list[tuple[Level | None, Level | None, bool]]:
        return [(bid, ask, opened) for _, bid, ask, _, opened in self.calls]


class Snapshots:
    """A fetch_snapshot fake: answers from a list; can be held to prove no concurrent fetch."""

    def __init__(self, *answers: BookSnapshot | Exception) -> None:
        self.answers = list(answers)
        self.calls = 0
        self.release = asyncio.Event()
        self.release.set()
        self.called = asyncio.Event()

    async def __call__(self, pair: str) -> BookSnapshot:
        assert pair == PAIR
        self.calls += 1
        self.called.set()
        await self.release.wait()
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


class FakeSubscriber:
    def __init__(self) -> None:
        self.subscribed: list[tuple[str, tuple[str, ...]]] = []
        self.unsubscribed: list[tuple[str, tuple[str, ...]]] = []

    async def subscribe(
        self,
        channel: str,
        payload: Sequence[str] = (),
        *,
        private: bool = False,
        timeout_s: float | None = None,
    ) -> None:
        self.subscribed.append((channel, tuple(payload)))

    async def unsubscribe(
        self, channel: str, payload: Sequence[str] = (), *, timeout_s: float | None = None
    ) -> None:
        self.unsubscribed.append((channel, tuple(payload)))


async def settle(feed: BookFeed) -> None:
    """Wait for the snapshot task BookFeed started, if any (a future, not a sleep)."""
    task = feed._resync_task
    if task is not None:
        await asyncio.wait_for(task, 5)


@pytest.fixture
async def server() -> AsyncIterator[GateWsServer]:
    async with GateWsServer() as srv:
        yield srv


async def test_gap_resyncs_through_a_new_snapshot_end_to_end(server: GateWsServer) -> None:
    tops = Tops()
    fetch = Snapshots(
        snapshot(100, asks=[("1.0", "4")], bids=[("0.9", "3")]),
        snapshot(109, asks=[("1.2", "2")], bids=[("0.95", "1")]),
    )
    router = BookRouter()
    feed = GateFeed(server.url, router.on_frame, backoff=Backoff(0.01, 0.05))
    book = BookFeed(PAIR, feed, fetch, on_top=tops, interval="20ms")
    router.add(book)
    feed.start()
    try:
        await book.start()
        assert server.requests("spot.order_book_update")[0].msg["payload"] == [PAIR, "20ms"]

        # Buffered until the first snapshot; the snapshot plus the buffer make the book live.
        await server.push("spot.order_book_update", wire_update(101, 102, asks=[("1.0", "5")]))
        await tops.wait(1)
        assert fetch.calls == 1
        assert tops.tops() == [(level("0.9", "3"), level("1.0", "5"), True)]

        await server.push("spot.order_book_update", wire_update(103, 103, bids=[("0.91", "2")]))
        await tops.wait(2)
        assert tops.tops()[1] == (level("0.91", "2"), level("1.0", "5"), False)

        # 104..109 lost: the book is dropped, a second snapshot is fetched and bridged.
        await server.push("spot.order_book_update", wire_update(110, 111, asks=[("1.2", "7")]))
        await tops.wait(3)
        assert fetch.calls == 2
        assert tops.tops()[2] == (level("0.95", "1"), level("1.2", "7"), False)
        stats = book.statistics()
        assert (stats.book.gaps, stats.snapshots_fetched) == (1, 2)
        assert book.book.state is BookState.LIVE
    finally:
        await book.close()
        await feed.close()
    assert server.requests("spot.order_book_update", "unsubscribe")


async def test_book_ticker_stream_reports_tops(server: GateWsServer) -> None:
    tops = Tops()
    router = BookRouter()
    feed = GateFeed(server.url, router.on_frame, backoff=Backoff(0.01, 0.05))
    book = BookFeed(PAIR, feed, Snapshots(), on_top=tops, updates=False, ticker=True)
    router.add(book)
    feed.start()
    try:
        await book.start()
        assert [r.msg["payload"] for r in server.requests("spot.book_ticker")] == [[PAIR]]
        ticker = {"t": 1, "u": 5, "s": PAIR, "b": "0.9", "B": "3", "a": "", "A": ""}
        await server.push("spot.book_ticker", ticker)
        await server.push("spot.book_ticker", {**ticker, "u": 6, "a": "1.1", "A": "4"})
        await tops.wait(2)
        assert tops.tops() == [
            (level("0.9", "3"), None, False),
            (level("0.9", "3"), level("1.1", "4"), True),
        ]
    finally:
        await feed.close()


async def test_snapshot_is_never_fetched_twice_at_once() -> None:
    tops = Tops()
    fetch = Snapshots(snapshot(100, asks=[("1.0", "1")]))
    fetch.release.clear()
    book = BookFeed(PAIR, FakeSubscriber(), fetch, on_top=tops)
    book.handle_update(update(101, 101, asks=[("1.0", "2")]), 1)
    await asyncio.wait_for(fetch.called.wait(), 5)
    for n in range(102, 110):
        book.handle_update(update(n, n, asks=[("1.0", str(n))]), n)
    assert fetch.calls == 1
    fetch.release.set()
    await settle(book)
    assert fetch.calls == 1
    assert book.book.best_ask() == level("1.0", "109")
    assert tops.tops() == [(None, level("1.0", "109"), True)]


async def test_too_old_snapshot_is_fetched_again() -> None:
    fetch = Snapshots(snapshot(90), snapshot(100, bids=[("0.5", "1")]))
    book = BookFeed(PAIR, FakeSubscriber(), fetch)
    book.handle_update(update(101, 101, bids=[("0.6", "1")]), 1)
    await settle(book)
    assert fetch.calls == 2
    assert book.book.is_live
    assert book.book.best_bid() == level("0.6", "1")


async def test_failed_fetch_backs_off_then_the_next_update_asks_again() -> None:
    fetch = Snapshots(TransientError("rest down"), snapshot(100, asks=[("2", "1")]))
    book = BookFeed(PAIR, FakeSubscriber(), fetch, backoff=Backoff(0.001, 0.001))
    book.handle_update(update(101, 101), 1)
    await settle(book)
    assert (fetch.calls, book.statistics().snapshot_failures) == (1, 1)
    book.handle_update(update(102, 102), 2)
    await settle(book)
    assert fetch.calls == 2
    assert book.book.is_live


async def test_full_push_makes_the_book_live_without_rest() -> None:
    tops = Tops()
    fetch = Snapshots()
    book = BookFeed(PAIR, FakeSubscriber(), fetch, on_top=tops)
    book.handle_update(update(1, 50, asks=[("3", "1")], bids=[("2", "1")], full=True), 7)
    assert fetch.calls == 0
    assert tops.calls == [(PAIR, level("2", "1"), level("3", "1"), 7, True)]


async def test_subscriptions_follow_the_configuration() -> None:
    subscriber = FakeSubscriber()
    book = BookFeed(PAIR, subscriber, Snapshots(), ticker=True)
    await book.start()
    await book.close()
    expected = [("spot.order_book_update", (PAIR, "100ms")), ("spot.book_ticker", (PAIR,))]
    assert subscriber.subscribed == expected
    assert subscriber.unsubscribed == expected


def test_bad_configuration_is_refused() -> None:
    with pytest.raises(ValueError, match="interval"):
        BookFeed(PAIR, FakeSubscriber(), Snapshots(), interval="1000ms")
    with pytest.raises(ValueError, match="at least one"):
        BookFeed(PAIR, FakeSubscriber(), Snapshots(), updates=False)


async def test_router_sends_each_pair_to_its_book_and_counts_the_rest() -> None:
    router = BookRouter()
    tops = Tops()
    book = BookFeed(PAIR, FakeSubscriber(), Snapshots(), on_top=tops)
    router.add(book)

    def frame(result: Any, channel: str = "spot.order_book_update") -> WsFrame:
        return WsFrame(channel, "update", result, None, None, None, 0)

    full = {**wire_update(1, 5, asks=[("3", "1")]), "full": True}
    router.on_frame(frame(full), 11)
    router.on_frame(frame({**full, "s": "XYZ_USDT"}), 12)
    router.on_frame(frame({"s": PAIR, "U": "x"}), 13)
    router.on_frame(frame([], channel="spot.trades"), 14)
    assert tops.calls == [(PAIR, None, level("3", "1"), 11, True)]
    assert (router.unrouted, router.decode_errors) == (2, 1)


def test_ticker_top_values_pass_through() -> None:
    tops = Tops()
    book = BookFeed(PAIR, FakeSubscriber(), Snapshots(), on_top=tops, ticker=True)
    book.handle_ticker(BookTop(PAIR, 1, 0, D("1"), D("2"), None, None), 5)
    assert tops.calls == [(PAIR, level("1", "2"), None, 5, False)]
