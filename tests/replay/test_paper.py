"""Paper execution against a local book: taker walks, fees, IOC, resting sells, latency, funds."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest

from sniper.app.ports import Handlers
from sniper.core.book import BookSync
from sniper.core.models import (
    Balance,
    BookSnapshot,
    BookUpdate,
    Fill,
    Order,
    OrderRequest,
    OrderStatus,
    PairInfo,
    TradeStatus,
)
from sniper.errors import (
    InsufficientFundsError,
    InvalidOrderError,
    OrderNotFoundError,
    PairNotTradableError,
)
from sniper.replay.paper import PaperExchange, PreparedPaperOrder

D = Decimal
PAIR = PairInfo("NEW_USDT", "NEW", "USDT", TradeStatus.TRADABLE, 0, 0, 2, 4, D("1"), D("3"),
                fee_pct=D("0.2"))


class Clock:
    def __init__(self) -> None:
        self.ns = 1_000_000_000
        self.ms = 1_700_000_000_000

    def mono_ns(self) -> int:
        return self.ns

    def wall_ms(self) -> int:
        return self.ms


class Sink:
    def __init__(self) -> None:
        self.orders: list[Order] = []
        self.fills: list[Fill] = []
        self.balances: list[Balance] = []

    def handlers(self) -> Handlers:
        return Handlers(on_top=lambda *a: None, on_order=self.orders.append,
                        on_fill=self.fills.append, on_balance=self.balances.append)


def make(book: BookSync | None = None, *, pair: PairInfo = PAIR, latency_us: int = 0,
         usdt: str = "1000", **kw: Any) -> tuple[PaperExchange, BookSync, Sink]:
    book = book or BookSync(pair.pair)
    clock = Clock()
    paper = PaperExchange(pair_of={pair.pair: pair}.get, book_of={pair.pair: book}.get,
                          wall_ms=clock.wall_ms, mono_ns=clock.mono_ns,
                          balances={"USDT": D(usdt)}, latency_us=latency_us, **kw)
    sink = Sink()
    paper.bind(sink.handlers())
    return paper, book, sink


def load(book: BookSync, asks: list[tuple[str, str]], bids: list[tuple[str, str]],
         update_id: int = 10) -> None:
    book.on_snapshot(BookSnapshot(book.pair, update_id,
                                  tuple((D(p), D(a)) for p, a in asks),
                                  tuple((D(p), D(a)) for p, a in bids)))


async def settle() -> None:
    await asyncio.sleep(0)
    await asyncio.sleep(0)


def buy(amount: str, price: str, text: str = "t-b0", tif: str = "ioc") -> OrderRequest:
    return OrderRequest(PAIR.pair, "buy", D(amount), D(price), text,
                        time_in_force=tif)


def sell(amount: str, price: str, text: str = "t-t0", tif: str = "gtc") -> OrderRequest:
    return OrderRequest(PAIR.pair, "sell", D(amount), D(price), text,
                        time_in_force=tif)


async def test_ioc_buy_walks_levels_charges_base_fee_and_cancels_the_rest() -> None:
    paper, book, sink = make()
    load(book, [("1.00", "10"), ("1.10", "5"), ("1.50", "100")], [("0.90", "10")])
    order = await paper.fire(paper.prepare(buy("1", "1")), D("1.2"), D("20"))
    assert isinstance(order, Order)
    assert order.status is OrderStatus.CANCELLED
    assert order.finish_as == "ioc"
    assert order.filled_amount == D("15")
    assert order.filled_total == D("10.00") + D("5.50")
    assert order.left == D("5")
    assert order.fee == D("15") * D("0.002")
    assert order.fee_currency == "NEW"
    await settle()
    assert [(f.price, f.amount, f.role) for f in sink.fills] == [
        (D("1.00"), D("10"), "taker"), (D("1.10"), D("5"), "taker")]
    assert sink.orders[-1].event == "finish"
    bal = {b.currency: b for b in sink.balances}
    assert bal["NEW"].available == D("15") - D("0.030")
    assert bal["USDT"].available == D("1000") - D("15.50")
    assert bal["USDT"].locked == 0


async def test_full_fill_is_closed_and_taken_liquidity_is_not_taken_twice() -> None:
    paper, book, _ = make()
    load(book, [("1.00", "10")], [])
    first = await paper.place(buy("6", "1.00"))
    assert first.status is OrderStatus.CLOSED
    assert first.finish_as == "filled"
    second = await paper.place(buy("6", "1.00", "t-b1"))
    assert second.filled_amount == D("4")
    # the market changes the level: what we took no longer counts against it
    book.on_update(BookUpdate(PAIR.pair, 11, 11, ((D("1.00"), D("7")),), ()))
    third = await paper.place(buy("6", "1.00", "t-b2"))
    assert third.filled_amount == D("6")


async def test_resting_take_profit_fills_when_the_bid_reaches_it() -> None:
    paper, book, sink = make()
    load(book, [("1.00", "100")], [("0.95", "100")])
    await paper.place(buy("10", "1.00"))
    await settle()
    held = D("10") - D("0.02")
    tp = await paper.place(sell(str(held), "1.30"))
    assert tp.status is OrderStatus.OPEN
    assert (await paper.balance("NEW")).locked == held
    # the bid rises but not enough: nothing
    load_update = BookUpdate(PAIR.pair, 11, 11, ((D("1.00"), D("0")), (D("1.40"), D("50"))),
                             ((D("1.20"), D("5")),))
    book.on_update(load_update)
    paper.on_top(PAIR.pair, book.best_bid(), book.best_ask(), 0, False)
    assert (await paper.status(tp.id, PAIR.pair)).status is OrderStatus.OPEN
    # bids at and above 1.30 would have hit the order: 3 + 4 = 7 of 9.98
    book.on_update(BookUpdate(PAIR.pair, 12, 12, (), ((D("1.30"), D("3")), (D("1.35"), D("4")))))
    paper.on_top(PAIR.pair, book.best_bid(), book.best_ask(), 0, False)
    partly = await paper.status(tp.id, PAIR.pair)
    assert partly.status is OrderStatus.OPEN
    assert partly.filled_amount == D("7")
    book.on_update(BookUpdate(PAIR.pair, 13, 13, (), ((D("1.31"), D("50")),)))
    paper.on_top(PAIR.pair, book.best_bid(), book.best_ask(), 0, False)
    done = await paper.status(tp.id, PAIR.pair)
    assert done.status is OrderStatus.CLOSED
    assert done.filled_amount == held
    await settle()
    sells = [f for f in sink.fills if f.side == "sell"]
    assert all(f.role == "maker" and f.price == D("1.30") for f in sells)
    assert sum(f.fee for f in sells) == held * D("1.30") * D("0.002")
    assert sells[0].fee_currency == "USDT"
    assert (await paper.balance("NEW")) == Balance("NEW", D(0), D(0))


async def test_gtc_sell_below_the_bid_takes_at_once() -> None:
    paper, book, _ = make()
    load(book, [("1.00", "100")], [("0.98", "3"), ("0.97", "100")])
    await paper.place(buy("10", "1.00"))
    order = await paper.place(sell("5", "0.97", "t-s0", tif="ioc"))
    assert order.status is OrderStatus.CLOSED
    assert order.filled_total == D("0.98") * 3 + D("0.97") * 2


async def test_cancel_releases_and_finished_orders_are_not_found() -> None:
    paper, book, sink = make()
    load(book, [("1.00", "100")], [("0.50", "1")])
    await paper.place(buy("10", "1.00"))
    tp = await paper.place(sell("5", "2.00"))
    cancelled = await paper.cancel(tp.id, PAIR.pair)
    assert cancelled.status is OrderStatus.CANCELLED
    assert cancelled.finish_as == "cancelled"
    assert (await paper.balance("NEW")).locked == 0
    with pytest.raises(OrderNotFoundError):
        await paper.cancel(tp.id, PAIR.pair)
    with pytest.raises(OrderNotFoundError):
        await paper.status("nope", PAIR.pair)
    found = await paper.find_orders(PAIR.pair, frozenset({"t-t0"}))
    assert [o.id for o in found] == [tp.id]
    assert len(await paper.my_fills(PAIR.pair)) == 1
    await settle()
    assert sink.orders[-1].status is OrderStatus.CANCELLED


async def test_refusals_like_gate() -> None:
    paper, book, _ = make(usdt="5")
    empty = await paper.place(buy("5", "1"))  # open pair, empty book: an IOC fills nothing
    assert empty.status is OrderStatus.CANCELLED
    assert empty.filled_amount == 0
    paper2, book2, _ = make(pair=PAIR)
    load(book2, [("1.00", "100")], [])
    with pytest.raises(InvalidOrderError):
        await paper2.place(buy("5.123", "1.00"))  # amount precision 2
    with pytest.raises(InvalidOrderError):
        await paper2.place(buy("1", "1.00"))  # below 3 USDT
    load(book, [("1.00", "100")], [])
    with pytest.raises(InsufficientFundsError):
        await paper.place(buy("10", "1.00"))
    with pytest.raises(InvalidOrderError):
        paper.prepare(sell("1", "1"))
    assert isinstance(paper.prepare(buy("1", "1")), PreparedPaperOrder)
    assert paper.statistics().rejected == 1
    assert paper2.statistics().rejected == 2


async def test_not_yet_buyable_pair_with_asks_is_traded() -> None:
    pending = PairInfo("NEW_USDT", "NEW", "USDT", TradeStatus.SELLABLE, 0, 0, 2, 4, None, None)
    paper, book, _ = make(pair=pending)
    with pytest.raises(PairNotTradableError):
        await paper.place(buy("5", "1"))
    load(book, [("1.00", "100")], [])
    assert (await paper.place(buy("5", "1"))).filled_amount == 5


async def test_latency_model_fills_against_the_book_as_it_is_later() -> None:
    paper, book, _ = make(latency_us=5_000)
    load(book, [("1.00", "10")], [])
    task = asyncio.get_running_loop().create_task(paper.place(buy("10", "1.00")))
    await asyncio.sleep(0)  # the order is on its way
    book.on_update(BookUpdate(PAIR.pair, 11, 11, ((D("1.00"), D("4")),), ()))
    order = await task
    assert order.filled_amount == D("4")
    (timing,) = paper.timings()
    assert timing.text == "t-b0"


async def test_without_a_live_book_the_last_top_stands_in() -> None:
    paper, book, _ = make()
    paper.on_top(PAIR.pair, (D("0.9"), D("1")), (D("1.0"), D("3")), 0, True)
    order = await paper.place(buy("5", "1.0"))
    assert order.filled_amount == D("3")
    assert not book.is_live
