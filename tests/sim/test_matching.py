"""Matching: price-time priority, partial fills, every time-in-force, market orders, fees.

Each case rests maker orders on an empty ABC_USDT book (amount precision 2, price precision 4,
maker fee 0.1 %, taker fee 0.2 %), sends one taker order, and checks the fills and the outcome.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import pytest

from sniper.sim.engine import SimEngine, SimOrder, UserTradeHappened
from sniper.sim.entities import SimPair
from sniper.sim.matching import OrderBook, plan_fills, quantize_down, would_cross
from sniper.sim.scenarios import EstablishedPair, LadderSpec, PairRules, Scenario

D = Decimal
START_MS = 1_767_261_600_000
PAIR = "ABC_USDT"
FUNDS = {"USDT": D("100000"), "ABC": D("100000")}


def make_engine(*, reject_unfillable: bool = False) -> SimEngine:
    """An engine with one empty pair (no market-maker ladder, no background flow)."""
    rules = PairRules(PAIR, amount_precision=2, precision=4, min_base_amount=D("1"))
    scenario = Scenario(
        name="matching",
        taker_fee=D("0.002"),
        maker_fee=D("0.001"),
        established=(
            EstablishedPair(rules, mid=D(1), ladder=LadderSpec(levels=0), requote_every_s=0),
        ),
        reject_unfillable=reject_unfillable,
    )
    return SimEngine(scenario, START_MS)


def order_params(side: str, amount: str, price: str | None = None, **extra: str) -> dict[str, str]:
    params = {"currency_pair": PAIR, "side": side, "amount": amount, **extra}
    if price is not None:
        params["price"] = price
    return params


@dataclass
class Case:
    name: str
    makers: list[tuple[str, str, str]]  # (side, price, amount), rested in this order
    taker: dict[str, str]
    fills: list[tuple[int, str, str]]  # (index of maker, price, amount), in trade order
    status: str
    finish_as: str
    left: str
    rests: bool = False


CASES = [
    Case(
        "best price first, then time",
        [("sell", "1.02", "10"), ("sell", "1.01", "10"), ("sell", "1.01", "10")],
        order_params("buy", "15", "1.02", time_in_force="ioc"),
        [(1, "1.01", "10"), (2, "1.01", "5")],
        "closed",
        "filled",
        "0",
    ),
    Case(
        "limit stops at its price",
        [("sell", "1.01", "10"), ("sell", "1.03", "10")],
        order_params("buy", "15", "1.02", time_in_force="ioc"),
        [(0, "1.01", "10")],
        "cancelled",
        "ioc",
        "5",
    ),
    Case(
        "ioc with nothing to take",
        [("sell", "1.05", "10")],
        order_params("buy", "5", "1.02", time_in_force="ioc"),
        [],
        "cancelled",
        "ioc",
        "5",
    ),
    Case(
        "gtc partial fill rests the remainder",
        [("sell", "1.01", "10")],
        order_params("buy", "15", "1.02"),
        [(0, "1.01", "10")],
        "open",
        "open",
        "5",
        rests=True,
    ),
    Case(
        "gtc full fill",
        [("sell", "1.01", "10"), ("sell", "1.02", "10")],
        order_params("buy", "20", "1.02", time_in_force="gtc"),
        [(0, "1.01", "10"), (1, "1.02", "10")],
        "closed",
        "filled",
        "0",
    ),
    Case(
        "gtc without a match rests untouched",
        [("sell", "1.05", "10")],
        order_params("buy", "5", "1.02"),
        [],
        "open",
        "open",
        "5",
        rests=True,
    ),
    Case(
        "fok that cannot fill completely does nothing",
        [("sell", "1.01", "10")],
        order_params("buy", "15", "1.02", time_in_force="fok"),
        [],
        "cancelled",
        "fok",
        "15",
    ),
    Case(
        "fok that can fill",
        [("sell", "1.01", "10"), ("sell", "1.02", "10")],
        order_params("buy", "15", "1.02", time_in_force="fok"),
        [(0, "1.01", "10"), (1, "1.02", "5")],
        "closed",
        "filled",
        "0",
    ),
    Case(
        "post-only that would take is cancelled",
        [("sell", "1.01", "10")],
        order_params("buy", "5", "1.01", time_in_force="poc"),
        [],
        "cancelled",
        "poc",
        "5",
    ),
    Case(
        "post-only that does not cross rests",
        [("sell", "1.01", "10")],
        order_params("buy", "5", "1.00", time_in_force="poc"),
        [],
        "open",
        "open",
        "5",
        rests=True,
    ),
    Case(
        "sell takes bids at or above its price, best first",
        [("buy", "0.98", "10"), ("buy", "0.99", "10"), ("buy", "0.97", "10")],
        order_params("sell", "15", "0.98", time_in_force="ioc"),
        [(1, "0.99", "10"), (0, "0.98", "5")],
        "closed",
        "filled",
        "0",
    ),
    Case(
        "market buy spends quote; dust it cannot spend stays as left",
        [("sell", "1.01", "10"), ("sell", "1.02", "10")],
        order_params("buy", "20.2", type="market"),
        [(0, "1.01", "10"), (1, "1.02", "9.9")],
        "closed",
        "filled",
        "0.002",
    ),
    Case(
        "market buy beyond the depth",
        [("sell", "1.01", "10")],
        order_params("buy", "50", type="market", time_in_force="ioc"),
        [(0, "1.01", "10")],
        "cancelled",
        "depth_not_enough",
        "39.9",
    ),
    Case(
        "market sell takes bids at any price",
        [("buy", "0.99", "10"), ("buy", "0.50", "10")],
        order_params("sell", "15", type="market"),
        [(0, "0.99", "10"), (1, "0.50", "5")],
        "closed",
        "filled",
        "0",
    ),
    Case(
        "market fok buy short of depth does nothing",
        [("sell", "1.01", "10")],
        order_params("buy", "50", type="market", time_in_force="fok"),
        [],
        "cancelled",
        "fok",
        "50",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_matching_case(case: Case) -> None:
    engine = make_engine()
    maker_uid = engine.add_user("maker", "s", FUNDS)
    taker_uid = engine.add_user("taker", "s", FUNDS)
    makers: list[SimOrder] = []
    for i, (side, price, amount) in enumerate(case.makers):
        order, _ = engine.place_order(maker_uid, order_params(side, amount, price), START_MS + i)
        makers.append(order)

    order, events = engine.place_order(taker_uid, case.taker, START_MS + 100)

    taker_trades = [
        e.trade for e in events if isinstance(e, UserTradeHappened) and e.user_id == taker_uid
    ]
    maker_trades = [
        e.trade for e in events if isinstance(e, UserTradeHappened) and e.user_id == maker_uid
    ]
    expected = [(makers[i].id, D(p), D(a)) for i, p, a in case.fills]
    assert [(t.order_id, t.price, t.amount) for t in maker_trades] == expected
    assert [(t.price, t.amount) for t in taker_trades] == [(D(p), D(a)) for _, p, a in case.fills]
    assert all(t.role == "taker" for t in taker_trades)
    assert all(t.role == "maker" for t in maker_trades)
    assert [t.id for t in taker_trades] == [t.id for t in maker_trades]
    assert (order.status, order.finish_as, order.left) == (
        case.status,
        case.finish_as,
        D(case.left),
    )
    filled = sum((D(a) for _, _, a in case.fills), D(0))
    assert order.filled_amount == filled
    assert order.filled_total == sum((D(p) * D(a) for _, p, a in case.fills), D(0))
    open_ids = [o.id for o in engine.list_orders(taker_uid, PAIR, "open")]
    assert (order.id in open_ids) == case.rests


def test_fees_are_charged_in_the_currency_received() -> None:
    engine = make_engine()
    maker_uid = engine.add_user("maker", "s", FUNDS)
    taker_uid = engine.add_user("taker", "s", FUNDS)
    engine.place_order(maker_uid, order_params("sell", "10", "1.01"), START_MS)

    order, _ = engine.place_order(
        taker_uid, order_params("buy", "10", "1.02", time_in_force="ioc"), START_MS + 1
    )

    # Taker buy: 0.2 % of 10 ABC in ABC; paid 10.1 USDT (the 0.1 locked above it is released).
    assert (order.fee, order.fee_currency) == (D("0.02"), "ABC")
    assert order.avg_deal_price == D("1.01")
    assert engine.balances(taker_uid)["ABC"] == (D("100009.98"), D(0))
    assert engine.balances(taker_uid)["USDT"] == (D("99989.9"), D(0))
    # Maker sell: 0.1 % of 10.1 USDT in USDT.
    maker_trade = engine.my_trades(maker_uid)[0]
    assert (maker_trade.fee, maker_trade.fee_currency) == (D("0.0101"), "USDT")
    assert engine.balances(maker_uid)["USDT"] == (D("100010.0899"), D(0))
    assert engine.balances(maker_uid)["ABC"] == (D("99990"), D(0))


def test_resting_order_keeps_its_funds_locked_until_filled() -> None:
    engine = make_engine()
    uid = engine.add_user("maker", "s", FUNDS)
    engine.place_order(uid, order_params("buy", "10", "0.5"), START_MS)
    assert engine.balances(uid)["USDT"] == (D("99995"), D("5"))
    engine.place_order(uid, order_params("sell", "4", "0.6"), START_MS)
    assert engine.balances(uid)["ABC"] == (D("99996"), D("4"))


def test_refusal_mode_raises_instead_of_cancelling() -> None:
    engine = make_engine(reject_unfillable=True)
    uid = engine.add_user("maker", "s", FUNDS)
    engine.place_order(uid, order_params("sell", "10", "1.01"), START_MS)
    taker = engine.add_user("taker", "s", FUNDS)
    for params, label in [
        (order_params("buy", "5", "1.01", time_in_force="poc"), "POC_FILL_IMMEDIATELY"),
        (order_params("buy", "15", "1.01", time_in_force="fok"), "FOK_NOT_FILL"),
    ]:
        with pytest.raises(Exception, match=label):
            engine.place_order(taker, params, START_MS + 1)
    assert engine.list_orders(taker, PAIR, "finished") == []
    assert engine.balances(taker)["USDT"] == (FUNDS["USDT"], D(0))


# ---- the book itself ---------------------------------------------------------------------


def _order(oid: str, side: str, price: str, left: str, iceberg: str = "0") -> SimOrder:
    return SimOrder(
        id=oid, text="t-x", user_id=1, pair=PAIR, side=side, type="limit",
        time_in_force="gtc", price=D(price), amount=D(left), left=D(left),
        filled_amount=D(0), filled_total=D(0), fee=D(0), fee_currency="ABC",
        status="open", finish_as="open", create_time_ms=0, update_time_ms=0,
        iceberg=D(iceberg),
    )  # fmt: skip


def test_book_depth_sorts_sides_and_sums_levels() -> None:
    book = OrderBook(PAIR)
    for o in [
        _order("1", "sell", "1.02", "1"),
        _order("2", "sell", "1.01", "2"),
        _order("3", "sell", "1.01", "3"),
        _order("4", "buy", "0.99", "4"),
        _order("5", "buy", "0.98", "5"),
        _order("6", "buy", "0.97", "10", iceberg="1"),
    ]:
        book.add(o)
    asks, bids = book.depth(10)
    assert asks == [(D("1.01"), D("5")), (D("1.02"), D("1"))]
    assert bids == [(D("0.99"), D("4")), (D("0.98"), D("5")), (D("0.97"), D("1"))]
    assert book.depth(1) == ([(D("1.01"), D("5"))], [(D("0.99"), D("4"))])
    assert (book.best_ask(), book.best_bid()) == (D("1.01"), D("0.99"))


def test_book_flush_counts_one_id_per_changed_level_and_skips_no_ops() -> None:
    book = OrderBook(PAIR, update_id=100)
    a, b = _order("1", "sell", "1.01", "2"), _order("2", "buy", "0.99", "4")
    book.add(a)
    book.add(b)
    first = book.flush(5)
    assert first is not None
    assert (first.first_id, first.last_id) == (101, 102)
    assert first.asks == [(D("1.01"), D("2"))]
    assert first.bids == [(D("0.99"), D("4"))]
    assert book.flush(6) is None
    # Adding and removing within one flush shows nothing.
    c = _order("3", "sell", "1.05", "1")
    book.add(c)
    book.remove(c)
    assert book.flush(7) is None
    book.remove(a)
    gone = book.flush(8)
    assert gone is not None
    assert (gone.first_id, gone.last_id, gone.asks, gone.bids) == (
        103,
        103,
        [(D("1.01"), D(0))],
        [],
    )


@pytest.mark.parametrize(
    ("side", "price", "base", "quote", "expected"),
    [
        ("buy", "1.02", "3", None, [("1.01", "2"), ("1.02", "1")]),
        ("buy", "1.01", "3", None, [("1.01", "2")]),
        ("buy", None, None, "3.03", [("1.01", "2"), ("1.02", "0.99")]),
        ("buy", None, None, "0.001", []),
        ("sell", "0.99", "9", None, [("0.99", "4")]),
        ("sell", None, "9", None, [("0.99", "4"), ("0.98", "5")]),
    ],
)
def test_plan_fills(
    side: str,
    price: str | None,
    base: str | None,
    quote: str | None,
    expected: list[tuple[str, str]],
) -> None:
    book = OrderBook(PAIR)
    for o in [
        _order("1", "sell", "1.01", "2"),
        _order("2", "sell", "1.02", "5"),
        _order("3", "buy", "0.99", "4"),
        _order("4", "buy", "0.98", "5"),
    ]:
        book.add(o)
    fills = plan_fills(
        book,
        side,
        None if price is None else D(price),
        None if base is None else D(base),
        None if quote is None else D(quote),
        2,
    )
    assert [(f.price, f.amount) for f in fills] == [(D(p), D(a)) for p, a in expected]
    assert len(book) == 4  # planning never changes the book


@pytest.mark.parametrize(
    ("side", "price", "crosses"),
    [("buy", "1.01", True), ("buy", "1.00", False), ("sell", "0.99", True), ("sell", "1.0", False)],
)
def test_would_cross(side: str, price: str, crosses: bool) -> None:
    book = OrderBook(PAIR)
    book.add(_order("1", "sell", "1.01", "2"))
    book.add(_order("2", "buy", "0.99", "2"))
    assert would_cross(book, side, D(price)) is crosses
    assert would_cross(OrderBook(PAIR), side, D(price)) is False


@pytest.mark.parametrize(
    ("value", "places", "expected"),
    [
        ("1.239", 2, "1.23"),
        ("1.2", 4, "1.2000"),
        ("0.999", 0, "0"),
        ("123456789012.345678", 3, "123456789012.345"),
    ],
)
def test_quantize_down_truncates(value: str, places: int, expected: str) -> None:
    result = quantize_down(D(value), places)
    assert result == D(expected)
    assert str(result) == expected


def test_sim_pair_side_permissions() -> None:
    def pair(status: str) -> SimPair:
        return SimPair(PAIR, "ABC", "USDT", status, 0, 0, 2, 4, None, None)

    assert (pair("tradable").can_buy, pair("tradable").can_sell) == (True, True)
    assert (pair("buyable").can_buy, pair("buyable").can_sell) == (True, False)
    assert (pair("sellable").can_buy, pair("sellable").can_sell) == (False, True)
    assert (pair("untradable").can_buy, pair("untradable").can_sell) == (False, False)
