"""Property tests: whatever arrives, a decoder returns a model or raises ProtocolError only."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sniper.core import codec
from sniper.core.models import OrderRequest
from sniper.errors import ExchangeError, ProtocolError

FUZZ = settings(
    max_examples=200,
    deadline=None,  # a shared 2-core machine: timing is not what is under test
    suppress_health_check=[HealthCheck.too_slow],
)

decimal_text = st.one_of(
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
    st.sampled_from(["", "-0", "1e5", "1E-999999999", "NaN", "-Infinity", "sNaN", " 1 ", "1_0"]),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    decimal_text,
)
json_ish = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=12,
)
levels = st.lists(st.lists(st.one_of(decimal_text, json_ish), min_size=0, max_size=3), max_size=3)

WIRE_KEYS = [
    # book / ticker
    "s", "U", "u", "t", "b", "a", "B", "A", "full", "lastUpdateId", "asks", "bids", "id",
    "current",
    # pairs / tickers / trades / orders / fills / balances
    "base", "quote", "trade_status", "buy_start", "sell_start", "amount_precision", "precision",
    "min_base_amount", "min_quote_amount", "max_base_amount", "max_quote_amount", "fee", "type",
    "delisting_time", "currency_pair", "last", "lowest_ask", "highest_bid", "side", "price",
    "amount", "create_time", "create_time_ms", "update_time", "update_time_ms", "text", "status",
    "time_in_force", "left", "filled_amount", "filled_total", "fill_price", "avg_deal_price",
    "fee_currency", "finish_as", "event", "order_id", "role", "currency", "available", "locked",
    "freeze", "total", "server_time",
]  # fmt: skip
shaped = st.dictionaries(
    st.sampled_from(WIRE_KEYS), st.one_of(json_ish, decimal_text, levels), max_size=12
)

VALID_BOOK_UPDATE = {"t": 1, "s": "A_B", "U": 1, "u": 2, "b": [["1", "2"]], "a": [["3", "0"]]}
VALID_TICKER = {"t": 1, "u": 2, "s": "A_B", "b": "1", "B": "2", "a": "3", "A": "4"}
VALID_PAIR = {
    "id": "A_B",
    "base": "A",
    "quote": "B",
    "trade_status": "tradable",
    "amount_precision": 2,
    "precision": 4,
}
VALID_ORDER = {"id": "1", "currency_pair": "A_B", "side": "buy", "amount": "1", "left": "1"}
VALID_FILL = {
    "id": 1,
    "order_id": "2",
    "currency_pair": "A_B",
    "side": "buy",
    "role": "taker",
    "price": "1",
    "amount": "1",
    "create_time_ms": "1.5",
}

DECODERS: dict[str, Callable[[Any], object]] = {
    "pair": codec.decode_pair,
    "pairs": codec.decode_pairs,
    "pairs_lenient": codec.decode_pairs_lenient,
    "book_snapshot": lambda obj: codec.decode_book_snapshot(obj, "A_B"),
    "book_snapshot_push": codec.decode_book_snapshot_push,
    "book_update": codec.decode_book_update,
    "obu": codec.decode_obu,
    "book_ticker": codec.decode_book_ticker,
    "ticker": codec.decode_ticker,
    "tickers": codec.decode_tickers,
    "public_trade": codec.decode_public_trade,
    "server_time": codec.decode_server_time,
    "order": codec.decode_order,
    "orders_push": codec.decode_orders_push,
    "order_ack": codec.decode_order_ack,
    "order_or_ack": codec.decode_order_or_ack,
    "fill": codec.decode_fill,
    "fills_push": codec.decode_fills_push,
    "balance": codec.decode_balance,
    "balances": codec.decode_balances,
    "balances_push": codec.decode_balances_push,
}
VALID = {
    "book_update": VALID_BOOK_UPDATE,
    "book_ticker": VALID_TICKER,
    "pair": VALID_PAIR,
    "order": VALID_ORDER,
    "fill": VALID_FILL,
}


def only_protocol_errors(decode: Callable[[Any], object], payload: Any) -> None:
    error: ProtocolError | None = None
    try:
        decode(payload)
    except ProtocolError as exc:  # anything else propagates and fails the test
        error = exc
    if error is not None:
        assert error.message  # names what was wrong
        assert error.raw is not None or payload is None


@FUZZ
@given(name=st.sampled_from(sorted(DECODERS)), payload=st.one_of(json_ish, shaped))
def test_decoders_raise_only_protocol_error(name: str, payload: Any) -> None:
    only_protocol_errors(DECODERS[name], payload)


@FUZZ
@given(name=st.sampled_from(sorted(DECODERS)), payload=st.lists(shaped, max_size=3))
def test_array_decoders_raise_only_protocol_error(name: str, payload: Any) -> None:
    only_protocol_errors(DECODERS[name], payload)


@FUZZ
@given(name=st.sampled_from(sorted(VALID)), data=st.data())
def test_one_bad_field_in_a_valid_payload(name: str, data: st.DataObject) -> None:
    payload = dict(VALID[name])
    key = data.draw(st.sampled_from(sorted(payload)))
    payload[key] = data.draw(st.one_of(json_ish, decimal_text, levels))
    only_protocol_errors(DECODERS[name], payload)


@FUZZ
@given(data=st.one_of(st.binary(max_size=64), st.text(max_size=64)))
def test_ws_message_from_arbitrary_bytes(data: bytes | str) -> None:
    only_protocol_errors(codec.decode_ws_message, data)


envelope = st.fixed_dictionaries(
    {},
    optional={
        "channel": json_ish,
        "event": json_ish,
        "time": json_ish,
        "time_ms": json_ish,
        "id": json_ish,
        "error": st.one_of(
            json_ish, st.fixed_dictionaries({"code": json_ish, "message": json_ish})
        ),
        "result": json_ish,
        "request_id": json_ish,
        "ack": json_ish,
        "header": st.one_of(
            json_ish,
            st.dictionaries(
                st.sampled_from(
                    [
                        "status",
                        "channel",
                        "x_in_time",
                        "x_out_time",
                        "x_gate_ratelimit_requests_remain",
                        "x_gate_ratelimit_limit",
                        "x_gat_ratelimit_reset_timestamp",
                        "x_gate_ratelimit_reset_timestamp",
                    ]
                ),
                json_ish,
            ),
        ),
        "data": st.one_of(
            json_ish, st.fixed_dictionaries({}, optional={"result": json_ish, "errs": json_ish})
        ),
    },
)


@FUZZ
@given(message=envelope)
def test_ws_message_from_arbitrary_envelopes(message: dict[str, Any]) -> None:
    try:
        data = orjson.dumps(message)
    except (TypeError, orjson.JSONEncodeError):
        return  # not encodable as JSON (ints past 64 bits, NaN): cannot arrive on the wire
    only_protocol_errors(codec.decode_ws_message, data)


@FUZZ
@given(body=st.one_of(json_ish, st.binary(max_size=40), shaped), status=st.none() | st.integers())
def test_decode_error_never_raises(body: Any, status: int | None) -> None:
    assert isinstance(codec.decode_error(body, status), ExchangeError)


@FUZZ
@given(headers=st.dictionaries(st.text(max_size=40), st.text(max_size=20), max_size=5))
def test_decode_rate_limit_never_raises(headers: dict[str, str]) -> None:
    codec.decode_rate_limit(headers)


@FUZZ
@given(
    first=st.integers(min_value=0, max_value=2**62),
    span=st.integers(min_value=0, max_value=1000),
    asks=st.lists(st.tuples(st.decimals(min_value=0, allow_nan=False, allow_infinity=False),
                            st.decimals(min_value=0, allow_nan=False, allow_infinity=False)),
                  max_size=5),
    as_strings=st.booleans(),
)  # fmt: skip
def test_fast_and_general_book_update_agree(
    first: int, span: int, asks: list[tuple[Decimal, Decimal]], as_strings: bool
) -> None:
    wire_asks = [[str(p), str(a)] for p, a in asks if not p.is_signed() and not a.is_signed()]
    payload = {"t": 7, "s": "A_B", "U": first, "u": first + span, "b": [], "a": wire_asks}
    fast = codec.decode_book_update(payload)
    # the same numbers spelled as strings skip the fast path
    spelled = {**payload, "U": str(first)} if as_strings else payload
    assert codec.decode_book_update(spelled) == fast
    assert fast.asks == tuple((Decimal(p), Decimal(a)) for p, a in wire_asks)


@FUZZ
@given(
    amount=st.decimals(min_value=Decimal("1e-12"), max_value=Decimal("1e12"), places=12),
    price=st.decimals(min_value=Decimal("1e-12"), max_value=Decimal("1e9"), places=12),
)
def test_encode_order_round_trips_decimals(amount: Decimal, price: Decimal) -> None:
    req = OrderRequest("A_B", "buy", amount, price, "t-fuzz")
    body = orjson.loads(codec.encode_order_body(req))
    assert Decimal(body["amount"]) == amount
    assert Decimal(body["price"]) == price
    assert "e" not in body["amount"].lower()
    assert "e" not in body["price"].lower()
    assert not body["price"].endswith(".")
    assert not ("." in body["price"] and body["price"].endswith("0"))
