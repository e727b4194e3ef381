"""RawHttpOrderSender against a tiny capturing HTTP server on 127.0.0.1.

The server records the exact request bytes; the tests recompute Gate's signature from those
bytes alone, so "what was signed" and "what was sent" cannot drift apart unnoticed.
"""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from decimal import Decimal

import orjson
import pytest

from sniper.core.codec import encode_order_body
from sniper.core.models import Order, OrderAck, OrderRequest
from sniper.core.signing import Credentials, Signer, body_sha512
from sniper.errors import (
    AuthError,
    ConfigError,
    InsufficientFundsError,
    InvalidOrderError,
    OutcomeUnknownError,
    RateLimitedError,
    TransientError,
)
from sniper.gate.rawhttp import PreparedOrder, RawHttpOrderSender, read_response
from sniper.gate.rest import GatewayTimes

CREDS = Credentials("key-0123456789abcdef", "secret-fedcba9876543210")
NOW_S = 1_700_000_000.25
NOW_MS = 1_700_000_000_250
TTL_MS = 700
REQUEST = OrderRequest("ABC_USDT", "buy", Decimal("10"), Decimal("0.5"), "t-raw-1")
ACK = orjson.dumps({"id": "987654321", "text": "t-raw-1", "amend_text": "-"})


@dataclass
class Captured:
    """One request as it arrived: the raw bytes and their parts."""

    raw: bytes
    method: str
    target: str
    headers: dict[str, str]
    body: bytes


Reply = bytes | None
"""Bytes to answer with; ``None`` means hang up without answering."""


