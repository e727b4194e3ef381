"""GateRest against respx-mocked Gate: signing on the wire, errors, retries, headers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from typing import Any

import httpx
import orjson
import pytest
import respx

from sniper.core.codec import encode_order_body
from sniper.core.models import Order, OrderAck, OrderRequest, OrderStatus
from sniper.core.signing import Credentials, Signer
from sniper.errors import (
    AuthError,
    ConfigError,
    InsufficientFundsError,
    InvalidOrderError,
    OrderNotFoundError,
    OutcomeUnknownError,
    PairNotTradableError,
    ProtocolError,
    RateLimitedError,
    RejectedError,
    TransientError,
)
from sniper.gate import rest as rest_module
from sniper.gate.ports import OrderGateway
from sniper.gate.rest import (
    HTTPX_ERROR_FATES,
    Fate,
    GateRest,
    GatewayTimes,
    translate_httpx_error,
)

BASE = "http://gate.test/api/v4"
CREDS = Credentials("key-0123456789abcdef", "secret-fedcba9876543210")
NOW_S = 1_700_000_000.25
NOW_MS = 1_700_000_000_250
TTL_MS = 800

ORDER_JSON: dict[str, Any] = {
    "id": "1852454420",
    "text": "t-abc123",
    "amend_text": "-",
    "create_time": "1710488334",
    "update_time": "1710488334",
    "create_time_ms": 1710488334073,
    "update_time_ms": 1710488334074,
    "status": "closed",
    "currency_pair": "ABC_USDT",
    "type": "limit",
    "account": "spot",
    "side": "buy",
    "amount": "10",
    "price": "0.5",
    "time_in_force": "ioc",
    "iceberg": "0",
    "left": "0",
    "filled_amount": "10",
    "filled_total": "5",
    "avg_deal_price": "0.5",
    "fee": "0.02",
    "fee_currency": "ABC",
    "finish_as": "filled",
}
FILL_JSON: dict[str, Any] = {
    "id": "5736713",
    "create_time": "1605176741",
    "create_time_ms": "1605176741123.456",
    "currency_pair": "ABC_USDT",
    "side": "buy",
    "role": "taker",
    "amount": "10",
    "price": "0.5",
    "order_id": "1852454420",
    "fee": "0.02",
    "fee_currency": "ABC",
    "text": "t-abc123",
}
REQUEST = OrderRequest("ABC_USDT", "buy", Decimal("10"), Decimal("0.5"), "t-abc123")


class Sleeps:
    """Injected sleep: records the delays instead of waiting them."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay_s: float) -> None:
        self.delays.append(delay_s)


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=BASE, assert_all_called=False) as mock:
        yield mock


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


def make_rest(sleeps: Sleeps, base: str = BASE, **kwargs: Any) -> GateRest:
    options: dict[str, Any] = {
        "clock": lambda: NOW_S,
        "sleep": sleeps,
        "rand": lambda: 0.0,
        "keep_warm_s": None,
        "order_ttl_ms": TTL_MS,
    }
    options.update(kwargs)
    credentials = options.pop("credentials", CREDS)
    return GateRest(base, credentials, **options)


@pytest.fixture
async def rest(sleeps: Sleeps) -> AsyncIterator[GateRest]:
    client = make_rest(sleeps)
    try:
        yield client
    finally:
        await client.aclose()


def error(status: int, label: str, message: str = "nope", **headers: str) -> httpx.Response:
    return httpx.Response(status, json={"label": label, "message": message}, headers=headers)


def signer() -> Signer:
    return Signer(CREDS)


# -- signing on the wire ------------------------------------------------------------------------


