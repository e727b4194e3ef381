"""The engine's public API: validation labels, lookups, cancels, events, the listing script."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from sniper.sim.engine import (
    Announced,
    BalanceChanged,
    BookChanged,
    OrderChanged,
    PairListed,
    PairStatusChanged,
    PublicTradeHappened,
    SimEngine,
    SimEvent,
    SimReject,
    UserTradeHappened,
)
from sniper.sim.scenarios import (
    EstablishedPair,
    LadderSpec,
    PairRules,
    Scenario,
    load_scenario,
)

D = Decimal
START_MS = 1_767_261_600_000  # a whole second, so buy_start lands exactly where the test expects
PAIR = "ABC_USDT"
FUNDS = {"USDT": D("500"), "ABC": D("1000")}
IPV = "INVALID_PARAM_VALUE"


def make_engine(status: str = "tradable") -> SimEngine:
    rules = PairRules(
        PAIR,
        amount_precision=2,
        precision=4,
        min_base_amount=D("1"),
        min_quote_amount=D("3"),
        max_base_amount=D("500"),
        max_quote_amount=D("800"),
    )
    scenario = Scenario(
        name="engine",
        established=(
            EstablishedPair(rules, mid=D(1), ladder=LadderSpec(levels=0), requote_every_s=0),
        ),
    )
    engine = SimEngine(scenario, START_MS)
    engine.pair_record(PAIR).trade_status = status
    return engine


def body(**fields: str) -> dict[str, str]:
    params = {"currency_pair": PAIR, "side": "buy", "amount": "10", "price": "1"}
    params.update(fields)
    return {k: v for k, v in params.items() if v != "<omit>"}


REJECTIONS = [
    ("unknown pair", body(currency_pair="NOPE_USDT"), "INVALID_CURRENCY_PAIR", ""),
    ("no pair", body(currency_pair="<omit>"), "MISSING_REQUIRED_PARAM", ""),
    ("bad side", body(side="long"), IPV, "side"),
    ("no side", body(side="<omit>"), "MISSING_REQUIRED_PARAM", "side"),
    ("bad type", body(type="stop"), IPV, "type"),
    ("bad tif", body(time_in_force="day"), IPV, "time_in_force"),
    ("market gtc", body(type="market", time_in_force="gtc"), IPV, "time_in_force"),
    ("market poc", body(type="market", time_in_force="poc"), IPV, "time_in_force"),
    ("text without t-", body(text="abc"), IPV, "text"),
    ("text too long", body(text="t-" + "a" * 29), IPV, "text"),
    ("text bad char", body(text="t-a b"), IPV, "text"),
    ("bad account", body(account="margin"), IPV, "account"),
    ("amount not a number", body(amount="abc"), IPV, "amount"),
    ("amount negative", body(amount="-10"), IPV, "amount"),
    ("amount zero", body(amount="0"), IPV, "amount"),
    ("amount exponent", body(amount="1e1"), IPV, "amount"),
    ("no amount", body(amount="<omit>"), "MISSING_REQUIRED_PARAM", "amount"),
    ("no price on limit", body(price="<omit>"), "MISSING_REQUIRED_PARAM", "price"),
    ("price NaN", body(price="NaN"), IPV, "price"),
    ("price precision", body(price="1.00001"), "INVALID_PRECISION", "Price"),
    ("amount precision", body(amount="10.001"), "INVALID_PRECISION", "Amount"),
    ("sell amount precision", body(side="sell", amount="10.001"), "INVALID_PRECISION", "Amount"),
    ("below min base", body(amount="0.5", price="10"), IPV, "The minimum is 1 ABC"),
    ("below min quote", body(amount="2", price="1"), IPV, "The minimum is 3 USDT"),
    ("above max base", body(amount="501", price="0.1"), IPV, "The maximum is 500 ABC"),
    ("above max quote", body(amount="400", price="2.5"), IPV, "The maximum is 800 USDT"),
    ("market buy min quote", body(type="market", amount="2.5", price="<omit>"), IPV,
     "The minimum is 3 USDT"),
    ("market sell min base", body(type="market", side="sell", amount="0.5"), IPV,
     "The minimum is 1 ABC"),
    ("buy over balance", body(amount="300", price="2"), "BALANCE_NOT_ENOUGH", ""),
    ("sell over balance", body(side="sell", amount="1001", price="0.1"), IPV,
     "maximum"),
    ("market on an empty book", body(type="market", amount="10"), "ORDER_BOOK_NOT_FOUND", ""),
]  # fmt: skip


@pytest.mark.parametrize(
    ("params", "label", "in_message"), [r[1:] for r in REJECTIONS], ids=[r[0] for r in REJECTIONS]
)
def test_place_order_rejections(params: dict[str, str], label: str, in_message: str) -> None:
    engine = make_engine()
    uid = engine.add_user("k", "s", FUNDS)
    with pytest.raises(SimReject) as caught:
        engine.place_order(uid, params, START_MS)
    assert caught.value.label == label
    assert caught.value.status == 400
    assert in_message in caught.value.message
    # A refusal has no effect at all.
    assert engine.balances(uid) == {c: (a, D(0)) for c, a in FUNDS.items()}
    assert engine.list_orders(uid, None, "open") == []
    assert engine.list_orders(uid, None, "finished") == []


def test_sell_over_balance_is_balance_not_enough() -> None:
    engine = make_engine()
    uid = engine.add_user("k", "s", {"ABC": D("5")})
    with pytest.raises(SimReject, match="BALANCE_NOT_ENOUGH"):
        engine.place_order(uid, body(side="sell", amount="6"), START_MS)


@pytest.mark.parametrize(
    ("status", "side", "accepted"),
    [
        ("sellable", "buy", False),
        ("sellable", "sell", True),
        ("buyable", "buy", True),
        ("buyable", "sell", False),
        ("untradable", "buy", False),
        ("untradable", "sell", False),
        ("tradable", "buy", True),
        ("tradable", "sell", True),
    ],
)
def test_side_must_be_open_on_the_pair(status: str, side: str, accepted: bool) -> None:
    engine = make_engine(status)
    uid = engine.add_user("k", "s", FUNDS)
    if accepted:
        order, _ = engine.place_order(uid, body(side=side), START_MS)
        assert order.status == "open"
    else:
        with pytest.raises(SimReject) as caught:
            engine.place_order(uid, body(side=side), START_MS)
        assert (caught.value.label, caught.value.status) == ("INVALID_CURRENCY_PAIR", 400)


def test_text_is_echoed_and_defaults() -> None:
    engine = make_engine()
    uid = engine.add_user("k", "s", FUNDS)
    named, _ = engine.place_order(uid, body(text="t-snipe_1.a-b"), START_MS)
    rest, _ = engine.place_order(uid, body(), START_MS)
    ws, _ = engine.place_order(uid, body(), START_MS, default_text="apiv4-ws")
    assert (named.text, rest.text, ws.text) == ("t-snipe_1.a-b", "apiv4", "apiv4-ws")
    assert int(rest.id) == int(named.id) + 1


def test_lookups_by_id_and_by_text_while_open() -> None:
    engine = make_engine()
    uid = engine.add_user("k", "s", FUNDS)
    other = engine.add_user("k2", "s", FUNDS)
    order, _ = engine.place_order(uid, body(text="t-one"), START_MS)
    assert engine.get_order(uid, PAIR, order.id).id == order.id
    assert engine.get_order(uid, PAIR, "t-one").id == order.id
    for who, key in [(other, order.id), (other, "t-one"), (uid, "t-two"), (uid, "123")]:
        with pytest.raises(SimReject) as caught:
            engine.get_order(who, PAIR, key)
        assert (caught.value.label, caught.value.status) == ("ORDER_NOT_FOUND", 404)

    cancelled, events = engine.cancel_order(uid, PAIR, "t-one", START_MS + 5)
    assert (cancelled.status, cancelled.finish_as, cancelled.update_time_ms) == (
        "cancelled",
        "cancelled",
        START_MS + 5,
    )
    assert engine.balances(uid)["USDT"] == (D("500"), D(0))
    assert [type(e) for e in events] == [BalanceChanged, OrderChanged, BookChanged]
    # Finished: by id only; cancelling again is ORDER_NOT_FOUND.
    assert engine.get_order(uid, PAIR, order.id).status == "cancelled"
    with pytest.raises(SimReject, match="ORDER_NOT_FOUND"):
        engine.get_order(uid, PAIR, "t-one")
    with pytest.raises(SimReject, match="ORDER_NOT_FOUND"):
        engine.cancel_order(uid, PAIR, order.id, START_MS + 6)
    assert [o.id for o in engine.list_orders(uid, PAIR, "finished")] == [order.id]
    with pytest.raises(SimReject, match="INVALID_PARAM_VALUE"):
        engine.list_orders(uid, PAIR, "all")


def test_cancel_all_filters_by_side() -> None:
    engine = make_engine()
    uid = engine.add_user("k", "s", FUNDS)
    buy, _ = engine.place_order(uid, body(price="0.5"), START_MS)
    sell, _ = engine.place_order(uid, body(side="sell", price="2"), START_MS)
    cancelled, events = engine.cancel_all(uid, PAIR, "sell", START_MS + 1)
    assert [o.id for o in cancelled] == [sell.id]
    assert [o.id for o in engine.list_orders(uid, PAIR, "open")] == [buy.id]
    books = [e for e in events if isinstance(e, BookChanged)]
    assert len(books) == 1
    assert books[0].asks == [(D(2), D(0))]
    cancelled, _ = engine.cancel_all(uid, None, None, START_MS + 2)
    assert [o.id for o in cancelled] == [buy.id]
    assert engine.balances(uid) == {c: (a, D(0)) for c, a in FUNDS.items()}
    assert engine.order_book(PAIR, 10)[1:] == ([], [])


def test_a_fill_reports_both_sides_the_public_trade_and_the_book() -> None:
    engine = make_engine()
    maker = engine.add_user("m", "s", FUNDS)
    taker = engine.add_user("t", "s", FUNDS)
    resting, _ = engine.place_order(maker, body(side="sell", amount="10", price="1.01"), START_MS)
    order, events = engine.place_order(
        taker, body(amount="4", price="1.02", time_in_force="ioc", text="t-x"), START_MS + 1
    )
    kinds = [(type(e).__name__, getattr(e, "event", "")) for e in events]
    assert kinds[:2] == [("BalanceChanged", ""), ("OrderChanged", "put")]
    assert kinds[-2:] == [("OrderChanged", "finish"), ("BookChanged", "")]
    assert ("OrderChanged", "update") in kinds  # the maker's partial fill
    trades = [e for e in events if isinstance(e, UserTradeHappened)]
    assert {(e.user_id, e.trade.role) for e in trades} == {(maker, "maker"), (taker, "taker")}
    public = [e for e in events if isinstance(e, PublicTradeHappened)]
    assert len(public) == 1
    assert (public[0].trade.side, public[0].trade.order_id) == ("buy", order.id)
    assert public[0].trade.id_market == 1
    assert engine.recent_trades(PAIR, 10) == [public[0].trade]
    update_id, asks, _ = engine.order_book(PAIR, 5)
    assert asks == [(D("1.01"), D("6"))]
    book_event = events[-1]
    assert isinstance(book_event, BookChanged)
    assert book_event.last_id == update_id
    assert engine.my_trades(taker, PAIR, order.id)[0].text == "t-x"
    assert engine.my_trades(maker, order_id=resting.id)[0].amount == D(4)
    assert engine.my_trades(maker, order_id="nope") == []
    ticker = engine.ticker(PAIR)
    assert ticker["last"] == "1.01"
    assert (ticker["lowest_ask"], ticker["lowest_size"], ticker["highest_bid"]) == ("1.01", "6", "")
    assert (ticker["base_volume"], ticker["change_percentage"]) == ("4", "0")
    assert "lowest_size" not in engine.tickers()[0]


def test_get_pair_hides_unlisted_pairs_and_returns_copies() -> None:
    engine = make_engine()
    pair = engine.get_pair(PAIR)
    pair.trade_status = "untradable"
    assert engine.get_pair(PAIR).trade_status == "tradable"
    with pytest.raises(SimReject) as caught:
        engine.get_pair("ZZZ_USDT")
    assert caught.value.label == "INVALID_CURRENCY_PAIR"
    assert [p.pair for p in engine.visible_pairs()] == [PAIR]


def test_users_by_key() -> None:
    engine = make_engine()
    uid = engine.add_user("key-1", "secret-1", {})
    assert engine.user_by_key("key-1") == (uid, "secret-1")
    assert engine.user_by_key("nope") is None
    with pytest.raises(ValueError, match="already"):
        engine.add_user("key-1", "x", {})
    assert engine.user(uid).taker_fee == engine.scenario.taker_fee


# ---- the listing script ------------------------------------------------------------------

NEW = "NEWCOIN_USDT"


def fast_engine() -> SimEngine:
    return SimEngine(load_scenario("new_listing_fast"), START_MS)


def test_listing_lifecycle_in_advance() -> None:
    engine = fast_engine()
    uid = engine.add_user("k", "s", {"USDT": D("1000")})
    assert NEW not in [p.pair for p in engine.visible_pairs()]
    # The announcement comes before the pair: 2.2 s before the open reaches back past the
    # start, so it is published at the start.
    announced = engine.advance(START_MS + 299)
    assert len(announced) == 1
    assert isinstance(announced[0], Announced)
    assert announced[0].published_ms == START_MS
    assert "NEWCOIN" in announced[0].title
    assert "2026-01-01 10:00:02 UTC" in announced[0].brief
    assert NEW not in [p.pair for p in engine.visible_pairs()]

    listed = engine.advance(START_MS + 300)
    assert [type(e) for e in listed] == [PairListed]
    pair = engine.get_pair(NEW)
    assert (pair.trade_status, pair.buy_start_s) == ("sellable", START_MS // 1000 + 2)
    assert pair.sell_start_s < START_MS // 1000  # pending pairs show an old sell_start
    with pytest.raises(SimReject) as caught:
        engine.place_order(uid, {"currency_pair": NEW, "side": "buy", "amount": "100",
                                 "price": "0.06"}, START_MS + 300)  # fmt: skip
    assert caught.value.label == "INVALID_CURRENCY_PAIR"

    assert not any(isinstance(e, PairStatusChanged) for e in engine.advance(START_MS + 1999))
    opened = engine.advance(START_MS + 2000)
    assert [type(e) for e in opened] == [PairStatusChanged]
    assert engine.get_pair(NEW).trade_status == "tradable"
    assert engine.order_book(NEW, 5) == (0, [], [])

    quoted = engine.advance(START_MS + 2020)
    assert any(isinstance(e, BookChanged) and e.pair == NEW for e in quoted)
    _, asks, bids = engine.order_book(NEW, 1)
    assert bids[0][0] < D("0.052") < asks[0][0]  # mid 1.04x: 2 % of the way up the spike
    # The market maker's bookkeeping is not reported, only fills would be.
    assert not any(isinstance(e, BalanceChanged | OrderChanged) for e in quoted)

    order, _ = engine.place_order(
        uid,
        {"currency_pair": NEW, "side": "buy", "amount": "100", "price": "0.06",
         "time_in_force": "ioc", "text": "t-snipe"},
        START_MS + 2021,
    )  # fmt: skip
    assert (order.status, order.filled_amount) == ("closed", D("100"))
    held = engine.balances(uid)["NEWCOIN"][0]
    assert held == D("99.8")
    # A take-profit resting at 2x fills when the market maker's bids rise through it.
    tp, _ = engine.place_order(
        uid,
        {"currency_pair": NEW, "side": "sell", "amount": "99.8", "price": "0.1"},
        START_MS + 2022,
    )
    spike = engine.advance(START_MS + 3020)  # the re-quote at the peak (every 0.2 s from +20 ms)
    fills = [e for e in spike if isinstance(e, UserTradeHappened) and e.user_id == uid]
    assert [(t.trade.order_id, t.trade.role) for t in fills] == [(tp.id, "maker")]
    assert engine.get_order(uid, NEW, tp.id).status == "closed"
    _, asks, _ = engine.order_book(NEW, 1)
    assert asks[0][0] > D("0.14")  # mid ~3x at the peak
    engine.advance(START_MS + 5000)
    _, asks, _ = engine.order_book(NEW, 1)
    assert D("0.06") < asks[0][0] < D("0.07")  # faded to ~1.2x


def test_same_scenario_same_events() -> None:
    runs = []
    for _ in range(2):
        engine = fast_engine()
        runs.append(repr(engine.advance(START_MS + 6000)))
    assert runs[0] == runs[1]
    assert "PublicTradeHappened" in runs[0]


def test_next_event_ms_walks_the_schedule() -> None:
    engine = fast_engine()
    assert engine.next_event_ms() == START_MS  # the announcement
    engine.advance(START_MS)
    assert engine.next_event_ms() == START_MS + 300  # the pair appears
    engine.advance(START_MS + 300)
    assert engine.next_event_ms() == START_MS + 2000  # it opens


def _apply(book: dict[str, dict[Decimal, Decimal]], change: BookChanged) -> None:
    for side, levels in (("asks", change.asks), ("bids", change.bids)):
        for price, amount in levels:
            if amount:
                book[side][price] = amount
            else:
                book[side].pop(price, None)


def test_book_events_replay_to_the_snapshot_with_contiguous_ids() -> None:
    engine = fast_engine()
    uid = engine.add_user("k", "s", {"USDT": D("100000")})
    engine.advance(START_MS + 2000)
    update_id, asks, bids = engine.order_book(NEW, 1000)
    local = {"asks": dict(asks), "bids": dict(bids)}
    events: list[SimEvent] = []
    for t in range(START_MS + 2001, START_MS + 6000, 97):
        events.extend(engine.advance(t))
        if t % 3 == 0:
            _, placed = engine.place_order(
                uid,
                {"currency_pair": NEW, "side": "buy", "amount": "50", "price": "0.2",
                 "time_in_force": "ioc"},
                t,
            )  # fmt: skip
            events.extend(placed)
    changes = [e for e in events if isinstance(e, BookChanged) and e.pair == NEW]
    assert len(changes) > 10
    for change in changes:
        assert change.first_id == update_id + 1
        assert change.last_id >= change.first_id
        update_id = change.last_id
        _apply(local, change)
    final_id, asks, bids = engine.order_book(NEW, 1000)
    assert final_id == update_id
    assert sorted(local["asks"].items()) == asks
    assert sorted(local["bids"].items(), reverse=True) == bids


# ---- invariants under random order flow ------------------------------------------------

ORDER = st.fixed_dictionaries(
    {
        "who": st.integers(0, 2),
        "side": st.sampled_from(["buy", "sell"]),
        "type": st.sampled_from(["limit", "limit", "market"]),
        "tif": st.sampled_from(["gtc", "ioc", "poc", "fok"]),
        "price": st.integers(90, 110),
        "amount": st.integers(300, 2000),
        "cancel": st.booleans(),
    }
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(ORDER, min_size=1, max_size=25))
def test_random_flow_conserves_money_and_never_crosses(orders: list[dict[str, object]]) -> None:
    engine = make_engine()
    uids = [engine.add_user(f"k{i}", "s", {"USDT": D("800"), "ABC": D("500")}) for i in range(3)]
    fees = {"USDT": D(0), "ABC": D(0)}
    for step, o in enumerate(orders):
        uid = uids[int(str(o["who"]))]
        params = {"currency_pair": PAIR, "side": str(o["side"]), "type": str(o["type"])}
        if o["type"] == "limit":
            params["price"] = str(D(str(o["price"])) / 100)
            params["time_in_force"] = str(o["tif"])
        else:
            params["time_in_force"] = "ioc" if o["tif"] in ("gtc", "poc") else str(o["tif"])
        params["amount"] = str(D(str(o["amount"])) / 100)
        try:
            _, events = engine.place_order(uid, params, START_MS + step)
        except SimReject as exc:
            event(f"rejected {exc.label}")
            continue
        event("placed")
        for e in events:
            if isinstance(e, UserTradeHappened):
                fees[e.trade.fee_currency] += e.trade.fee
        if o["cancel"]:
            engine.cancel_all(uid, PAIR, None, START_MS + step)
        _, asks, bids = engine.order_book(PAIR, 1)
        if asks and bids:
            assert bids[0][0] < asks[0][0]
    for currency, start in (("USDT", D("2400")), ("ABC", D("1500"))):
        total = sum((sum(engine.balances(uid)[currency]) for uid in uids), D(0))
        assert total + fees[currency] == start
        assert all(min(engine.balances(uid)[currency]) >= 0 for uid in uids)
    # Whatever is still locked is exactly what the open orders need.
    for uid in uids:
        open_orders = engine.list_orders(uid, PAIR, "open")
        need_usdt = sum((o.left * (o.price or 0) for o in open_orders if o.side == "buy"), D(0))
        need_abc = sum((o.left for o in open_orders if o.side == "sell"), D(0))
        assert engine.balances(uid)["USDT"][1] == need_usdt
        assert engine.balances(uid)["ABC"][1] == need_abc