def response(status: int, body: bytes, reason: str = "OK", **headers: str) -> bytes:
    lines = [f"HTTP/1.1 {status} {reason}", f"Content-Length: {len(body)}"]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class CaptureServer:
    """Reads HTTP/1.1 requests, records them, answers with ``self.respond(captured)``.

    ``respond`` returns the bytes to write, ``None`` to close the connection without
    answering, or ``HANG`` to keep it open and silent.
    """

    HANG = b"<hang>"

    def __init__(self, respond: Callable[[Captured], Reply]) -> None:
        self.respond = respond
        self.requests: asyncio.Queue[Captured] = asyncio.Queue()
        self.connections = 0
        self.port = 0
        self._release = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._handlers: set[asyncio.Task[object]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        self._release.set()
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.close()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        await self._server.wait_closed()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v4"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.add(writer)
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError:
                    return
                lines = head[:-4].decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ")
                headers = {}
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    headers[name.strip()] = value.strip()
                lengths = [v for k, v in headers.items() if k.lower() == "content-length"]
                body = await reader.readexactly(int(lengths[0])) if lengths else b""
                captured = Captured(head + body, method, target, headers, body)
                self.requests.put_nowait(captured)
                reply = self.respond(captured)
                if reply is None:
                    return
                if reply == self.HANG:
                    await self._release.wait()
                    return
                writer.write(reply)
                await writer.drain()
        finally:
            writer.close()


def ack_server(captured: Captured) -> Reply:
    if captured.method == "GET":
        return response(200, orjson.dumps({"server_time": NOW_MS + 2000}))
    return response(201, ACK, "Created")


@pytest.fixture
async def server() -> AsyncIterator[CaptureServer]:
    srv = CaptureServer(ack_server)
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


def make_sender(base: str, **kwargs: object) -> RawHttpOrderSender:
    options: dict[str, object] = {
        "clock": lambda: NOW_S,
        "ttl_ms": TTL_MS,
        "ping_interval_s": None,
        "sync_clock_on_start": False,
        "timeout_s": 2.0,
    }
    options.update(kwargs)
    return RawHttpOrderSender(base, CREDS, **options)  # type: ignore[arg-type]


@pytest.fixture
async def sender(server: CaptureServer) -> AsyncIterator[RawHttpOrderSender]:
    client = make_sender(server.base)
    try:
        yield client
    finally:
        await client.close()


def assert_signed_as_sent(captured: Captured, path: str) -> None:
    """Recompute Gate's check from the captured bytes alone."""
    headers = captured.headers
    assert captured.method == "POST"
    assert captured.target == path
    assert headers["KEY"] == CREDS.key
    assert int(headers["Content-Length"]) == len(captured.body)
    expected = Signer(CREDS).rest("POST", path, "", captured.body, headers["Timestamp"])
    assert headers["SIGN"] == expected


# -- the bytes on the wire ----------------------------------------------------------------------


async def test_bytes_on_the_wire_are_exactly_what_was_signed(
    server: CaptureServer, sender: RawHttpOrderSender
) -> None:
    prepared = sender.prepare(REQUEST)
    result = await sender.send(prepared, Decimal("0.51"), Decimal("9.50"))
    assert result == OrderAck(id="987654321", text="t-raw-1")
    captured = server.requests.get_nowait()
    assert_signed_as_sent(captured, "/api/v4/spot/orders")
    assert captured.headers["Timestamp"] == "1700000000"
    assert captured.headers["x-gate-exptime"] == str(NOW_MS + TTL_MS)
    assert captured.headers["Content-Type"] == "application/json"
    fields = orjson.loads(captured.body)
    assert (fields["price"], fields["amount"], fields["text"]) == ("0.51", "9.5", "t-raw-1")
    # The body is the codec's encoding of the order with the fire-time values, byte for byte.
    fired = OrderRequest("ABC_USDT", "buy", Decimal("9.5"), Decimal("0.51"), "t-raw-1")
    assert captured.body == encode_order_body(fired, action_mode="ACK")
    assert captured.raw == sender.render(prepared, Decimal("0.51"), Decimal("9.50"))
    assert prepared.written_ns > 0
    assert prepared.answered_ns >= prepared.written_ns


async def test_signed_path_keeps_the_base_url_prefix(server: CaptureServer) -> None:
    client = make_sender(f"http://127.0.0.1:{server.port}/gw/api/v4/")
    await client.place(REQUEST)
    await client.close()
    captured = server.requests.get_nowait()
    assert_signed_as_sent(captured, "/gw/api/v4/spot/orders")
    assert captured.headers["Host"] == f"127.0.0.1:{server.port}"


async def test_precomputed_body_and_hash_give_identical_bytes(
    server: CaptureServer, sender: RawHttpOrderSender
) -> None:
    plain = sender.prepare(REQUEST)
    warm = sender.prepare(REQUEST)
    warm.precompute(Decimal("0.5"), Decimal("10"))
    assert sender.render(warm, Decimal("0.5"), Decimal("10")) == sender.render(
        plain, Decimal("0.5"), Decimal("10")
    )
    body, digest = warm.body_and_hash(Decimal("0.5"), Decimal("10"))
    assert digest == body_sha512(body)
    # Other values than the precomputed ones are rendered and hashed afresh.
    other_body, other_digest = warm.body_and_hash(Decimal("0.6"), Decimal("10"))
    assert b'"0.6"' in other_body
    assert other_digest == body_sha512(other_body)
    await sender.send(warm, Decimal("0.6"), Decimal("10"))
    assert_signed_as_sent(server.requests.get_nowait(), "/api/v4/spot/orders")


async def test_signature_is_recomputed_when_the_second_changes(server: CaptureServer) -> None:
    now = [NOW_S]
    client = make_sender(server.base, clock=lambda: now[0], ttl_ms=None)
    prepared = client.prepare(REQUEST)
    first = client.render(prepared, Decimal("0.5"), Decimal("10"))
    now[0] += 1.0
    await client.send(prepared, Decimal("0.5"), Decimal("10"))
    await client.close()
    captured = server.requests.get_nowait()
    assert captured.raw != first
    assert captured.headers["Timestamp"] == "1700000001"
    assert "x-gate-exptime" not in captured.headers
    assert_signed_as_sent(captured, "/api/v4/spot/orders")


async def test_market_order_template_has_no_price(
    server: CaptureServer, sender: RawHttpOrderSender
) -> None:
    market = OrderRequest("ABC_USDT", "buy", Decimal("20"), None, "t-mkt", type="market")
    prepared = sender.prepare(market)
    await sender.send(prepared, None, Decimal("25"))
    fields = orjson.loads(server.requests.get_nowait().body)
    assert "price" not in fields
    assert fields["amount"] == "25"
    with pytest.raises(InvalidOrderError):
        await sender.send(sender.prepare(market), Decimal("1"), Decimal("25"))


async def test_prepare_validates_and_a_prepared_order_is_sent_once(
    sender: RawHttpOrderSender,
) -> None:
    with pytest.raises(InvalidOrderError):
        sender.prepare(OrderRequest("ABC_USDT", "buy", Decimal("1"), Decimal("1"), "bad id"))
    prepared = sender.prepare(REQUEST)
    await sender.send(prepared, Decimal("0.5"), Decimal("10"))
    with pytest.raises(InvalidOrderError, match="already sent"):
        await sender.send(prepared, Decimal("0.5"), Decimal("10"))
    with pytest.raises(InvalidOrderError, match="positive"):
        await sender.send(sender.prepare(REQUEST), Decimal("0.5"), Decimal("0"))


# -- answers --------------------------------------------------------------------------------------


async def test_error_answer_maps_to_typed_error_and_keeps_the_connection(
    server: CaptureServer, sender: RawHttpOrderSender
) -> None:
    answers = iter(
        [
            response(400, b'{"label":"BALANCE_NOT_ENOUGH","message":"Not enough balance"}'),
            response(401, b'{"label":"INVALID_SIGNATURE","message":"Signature mismatch"}'),
            response(201, ACK),
        ]
    )
    server.respond = lambda captured: next(answers)
    with pytest.raises(InsufficientFundsError) as info:
        await sender.send(sender.prepare(REQUEST), Decimal("0.5"), Decimal("10"))
    assert info.value.label == "BALANCE_NOT_ENOUGH"
    assert info.value.status == 400
    with pytest.raises(AuthError):
        await sender.send(sender.prepare(REQUEST), Decimal("0.5"), Decimal("10"))
    assert isinstance(await sender.place(REQUEST), OrderAck)
    assert server.connections == 1  # keep-alive across error answers


async def test_429_carries_retry_after_from_the_reset_header(
    server: CaptureServer, sender: RawHttpOrderSender
) -> None:
    server.respond = lambda captured: response(
        429,
        b'{"label":"TOO_MANY_REQUESTS","message":"Request Rate limit Exceeded (211)"}',
        X_Gate_RateLimit_Requests_Remain="0",
        X_Gate_RateLimit_Limit="10",
        X_Gate_RateLimit_Reset_Timestamp=str(NOW_MS + 400),
    )
    with pytest.raises(RateLimitedError) as info:
        await sender.place(REQUEST)
    assert info.value.retry_after_s == pytest.approx(0.4)


async def test_5xx_answer_is_outcome_unknown(
    server: CaptureServer, sender: RawHttpOrderSender
) -> None:
    server.respond = lambda captured: response(502, b"<html>Bad Gateway</html>")
    with pytest.raises(OutcomeUnknownError) as info:
        await sender.place(REQUEST)
    assert info.value.text == "t-raw-1"


async def test_full_order_answer_decodes_to_order_and_headers_are_kept(
    server: CaptureServer, sender: RawHttpOrderSender
) -> None:
    order = {
        "id": "987654321",
        "text": "t-raw-1",
        "create_time_ms": 1710488334073,
        "update_time_ms": 1710488334074,
        "status": "cancelled",
        "currency_pair": "ABC_USDT",
        "type": "limit",
        "side": "buy",
        "amount": "10",
        "price": "0.5",
        "time_in_force": "ioc",
        "left": "4",
        "filled_amount": "6",
        "filled_total": "3",
        "avg_deal_price": "0.5",
        "fee": "0.012",
        "fee_currency": "ABC",
        "finish_as": "ioc",
    }
    server.respond = lambda captured: response(
        201,
        orjson.dumps(order),
        X_In_Time="1700000000250100",
        X_Out_Time="1700000000250300",
        X_Gate_RateLimit_Requests_Remain="9",
        X_Gate_RateLimit_Limit="10",
    )
    result = await sender.place(REQUEST)
    assert isinstance(result, Order)
    assert result.filled_amount == Decimal("6")
    assert sender.last_gateway_times_us == GatewayTimes(1700000000250100, 1700000000250300)
    assert sender.last_rate_limit is not None
    assert sender.last_rate_limit.remaining == 9


async def test_chunked_gzip_answer_is_read(
    server: CaptureServer, sender: RawHttpOrderSender
) -> None:
    packed = gzip.compress(ACK)
    middle = len(packed) // 2
    chunked = (
        f"{middle:x}\r\n".encode()
        + packed[:middle]
        + b"\r\n"
        + f"{len(packed) - middle:x};ext=1\r\n".encode()
        + packed[middle:]
        + b"\r\n0\r\nX-Trailer: 1\r\n\r\n"
    )
    server.respond = lambda captured: (
        b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n"
        b"Content-Encoding: gzip\r\n\r\n" + chunked
    )
    assert await sender.place(REQUEST) == OrderAck(id="987654321", text="t-raw-1")
    assert await sender.place(REQUEST) == OrderAck(id="987654321", text="t-raw-1")
    assert server.connections == 1


async def test_connection_close_answer_reconnects_next_time(
    server: CaptureServer, sender: RawHttpOrderSender
) -> None:
    server.respond = lambda captured: response(201, ACK, Connection="close")
    await sender.place(REQUEST)
    await sender.place(REQUEST)
    assert server.connections == 2
    assert sender.statistics().connects == 2


# -- failures after and before the write --------------------------------------------------------


async def test_silence_after_write_is_outcome_unknown_then_reconnects(
    server: CaptureServer,
) -> None:
    client = make_sender(server.base, timeout_s=0.2)
    server.respond = lambda captured: CaptureServer.HANG
    with pytest.raises(OutcomeUnknownError) as info:
        await client.place(REQUEST)
    assert info.value.text == "t-raw-1"
    assert isinstance(info.value.__cause__, TimeoutError)
    server.respond = ack_server
    assert await client.place(REQUEST) == OrderAck(id="987654321", text="t-raw-1")
    assert server.connections == 2  # the silent connection was not reused
    assert client.statistics().outcome_unknown == 1
    await client.close()


async def test_drop_after_write_is_outcome_unknown_then_reconnects(
    server: CaptureServer, sender: RawHttpOrderSender
) -> None:
    server.respond = lambda captured: None
    with pytest.raises(OutcomeUnknownError) as info:
        await sender.place(REQUEST)
    assert info.value.text == "t-raw-1"
    server.respond = ack_server
    assert isinstance(await sender.place(REQUEST), OrderAck)
    assert server.connections == 2


@pytest.mark.parametrize(
    "garbage",
    [
        b"SSH-2.0-OpenSSH\r\n\r\n",
        b"HTTP/1.1 abc OK\r\n\r\n",
        b"HTTP/1.1 201 Created\r\nbad\r\n\r\n",
    ],
)
async def test_garbled_answer_is_outcome_unknown(
    server: CaptureServer, sender: RawHttpOrderSender, garbage: bytes
) -> None:
    server.respond = lambda captured: garbage
    with pytest.raises(OutcomeUnknownError):
        await sender.place(REQUEST)


async def test_undecodable_2xx_body_is_outcome_unknown(
    server: CaptureServer, sender: RawHttpOrderSender
) -> None:
    server.respond = lambda captured: response(201, b"{truncated")
    with pytest.raises(OutcomeUnknownError):
        await sender.place(REQUEST)


async def test_connect_refused_is_transient_and_the_order_can_still_be_sent() -> None:
    probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = probe.sockets[0].getsockname()[1]
    probe.close()
    await probe.wait_closed()
    client = make_sender(f"http://127.0.0.1:{port}/api/v4", connect_timeout_s=1.0)
    prepared = client.prepare(REQUEST)
    with pytest.raises(TransientError) as info:
        await client.send(prepared, Decimal("0.5"), Decimal("10"))
    assert not isinstance(info.value, OutcomeUnknownError)
    assert not prepared.fired  # provably not written: may be sent again
    await client.close()


def test_base_url_must_be_http() -> None:
    with pytest.raises(ConfigError):
        RawHttpOrderSender("ws://127.0.0.1/api/v4", CREDS)


def test_repr_hides_the_secret() -> None:
    client = RawHttpOrderSender("https://api.gateio.ws/api/v4", CREDS)
    assert CREDS.secret not in repr(client)
    assert client.port == 443
    assert client.order_path == "/api/v4/spot/orders"


# -- warm-up, clock, keep-alive -------------------------------------------------------------------


async def test_start_warms_the_connection_and_syncs_the_clock(server: CaptureServer) -> None:
    client = make_sender(server.base, sync_clock_on_start=True)
    await client.start()
    # The server says NOW_MS + 2000 while our clock reads NOW_S: Gate is 2 s ahead.
    assert client.clock_offset_s == pytest.approx(2.0)
    await client.place(REQUEST)
    await client.close()
    requests = [server.requests.get_nowait() for _ in range(server.requests.qsize())]
    assert [r.method for r in requests] == ["GET"] * 4 + ["POST"]
    assert requests[0].target == "/api/v4/spot/time"
    assert requests[-1].headers["Timestamp"] == "1700000002"
    assert requests[-1].headers["x-gate-exptime"] == str(NOW_MS + 2000 + TTL_MS)
    assert server.connections == 1  # the order went out on the warmed connection


async def test_keepalive_pings_on_the_same_connection(server: CaptureServer) -> None:
    client = make_sender(server.base, ping_interval_s=0.001)
    await client.start()
    pings = 0
    async with asyncio.timeout(5):
        while pings < 3:
            captured = await server.requests.get()
            assert captured.target == "/api/v4/spot/time"
            pings += 1
    await client.close()
    assert server.connections == 1
    assert client.statistics().pings >= 2  # the third answer may still be in flight


async def test_several_connections_carry_concurrent_orders(server: CaptureServer) -> None:
    client = make_sender(server.base, connections=2)
    first, second = await asyncio.gather(client.place(REQUEST), client.place(REQUEST))
    assert first == second == OrderAck(id="987654321", text="t-raw-1")
    assert server.connections == 2
    await client.close()


# -- the response reader --------------------------------------------------------------------------


async def _parse(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    reader = asyncio.StreamReader()
    reader.feed_data(raw)
    reader.feed_eof()
    return await read_response(reader)


@pytest.mark.parametrize(
    ("raw", "status", "body"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}", 200, b"{}"),
        (
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\n[]",
            201,
            b"[]",
        ),
        (b"HTTP/1.0 200 OK\r\n\r\nrest-until-close", 200, b"rest-until-close"),
        (b"HTTP/1.1 204 No Content\r\n\r\n", 204, b""),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n", 200, b"ab"),
    ],
)
async def test_read_response_framings(raw: bytes, status: int, body: bytes) -> None:
    got_status, headers, got_body = await _parse(raw)
    assert (got_status, got_body) == (status, body)
    assert all(name == name.lower() for name in headers)


async def test_read_response_cut_off_body_raises_eof() -> None:
    with pytest.raises(EOFError):
        await _parse(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")


async def test_prepared_order_exposes_its_client_id(sender: RawHttpOrderSender) -> None:
    prepared = sender.prepare(REQUEST)
    assert isinstance(prepared, PreparedOrder)
    assert prepared.text == "t-raw-1"
    assert not prepared.fired


async def test_order_accepted_by_the_simulator() -> None:
    from sniper.sim.server import SimServer

    server = SimServer("new_listing_fast", host="127.0.0.1", port=0)
    urls = await server.start()
    client = RawHttpOrderSender(urls.rest, server.credentials, ping_interval_s=None)
    try:
        await client.start()
        prepared = client.prepare(
            OrderRequest("BTC_USDT", "buy", Decimal("0.004"), Decimal("1000"), "t-sim-raw-1")
        )
        prepared.precompute(Decimal("1000"), Decimal("0.004"))
        ack = await client.send(prepared, Decimal("1000"), Decimal("0.004"))
        assert ack == OrderAck(id=ack.id, text="t-sim-raw-1")
        assert client.statistics().connects == 1
        with pytest.raises(InsufficientFundsError):
            await client.place(
                OrderRequest("BTC_USDT", "buy", Decimal("1000"), Decimal("1000"), "t-sim-raw-2")
            )
    finally:
        await client.close()
        await server.stop()


async def test_cancelled_send_never_leaks_its_answer_into_the_next_request(
    server: CaptureServer, sender: RawHttpOrderSender
) -> None:
    server.respond = lambda captured: CaptureServer.HANG
    task = asyncio.create_task(sender.place(REQUEST))
    await server.requests.get()  # written, no answer yet
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    server.respond = lambda captured: response(201, orjson.dumps({"id": "2", "text": "t-raw-2"}))
    second = OrderRequest("ABC_USDT", "buy", Decimal("10"), Decimal("0.5"), "t-raw-2")
    assert await sender.place(second) == OrderAck(id="2", text="t-raw-2")
    assert server.connections == 2