async def test_signed_get_headers_equal_signer_over_wire_path_and_query(
    router: respx.MockRouter, rest: GateRest
) -> None:
    route = router.get("/spot/accounts").respond(
        json=[{"currency": "USDT", "available": "12.5", "locked": "0"}]
    )
    balances = await rest.accounts("USDT")
    assert balances[0].available == Decimal("12.5")
    sent = route.calls.last.request
    assert sent.url.raw_path == b"/api/v4/spot/accounts?currency=USDT"
    assert sent.headers["KEY"] == CREDS.key
    assert sent.headers["Timestamp"] == "1700000000"
    expected = signer().rest("GET", "/api/v4/spot/accounts", "currency=USDT", b"", "1700000000")
    assert sent.headers["SIGN"] == expected
    assert sent.content == b""
    assert "x-gate-exptime" not in sent.headers


async def test_signed_post_signs_exact_body_bytes_and_sets_exptime(
    router: respx.MockRouter, rest: GateRest
) -> None:
    route = router.post("/spot/orders").respond(
        201, json={"id": "12332324", "text": "t-abc123", "amend_text": "-"}
    )
    result = await rest.create_order(REQUEST)
    assert result == OrderAck(id="12332324", text="t-abc123")
    sent = route.calls.last.request
    assert sent.content == encode_order_body(REQUEST, action_mode="ACK")
    assert sent.headers["Content-Type"] == "application/json"
    assert sent.headers["x-gate-exptime"] == str(NOW_MS + TTL_MS)
    ts = sent.headers["Timestamp"]
    assert sent.headers["SIGN"] == signer().rest(
        "POST", "/api/v4/spot/orders", "", sent.content, ts
    )


async def test_signed_path_comes_from_the_final_url_including_any_prefix(sleeps: Sleeps) -> None:
    base = "http://127.0.0.1:8123/gw/api/v4/"
    client = make_rest(sleeps, base=base)
    with respx.mock(base_url="http://127.0.0.1:8123/gw/api/v4") as mock:
        route = mock.delete("/spot/orders/t-abc123").respond(json=ORDER_JSON)
        order = await client.cancel_order("t-abc123", "ABC_USDT")
    await client.aclose()
    assert order.id == "1852454420"
    sent = route.calls.last.request
    ts = sent.headers["Timestamp"]
    expected = signer().rest(
        "DELETE", "/gw/api/v4/spot/orders/t-abc123", "currency_pair=ABC_USDT", b"", ts
    )
    assert sent.headers["SIGN"] == expected
    assert sent.headers["x-gate-exptime"] == str(NOW_MS + TTL_MS)  # cancels expire too


async def test_timestamp_and_exptime_use_the_measured_offset(
    router: respx.MockRouter, sleeps: Sleeps
) -> None:
    ticks = iter([100.0, 100.2, 101.0, 101.01, 102.0, 102.3])
    client = make_rest(sleeps, clock=lambda: next(ticks, 200.0))
    router.get("/spot/time").mock(
        side_effect=[
            httpx.Response(200, json={"server_time": 100_150}),  # rtt 200 ms: offset 50
            httpx.Response(200, json={"server_time": 101_505}),  # rtt 10 ms: offset 500
            httpx.Response(200, json={"server_time": 102_000}),  # rtt 300 ms: offset -150
        ]
    )
    assert await client.sync_clock(samples=3) == 500
    assert client.offset_ms == 500
    route = router.post("/spot/orders").respond(201, json={"id": "1", "text": "t-abc123"})
    await client.create_order(REQUEST)  # clock now reads 200.0 -> Gate time 200.5 s
    sent = route.calls.last.request
    assert sent.headers["Timestamp"] == "200"
    assert sent.headers["x-gate-exptime"] == str(200_500 + TTL_MS)
    await client.aclose()


async def test_no_exptime_header_when_ttl_disabled(
    router: respx.MockRouter, sleeps: Sleeps
) -> None:
    client = make_rest(sleeps, order_ttl_ms=None)
    route = router.post("/spot/orders").respond(201, json={"id": "1", "text": "t-abc123"})
    await client.create_order(REQUEST)
    await client.aclose()
    assert "x-gate-exptime" not in route.calls.last.request.headers


# -- credentials ------------------------------------------------------------------------------


