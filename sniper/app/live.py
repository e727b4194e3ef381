"""Live edges: Gate (or the simulator, or testnet) over REST + WebSocket.

Three WebSocket connections, so frames never queue behind each other: the trigger's book
streams on one, private channels on another, orders (WS trading API) on a third.
"""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

import structlog

from sniper.app.clock import Clock
from sniper.app.ports import Edges, Handlers
from sniper.config import Config
from sniper.core.codec import (
    ALL_PAIRS,
    CH_BALANCES,
    CH_ORDERS,
    CH_USERTRADES,
    WsFrame,
    decode_balances_push,
    decode_fills_push,
    decode_orders_push,
)
from sniper.core.models import Balance, BookSnapshot, Fill, Order, OrderAck, OrderRequest, PairInfo
from sniper.core.signing import Credentials, Signer
from sniper.errors import ExchangeError, ProtocolError
from sniper.gate.announcements import AnnouncementFeed
from sniper.gate.bookfeed import BookFeed, BookRouter
from sniper.gate.rawhttp import RawHttpOrderSender
from sniper.gate.rest import GateRest
from sniper.gate.trading import GateWsTrader
from sniper.gate.ws import GateFeed

log = structlog.get_logger("sniper.live")

CLOCK_RESYNC_S = 60.0
"""How often the offset to Gate's clock is measured again while running."""

WS_PING_INTERVAL_S = 2.0
WS_STALL_TIMEOUT_S = 6.0
"""A connection silent this long (three pings unanswered) is dropped and reopened: Gate has
been seen to stall connections without closing them, and a dead book or order connection
found only after 20 s misses a listing's open."""


class LiveMarket:
    """``MarketData`` over REST polling and a dedicated book-stream connection."""

    def __init__(self, rest: GateRest, feed: GateFeed, router: BookRouter) -> None:
        self.rest = rest
        self.feed = feed
        self.router = router
        self.books: dict[str, BookFeed] = {}
        self.handlers: Handlers | None = None

    async def currency_pairs(self) -> list[PairInfo]:
        return await self.rest.currency_pairs()

    async def order_book(self, pair: str, limit: int = 100) -> BookSnapshot:
        return await self.rest.order_book(pair, limit)

    async def watch_book(self, pair: str) -> None:
        if pair in self.books:
            return
        assert self.handlers is not None, "bind() before watch_book()"
        book = BookFeed(pair, self.feed, self.order_book, on_top=self.handlers.on_top,
                        updates=True, ticker=True, interval="20ms")
        self.books[pair] = book
        self.router.add(book)
        try:
            await book.start()
        except BaseException:
            self.router.remove(pair)
            self.books.pop(pair, None)
            raise

    async def unwatch_book(self, pair: str) -> None:
        book = self.books.pop(pair, None)
        if book is not None:
            self.router.remove(pair)
            await book.close()


class LiveExecution:
    """``Execution`` over REST (sells, cancels, lookups, balances)."""

    def __init__(self, rest: GateRest) -> None:
        self.rest = rest

    async def place(self, request: OrderRequest) -> Order | OrderAck:
        return await self.rest.create_order(request)

    async def cancel(self, order_id: str, pair: str) -> Order:
        return await self.rest.cancel_order(order_id, pair)

    async def status(self, order_id: str, pair: str) -> Order:
        return await self.rest.get_order(order_id, pair)

    async def find_orders(self, pair: str, texts: frozenset[str]) -> list[Order]:
        found: list[Order] = []
        for status in ("open", "finished"):
            orders = await self.rest.list_orders(pair, status=status)
            found.extend(order for order in orders if order.text in texts)
        return found

    async def my_fills(self, pair: str) -> list[Fill]:
        return await self.rest.my_trades(pair, limit=1000)

    async def balance(self, currency: str) -> Balance:
        for bal in await self.rest.accounts(currency):
            if bal.currency == currency:
                return bal
        return Balance(currency, Decimal(0), Decimal(0))


class PrivateRouter:
    """Decodes private pushes and hands them to the pipeline."""

    def __init__(self) -> None:
        self.handlers: Handlers | None = None
        self.decode_errors = 0

    def on_frame(self, frame: WsFrame, recv_ns: int) -> None:  # noqa: ARG002 - feed signature
        handlers = self.handlers
        if handlers is None or frame.event != "update":
            return
        try:
            if frame.channel == CH_ORDERS:
                for order in decode_orders_push(frame.result):
                    handlers.on_order(order)
            elif frame.channel == CH_USERTRADES:
                for fill in decode_fills_push(frame.result):
                    handlers.on_fill(fill)
            elif frame.channel == CH_BALANCES:
                for balance in decode_balances_push(frame.result):
                    handlers.on_balance(balance)
        except ProtocolError as exc:
            self.decode_errors += 1
            log.warning("private_push_undecodable", channel=frame.channel, error=str(exc))


