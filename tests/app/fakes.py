"""In-memory edges for session/daemon tests: records every call, answers from a script."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sniper.app.ports import Edges, Handlers
from sniper.core.models import (
    Balance,
    BookSnapshot,
    Fill,
    Order,
    OrderAck,
    OrderRequest,
    OrderStatus,
    PairInfo,
    TradeStatus,
)
from sniper.errors import ExchangeError

PAIR = PairInfo(
    pair="NEW_USDT",
    base="NEW",
    quote="USDT",
    trade_status=TradeStatus.SELLABLE,
    buy_start_s=1_000,
    sell_start_s=0,
    amount_precision=2,
    price_precision=4,
    min_base_amount=Decimal("1"),
    min_quote_amount=Decimal("3"),
)


def order(
    req: OrderRequest,
    oid: str,
    *,
    filled: Decimal,
    price: Decimal,
    status: OrderStatus,
    fee: Decimal = Decimal(0),
    event: str | None = None,
) -> Order:
    return Order(
        id=oid,
        text=req.text,
        pair=req.pair,
        side=req.side,
        type=req.type,
        time_in_force=req.time_in_force,
        status=status,
        amount=req.amount,
        price=req.price,
        left=req.amount - filled,
        filled_amount=filled,
        filled_total=filled * price,
        avg_deal_price=price if filled else None,
        fee=fee,
        fee_currency="NEW" if req.side == "buy" else "USDT",
        finish_as="filled" if status is OrderStatus.CLOSED else "ioc",
        create_time_ms=0,
        update_time_ms=0,
        event=event,
    )


@dataclass
class FakeExchange:
    """Scripted answers. ``fire_answers`` are consumed per buy: an Order-producing callable,
    or an exception to raise."""

    fire_answers: list[Any] = field(default_factory=list)
    place_answers: list[Any] = field(default_factory=list)
    fired: list[tuple[OrderRequest, Decimal, Decimal]] = field(default_factory=list)
    placed: list[OrderRequest] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    known_orders: list[Order] = field(default_factory=list)
    known_fills: list[Fill] = field(default_factory=list)
    handlers: Handlers | None = None
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(100))
    trade_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    rehearsed: int = 0

    # EntrySender
    def prepare(self, request: OrderRequest) -> object:
        return request

    def rehearse(self, prepared: object, price: Any, amount: Any) -> int:
        self.rehearsed += 1
        return 0

    async def fire(self, prepared: object, price: Any, amount: Any) -> Order | OrderAck:
        assert isinstance(prepared, OrderRequest)
        req = OrderRequest(prepared.pair, "buy", amount, price, prepared.text)
        self.fired.append((req, price, amount))
        answer = self.fire_answers.pop(0) if self.fire_answers else None
        if isinstance(answer, ExchangeError):
            raise answer
        fill_price = answer if isinstance(answer, Decimal) else price
        result = order(
            req,
            str(next(self.ids)),
            filled=amount,
            price=fill_price,
            status=OrderStatus.CLOSED,
            fee=amount * Decimal("0.002"),
        )
        self.known_orders.append(result)
        self._fill(result, amount, fill_price)
        return result

    def _fill(self, o: Order, amount: Decimal, price: Decimal) -> None:
        fee = (amount * Decimal("0.002")) if o.side == "buy" else amount * price * Decimal("0.002")
        f = Fill(
            str(next(self.trade_ids)),
            o.id,
            o.text,
            o.pair,
            o.side,
            "taker",
            price,
            amount,
            fee,
            "NEW" if o.side == "buy" else "USDT",
            0,
        )
        self.known_fills.append(f)
        if self.handlers is not None:
            self.handlers.on_fill(f)

    # Execution
    async def place(self, request: OrderRequest) -> Order | OrderAck:
        self.placed.append(request)
        answer = self.place_answers.pop(0) if self.place_answers else None
        if isinstance(answer, ExchangeError):
            raise answer
        result = order(
            request,
            str(next(self.ids)),
            filled=Decimal(0),
            price=request.price or Decimal(0),
            status=OrderStatus.OPEN,
        )
        self.known_orders.append(result)
        return result

    async def cancel(self, order_id: str, pair: str) -> Order:
        self.cancelled.append(order_id)
        for i, o in enumerate(self.known_orders):
            if o.id == order_id or o.text == order_id:
                done = Order(
                    **{
                        **{s: getattr(o, s) for s in o.__slots__},
                        "status": OrderStatus.CANCELLED,
                        "finish_as": "cancelled",
                    }
                )
                self.known_orders[i] = done
                return done
        raise ExchangeError("not found", label="ORDER_NOT_FOUND", status=404)

    async def status(self, order_id: str, pair: str) -> Order:
        for o in self.known_orders:
            if o.id == order_id:
                return o
        raise ExchangeError("not found", label="ORDER_NOT_FOUND", status=404)

    async def find_orders(self, pair: str, texts: frozenset[str]) -> list[Order]:
        return [o for o in self.known_orders if o.text in texts]

    async def my_fills(self, pair: str) -> list[Fill]:
        return list(self.known_fills)

    async def balance(self, currency: str) -> Balance:
        return Balance(currency, Decimal(0), Decimal(0))

    def fill_resting(self, text: str) -> None:
        """Fill a resting order completely (as the matching engine would)."""
        for i, o in enumerate(self.known_orders):
            if o.text == text and o.status is OrderStatus.OPEN:
                price = o.price or Decimal(0)
                done = order(
                    OrderRequest(o.pair, o.side, o.amount, o.price, o.text),
                    o.id,
                    filled=o.amount,
                    price=price,
                    status=OrderStatus.CLOSED,
                    event="finish",
                )
                self.known_orders[i] = done
                self._fill(done, o.amount, price)
                assert self.handlers is not None
                self.handlers.on_order(done)


class FakeMarket:
    def __init__(self, pairs: list[PairInfo]) -> None:
        self.pairs = pairs
        self.watched: list[str] = []

    async def currency_pairs(self) -> list[PairInfo]:
        return list(self.pairs)

    async def order_book(self, pair: str, limit: int = 100) -> BookSnapshot:
        return BookSnapshot(pair, 1, (), ())

    async def watch_book(self, pair: str) -> None:
        self.watched.append(pair)

    async def unwatch_book(self, pair: str) -> None:
        self.watched.remove(pair)


def fake_edges(exchange: FakeExchange, market: FakeMarket) -> Edges:
    async def nothing() -> None:
        return None

    async def server_time() -> int:
        return 0

    def bind(handlers: Handlers) -> None:
        exchange.handlers = handlers

    return Edges(
        market=market,
        entry=exchange,
        execution=exchange,
        server_time_ms=server_time,
        bind=bind,
        start=nothing,
        stop=nothing,
        describe="fake",
    )


async def settle(*owners: Any) -> None:
    """Run until no task spawned by these sessions/daemons is pending (no sleeps)."""
    for _ in range(100):
        pending = [t for owner in owners for t in list(owner._tasks) if not t.done()]
        if not pending:
            await asyncio.sleep(0)
            if not any(not t.done() for owner in owners for t in owner._tasks):
                return
            continue
        await asyncio.wait(pending, timeout=5)
    raise AssertionError("tasks did not settle")