async def test_public_calls_work_without_credentials_and_send_no_key(
    router: respx.MockRouter, sleeps: Sleeps
) -> None:
    client = make_rest(sleeps, credentials=None)
    route = router.get("/spot/order_book").respond(
        json={"id": 77, "current": 1, "update": 1, "asks": [["1.5", "2"]], "bids": []}
    )
    book = await client.order_book("ABC_USDT", 50)
    sent = route.calls.last.request
    assert (
        sent.url.raw_path == b"/api/v4/spot/order_book?currency_pair=ABC_USDT&limit=50&with_id=true"
    )
    assert "KEY" not in sent.headers
    assert "SIGN" not in sent.headers
    assert book.update_id == 77
    assert book.asks == ((Decimal("1.5"), Decimal("2")),)
    with pytest.raises(AuthError, match="GATE_API_KEY"):
        await client.accounts()
    with pytest.raises(AuthError, match="GATE_API_KEY"):
        await client.create_order(REQUEST)
    assert len(router.calls) == 1  # the refused private calls sent nothing
    await client.aclose()


def test_repr_never_shows_the_secret(sleeps: Sleeps) -> None:
    client = make_rest(sleeps)
    assert CREDS.secret not in repr(client)
    assert CREDS.key not in repr(client)


def test_base_url_must_be_http(sleeps: Sleeps) -> None:
    with pytest.raises(ConfigError):
        make_rest(sleeps, base="ftp://gate.test/api/v4")


# -- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "label", "error_type"),
    [
        (400, "BALANCE_NOT_ENOUGH", InsufficientFundsError),
        (401, "INVALID_SIGNATURE", AuthError),
        (401, "INVALID_KEY", AuthError),
        (400, "REQUEST_EXPIRED", AuthError),
        (400, "INVALID_CURRENCY_PAIR", PairNotTradableError),
        (404, "ORDER_NOT_FOUND", OrderNotFoundError),
        (400, "INVALID_PRECISION", InvalidOrderError),
        (400, "AMOUNT_TOO_LITTLE", InvalidOrderError),
        (400, "SOMETHING_NEW", RejectedError),
    ],
)
async def test_gate_error_labels_map_to_typed_errors(
    router: respx.MockRouter, rest: GateRest, status: int, label: str, error_type: type
) -> None:
    route = router.post("/spot/orders").respond(status, json={"label": label, "message": "details"})
    with pytest.raises(error_type) as info:
        await rest.create_order(REQUEST)
    assert type(info.value) is error_type
    assert info.value.label == label
    assert info.value.status == status
    assert route.call_count == 1


async def test_error_body_with_detail_instead_of_message(
    router: respx.MockRouter, rest: GateRest
) -> None:
    router.get("/spot/orders/123").respond(
        400, json={"label": "INVALID_ARGUMENT", "detail": "invalid size"}
    )
    with pytest.raises(InvalidOrderError, match="invalid size"):
        await rest.get_order("123", "ABC_USDT")


async def test_429_with_reset_header_waits_until_reset_then_retries_get(
    router: respx.MockRouter, rest: GateRest, sleeps: Sleeps
) -> None:
    route = router.get("/spot/tickers").mock(
        side_effect=[
            error(
                429,
                "TOO_MANY_REQUESTS",
                **{
                    "X-Gate-RateLimit-Requests-Remain": "0",
                    "X-Gate-RateLimit-Limit": "200",
                    "X-Gate-RateLimit-Reset-Timestamp": str(NOW_MS + 1500),
                },
            ),
            httpx.Response(200, json=[{"currency_pair": "ABC_USDT", "last": "1.2"}]),
        ]
    )
    tickers = await rest.tickers()
    assert tickers[0].last == Decimal("1.2")
    assert route.call_count == 2
    assert sleeps.delays == [pytest.approx(1.5)]


async def test_429_without_reset_header_uses_backoff(
    router: respx.MockRouter, rest: GateRest, sleeps: Sleeps
) -> None:
    router.get("/spot/tickers").mock(
        side_effect=[error(429, "TOO_MANY_REQUESTS"), httpx.Response(200, json=[])]
    )
    assert await rest.tickers() == []
    assert sleeps.delays == [pytest.approx(0.05)]  # base delay, rand() == 0