def build_live_edges(config: Config, credentials: Credentials, clock: Clock) -> Edges:
    """Assemble the live edges (not yet connected: ``edges.start()`` does that)."""
    ex = config.exchange
    signer = Signer(credentials)

    def wall_s() -> float:
        return time.time()

    rest = GateRest(ex.rest_url, credentials, timeout_s=ex.request_timeout_s,
                    order_ttl_ms=ex.order_ttl_ms)
    router = BookRouter()
    ping_s, stall_s = WS_PING_INTERVAL_S, WS_STALL_TIMEOUT_S
    market_feed = GateFeed(ex.ws_url, router.on_frame, name="market", clock=wall_s,
                           ping_interval_s=ping_s, stall_timeout_s=stall_s)
    private = PrivateRouter()
    private_feed = GateFeed(ex.ws_url, private.on_frame, signer=signer, name="private",
                            clock=wall_s, ping_interval_s=ping_s, stall_timeout_s=stall_s)
    trader = GateWsTrader(ex.ws_url, signer, action_mode="RESULT", ttl_ms=ex.order_ttl_ms,
                          clock=wall_s, reply_timeout_s=ex.request_timeout_s,
                          ping_interval_s=ping_s, stall_timeout_s=stall_s)
    raw = (
        RawHttpOrderSender(ex.rest_url, credentials, ttl_ms=ex.order_ttl_ms,
                           timeout_s=ex.request_timeout_s, action_mode="RESULT", connections=2)
        if ex.order_path == "rest"
        else None
    )
    market = LiveMarket(rest, market_feed, router)
    execution = LiveExecution(rest)
    announcements: AnnouncementFeed | None = None

    def bind(handlers: Handlers) -> None:
        nonlocal announcements
        market.handlers = handlers
        private.handlers = handlers
        on_announcement = handlers.on_announcement
        if config.listing.announcements and on_announcement is not None:
            announcements = AnnouncementFeed(
                ex.ann_ws_url, lambda symbol, start_s, _title: on_announcement(symbol, start_s)
            )

    resync: list[asyncio.Task[None]] = []

    def adopt_offset(offset_ms: int) -> None:
        clock.offset_ms = offset_ms
        for conn in (market_feed, private_feed, trader):
            conn.clock_offset_s = offset_ms / 1000
        if raw is not None:
            raw.clock_offset_s = offset_ms / 1000

    async def keep_clock_synced() -> None:
        # clocks drift: re-measure the offset to Gate now and then (signatures and
        # x-gate-exptime depend on it); a failed measurement keeps the last offset
        while True:
            await asyncio.sleep(CLOCK_RESYNC_S)
            try:
                adopt_offset(await rest.sync_clock())
            except ExchangeError as exc:
                log.warning("clock resync failed", error=str(exc))

    async def start() -> None:
        await rest.start()
        adopt_offset(await rest.sync_clock())
        for conn in (market_feed, private_feed):
            conn.start()
        trader.start()
        resync.append(asyncio.get_running_loop().create_task(keep_clock_synced()))
        if raw is not None:
            await raw.start()
        if announcements is not None:
            announcements.start()
        await private_feed.wait_connected(10)
        await private_feed.subscribe(CH_ORDERS, [ALL_PAIRS], private=True)
        await private_feed.subscribe(CH_USERTRADES, [ALL_PAIRS], private=True)
        await private_feed.subscribe(CH_BALANCES, [], private=True)
        await market_feed.wait_connected(10)
        await trader.wait_ready(10)

    async def stop() -> None:
        for task in resync:
            task.cancel()
        for closer in (market_feed.close, private_feed.close, trader.close):
            try:
                await closer()
            except Exception as exc:  # noqa: BLE001 - shutdown must go on
                log.warning("close failed", error=str(exc))
        if raw is not None:
            await raw.close()
        if announcements is not None:
            await announcements.close()
        await rest.aclose()

    async def server_time_ms() -> int:
        return await rest.server_time_ms()

    entry = raw if raw is not None else trader
    return Edges(
        market=market,
        entry=entry,  # type: ignore[arg-type]
        execution=execution,
        server_time_ms=server_time_ms,
        bind=bind,
        start=start,
        stop=stop,
        describe=f"live ({ex.rest_url}, orders via {ex.order_path})",
        extra={"rest": rest, "trader": trader, "market_feed": market_feed,
               "private_feed": private_feed},
    )
