"""Paper execution: orders filled against the local book, never sent anywhere.

:class:`PaperExchange` implements the pipeline's ``EntrySender`` and ``Execution`` ports
(:mod:`sniper.app.ports`) for dry-run (live market data) and replay (recorded market data).
It answers like Gate does (shared/gate-v4.md §2.4-2.5, §11.4) and delivers what Gate's private
channels would push (``spot.orders``, ``spot.usertrades``, ``spot.balances``) to the
pipeline's handlers, on the next loop turn, as a private stream does.

Rules
-----
* Taker (IOC, or the crossing part of a GTC): walks the opposite side of the local book from
  the best level while the price is within the limit, taking each level's amount at that
  level's price. What earlier paper fills took from a level stays taken until the market
  changes that level's amount (the recorded market never saw our orders).
* IOC: the remainder is cancelled (``cancelled``/``ioc``, even when partly filled); a full
  fill is ``closed``/``filled``.
* Resting GTC sells fill (maker, at their own price) when the best bid reaches them: the bid
  levels at or above the price are the buyers that would have hit the order.
* Fees: the pair's fee (``fee_pct``) on what is received: base for a buy, quote for a sell.
* Funds: a buy needs ``price × amount`` quote available, a sell the base; else
  ``BALANCE_NOT_ENOUGH``. Precision and minimums are checked as Gate does
  (``INVALID_PARAM_VALUE``). A pair that cannot be bought yet and shows no asks is refused
  with ``INVALID_CURRENCY_PAIR`` (the label Gate uses before the open).
* Latency model: a placement is matched against the book as it is ``latency_us`` after the
  decision (an ``asyncio.sleep`` on the pipeline's clock: virtual in replay, so the book has
  moved on by exactly the frames recorded in that window).

The book comes from ``book_of(pair)``: the same ``BookSync`` the market-data edge keeps. When it
is not live, the last top seen by :meth:`PaperExchange.on_top` stands in (one level a side).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

import structlog

from sniper.app.clock import Clock
from sniper.app.ports import Edges, Handlers
from sniper.config import Config
from sniper.core.book import BookSync
from sniper.core.models import (
    Balance,
    BookSnapshot,
    Fill,
    Level,
    Order,
    OrderAck,
    OrderRequest,
    OrderStatus,
    PairInfo,
    Side,
)
from sniper.errors import (
    InsufficientFundsError,
    InvalidOrderError,
    OrderNotFoundError,
    PairNotTradableError,
)

log = structlog.get_logger("sniper.paper")

PAPER_QUOTE_BALANCE: Final = Decimal(1_000_000)
"""What each configured quote currency starts with on paper (the entry budget limits spend)."""
BOOK_DEPTH: Final = 200
"""Levels walked at most by one taker order."""
_ZERO: Final = Decimal(0)
_HUNDRED: Final = Decimal(100)

BookOf = Callable[[str], BookSync | None]
PairOf = Callable[[str], PairInfo | None]


def _decimals(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


@dataclass(frozen=True, slots=True)
class PreparedPaperOrder:
    """A buy validated at arm time; price and amount are given at fire time."""

    request: OrderRequest


@dataclass(frozen=True, slots=True)
class PaperTiming:
    """Clock stamps (``mono_ns``) of one paper placement: decided, "written" (the latency
    model's arrival at the exchange) and answered."""

    text: str
    decision_ns: int
    written_ns: int
    result_ns: int


@dataclass(frozen=True, slots=True)
class PaperStatistics:
    """Counters since construction."""

    orders: int
    rejected: int
    fills: int
    open_orders: int


class _PaperOrder:
    """Mutable order state (``Order`` snapshots are made from it)."""

    __slots__ = ("amount", "create_ms", "fee", "fee_currency", "filled_amount", "filled_total",
                 "finish_as", "id", "pair", "price", "side", "status", "text", "tif",
                 "update_ms")

    def __init__(self, oid: str, req: OrderRequest, fee_currency: str, now_ms: int) -> None:
        self.id = oid
        self.text = req.text
        self.pair = req.pair
        self.side: Side = req.side
        self.tif = req.time_in_force
        self.amount = req.amount
        self.price = req.price
        self.filled_amount = _ZERO
        self.filled_total = _ZERO
        self.fee = _ZERO
        self.fee_currency = fee_currency
        self.status = OrderStatus.OPEN
        self.finish_as = "open"
        self.create_ms = now_ms
        self.update_ms = now_ms

    @property
    def left(self) -> Decimal:
        return self.amount - self.filled_amount

    def snapshot(self, event: str | None = None) -> Order:
        avg = self.filled_total / self.filled_amount if self.filled_amount else None
        return Order(
            id=self.id, text=self.text, pair=self.pair, side=self.side, type="limit",
            time_in_force=self.tif, status=self.status, amount=self.amount, price=self.price,
            left=self.left, filled_amount=self.filled_amount, filled_total=self.filled_total,
            avg_deal_price=avg, fee=self.fee, fee_currency=self.fee_currency,
            finish_as=self.finish_as, create_time_ms=self.create_ms,
            update_time_ms=self.update_ms, event=event,
        )


class PaperExchange:
    """``EntrySender`` + ``Execution`` on paper (see module docstring)."""

    def __init__(
        self,
        *,
        pair_of: PairOf,
        book_of: BookOf,
        wall_ms: Callable[[], int],
        mono_ns: Callable[[], int],
        balances: dict[str, Decimal] | None = None,
        latency_us: int = 0,
    ) -> None:
        if latency_us < 0:
            raise ValueError("latency_us must not be negative")
        self.pair_of = pair_of
        self.book_of = book_of
        self.wall_ms = wall_ms
        self.mono_ns = mono_ns
        self.latency_us = latency_us
        self.handlers: Handlers | None = None
        self._available: dict[str, Decimal] = dict(balances or {})
        self._locked: dict[str, Decimal] = {}
        self._orders: dict[str, _PaperOrder] = {}
        self._resting: dict[str, _PaperOrder] = {}
        self._fills: list[Fill] = []
        self._tops: dict[str, tuple[Level | None, Level | None]] = {}
        # (pair, side, price) -> (book amount when taken, amount taken)
        self._taken: dict[tuple[str, str, Decimal], tuple[Decimal, Decimal]] = {}
        self._timings: list[PaperTiming] = []
        self._seq = 0
        self._rejected = 0

    def bind(self, handlers: Handlers) -> None:
        """Where the private-stream events go."""
        self.handlers = handlers

    # -- EntrySender ------------------------------------------------------------------------

    def prepare(self, request: OrderRequest) -> PreparedPaperOrder:
        """Validate the parts known before T0 (pair, side, client id)."""
        if request.side != "buy" or request.type != "limit":
            raise InvalidOrderError("paper entry takes limit buys", label="INVALID_PARAM_VALUE")
        return PreparedPaperOrder(request)

    async def fire(self, prepared: object, price: Any, amount: Any) -> Order | OrderAck:
        """Place the prepared buy with these values (IOC)."""
        assert isinstance(prepared, PreparedPaperOrder)
        req = prepared.request
        request = OrderRequest(req.pair, req.side, Decimal(amount), Decimal(price), req.text,
                               time_in_force=req.time_in_force)
        return await self.place(request)

    def timings(self) -> tuple[PaperTiming, ...]:
        """Stamps of recent placements, oldest first."""
        return tuple(self._timings[-64:])

    # -- Execution --------------------------------------------------------------------------

    async def place(self, request: OrderRequest) -> Order | OrderAck:
        """Place ``request``: validated now, matched after the latency model's delay."""
        decision_ns = self.mono_ns()
        pair = self._validate(request)
        if self.latency_us:
            await asyncio.sleep(self.latency_us / 1e6)
        written_ns = self.mono_ns()
        order = self._execute(request, pair)
        self._timings.append(PaperTiming(request.text, decision_ns, written_ns, self.mono_ns()))
        return order

    async def cancel(self, order_id: str, pair: str) -> Order:
        """Cancel an open order; a finished or unknown one is ``ORDER_NOT_FOUND`` (as Gate)."""
        order = self._resting.pop(order_id, None)
        if order is None or order.pair != pair:
            raise OrderNotFoundError("Order not found", label="ORDER_NOT_FOUND", status=404)
        info = self._pair(pair)
        currency = info.base if order.side == "sell" else info.quote
        release = order.left if order.side == "sell" else order.left * (order.price or _ZERO)
        self._unlock(currency, release)
        self._finish(order, OrderStatus.CANCELLED, "cancelled")
        self._push(order.snapshot("finish"), [], (currency,))
        return order.snapshot()

    async def status(self, order_id: str, pair: str) -> Order:
        """One order by id."""
        order = self._orders.get(order_id)
        if order is None or order.pair != pair:
            raise OrderNotFoundError("Order not found", label="ORDER_NOT_FOUND", status=404)
        return order.snapshot()

    async def find_orders(self, pair: str, texts: frozenset[str]) -> list[Order]:
        """Orders of ``pair`` whose client id is in ``texts``."""
        return [o.snapshot() for o in self._orders.values() if o.pair == pair and o.text in texts]

    async def my_fills(self, pair: str) -> list[Fill]:
        """Our paper trades of ``pair``."""
        return [f for f in self._fills if f.pair == pair]

    async def balance(self, currency: str) -> Balance:
        """Paper balance of ``currency``."""
        return self._balance(currency)

    # -- market data ---------------------------------------------------------------------------

    def on_top(self, pair: str, bid: Level | None, ask: Level | None,
               recv_ns: int, opened: bool) -> None:  # noqa: ARG002 - TopHandler signature
        """Best bid/ask changed: remember it, and fill resting sells the bid now reaches."""
        self._tops[pair] = (bid, ask)
        if bid is None or not self._resting:
            return
        for order in [o for o in self._resting.values() if o.pair == pair]:
            if order.side == "sell" and order.price is not None and bid[0] >= order.price:
                self._fill_resting(order)

    def fills(self) -> tuple[Fill, ...]:
        """Every paper trade so far, oldest first."""
        return tuple(self._fills)

    def orders(self) -> tuple[Order, ...]:
        """Every paper order so far (current state), oldest first."""
        return tuple(o.snapshot() for o in self._orders.values())

    def statistics(self) -> PaperStatistics:
        """Counters since construction."""
        return PaperStatistics(orders=len(self._orders), rejected=self._rejected,
                               fills=len(self._fills), open_orders=len(self._resting))

    # -- internals -----------------------------------------------------------------------------

    def _pair(self, pair: str) -> PairInfo:
        info = self.pair_of(pair)
        if info is None:
            raise PairNotTradableError(f"Unknown currency pair {pair}",
                                       label="INVALID_CURRENCY_PAIR")
        return info

    def _reject(self, exc: Exception) -> Exception:
        self._rejected += 1
        return exc

    def _validate(self, req: OrderRequest) -> PairInfo:
        info = self._pair(req.pair)
        price = req.price
        if req.type != "limit" or price is None or price <= 0 or req.amount <= 0:
            raise self._reject(InvalidOrderError("paper takes limit orders with a positive "
                                                 "price and amount", label="INVALID_PARAM_VALUE"))
        if _decimals(req.amount) > info.amount_precision:
            raise self._reject(InvalidOrderError(
                f"Invalid amount precision {req.amount}", label="INVALID_PARAM_VALUE"))
        if _decimals(price) > info.price_precision:
            raise self._reject(InvalidOrderError(
                f"Invalid price precision {price}", label="INVALID_PARAM_VALUE"))
        if info.min_base_amount is not None and req.amount < info.min_base_amount:
            raise self._reject(InvalidOrderError(
                f"The minimum is {info.min_base_amount} {info.base}", label="INVALID_PARAM_VALUE"))
        if info.min_quote_amount is not None and price * req.amount < info.min_quote_amount:
            raise self._reject(InvalidOrderError(
                f"The minimum is {info.min_quote_amount} {info.quote}",
                label="INVALID_PARAM_VALUE"))
        if req.side == "buy" and not self._buyable(info):
            raise self._reject(PairNotTradableError(
                f"Trading of {info.pair} is not open for buy", label="INVALID_CURRENCY_PAIR"))
        need = price * req.amount if req.side == "buy" else req.amount
        currency = info.quote if req.side == "buy" else info.base
        if self._available.get(currency, _ZERO) < need:
            raise self._reject(InsufficientFundsError(
                f"Not enough balance: {currency}", label="BALANCE_NOT_ENOUGH"))
        return info

    def _buyable(self, info: PairInfo) -> bool:
        if info.trade_status.can_buy:
            return True
        if info.buy_start_s and self.wall_ms() // 1000 >= info.buy_start_s:
            return True
        # The pair list we know may lag the book: asks on the book mean trading is open.
        return bool(self._levels(info.pair, "sell", 1))

    def _execute(self, req: OrderRequest, info: PairInfo) -> Order:
        self._seq += 1
        order = _PaperOrder(str(self._seq), req, info.base if req.side == "buy" else info.quote,
                            self.wall_ms())
        self._orders[order.id] = order
        assert req.price is not None
        # Funds may have moved during the latency window: check again at arrival.
        lock_currency = info.quote if req.side == "buy" else info.base
        lock = req.price * req.amount if req.side == "buy" else req.amount
        if self._available.get(lock_currency, _ZERO) < lock:
            self._finish(order, OrderStatus.CANCELLED, "cancelled")
            raise InsufficientFundsError(f"Not enough balance: {lock_currency}",
                                         label="BALANCE_NOT_ENOUGH")
        self._lock(lock_currency, lock)
        fills = self._take(order, info, opposite="sell" if req.side == "buy" else "buy",
                           role="taker")
        if order.left <= 0:
            self._finish(order, OrderStatus.CLOSED, "filled")
        elif req.time_in_force == "gtc":
            self._resting[order.id] = order
        else:
            self._finish(order, OrderStatus.CANCELLED, req.time_in_force)
        if order.status is not OrderStatus.OPEN:
            release = order.left * req.price if req.side == "buy" else order.left
            self._unlock(lock_currency, release)
        event = "put" if order.status is OrderStatus.OPEN else "finish"
        self._push(order.snapshot(event), fills, (info.base, info.quote))
        return order.snapshot()

    def _levels(self, pair: str, side: str, depth: int) -> list[tuple[Decimal, Decimal, Decimal]]:
        """``(price, amount left for us, amount on the book)`` of one side ("sell" = asks),
        best first."""
        book = self.book_of(pair)
        if book is not None and book.is_live:
            levels = book.asks(depth) if side == "sell" else book.bids(depth)
        else:
            bid, ask = self._tops.get(pair, (None, None))
            top = ask if side == "sell" else bid
            levels = (top,) if top is not None else ()
        out: list[tuple[Decimal, Decimal, Decimal]] = []
        taken = self._taken
        for price, amount in levels:
            left = amount
            mark = taken.get((pair, side, price))
            if mark is not None:
                if mark[0] == amount:
                    left = amount - mark[1]
                else:
                    del taken[(pair, side, price)]  # the market changed the level since
            if left > 0:
                out.append((price, left, amount))
        return out

    def _take(self, order: _PaperOrder, info: PairInfo, *, opposite: str,
              role: str) -> list[Fill]:
        """Walk ``opposite`` from its best level within the order's price."""
        assert order.price is not None
        fills: list[Fill] = []
        limit = order.price
        buying = order.side == "buy"
        taken = self._taken
        for price, left, on_book in self._levels(info.pair, opposite, BOOK_DEPTH):
            if (price > limit) if buying else (price < limit):
                break
            take = min(left, order.left)
            taken[(info.pair, opposite, price)] = (on_book, on_book - left + take)
            fills.append(self._settle(order, info, price if role == "taker" else limit, take,
                                      role))
            if order.left <= 0:
                break
        return fills

    def _settle(self, order: _PaperOrder, info: PairInfo, price: Decimal, amount: Decimal,
                role: str) -> Fill:
        rate = info.fee_pct / _HUNDRED
        total = price * amount
        now = self.wall_ms()
        if order.side == "buy":
            fee = amount * rate
            assert order.price is not None
            self._spend(info.quote, order.price * amount, total)
            self._credit(info.base, amount - fee)
        else:
            fee = total * rate
            self._spend(info.base, amount, amount)
            self._credit(info.quote, total - fee)
        order.filled_amount += amount
        order.filled_total += total
        order.fee += fee
        order.update_ms = now
        fill = Fill(trade_id=f"paper-{len(self._fills) + 1}", order_id=order.id,
                    text=order.text, pair=order.pair, side=order.side,
                    role="taker" if role == "taker" else "maker", price=price, amount=amount,
                    fee=fee, fee_currency=order.fee_currency, time_ms=now)
        self._fills.append(fill)
        return fill

    def _fill_resting(self, order: _PaperOrder) -> None:
        info = self._pair(order.pair)
        fills = self._take(order, info, opposite="buy", role="maker")
        if not fills:
            return
        if order.left <= 0:
            self._resting.pop(order.id, None)
            self._finish(order, OrderStatus.CLOSED, "filled")
        event = "finish" if order.status is not OrderStatus.OPEN else "update"
        self._push(order.snapshot(event), fills, (info.base, info.quote))

    def _finish(self, order: _PaperOrder, status: OrderStatus, finish_as: str) -> None:
        order.status = status
        order.finish_as = finish_as
        order.update_ms = self.wall_ms()

    # balances: a placement locks; a fill spends from the lock (a cheaper buy frees the rest)

    def _lock(self, currency: str, amount: Decimal) -> None:
        self._available[currency] = self._available.get(currency, _ZERO) - amount
        self._locked[currency] = self._locked.get(currency, _ZERO) + amount

    def _unlock(self, currency: str, amount: Decimal) -> None:
        if amount <= 0:
            return
        self._locked[currency] = self._locked.get(currency, _ZERO) - amount
        self._available[currency] = self._available.get(currency, _ZERO) + amount

    def _spend(self, currency: str, released: Decimal, spent: Decimal) -> None:
        self._locked[currency] = self._locked.get(currency, _ZERO) - released
        self._available[currency] = self._available.get(currency, _ZERO) + released - spent

    def _credit(self, currency: str, amount: Decimal) -> None:
        self._available[currency] = self._available.get(currency, _ZERO) + amount

    def _balance(self, currency: str) -> Balance:
        return Balance(currency, self._available.get(currency, _ZERO),
                       self._locked.get(currency, _ZERO))

    def _push(self, order: Order, fills: list[Fill], currencies: tuple[str, ...]) -> None:
        """Deliver what the private channels would, on the next loop turn."""
        handlers = self.handlers
        if handlers is None:
            return
        balances = [self._balance(c) for c in currencies]

        def deliver() -> None:
            for fill in fills:
                handlers.on_fill(fill)
            handlers.on_order(order)
            for bal in balances:
                handlers.on_balance(bal)

        asyncio.get_running_loop().call_soon(deliver)


# -- dry-run assembly ---------------------------------------------------------------------------


class PaperMarket:
    """Live ``MarketData`` that also keeps the latest pair list for the paper exchange."""

    def __init__(self, live: Any) -> None:
        self.live = live
        self.pairs: dict[str, PairInfo] = {}

    async def currency_pairs(self) -> list[PairInfo]:
        pairs: list[PairInfo] = await self.live.currency_pairs()
        self.pairs = {p.pair: p for p in pairs}
        return pairs

    async def order_book(self, pair: str, limit: int = 100) -> BookSnapshot:
        book: BookSnapshot = await self.live.order_book(pair, limit)
        return book

    async def watch_book(self, pair: str) -> None:
        await self.live.watch_book(pair)

    async def unwatch_book(self, pair: str) -> None:
        await self.live.unwatch_book(pair)

    def book(self, pair: str) -> BookSync | None:
        feed = self.live.books.get(pair)
        return None if feed is None else feed.book


def chain_top(first: Callable[..., None], second: Callable[..., None]) -> Callable[..., None]:
    """An ``on_top`` handler calling ``first`` (the paper exchange) then ``second``."""

    def on_top(pair: str, bid: Any, ask: Any, recv_ns: int, opened: bool) -> None:
        first(pair, bid, ask, recv_ns, opened)
        second(pair, bid, ask, recv_ns, opened)

    return on_top


def build_paper_edges(config: Config, clock: Clock, *, latency_us: int = 0,
                      balances: dict[str, Decimal] | None = None) -> Edges:
    """Dry-run edges: live public market data (REST + market WS), paper execution.

    No credentials are loaded or needed, nothing is signed, no order endpoint is called: the
    REST client has no key and the only WebSocket is the public market connection.
    """
    from sniper.app.live import LiveMarket
    from sniper.gate.bookfeed import BookRouter
    from sniper.gate.rest import GateRest
    from sniper.gate.ws import GateFeed

    ex = config.exchange
    rest = GateRest(ex.rest_url, None, timeout_s=ex.request_timeout_s)
    router = BookRouter()
    market_feed = GateFeed(ex.ws_url, router.on_frame, name="market", clock=time.time)
    live = LiveMarket(rest, market_feed, router)
    market = PaperMarket(live)
    start_balances = balances if balances is not None else dict.fromkeys(
        config.listing.quote_currencies, PAPER_QUOTE_BALANCE)

    def pair_of(pair: str) -> PairInfo | None:
        return market.pairs.get(pair)

    paper = PaperExchange(pair_of=pair_of, book_of=market.book, wall_ms=clock.wall_ms,
                          mono_ns=clock.mono_ns, balances=start_balances, latency_us=latency_us)

    def bind(handlers: Handlers) -> None:
        paper.bind(handlers)
        live.handlers = Handlers(on_top=chain_top(paper.on_top, handlers.on_top),
                                 on_order=handlers.on_order, on_fill=handlers.on_fill,
                                 on_balance=handlers.on_balance)

    async def start() -> None:
        await rest.start()
        offset_ms = await rest.sync_clock()
        clock.offset_ms = offset_ms
        market_feed.clock_offset_s = offset_ms / 1000
        market_feed.start()
        await market_feed.wait_connected(10)

    async def stop() -> None:
        try:
            await market_feed.close()
        except Exception as exc:  # noqa: BLE001 - shutdown must go on
            log.warning("close failed", error=str(exc))
        await rest.aclose()

    async def server_time_ms() -> int:
        return await rest.server_time_ms()

    return Edges(market=market, entry=paper, execution=paper, server_time_ms=server_time_ms,
                 bind=bind, start=start, stop=stop,
                 describe=f"dry-run ({ex.rest_url}, paper execution, no keys)",
                 extra={"rest": rest, "market_feed": market_feed, "paper": paper})