async def test_429_on_post_is_raised_with_retry_after_and_not_retried(
    router: respx.MockRouter, rest: GateRest, sleeps: Sleeps
) -> None:
    route = router.post("/spot/orders").mock(
        return_value=error(
            429, "TOO_MANY_REQUESTS", **{"X-Gate-RateLimit-Reset-Timestamp": str(NOW_MS + 700)}
        )
    )
    with pytest.raises(RateLimitedError) as info:
        await rest.create_order(REQUEST)
    assert info.value.retry_after_s == pytest.approx(0.7)
    assert route.call_count == 1
    assert sleeps.delays == []


async def test_429_reset_in_seconds_is_understood(router: respx.MockRouter, rest: GateRest) -> None:
    router.post("/spot/orders").mock(
        return_value=error(
            429, "TOO_MANY_REQUESTS", **{"X-Gate-RateLimit-Reset-Timestamp": "1700000002"}
        )
    )
    with pytest.raises(RateLimitedError) as info:
        await rest.create_order(REQUEST)
    assert info.value.retry_after_s == pytest.approx(1.75)


async def test_get_is_retried_on_5xx(
    router: respx.MockRouter, rest: GateRest, sleeps: Sleeps
) -> None:
    route = router.get("/spot/orders/1852454420").mock(
        side_effect=[
            error(500, "SERVER_ERROR"),
            httpx.Response(502, text="<html>bad gateway</html>"),
            httpx.Response(200, json=ORDER_JSON),
        ]
    )
    order = await rest.get_order("1852454420", "ABC_USDT")
    assert order.status is OrderStatus.CLOSED
    assert route.call_count == 3
    assert sleeps.delays == [pytest.approx(0.05), pytest.approx(0.1)]
    assert rest.statistics().retries == 2


async def test_get_retries_are_bounded(
    router: respx.MockRouter, rest: GateRest, sleeps: Sleeps
) -> None:
    route = router.get("/spot/time").mock(return_value=error(503, "TOO_BUSY"))
    with pytest.raises(TransientError):
        await rest.server_time_ms()
    assert route.call_count == 3  # max_retries=2
    assert len(sleeps.delays) == 2


async def test_post_is_not_retried_on_5xx_and_outcome_is_unknown(
    router: respx.MockRouter, rest: GateRest, sleeps: Sleeps
) -> None:
    route = router.post("/spot/orders").mock(return_value=error(500, "INTERNAL"))
    with pytest.raises(OutcomeUnknownError) as info:
        await rest.create_order(REQUEST)
    assert info.value.text == "t-abc123"
    assert isinstance(info.value.__cause__, TransientError)
    assert route.call_count == 1
    assert sleeps.delays == []


async def test_post_read_timeout_is_outcome_unknown(
    router: respx.MockRouter, rest: GateRest
) -> None:
    route = router.post("/spot/orders").mock(side_effect=httpx.ReadTimeout)
    with pytest.raises(OutcomeUnknownError) as info:
        await rest.create_order(REQUEST)
    assert info.value.text == "t-abc123"
    assert isinstance(info.value.__cause__, httpx.ReadTimeout)
    assert route.call_count == 1
    assert rest.statistics().outcome_unknown == 1


@pytest.mark.parametrize("exc", [httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError])
async def test_post_dropped_after_send_is_outcome_unknown(
    router: respx.MockRouter, rest: GateRest, exc: type[Exception]
) -> None:
    route = router.post("/spot/orders").mock(side_effect=exc)
    with pytest.raises(OutcomeUnknownError):
        await rest.create_order(REQUEST)
    assert route.call_count == 1


