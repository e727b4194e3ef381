"""Codec: every captured-shape Gate payload in tests/fixtures/gate decodes; edge cases by table."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest

from sniper.core import codec
from sniper.core.codec import WsApiReply, WsFrame
from sniper.core.models import (
    BookUpdate,
    Order,
    OrderAck,
    OrderRequest,
    OrderStatus,
    RateLimit,
    TradeStatus,
)
from sniper.errors import (
    AuthError,
    ExchangeError,
    InvalidOrderError,
    PairNotTradableError,
    ProtocolError,
    RateLimitedError,
    RejectedError,
    TransientError,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "gate"
D = Decimal


def load(name: str) -> Any:
    return orjson.loads((FIXTURES / name).read_bytes())


def frame(name: str) -> WsFrame:
    decoded = codec.decode_ws_message((FIXTURES / name).read_bytes())
    assert isinstance(decoded, WsFrame)
    return decoded


def reply(name: str) -> WsApiReply:
    decoded = codec.decode_ws_message((FIXTURES / name).read_bytes())
    assert isinstance(decoded, WsApiReply)
    return decoded


# --- one check per fixture file -------------------------------------------------------------


def check_currency_pairs() -> None:
    pairs = codec.decode_pairs(load("rest_currency_pairs.json"))
    by_name = {p.pair: p for p in pairs}
    assert list(by_name) == ["BTC_USDT", "BLKHION_USDT", "OLDCOIN_USDT", "PRE_USDT", "ABC_BTC"]
    btc = by_name["BTC_USDT"]
    assert (btc.base, btc.quote, btc.trade_status) == ("BTC", "USDT", TradeStatus.TRADABLE)
    assert (btc.amount_precision, btc.price_precision) == (6, 1)
    assert (btc.min_base_amount, btc.min_quote_amount) == (D("0.00001"), D("3"))
    assert (btc.max_base_amount, btc.max_quote_amount) == (None, D("5000000"))
    assert btc.fee_pct == D("0.2")
    pending = by_name["BLKHION_USDT"]
    assert pending.trade_status is TradeStatus.SELLABLE
    assert (pending.buy_start_s, pending.sell_start_s) == (1767261600, 1700000000)
    old = by_name["OLDCOIN_USDT"]
    assert (old.min_base_amount, old.min_quote_amount) == (None, None)
    assert (old.delisting_time_s, old.amount_precision) == (1767000000, 0)
    pre = by_name["PRE_USDT"]
    assert pre.premarket is True
    assert pre.buy_start_s == 1767261600
    assert pre.fee_pct == D("0.1")
    abc = by_name["ABC_BTC"]
    assert abc.premarket is False
    assert abc.trade_status.can_buy
    assert not abc.trade_status.can_sell


def check_order_book() -> None:
    book = codec.decode_book_snapshot(load("rest_order_book.json"), "ABC_USDT")
    assert (book.pair, book.update_id, book.time_ms) == ("ABC_USDT", 123456789, 1731447921098)
    assert book.asks[0] == (D("0.0501"), D("120.5"))
    assert [p for p, _ in book.asks] == sorted(p for p, _ in book.asks)
    assert book.bids == ((D("0.0499"), D("88")), (D("0.049"), D("1")))


def check_order_book_empty() -> None:
    book = codec.decode_book_snapshot(load("rest_order_book_empty.json"), "X_USDT")
    assert (book.update_id, book.asks, book.bids) == (42, (), ())


def check_tickers() -> None:
    btc, new = codec.decode_tickers(load("rest_tickers.json"))
    assert (btc.pair, btc.last, btc.lowest_ask, btc.highest_bid) == (
        "BTC_USDT",
        D("63469.3"),
        D("63469.4"),
        D("63469.3"),
    )
    assert (new.pair, new.last, new.lowest_ask, new.highest_bid) == (
        "BLKHION_USDT",
        None,
        None,
        None,
    )


def check_trades() -> None:
    first, second = (codec.decode_public_trade(t) for t in load("rest_trades.json"))
    assert (first.trade_id, first.side, first.price, first.amount) == (
        1232893232,
        "sell",
        D("3200.01"),
        D("0.15"),
    )
    assert first.time_ms == 1548000000123  # fractional ms truncated
    assert second.time_ms == 1548000001000


def check_time() -> None:
    assert codec.decode_server_time(load("rest_time.json")) == 1731447921098


def check_order_ack() -> None:
    assert codec.decode_order_ack(load("rest_order_ack.json")) == OrderAck("12332324", "t-abc123")
    assert codec.decode_order_or_ack(load("rest_order_ack.json")) == OrderAck(
        "12332324", "t-abc123"
    )


def check_order_full() -> None:
    order = codec.decode_order(load("rest_order_full.json"))
    assert order == Order(
        id="1852454420",
        text="t-abc123",
        pair="BTC_USDT",
        side="buy",
        type="limit",
        time_in_force="gtc",
        status=OrderStatus.CLOSED,
        amount=D("0.001"),
        price=D("65000"),
        left=D("0"),
        filled_amount=D("0.001"),
        filled_total=D("63.4693"),
        avg_deal_price=D("63469.3"),
        fee=D("0.00000022"),
        fee_currency="BTC",
        finish_as="filled",
        create_time_ms=1710488334073,
        update_time_ms=1710488334074,
        event=None,
    )
    assert codec.decode_order_or_ack(load("rest_order_full.json")) == order


def check_order_result_ioc_partial() -> None:
    order = codec.decode_order(load("rest_order_result_ioc_partial.json"))
    assert order.status is OrderStatus.CANCELLED
    assert order.finish_as == "ioc"
    assert (order.filled_amount, order.left, order.filled_total) == (
        D("250"),
        D("150"),
        D("12.525"),
    )
    assert (order.fee, order.fee_currency) == (D(0), "")  # RESULT mode has no fee fields
    assert order.time_in_force == "ioc"


def check_order_market_buy() -> None:
    order = codec.decode_order(load("rest_order_market_buy.json"))
    assert (order.type, order.price) == ("market", None)  # Gate echoes price "0"
    assert (order.amount, order.left, order.filled_amount) == (
        D("70.0"),
        D("0.143511"),
        D("0.00299"),
    )


def check_my_trades() -> None:
    (fill,) = codec.decode_fills_push(load("rest_my_trades.json"))
    assert (fill.trade_id, fill.order_id, fill.text, fill.role) == (
        "1232893232",
        "1852454421",
        "t-snipe-7f3a-1",
        "taker",
    )
    assert (fill.amount, fill.fee, fill.fee_currency, fill.time_ms) == (
        D("250"),
        D("0.5"),
        "BLKHION",
        1767261600012,
    )


def check_accounts() -> None:
    usdt, coin = codec.decode_balances(load("rest_accounts.json"))
    assert (usdt.currency, usdt.available, usdt.locked) == ("USDT", D("1000.5"), D("20"))
    assert (coin.currency, coin.available) == ("BLKHION", D("249.5"))


def check_error_invalid_param() -> None:
    err = codec.decode_error((FIXTURES / "rest_error_invalid_param.json").read_bytes(), 400)
    assert type(err) is InvalidOrderError
    assert (err.label, err.message, err.status) == (
        "INVALID_PARAM_VALUE",
        "The minimum is 3 USDT",
        400,
    )


def check_error_detail() -> None:
    err = codec.decode_error(load("rest_error_detail.json"), 400)
    assert type(err) is InvalidOrderError
    assert err.message == "invalid size"


def check_error_too_many() -> None:
    err = codec.decode_error((FIXTURES / "rest_error_too_many.json").read_bytes(), 429)
    assert type(err) is RateLimitedError
    assert err.label == "TOO_MANY_REQUESTS"


def check_ws_order_book_update() -> None:
    msg = frame("ws_order_book_update.json")
    assert (msg.channel, msg.event, msg.time_ms, msg.error_code) == (
        codec.CH_BOOK_UPDATE,
        codec.EV_UPDATE,
        1606294781236,
        None,
    )
    upd = codec.decode_book_update(msg.result)
    assert upd == BookUpdate(
        pair="BTC_USDT",
        first_id=48776301,
        last_id=48776306,
        asks=((D("19137.75"), D("0.6135")),),
        bids=((D("19137.74"), D("0.0001")), (D("19088.37"), D("0"))),
        time_ms=1606294781123,
        full=True,
    )


def check_ws_order_book_update_delta() -> None:
    upd = codec.decode_book_update(frame("ws_order_book_update_delta.json").result)
    assert (upd.first_id, upd.last_id, upd.full, upd.bids) == (48776307, 48776309, False, ())
    assert upd.asks == ((D("19137.75"), D(0)), (D("19137.9"), D("1.2")))


def check_ws_book_ticker() -> None:
    top = codec.decode_book_ticker(frame("ws_book_ticker.json").result)
    assert (top.pair, top.update_id, top.time_ms) == ("BTC_USDT", 48733182, 1606293275123)
    assert (top.bid, top.bid_size, top.ask, top.ask_size) == (
        D("19177.79"),
        D("0.0003341504"),
        D("19179.38"),
        D("0.09"),
    )


def check_ws_book_ticker_no_asks() -> None:
    top = codec.decode_book_ticker(frame("ws_book_ticker_no_asks.json").result)
    assert (top.bid, top.ask, top.ask_size) == (D("0.02"), None, None)


def check_ws_obu_full() -> None:
    msg = frame("ws_obu_full.json")
    assert (msg.event, msg.time_ms) == ("", 1747054612925)  # obu pushes carry no event/time
    upd = codec.decode_obu(msg.result)
    assert (upd.pair, upd.first_id, upd.last_id, upd.full) == (
        "BTC_USDT",
        73777715168,
        73777715168,
        True,
    )


def check_ws_obu_update() -> None:
    upd = codec.decode_obu(frame("ws_obu_update.json").result)
    assert (upd.first_id, upd.last_id, upd.full, upd.asks) == (
        73777715169,
        73777715212,
        False,
        ((D("104027.2"), D(0)),),
    )


def check_ws_order_book() -> None:
    book = codec.decode_book_snapshot_push(frame("ws_order_book.json").result)
    assert (book.pair, book.update_id, book.time_ms) == ("BTC_USDT", 48791820, 1606295412123)
    assert book.bids[0] == (D("19079.55"), D("0.0195"))


def check_ws_trades() -> None:
    trade = codec.decode_public_trade(frame("ws_trades.json").result)
    assert (trade.trade_id, trade.pair, trade.side, trade.time_ms) == (
        309143071,
        "GT_USDT",
        "sell",
        1606292218213,
    )
    assert trade.amount == D("16.47")


def check_ws_tickers() -> None:
    ticker = codec.decode_ticker(frame("ws_tickers.json").result)
    assert (ticker.pair, ticker.last) == ("BTC_USDT", D("15743.4"))


def check_ws_orders() -> None:
    put, finish = codec.decode_orders_push(frame("ws_orders.json").result)
    assert (put.event, put.status, put.create_time_ms) == ("put", OrderStatus.OPEN, 1694655225315)
    assert put.avg_deal_price is None  # "0" before any fill
    # the finish push has neither status nor filled_amount: both are derived
    assert (finish.event, finish.status, finish.finish_as) == (
        "finish",
        OrderStatus.CANCELLED,
        "ioc",
    )
    assert (finish.filled_amount, finish.left, finish.fee) == (D("250"), D("150"), D("0.5"))
    assert finish.update_time_ms == 1694655225320


def check_ws_usertrades() -> None:
    (fill,) = codec.decode_fills_push(frame("ws_usertrades.json").result)
    assert (fill.trade_id, fill.order_id, fill.side, fill.time_ms) == (
        "5736713",
        "30784428",
        "sell",
        1605176741123,
    )
    assert (fill.fee, fill.fee_currency, fill.text) == (D("0.002"), "USDT", "t-snipe-001")


def check_ws_balances() -> None:
    (bal,) = codec.decode_balances_push(frame("ws_balances.json").result)
    assert (bal.currency, bal.available, bal.locked) == ("USDT", D("987.475"), D("20.525"))


def check_ws_subscribe_ack() -> None:
    msg = frame("ws_subscribe_ack.json")
    assert (msg.channel, msg.event, msg.id, msg.result) == (
        codec.CH_ORDERS,
        codec.EV_SUBSCRIBE,
        7,
        {"status": "success"},
    )


def check_ws_subscribe_error() -> None:
    msg = frame("ws_subscribe_error.json")
    assert (msg.error_code, msg.error_message) == (2, "unknown currency pair GIBBERISH_USD")
    assert msg.error_code is not None
    err = codec.decode_ws_error(msg.error_code, msg.error_message)
    assert isinstance(err, PairNotTradableError)


def check_ws_pong() -> None:
    msg = frame("ws_pong.json")
    assert (msg.channel, msg.event, msg.result) == (codec.CH_PONG, "", None)


def check_ws_api_order_place_ack() -> None:
    msg = reply("ws_api_order_place_ack.json")
    assert (msg.ack, msg.status, msg.channel) == (True, 200, codec.CH_ORDER_PLACE)
    assert msg.rate_limit == RateLimit(None, None, None)


def check_ws_api_order_place_result() -> None:
    msg = reply("ws_api_order_place_result.json")
    assert (msg.request_id, msg.ack, msg.status, msg.error_label) == (
        "snipe-42-1",
        False,
        200,
        None,
    )
    assert msg.rate_limit == RateLimit(remaining=9, limit=10, reset_ms=1736408263764)
    assert (msg.x_in_time_us, msg.x_out_time_us) == (1681985856667508, 1681985856667598)
    assert codec.decode_order_or_ack(msg.result) == OrderAck("12332324", "t-snipe42")


def check_ws_api_rate_limited() -> None:
    msg = reply("ws_api_rate_limited.json")
    assert (msg.status, msg.error_label) == (429, "TOO_MANY_REQUESTS")
    assert msg.rate_limit.reset_ms == 1677816785084  # the x_gate_ spelling
    assert isinstance(codec.decode_error({"label": msg.error_label}, msg.status), RateLimitedError)


def check_ws_api_login() -> None:
    msg = reply("ws_api_login.json")
    assert (msg.channel, msg.status, msg.result["uid"]) == (codec.CH_LOGIN, 200, "110284739")


def check_ws_api_login_failed() -> None:
    msg = reply("ws_api_login_failed.json")
    assert (msg.status, msg.error_label, msg.error_message) == (
        401,
        "INVALID_KEY",
        "Invalid key provided",
    )


CHECKS: dict[str, Callable[[], None]] = {
    name.removeprefix("check_") + ".json": fn
    for name, fn in list(globals().items())
    if name.startswith("check_") and callable(fn)
}
# the check names drop the rest_ prefix of REST fixtures for brevity
CHECKS = {(name if name.startswith("ws_") else "rest_" + name): fn for name, fn in CHECKS.items()}


def test_every_fixture_has_a_check() -> None:
    files = {p.name for p in FIXTURES.glob("*.json")}
    assert files == set(CHECKS)


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_fixture_decodes(name: str) -> None:
    CHECKS[name]()


# --- edge cases ------------------------------------------------------------------------------

BOOK_UPDATE = {"t": 5, "s": "ABC_USDT", "U": 10, "u": 12, "b": [["1.5", "2"]], "a": [["1.6", "0"]]}
TICKER = {"t": 5, "u": 9, "s": "ABC_USDT", "b": "1.5", "B": "2", "a": "1.6", "A": "3"}


def with_(original: dict[str, Any], /, **changes: Any) -> dict[str, Any]:
    out = dict(original)
    for key, value in changes.items():
        if value is ...:
            del out[key]
        else:
            out[key] = value
    return out


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (with_(BOOK_UPDATE, s=...), "order_book_update.s"),
        (with_(BOOK_UPDATE, s=""), "order_book_update.s"),
        (with_(BOOK_UPDATE, U=...), "order_book_update.U"),
        (with_(BOOK_UPDATE, u="x"), "order_book_update.u"),
        (with_(BOOK_UPDATE, U=13), "order_book_update.U"),  # first id after last id
        (with_(BOOK_UPDATE, full="yes"), "order_book_update.full"),
        (with_(BOOK_UPDATE, b=...), "order_book_update.b"),
        (with_(BOOK_UPDATE, b={"1": "2"}), "order_book_update.b"),
        (with_(BOOK_UPDATE, b=["12"]), "order_book_update.b[0]"),
        (with_(BOOK_UPDATE, b=[["1", "2", "3"]]), "order_book_update.b[0]"),
        (with_(BOOK_UPDATE, a=[["NaN", "1"]]), "order_book_update.a[0]"),
        (with_(BOOK_UPDATE, a=[["1", "Infinity"]]), "order_book_update.a[0]"),
        (with_(BOOK_UPDATE, a=[["1", "-1"]]), "order_book_update.a[0]"),
        (with_(BOOK_UPDATE, a=[["abc", "1"]]), "order_book_update.a[0]"),
        (with_(BOOK_UPDATE, a=[[True, "1"]]), "order_book_update.a[0]"),
        (with_(BOOK_UPDATE, a=[[None, "1"]]), "order_book_update.a[0]"),
        (with_(BOOK_UPDATE, t="soon"), "order_book_update.t"),
    ],
)
def test_book_update_rejects_and_names_the_field(payload: dict[str, Any], field: str) -> None:
    with pytest.raises(ProtocolError) as info:
        codec.decode_book_update(payload)
    assert field in str(info.value)
    assert info.value.raw is payload


@pytest.mark.parametrize("payload", [None, 5, "x", [], [BOOK_UPDATE], b"{}"])
def test_book_update_rejects_non_objects(payload: Any) -> None:
    with pytest.raises(ProtocolError, match="expected an object"):
        codec.decode_book_update(payload)


def test_book_update_general_path_accepts_what_the_fast_path_skips() -> None:
    exact = codec.decode_book_update(BOOK_UPDATE)
    odd = codec.decode_book_update(with_(BOOK_UPDATE, U="10", u="12", t="5", b=[[D("1.5"), 2]]))
    assert odd == exact
    assert codec.decode_book_update(with_(BOOK_UPDATE, t=...)).time_ms == 0


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (with_(TICKER, b="NaN"), "book_ticker.b"),
        (with_(TICKER, a="-1"), "book_ticker.a"),
        (with_(TICKER, A=""), "book_ticker.A"),  # a price without a size
        (with_(TICKER, B=[]), "book_ticker.B"),
        (with_(TICKER, u=None), "book_ticker.u"),
        (with_(TICKER, s=3), "book_ticker.s"),
        (with_(TICKER, t=1.5), "book_ticker.t"),
    ],
)
def test_book_ticker_rejects_and_names_the_field(payload: dict[str, Any], field: str) -> None:
    with pytest.raises(ProtocolError) as info:
        codec.decode_book_ticker(payload)
    assert field in str(info.value)
    assert info.value.raw is payload


@pytest.mark.parametrize(
    ("changes", "bid", "ask"),
    [
        ({}, D("1.5"), D("1.6")),
        ({"b": "", "B": ""}, None, D("1.6")),
        ({"a": "", "A": ""}, D("1.5"), None),
        ({"a": None, "A": None}, D("1.5"), None),
        ({"u": "9", "t": 5.0}, D("1.5"), D("1.6")),  # general path, same answer
    ],
)
def test_book_ticker_sides(
    changes: dict[str, Any], bid: Decimal | None, ask: Decimal | None
) -> None:
    top = codec.decode_book_ticker(with_(TICKER, **changes))
    assert (top.bid, top.ask, top.update_id, top.time_ms) == (bid, ask, 9, 5)


PAIR = {
    "id": "ABC_USDT",
    "base": "ABC",
    "quote": "USDT",
    "trade_status": "tradable",
    "amount_precision": 2,
    "precision": 6,
}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"id": ...}, "currency_pair.id"),
        ({"base": 5}, "currency_pair.base"),
        ({"trade_status": "halted"}, "currency_pair.trade_status"),
        ({"precision": ...}, "currency_pair.precision"),
        ({"amount_precision": -1}, "currency_pair.amount_precision"),
        ({"amount_precision": "2.5"}, "currency_pair.amount_precision"),
        ({"buy_start": "tomorrow"}, "currency_pair.buy_start"),
        ({"min_quote_amount": "NaN"}, "currency_pair.min_quote_amount"),
        ({"fee": "Infinity"}, "currency_pair.fee"),
        ({"type": 1}, "currency_pair.type"),
    ],
)
def test_pair_rejects_and_names_the_field(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(ProtocolError, match=field.replace(".", r"\.")):
        codec.decode_pair(with_(PAIR, **changes))


def test_pair_minimal_defaults_and_extra_fields_ignored() -> None:
    pair = codec.decode_pair(with_(PAIR, shiny_new_field={"x": 1}, buy_start=None))
    assert (pair.buy_start_s, pair.sell_start_s, pair.delisting_time_s) == (0, 0, 0)
    assert (pair.min_base_amount, pair.fee_pct, pair.premarket) == (None, D("0.2"), False)
    assert (pair.amount_precision, pair.price_precision) == (2, 6)


def test_pairs_error_names_the_index_and_keeps_the_whole_answer() -> None:
    answer = [PAIR, with_(PAIR, precision="six")]
    with pytest.raises(ProtocolError, match=r"currency_pairs\[1\].*precision") as info:
        codec.decode_pairs(answer)
    assert info.value.raw is answer


def test_pairs_lenient_skips_bad_entries() -> None:
    pairs, errors = codec.decode_pairs_lenient([PAIR, 7, with_(PAIR, id="XYZ_USDT")])
    assert [p.pair for p in pairs] == ["ABC_USDT", "XYZ_USDT"]
    assert len(errors) == 1
    assert isinstance(errors[0], ProtocolError)
    with pytest.raises(ProtocolError, match="expected an array"):
        codec.decode_pairs_lenient({"id": "ABC_USDT"})


ORDER = {
    "id": "77",
    "text": "t-x",
    "currency_pair": "ABC_USDT",
    "side": "buy",
    "type": "limit",
    "amount": "10",
    "price": "0.5",
    "time_in_force": "ioc",
}


@pytest.mark.parametrize(
    ("changes", "status", "filled"),
    [
        ({"status": "open", "left": "10"}, OrderStatus.OPEN, D(0)),
        ({"event": "put", "left": "10"}, OrderStatus.OPEN, D(0)),
        ({"event": "update", "left": "4"}, OrderStatus.OPEN, D(6)),
        ({"event": "finish", "left": "0", "finish_as": "filled"}, OrderStatus.CLOSED, D(10)),
        ({"event": "finish", "left": "4", "finish_as": "ioc"}, OrderStatus.CANCELLED, D(6)),
        ({"event": "finish", "left": "10", "finish_as": "cancelled"}, OrderStatus.CANCELLED, D(0)),
        ({"event": "finish", "left": "0"}, OrderStatus.CLOSED, D(10)),
        ({"event": "finish", "left": "0", "filled_amount": "9.9"}, OrderStatus.CLOSED, D("9.9")),
        ({"status": "cancelled", "left": "3", "filled_amount": "7"}, OrderStatus.CANCELLED, D(7)),
        # market buy: amount/left are quote, so base cannot be derived without filled_amount
        (
            {"type": "market", "time_in_force": "ioc", "left": "1", "status": "closed"},
            OrderStatus.CLOSED,
            D(0),
        ),
        ({}, OrderStatus.OPEN, D(0)),  # ACK-mode style: everything else missing reads as zero
    ],
)
def test_order_status_and_filled_amount(
    changes: dict[str, Any], status: OrderStatus, filled: Decimal
) -> None:
    order = codec.decode_order(with_(ORDER, **changes))
    assert (order.status, order.filled_amount) == (status, filled)


def test_order_times_and_ids_in_every_spelling() -> None:
    rest = codec.decode_order(with_(ORDER, id=77, create_time_ms=1700000000123))
    ws = codec.decode_order(with_(ORDER, create_time_ms="1700000000123", update_time="1700000001"))
    assert (rest.id, rest.create_time_ms) == ("77", 1700000000123)
    assert (ws.create_time_ms, ws.update_time_ms) == (1700000000123, 1700000001000)
    assert codec.decode_order(ORDER, event="update").event == "update"
    assert codec.decode_order(ORDER).event is None


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"id": ...}, "order.id"),
        ({"id": ""}, "order.id"),
        ({"currency_pair": ...}, "order.currency_pair"),
        ({"side": "short"}, "order.side"),
        ({"amount": "1e"}, "order.amount"),
        ({"status": "done"}, "order.status"),
        ({"create_time_ms": "yesterday"}, "order.create_time_ms"),
        ({"create_time_ms": "1e999999999"}, "order.create_time_ms"),
        ({"fee": "sNaN"}, "order.fee"),
        ({"amount": "-1"}, "order.amount"),
        ({"left": "11"}, "order.left"),  # derived filled_amount would be negative
        ({"filled_amount": "-0.5"}, "order.filled_amount"),
    ],
)
def test_order_rejects_and_names_the_field(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(ProtocolError, match=field.replace(".", r"\.")):
        codec.decode_order(with_(ORDER, **changes))


def test_order_ack_needs_an_id() -> None:
    assert codec.decode_order_ack({"id": 5}) == OrderAck("5", "")
    with pytest.raises(ProtocolError, match=r"order_ack\.id"):
        codec.decode_order_or_ack({"text": "t-x"})


FILL = {
    "id": 5,
    "order_id": "9",
    "currency_pair": "ABC_USDT",
    "side": "buy",
    "role": "maker",
    "price": "1",
    "amount": "2",
}


@pytest.mark.parametrize(
    ("changes", "trade_id", "time_ms"),
    [
        ({"create_time_ms": "1605176741123.456"}, "5", 1605176741123),
        ({"id": "5", "create_time_ms": 1605176741123}, "5", 1605176741123),
        ({"create_time": 1605176741}, "5", 1605176741000),
        ({"create_time": "1605176741.5"}, "5", 1605176741500),
        ({}, "5", 0),
    ],
)
def test_fill_ids_and_times(changes: dict[str, Any], trade_id: str, time_ms: int) -> None:
    fill = codec.decode_fill(with_(FILL, **changes))
    assert (fill.trade_id, fill.time_ms, fill.role, fill.fee) == (trade_id, time_ms, "maker", D(0))


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"price": "-1"}, "user_trade.price"),
        ({"role": "both"}, "user_trade.role"),
        ({"order_id": ...}, "user_trade.order_id"),
        ({"create_time_ms": "1e30"}, "user_trade.create_time_ms"),
        ({"create_time": "soon"}, "user_trade.create_time"),
    ],
)
def test_fill_rejects_and_names_the_field(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(ProtocolError, match=field.replace(".", r"\.")):
        codec.decode_fill(with_(FILL, **changes))


def test_balance_push_derives_locked_from_total_when_freeze_is_absent() -> None:
    (bal,) = codec.decode_balances_push([{"currency": "ABC", "available": "3", "total": "5"}])
    assert bal.locked == D(2)
    with pytest.raises(ProtocolError, match=r"spot\.balances\.total"):
        codec.decode_balances_push([{"currency": "ABC", "available": "3"}])


@pytest.mark.parametrize(
    ("body", "status", "kind", "label"),
    [
        (b'{"label":"BALANCE_NOT_ENOUGH","message":"no"}', 400, "InsufficientFundsError", None),
        (b'{"label":"INVALID_SIGNATURE","message":"bad"}', 401, "AuthError", None),
        (b'{"label":"ORDER_NOT_FOUND","message":"gone"}', 404, "OrderNotFoundError", None),
        (b'{"label":"SOMETHING_NEW","message":"?"}', 400, "RejectedError", "SOMETHING_NEW"),
        (b"<html>502 Bad Gateway</html>", 502, "TransientError", None),
        (b"", 429, "RateLimitedError", None),
        (b"", 403, "AuthError", None),
        ("not json", None, "RejectedError", None),
        (b'["label"]', 500, "TransientError", None),
        ({"label": "INVALID_KEY", "message": "x"}, None, "AuthError", "INVALID_KEY"),
        (12345, 503, "TransientError", None),
    ],
)
def test_decode_error_is_typed(body: Any, status: int | None, kind: str, label: str | None) -> None:
    err = codec.decode_error(body, status)
    assert type(err).__name__ == kind
    assert err.status == status
    if label is not None:
        assert err.label == label
    assert err.message  # never empty: something to log


def test_decode_error_keeps_non_json_text_for_the_log() -> None:
    err = codec.decode_error(b"<html>502 Bad Gateway</html>", 502)
    assert isinstance(err, TransientError)
    assert "502 Bad Gateway" in err.message


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (
            {
                "X-Gate-RateLimit-Requests-Remain": "9",
                "X-Gate-RateLimit-Limit": "10",
                "X-Gate-RateLimit-Reset-Timestamp": "1736408263764",
            },
            RateLimit(9, 10, 1736408263764),
        ),
        (
            {
                "x-gate-ratelimit-requests-remain": "0",
                "x-gate-ratelimit-limit": "200",
                "x-gate-ratelimit-reset-timestamp": "1736408263",  # seconds: scaled
            },
            RateLimit(0, 200, 1736408263000),
        ),
        ({"X-GATE-RATELIMIT-LIMIT": "ten", "Content-Type": "x"}, RateLimit(None, None, None)),
        ({}, RateLimit(None, None, None)),
    ],
)
def test_decode_rate_limit(headers: dict[str, str], expected: RateLimit) -> None:
    assert codec.decode_rate_limit(headers) == expected


# --- encoding --------------------------------------------------------------------------------

BUY = OrderRequest(pair="ABC_USDT", side="buy", amount=D("400"), price=D("0.055"), text="t-s1")


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (D("100"), "100"),
        (D("1E+2"), "100"),
        (D("1.50"), "1.5"),
        (D("0.00010"), "0.0001"),
        (D("1E-8"), "0.00000001"),
        (D("123456789.123456789123456789123"), "123456789.123456789123456789123"),
        (D("5.000"), "5"),
    ],
)
def test_format_decimal(value: Decimal, text: str) -> None:
    assert codec.format_decimal(value) == text


def test_encode_order_limit_body_and_round_trip() -> None:
    body = codec.encode_order_body(BUY)
    assert body == (
        b'{"currency_pair":"ABC_USDT","side":"buy","type":"limit","amount":"400",'
        b'"price":"0.055","time_in_force":"ioc","text":"t-s1","account":"spot",'
        b'"action_mode":"ACK"}'
    )
    decoded = orjson.loads(body)
    assert D(decoded["amount"]) == BUY.amount
    assert D(decoded["price"]) == BUY.price
    # Gate echoes the body as an Order: decoding it gives the request back
    echoed = codec.decode_order({**decoded, "id": "1", "status": "open", "left": decoded["amount"]})
    assert (echoed.pair, echoed.side, echoed.amount, echoed.price, echoed.text) == (
        BUY.pair,
        BUY.side,
        BUY.amount,
        BUY.price,
        BUY.text,
    )


def test_encode_order_market_omits_price() -> None:
    market = OrderRequest("ABC_USDT", "buy", D("20"), None, "t-m", type="market")
    assert codec.encode_order(market, action_mode="FULL") == {
        "currency_pair": "ABC_USDT",
        "side": "buy",
        "type": "market",
        "amount": "20",
        "time_in_force": "ioc",
        "text": "t-m",
        "account": "spot",
        "action_mode": "FULL",
    }


@pytest.mark.parametrize(
    "req",
    [
        OrderRequest("ABC_USDT", "buy", D("1"), D("1"), "s-1"),  # no t- prefix
        OrderRequest("ABC_USDT", "buy", D("1"), D("1"), "t-"),
        OrderRequest("ABC_USDT", "buy", D("1"), D("1"), "t-" + "x" * 29),  # > 28 bytes
        OrderRequest("ABC_USDT", "buy", D("1"), D("1"), "t-a b"),
        OrderRequest("ABC_USDT", "buy", D("0"), D("1"), "t-a"),
        OrderRequest("ABC_USDT", "buy", D("-1"), D("1"), "t-a"),
        OrderRequest("ABC_USDT", "buy", D("NaN"), D("1"), "t-a"),
        OrderRequest("ABC_USDT", "buy", D("1"), None, "t-a"),  # limit without price
        OrderRequest("ABC_USDT", "buy", D("1"), D("Infinity"), "t-a"),
        OrderRequest("ABC_USDT", "buy", D("1"), None, "t-a", type="market", time_in_force="gtc"),
        OrderRequest("", "buy", D("1"), D("1"), "t-a"),
    ],
)
def test_encode_order_refuses_what_gate_would_refuse(req: OrderRequest) -> None:
    with pytest.raises(InvalidOrderError):
        codec.encode_order(req)


def test_encode_order_refuses_unknown_action_mode() -> None:
    with pytest.raises(InvalidOrderError):
        codec.encode_order(BUY, action_mode="FAST")


def test_text_of_exactly_28_bytes_is_allowed() -> None:
    req = OrderRequest("ABC_USDT", "sell", D("1"), D("2"), "t-" + "a_b.c-" * 4 + "0123")
    assert codec.encode_order(req)["text"] == req.text


# --- WebSocket envelopes ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not json",
        b'{"channel": NaN}',
        b"[1, 2]",
        b'{"time": 1}',  # no channel
        b'{"channel": "spot.trades", "event": 5}',
        b'{"channel": "spot.trades", "error": {"code": "2"}}',
        b'{"channel": "spot.trades", "error": "boom"}',
        b'{"channel": "spot.trades", "id": "7"}',
        b'{"channel": "spot.trades", "time_ms": "1"}',
        b'{"request_id": "r", "header": {"status": "ok"}}',
        b'{"request_id": "r"}',
        b'{"request_id": ["r"], "header": {"status": "200"}}',
        b'{"request_id": "r", "header": {"status": "200"}, "data": []}',
        b'{"request_id": "r", "header": {"status": "200"}, "data": {"errs": "x"}}',
        b'{"request_id": "r", "header": {"status": "200"}, "ack": "yes"}',
        "\ud800",
    ],
)
def test_decode_ws_message_rejects_with_raw(data: bytes | str) -> None:
    with pytest.raises(ProtocolError) as info:
        codec.decode_ws_message(data)
    assert info.value.raw is data


def test_decode_ws_message_time_falls_back_to_seconds() -> None:
    msg = codec.decode_ws_message(b'{"time": 10, "channel": "spot.pong", "event": null}')
    assert msg == WsFrame("spot.pong", "", None, None, None, None, 10_000)


def test_ws_api_reply_with_numeric_status_and_no_data() -> None:
    msg = codec.decode_ws_message(b'{"request_id": 5, "header": {"status": 500}}')
    assert isinstance(msg, WsApiReply)
    assert (msg.request_id, msg.status, msg.error_label, msg.error_message) == (
        "5",
        500,
        None,
        "status 500",
    )


@pytest.mark.parametrize(
    ("code", "message", "kind"),
    [
        (4, "authentication failed", AuthError),
        (2, "unknown currency pair X_USDT", PairNotTradableError),
        (2, "Alert sub ob.BTC_USDT.400", RejectedError),
        (3, "server error", TransientError),
        (1, "invalid request body", InvalidOrderError),
        (99, None, RejectedError),
    ],
)
def test_decode_ws_error(code: int, message: str | None, kind: type[ExchangeError]) -> None:
    err = codec.decode_ws_error(code, message)
    assert type(err) is kind
    assert err.message


def test_encode_ws_request_shapes() -> None:
    auth = codec.ws_auth("k", "s")
    assert auth == {"method": "api_key", "KEY": "k", "SIGN": "s"}
    sub = codec.encode_ws_request(
        codec.CH_ORDERS, codec.EV_SUBSCRIBE, [codec.ALL_PAIRS], time_s=1611541000, id=3, auth=auth
    )
    assert orjson.loads(sub) == {
        "time": 1611541000,
        "id": 3,
        "channel": "spot.orders",
        "event": "subscribe",
        "payload": ["!all"],
        "auth": {"method": "api_key", "KEY": "k", "SIGN": "s"},
    }
    bare = codec.encode_ws_request(codec.CH_TRADES, codec.EV_UNSUBSCRIBE, None, time_s=1)
    assert orjson.loads(bare) == {"time": 1, "channel": "spot.trades", "event": "unsubscribe"}
    assert orjson.loads(codec.encode_ws_ping(time_s=9)) == {"time": 9, "channel": "spot.ping"}
    assert codec.book_update_payload("ABC_USDT") == ["ABC_USDT", "20ms"]
    assert codec.obu_payload("ABC_USDT", 400) == ["ob.ABC_USDT.400"]


def test_encode_ws_api_request_and_login() -> None:
    body = codec.encode_order(BUY)
    place = codec.encode_ws_api_request(
        codec.CH_ORDER_PLACE, "r-1", body, time_s=5, req_header={"x-gate-exptime": "5900"}
    )
    assert orjson.loads(place) == {
        "time": 5,
        "channel": "spot.order_place",
        "event": "api",
        "payload": {"req_id": "r-1", "req_header": {"x-gate-exptime": "5900"}, "req_param": body},
    }
    no_header = orjson.loads(codec.encode_ws_api_request(codec.CH_ORDER_STATUS, "r", {}, time_s=1))
    assert "req_header" not in no_header["payload"]
    login = codec.encode_ws_login("key", "sig", "1681984544", "login-1", time_s=1681984544)
    assert orjson.loads(login) == {
        "time": 1681984544,
        "channel": "spot.login",
        "event": "api",
        "payload": {
            "api_key": "key",
            "signature": "sig",
            "timestamp": "1681984544",
            "req_id": "login-1",
        },
    }


def test_loads() -> None:
    assert codec.loads(b'{"a": [1, "2"]}') == {"a": [1, "2"]}
    with pytest.raises(ProtocolError) as info:
        codec.loads(b"{")
    assert info.value.raw == b"{"
    with pytest.raises(ProtocolError):
        codec.loads(b"[1e400]")  # overflows a double


def test_decode_server_time_and_snapshot_errors() -> None:
    with pytest.raises(ProtocolError, match=r"time\.server_time"):
        codec.decode_server_time({"serverTime": 1})
    with pytest.raises(ProtocolError, match=r"order_book\.id"):
        codec.decode_book_snapshot({"current": 1, "asks": [], "bids": []}, "X_USDT")


def test_obu_rejects_a_bad_stream_name() -> None:
    with pytest.raises(ProtocolError, match=r"spot\.obu\.s"):
        codec.decode_obu({"s": "BTC_USDT", "u": 1, "full": True, "a": [], "b": []})
