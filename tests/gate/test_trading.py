"""GateWsTrader against the scripted local Gate WS server (tests/gate/wsserver.py)."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any

import pytest
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader

from sniper.core.backoff import Backoff
from sniper.core.codec import CH_ORDER_PLACE, encode_order, encode_ws_api_request
from sniper.core.models import Order, OrderAck, OrderRequest, OrderStatus
from sniper.core.signing import Credentials, Signer
from sniper.errors import (
    AuthError,
    InsufficientFundsError,
    InvalidOrderError,
    OrderNotFoundError,
    OutcomeUnknownError,
    RateLimitedError,
    TransientError,
)
from sniper.gate.ports import OrderGateway
from sniper.gate.trading import GateWsTrader, PreparedWsOrder
from sniper.gate.wsconn import client_text_frame
from tests.gate.wsserver import (
    ACK_ONLY,
    DROP_AFTER_ACK,
    KEY,
    REJECT,
    SECRET,
    SILENT,
    GateWsServer,
)

BUY = OrderRequest(
    pair="ABC_USDT", side="buy", amount=Decimal("100"), price=Decimal("0.05"), text="t-snipe42"
)


def signer(secret: str = SECRET) -> Signer:
    return Signer(Credentials(KEY, secret))


@pytest.fixture
async def server() -> AsyncIterator[GateWsServer]:
    async with GateWsServer() as srv:
        yield srv


@pytest.fixture
async def make_trader(server: GateWsServer) -> AsyncIterator[Callable[..., GateWsTrader]]:
    traders: list[GateWsTrader] = []

    def make(**kwargs: Any) -> GateWsTrader:
        kwargs.setdefault("backoff", Backoff(base_s=0.01, max_s=0.05))
        trader = GateWsTrader(server.url, kwargs.pop("signer", signer()), **kwargs)
        traders.append(trader)
        trader.start()
        return trader

    yield make
    for trader in traders:
        await trader.close()


def test_trader_implements_the_order_gateway_port() -> None:
    gateway: OrderGateway = GateWsTrader("ws://127.0.0.1:1/", signer())
    assert gateway is not None


async def test_login_is_signed_over_the_empty_req_param(
    server: GateWsServer, make_trader: Callable[..., GateWsTrader]
) -> None:
    trader = make_trader()
    await trader.wait_ready(5)
    login = server.requests("spot.login")[0].msg
    payload = login["payload"]
    expected = hmac.new(
        SECRET.encode(), f"api\nspot.login\n\n{payload['timestamp']}".encode(), hashlib.sha512
    ).hexdigest()
    assert payload["signature"] == expected
    assert payload["api_key"] == KEY
    assert login["event"] == "api"
    assert trader.statistics().logins == 1


async def test_place_resolves_on_the_final_reply_not_the_ack(
    server: GateWsServer, make_trader: Callable[..., GateWsTrader]
) -> None:
    trader = make_trader()
    answer = await trader.place(BUY)
    assert isinstance(answer, OrderAck)
    assert answer.text == "t-snipe42"
    assert answer.id in server.orders

    [sent] = server.requests("spot.order_place")
    param = sent.msg["payload"]["req_param"]
    assert param["action_mode"] == "ACK"
    assert (param["price"], param["amount"], param["time_in_force"]) == ("0.05", "100", "ioc")
    [timing] = trader.timings()
    assert timing.text == "t-snipe42"
    assert timing.req_id == sent.msg["payload"]["req_id"]
    assert 0 < timing.decision_ns <= timing.written_ns <= timing.ack_ns <= timing.result_ns
    assert timing.gate_in_us is not None
    assert timing.gate_out_us is not None
    assert timing.outcome == "ok"


async def test_result_mode_returns_the_order(make_trader: Callable[..., GateWsTrader]) -> None:
    trader = make_trader(action_mode="RESULT")
    answer = await trader.place(BUY)
    assert isinstance(answer, Order)
    assert answer.status is OrderStatus.CLOSED
    assert answer.filled_amount == Decimal("100")
    assert answer.pair == "ABC_USDT"


async def test_fired_frame_is_the_template_with_spliced_values(
    server: GateWsServer, make_trader: Callable[..., GateWsTrader]
) -> None:
    trader = make_trader(clock=lambda: 1_700_000_000.25, clock_offset_s=1.5, ttl_ms=400)
    await trader.wait_ready(5)
    prepared = trader.prepare(BUY)
    await trader.fire(prepared, Decimal("0.0615"), Decimal("325.5"))

    [sent] = server.requests("spot.order_place")
    expected = encode_ws_api_request(
        CH_ORDER_PLACE,
        prepared.req_id,
        encode_order(
            dataclasses.replace(BUY, price=Decimal("0.0615"), amount=Decimal("325.5")),
            action_mode="ACK",
        ),
        time_s=1_700_000_001,
        req_header={"x-gate-exptime": str(1_700_000_001_750 + 400)},
    )
    assert sent.raw == expected


def test_render_splices_values_without_a_connection() -> None:
    trader = GateWsTrader("ws://127.0.0.1:1/", signer(), ttl_ms=None)
    market = OrderRequest(
        pair="ABC_USDT", side="buy", amount=Decimal("20"), price=None, text="t-m1", type="market"
    )
    prepared = trader.prepare(market)
    frame = json.loads(prepared.render(123.9, None, Decimal("1E+1")))
    assert frame["time"] == 123
    assert "req_header" not in frame["payload"]
    assert "price" not in frame["payload"]["req_param"]
    assert frame["payload"]["req_param"]["amount"] == "10"


def test_prepare_rejects_an_order_gate_would_refuse() -> None:
    trader = GateWsTrader("ws://127.0.0.1:1/", signer())
    with pytest.raises(InvalidOrderError):
        trader.prepare(dataclasses.replace(BUY, text="no-prefix"))


def test_request_ids_are_unique() -> None:
    trader = GateWsTrader("ws://127.0.0.1:1/", signer())
    other = GateWsTrader("ws://127.0.0.1:1/", signer())
    ids = {trader.prepare(BUY).req_id for _ in range(50)} | {other.prepare(BUY).req_id}
    assert len(ids) == 51


@pytest.mark.parametrize(
    ("label", "status", "error_type"),
    [
        ("BALANCE_NOT_ENOUGH", "400", InsufficientFundsError),
        ("TOO_MANY_REQUESTS", "429", RateLimitedError),
        ("INVALID_PRECISION", "400", InvalidOrderError),
    ],
)
async def test_error_label_becomes_a_typed_error(
    server: GateWsServer,
    make_trader: Callable[..., GateWsTrader],
    label: str,
    status: str,
    error_type: type[Exception],
) -> None:
    server.order_script = REJECT
    server.reject_label = label
    server.reject_status = status
    trader = make_trader()
    with pytest.raises(error_type) as caught:
        await trader.place(BUY)
    assert getattr(caught.value, "label", None) == label
    assert trader.timings()[0].outcome == label


@pytest.mark.parametrize(("label", "status"), [("SERVER_ERROR", "500"), ("TOO_BUSY", "503")])
async def test_server_error_on_a_placement_is_an_unknown_outcome(
    server: GateWsServer, make_trader: Callable[..., GateWsTrader], label: str, status: str
) -> None:
    # a 5xx does not prove the engine never took the order: reconcile, never re-fire blind
    server.order_script = REJECT
    server.reject_label = label
    server.reject_status = status
    trader = make_trader()
    with pytest.raises(OutcomeUnknownError) as caught:
        await trader.fire(trader.prepare(BUY), BUY.price, BUY.amount)
    assert caught.value.text == BUY.text
    assert label in str(caught.value)


async def test_silence_after_the_ack_is_an_unknown_outcome(
    server: GateWsServer, make_trader: Callable[..., GateWsTrader]
) -> None:
    server.order_script = ACK_ONLY
    trader = make_trader(reply_timeout_s=0.2)
    with pytest.raises(OutcomeUnknownError) as caught:
        await trader.place(BUY)
    assert caught.value.text == "t-snipe42"
    [timing] = trader.timings()
    assert timing.ack_ns > 0
    assert timing.result_ns == 0
    assert timing.outcome == "unknown"
    assert trader.statistics().unknown_outcomes == 1


async def test_total_silence_is_an_unknown_outcome_never_a_rejection(
    server: GateWsServer, make_trader: Callable[..., GateWsTrader]
) -> None:
    server.order_script = SILENT
    trader = make_trader(reply_timeout_s=0.2)
    with pytest.raises(OutcomeUnknownError) as caught:
        await trader.place(BUY)
    assert caught.value.text == "t-snipe42"


async def test_connection_drop_while_waiting_is_an_unknown_outcome_at_once(
    server: GateWsServer, make_trader: Callable[..., GateWsTrader]
) -> None:
    server.order_script = DROP_AFTER_ACK
    trader = make_trader(reply_timeout_s=60)
    async with asyncio.timeout(5):  # resolved by the drop, not by the 60 s timeout
        with pytest.raises(OutcomeUnknownError) as caught:
            await trader.place(BUY)
    assert caught.value.text == "t-snipe42"


async def test_relogin_after_reconnect_then_place_works(
    server: GateWsServer, make_trader: Callable[..., GateWsTrader]
) -> None:
    trader = make_trader()
    await trader.wait_ready(5)
    server.drop()
    await server.wait_request("spot.login", conn_no=2)
    await trader.wait_ready(5)
    assert isinstance(await trader.place(BUY), OrderAck)
    [sent] = server.requests("spot.order_place")
    assert sent.conn_no == 2
    stats = trader.statistics()
    assert (stats.logins, stats.reconnects, stats.in_flight) == (2, 1, 0)


async def test_refused_login_raises_auth_error(make_trader: Callable[..., GateWsTrader]) -> None:
    trader = make_trader(signer=signer("wrong"), ready_timeout_s=5)
    with pytest.raises(AuthError) as caught:
        await trader.place(BUY)
    assert caught.value.label == "INVALID_SIGNATURE"


async def test_a_prepared_order_is_written_at_most_once(
    server: GateWsServer, make_trader: Callable[..., GateWsTrader]
) -> None:
    trader = make_trader()
    prepared = trader.prepare(BUY)
    await trader.fire(prepared, Decimal("0.05"), Decimal("1"), decision_ns=12345)
    with pytest.raises(InvalidOrderError, match="already fired"):
        await trader.fire(prepared, Decimal("0.05"), Decimal("1"))
    assert len(server.requests("spot.order_place")) == 1
    assert prepared.timing.decision_ns == 12345  # the refused second fire left it alone
    assert trader.timings() == (prepared.timing,)


async def test_not_ready_is_transient_and_the_order_can_fire_later(server: GateWsServer) -> None:
    trader = GateWsTrader(server.url, signer(), ready_timeout_s=0.05)
    try:
        prepared = trader.prepare(BUY)
        with pytest.raises(TransientError):
            await trader.fire(prepared, Decimal("0.05"), Decimal("1"))
        assert server.requests("spot.order_place") == []
        trader.start()
        await trader.wait_ready(5)
        assert isinstance(await trader.fire(prepared, Decimal("0.05"), Decimal("1")), OrderAck)
    finally:
        await trader.close()


async def test_bad_values_are_refused_before_sending(
    server: GateWsServer, make_trader: Callable[..., GateWsTrader]
) -> None:
    trader = make_trader()
    prepared = trader.prepare(BUY)
    with pytest.raises(InvalidOrderError):
        await trader.fire(prepared, Decimal("0.05"), Decimal("0"))
    with pytest.raises(InvalidOrderError):
        await trader.fire(prepared, None, Decimal("1"))
    assert server.requests("spot.order_place") == []


async def test_cancel_and_status_return_orders(
    server: GateWsServer, make_trader: Callable[..., GateWsTrader]
) -> None:
    trader = make_trader()
    ack = await trader.place(BUY)
    server.orders[ack.id]["status"] = "open"
    cancelled = await trader.cancel(ack.id, "ABC_USDT")
    assert cancelled.status is OrderStatus.CANCELLED
    status = await trader.status(ack.id, "ABC_USDT")
    assert status.id == ack.id
    param = server.requests("spot.order_status")[0].msg["payload"]["req_param"]
    assert param == {"order_id": ack.id, "currency_pair": "ABC_USDT"}
    with pytest.raises(OrderNotFoundError):
        await trader.status("999", "ABC_USDT")


async def test_cancel_silence_is_unknown_status_silence_is_transient(
    server: GateWsServer, make_trader: Callable[..., GateWsTrader]
) -> None:
    trader = make_trader(reply_timeout_s=0.1)
    await trader.wait_ready(5)
    server.stalled = True
    with pytest.raises(OutcomeUnknownError):
        await trader.cancel("1", "ABC_USDT")
    with pytest.raises(TransientError):
        await trader.status("1", "ABC_USDT")


async def test_trader_connection_is_kept_warm(
    server: GateWsServer, make_trader: Callable[..., GateWsTrader]
) -> None:
    make_trader(ping_interval_s=0.02)
    ping = await server.wait_request("spot.ping")
    assert ping.conn_no == 1


# -- the raw-write hot path ----------------------------------------------------------------


@pytest.mark.parametrize("length", [0, 1, 125, 126, 400, 65535, 65536])
def test_client_text_frame_is_a_legal_masked_final_text_frame(length: int) -> None:
    payload = bytes(range(256)) * (length // 256) + bytes(range(length % 256))
    raw = client_text_frame(payload, b"\x01\x02\x03\x04")
    reader = StreamReader()
    reader.feed_data(raw)
    parser = Frame.parse(reader.read_exact, mask=True)  # as a server reads a client's frame
    with pytest.raises(StopIteration) as done:
        next(parser)
    frame = done.value.value
    assert (frame.opcode, frame.fin, frame.data) == (Opcode.TEXT, True, payload)
    assert raw[1] & 0x80  # the mask bit: servers must refuse unmasked client frames
    if length:
        assert raw[-length:] != payload  # the bytes on the wire are masked


def test_client_text_frame_draws_a_fresh_mask_when_none_is_given() -> None:
    frames = {client_text_frame(b'{"a":1}') for _ in range(20)}
    assert len(frames) > 1


async def test_fire_nowait_writes_before_returning_and_the_server_decodes_the_template(
    server: GateWsServer, make_trader: Callable[..., GateWsTrader]
) -> None:
    trader = make_trader(clock=lambda: 1_700_000_000.25, ttl_ms=400, action_mode="RESULT")
    await trader.wait_ready(5)
    prepared = trader.prepare(BUY)
    trader.fire_nowait(prepared, Decimal("0.0615"), Decimal("325.5"), decision_ns=7)
    # written synchronously: the request is counted and stamped before any await
    assert prepared.fired
    assert trader.statistics().requests_sent == 1
    assert prepared.timing.decision_ns == 7 < prepared.timing.written_ns
    answer = await trader.wait_result(prepared)
    assert isinstance(answer, Order)
    assert answer.amount == Decimal("325.5")

    [sent] = server.requests("spot.order_place")
    expected = encode_ws_api_request(
        CH_ORDER_PLACE,
        prepared.req_id,
        encode_order(
            dataclasses.replace(BUY, price=Decimal("0.0615"), amount=Decimal("325.5")),
            action_mode="RESULT",
        ),
        time_s=1_700_000_000,
        req_header={"x-gate-exptime": str(1_700_000_000_250 + 400)},
    )
    assert sent.raw == expected
    assert trader.timings() == (prepared.timing,)
    assert trader.statistics().in_flight == 0


async def test_raw_writes_interleave_with_library_sends_on_one_connection(
    server: GateWsServer, make_trader: Callable[..., GateWsTrader]
) -> None:
    trader = make_trader(ping_interval_s=0.01)
    await trader.wait_ready(5)
    first = trader.prepare(BUY)
    second = trader.prepare(dataclasses.replace(BUY, text="t-snipe43"))
    trader.fire_nowait(first, Decimal("0.05"), Decimal("1"))
    trader.fire_nowait(second, Decimal("0.05"), Decimal("2"))
    ack = await trader.wait_result(first)
    status = await trader.status(ack.id, "ABC_USDT")  # the library's own send path
    await trader.wait_result(second)
    await server.wait_request("spot.ping")
    assert isinstance(await trader.place(dataclasses.replace(BUY, text="t-snipe44")), OrderAck)
    assert status.id == ack.id
    placed = [r.msg["payload"]["req_param"]["text"] for r in server.requests("spot.order_place")]
    assert placed == ["t-snipe42", "t-snipe43", "t-snipe44"]
    assert {r.conn_no for r in server.received} == {1}  # no protocol error, no reconnect
    assert trader.statistics().reconnects == 0


async def test_fire_nowait_never_waits_for_a_login(server: GateWsServer) -> None:
    trader = GateWsTrader(server.url, signer())
    prepared = trader.prepare(BUY)
    with pytest.raises(TransientError):
        trader.fire_nowait(prepared, Decimal("0.05"), Decimal("1"))
    assert not prepared.fired
    with pytest.raises(InvalidOrderError, match="not written"):
        await trader.wait_result(prepared)


async def test_a_closing_connection_writes_nothing_and_the_order_may_fire_again(
    server: GateWsServer, make_trader: Callable[..., GateWsTrader]
) -> None:
    trader = make_trader()
    await trader.wait_ready(5)
    prepared = trader.prepare(BUY)
    trader._conn.request_reconnect("test")  # transport aborted; the loop has not noticed yet
    with pytest.raises(TransientError):
        trader.fire_nowait(prepared, Decimal("0.05"), Decimal("1"))
    assert not prepared.fired
    await server.wait_request("spot.login", conn_no=2)
    await trader.wait_ready(5)
    assert isinstance(await trader.fire(prepared, Decimal("0.05"), Decimal("1")), OrderAck)
    [sent] = server.requests("spot.order_place")
    assert sent.conn_no == 2


async def test_rehearsal_renders_the_fired_frame_without_sending(
    server: GateWsServer, make_trader: Callable[..., GateWsTrader]
) -> None:
    trader = make_trader(clock=lambda: 1_700_000_000.5)
    await trader.wait_ready(5)
    prepared = trader.prepare(BUY)
    size = trader.rehearse(prepared, Decimal("0.0615"), Decimal("325.5"))
    rehearsed = prepared.render(1_700_000_000.5, Decimal("0.0615"), Decimal("325.5"))
    assert size == len(client_text_frame(rehearsed))
    assert not prepared.fired
    await trader.fire(prepared, Decimal("0.0615"), Decimal("325.5"))
    [sent] = server.requests("spot.order_place")
    assert sent.raw == rehearsed


def test_render_caches_do_not_leak_between_values() -> None:
    trader = GateWsTrader("ws://127.0.0.1:1/", signer())
    prepared = trader.prepare(BUY)
    renders = [
        json.loads(prepared.render(t, p, a))
        for t, p, a in (
            (100.2, Decimal("0.05"), Decimal("1")),
            (100.9, Decimal("0.05"), Decimal("1")),
            (101.0, Decimal("0.06"), Decimal("2")),
            (101.0, Decimal("0.05"), Decimal("1")),
        )
    ]
    got = [
        (
            r["time"],
            r["payload"]["req_header"]["x-gate-exptime"],
            r["payload"]["req_param"]["price"],
            r["payload"]["req_param"]["amount"],
        )
        for r in renders
    ]
    assert got == [
        (100, "101200", "0.05", "1"),
        (100, "101900", "0.05", "1"),
        (101, "102000", "0.06", "2"),
        (101, "102000", "0.05", "1"),
    ]


def test_render_keeps_literal_percent_signs_of_the_template() -> None:
    prepared = PreparedWsOrder(BUY, "r%1", (b'{"t%":', b',"a%s":"', b'"}'), (0, 3), None)
    assert prepared.render(12.5, None, Decimal("5")) == b'{"t%":12,"a%s":"5"}'