async def test_post_connect_error_is_transient_and_not_retried(
    router: respx.MockRouter, rest: GateRest
) -> None:
    route = router.post("/spot/orders").mock(side_effect=httpx.ConnectError)
    with pytest.raises(TransientError) as info:
        await rest.create_order(REQUEST)
    assert not isinstance(info.value, OutcomeUnknownError)
    assert isinstance(info.value.__cause__, httpx.ConnectError)
    assert route.call_count == 1


async def test_get_read_timeout_is_retried_then_transient(
    router: respx.MockRouter, rest: GateRest
) -> None:
    route = router.get("/spot/currency_pairs").mock(side_effect=httpx.ReadTimeout)
    with pytest.raises(TransientError):
        await rest.currency_pairs()
    assert route.call_count == 3


async def test_post_undecodable_2xx_is_outcome_unknown(
    router: respx.MockRouter, rest: GateRest
) -> None:
    router.post("/spot/orders").respond(201, content=b"{not json")
    with pytest.raises(OutcomeUnknownError) as info:
        await rest.create_order(REQUEST)
    assert isinstance(info.value.__cause__, ProtocolError)


async def test_invalid_order_is_refused_before_sending(
    router: respx.MockRouter, rest: GateRest
) -> None:
    bad = OrderRequest("ABC_USDT", "buy", Decimal("-1"), Decimal("0.5"), "t-abc123")
    with pytest.raises(InvalidOrderError):
        await rest.create_order(bad)
    with pytest.raises(RejectedError, match="URL-safe"):
        await rest.get_order("1&status=x", "ABC_USDT")
    assert len(router.calls) == 0


# -- headers kept -----------------------------------------------------------------------------


async def test_rate_limit_and_gateway_time_headers_are_exposed_per_endpoint(
    router: respx.MockRouter, rest: GateRest
) -> None:
    router.post("/spot/orders").respond(
        201,
        json={"id": "1", "text": "t-abc123"},
        headers={
            "X-Gate-RateLimit-Requests-Remain": "9",
            "X-Gate-RateLimit-Limit": "10",
            "X-Gate-RateLimit-Reset-Timestamp": str(NOW_MS),
            "X-In-Time": "1700000000250100",
            "X-Out-Time": "1700000000250350",
        },
    )
    router.get("/spot/time").respond(json={"server_time": NOW_MS})
    await rest.create_order(REQUEST)
    await rest.server_time_ms()
    limit = rest.last_rate_limit["create_order"]
    assert (limit.remaining, limit.limit, limit.reset_ms) == (9, 10, NOW_MS)
    assert rest.last_gateway_times_us["create_order"] == GatewayTimes(
        1700000000250100, 1700000000250350
    )
    assert "server_time" not in rest.last_rate_limit  # that reply carried none


# -- decoding of each endpoint ----------------------------------------------------------------


async def test_endpoints_decode_their_answers(router: respx.MockRouter, rest: GateRest) -> None:
    pair_json = {
        "id": "ABC_USDT",
        "base": "ABC",
        "quote": "USDT",
        "fee": "0.2",
        "min_base_amount": "1",
        "min_quote_amount": "3",
        "amount_precision": 2,
        "precision": 6,
        "trade_status": "untradable",
        "sell_start": 1767261600,
        "buy_start": 1767261600,
    }
    router.get("/spot/currency_pairs").respond(json=[pair_json])
    router.get("/spot/currency_pairs/ABC_USDT").respond(json=pair_json)
    list_route = router.get("/spot/orders").respond(json=[ORDER_JSON])
    cancel_route = router.delete("/spot/orders").respond(
        json=[{**ORDER_JSON, "succeeded": True, "label": "", "message": ""}]
    )
    trades_route = router.get("/spot/my_trades").respond(json=[FILL_JSON])

    pairs = await rest.currency_pairs()
    assert [p.pair for p in pairs] == ["ABC_USDT"]
    assert (await rest.currency_pair("ABC_USDT")).amount_precision == 2
    orders = await rest.list_orders("ABC_USDT", status="finished")
    assert isinstance(orders[0], Order)
    assert list_route.calls.last.request.url.query == (
        b"currency_pair=ABC_USDT&status=finished&limit=100"
    )
    cancelled = await rest.cancel_all("ABC_USDT", side="buy")
    assert cancelled[0].id == "1852454420"
    assert cancel_route.calls.last.request.url.query == b"currency_pair=ABC_USDT&side=buy"
    assert "x-gate-exptime" in cancel_route.calls.last.request.headers
    fills = await rest.my_trades("ABC_USDT", order_id="1852454420", limit=10)
    assert fills[0].fee == Decimal("0.02")
    assert trades_route.calls.last.request.url.query == (
        b"currency_pair=ABC_USDT&order_id=1852454420&limit=10"
    )


async def test_list_answer_that_is_not_an_array_is_a_protocol_error(
    router: respx.MockRouter, rest: GateRest
) -> None:
    router.get("/spot/orders").respond(json={"oops": 1})
    with pytest.raises(ProtocolError):
        await rest.list_orders("ABC_USDT")


async def test_order_gateway_protocol(router: respx.MockRouter, rest: GateRest) -> None:
    gateway: OrderGateway = rest
    router.post("/spot/orders").respond(201, json=ORDER_JSON)
    router.get("/spot/orders/1852454420").respond(json=ORDER_JSON)
    router.delete("/spot/orders/1852454420").respond(json=ORDER_JSON)
    placed = await gateway.place(REQUEST)
    assert isinstance(placed, Order)  # a full Order when Gate sends one
    assert (await gateway.status("1852454420", "ABC_USDT")).text == "t-abc123"
    assert (await gateway.cancel("1852454420", "ABC_USDT")).pair == "ABC_USDT"


# -- lifecycle --------------------------------------------------------------------------------


async def test_start_warms_and_keep_warm_pings_until_closed(
    router: respx.MockRouter, sleeps: Sleeps
) -> None:
    client = make_rest(sleeps, keep_warm_s=0.001)
    pinged = asyncio.Event()
    calls = 0

    def answer(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls >= 3:
            pinged.set()
        return httpx.Response(200, json={"server_time": NOW_MS})

    router.get("/spot/time").mock(side_effect=answer)
    await client.start()
    assert calls == 1  # start() itself warmed the pool
    async with asyncio.timeout(5):
        await pinged.wait()
    await client.aclose()
    settled = calls
    await asyncio.sleep(0)
    assert calls == settled  # the task is gone


# -- the httpx exception boundary ---------------------------------------------------------------


def _httpx_exception_classes() -> set[type[BaseException]]:
    roots = [
        obj
        for obj in vars(httpx).values()
        if isinstance(obj, type) and issubclass(obj, BaseException)
    ]
    found: set[type[BaseException]] = set()
    stack = list(roots)
    while stack:
        cls = stack.pop()
        if cls in found or not cls.__module__.startswith("httpx"):
            continue
        found.add(cls)
        stack.extend(cls.__subclasses__())
    return found


def test_translation_table_covers_every_httpx_exception_class() -> None:
    classes = _httpx_exception_classes()
    assert httpx.ReadTimeout in classes  # the walk found the tree
    assert len(classes) >= 25
    missing = sorted(cls.__name__ for cls in classes if cls not in HTTPX_ERROR_FATES)
    assert missing == []


def _instance(cls: type[BaseException]) -> BaseException:
    request = httpx.Request("POST", "http://gate.test/api/v4/spot/orders")
    if cls is httpx.HTTPStatusError:
        return cls("500", request=request, response=httpx.Response(500))
    if issubclass(cls, httpx.RequestError):
        return cls("boom", request=request)
    if cls in (httpx.StreamError, httpx.StreamConsumed, httpx.StreamClosed):
        return cls() if cls is not httpx.StreamError else cls("stream")
    if cls in (httpx.ResponseNotRead, httpx.RequestNotRead):
        return cls()
    return cls("boom")


@pytest.mark.parametrize("cls", sorted(_httpx_exception_classes(), key=lambda c: c.__name__))
def test_every_httpx_exception_translates_into_the_project_tree(cls: type[BaseException]) -> None:
    exc = _instance(cls)
    for idempotent in (True, False):
        translated = translate_httpx_error(exc, what="x", idempotent=idempotent, text="t-1")
        fate = HTTPX_ERROR_FATES[cls]
        if fate is Fate.NOT_SENT:
            assert type(translated) is TransientError
        elif fate is Fate.CONFIG:
            assert isinstance(translated, ConfigError)
        elif fate is Fate.MISUSE:
            assert isinstance(translated, ProtocolError)
        elif not idempotent:
            assert isinstance(translated, OutcomeUnknownError)
            assert translated.text == "t-1"
        else:
            assert isinstance(translated, TransientError | ProtocolError)


@pytest.mark.parametrize(
    ("cls", "fate"),
    [
        (httpx.ConnectError, Fate.NOT_SENT),
        (httpx.ConnectTimeout, Fate.NOT_SENT),
        (httpx.PoolTimeout, Fate.NOT_SENT),
        (httpx.ReadTimeout, Fate.MAYBE_SENT),
        (httpx.RemoteProtocolError, Fate.MAYBE_SENT),
        (httpx.DecodingError, Fate.BAD_ANSWER),
        (httpx.InvalidURL, Fate.CONFIG),
    ],
)
def test_fates_of_the_classes_that_matter(cls: type[BaseException], fate: Fate) -> None:
    assert rest_module.fate_of(_instance(cls)) is fate


def test_unknown_exception_subclass_falls_back_to_its_parent_fate() -> None:
    class OddConnect(httpx.ConnectError):
        pass

    class StrayError(Exception):
        pass

    assert rest_module.fate_of(OddConnect("x")) is Fate.NOT_SENT
    assert rest_module.fate_of(StrayError()) is Fate.MAYBE_SENT
    assert rest_module.fate_of(ConnectionResetError()) is Fate.MAYBE_SENT


def test_sample_payload_is_valid_json_for_the_codec() -> None:
    # Guards the fixtures above: if the codec tightens, this fails first and says why.
    from sniper.core.codec import decode_order

    assert decode_order(orjson.loads(orjson.dumps(ORDER_JSON))).filled_amount == Decimal("10")


# -- against the bundled simulator (an independent signature check) ------------------------------


async def test_round_trip_against_the_simulator() -> None:
    from sniper.sim.server import SimServer

    server = SimServer("new_listing_fast", host="127.0.0.1", port=0)
    urls = await server.start()
    client = GateRest(urls.rest, server.credentials, keep_warm_s=None)
    try:
        await client.start()
        assert abs(await client.sync_clock()) < 60_000
        usdt = [b for b in await client.accounts("USDT") if b.currency == "USDT"]
        assert usdt[0].available > 0
        book = await client.order_book("BTC_USDT", 5)
        assert book.asks
        ask = book.asks[0][0]
        request = OrderRequest("BTC_USDT", "buy", Decimal("0.001"), ask * 2, "t-sim-rest-1")
        placed = await client.create_order(request, action_mode="FULL")
        assert isinstance(placed, Order)
        assert placed.filled_amount == Decimal("0.001")
        assert (await client.get_order(placed.id, "BTC_USDT")).text == "t-sim-rest-1"
        fills = await client.my_trades("BTC_USDT", order_id=placed.id)
        assert sum(f.amount for f in fills) == Decimal("0.001")
        finished = await client.list_orders("BTC_USDT", status="finished")
        assert placed.id in {o.id for o in finished}
        resting = OrderRequest(
            "BTC_USDT",
            "buy",
            Decimal("0.001"),
            (ask / 2).quantize(Decimal(1)),
            "t-sim-rest-2",
            time_in_force="gtc",
        )
        await client.create_order(resting)
        cancelled = await client.cancel_all("BTC_USDT")
        assert [o.text for o in cancelled] == ["t-sim-rest-2"]
        assert "create_order" in client.last_gateway_times_us
    finally:
        await client.aclose()
        await server.stop()
