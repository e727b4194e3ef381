"""The ways to place one order that the decision -> exchange benchmark races against each other.

Each contender is armed with an order (client id, price, amount) outside the timed region and
then fired: ``fire(t0_ns)`` is called right after the harness read ``t0_ns`` (the decision) and
returns once the exchange has answered, so orders never overlap. What is timed is t0 -> the
simulator's event-log timestamp of the order's arrival, not the round trip.

* :class:`RawWsFloor`, :class:`RawHttpFloor`: the floor. The whole request (frame / HTTP
  message, signed, masked) is built before t0; firing is one ``transport.write`` on a warm,
  logged-in connection.
* :class:`SniperWs`: our WS trading API path, :class:`~sniper.gate.trading.GateWsTrader`
  (``prepare`` when armed, ``fire`` at the decision).
* :class:`SniperHttp`: our raw HTTP fallback (``sniper.gate.rawhttp``) when that module exists.
* :class:`SniperRest`: our general REST client (httpx), for reference; not the hot path.
* :class:`CcxtGate`: ``ccxt.async_support.gate`` as a user would run it: markets preloaded,
  rate limiter off, ``create_order`` at the decision.
* :class:`GateSdk`: the official ``gate_api`` SDK, ``SpotApi.create_order`` called directly
  (blocking the loop, only possible with the simulator in another process) or through
  ``asyncio.to_thread`` (what an asyncio program has to do).
"""

from __future__ import annotations

import asyncio
import importlib
import socket
import time
from decimal import Decimal
from typing import Any, Protocol
from urllib.parse import urlsplit

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.frames import Frame, Opcode

from sniper.core.codec import (
    CH_LOGIN,
    CH_ORDER_PLACE,
    encode_order,
    encode_ws_api_request,
    encode_ws_login,
    format_decimal,
)
from sniper.core.models import OrderRequest
from sniper.core.signing import Credentials, Signer
from sniper.gate.trading import GateWsTrader, PreparedWsOrder

PAIR = "BTC_USDT"
CCXT_SYMBOL = "BTC/USDT"
ORDERS_PATH = "/api/v4/spot/orders"
EXPTIME_HEADER = "x-gate-exptime"
TTL_MS = 1_000
REPLY_TIMEOUT_S = 5.0


class Contender(Protocol):
    """One way of placing an order (see the module docstring)."""

    name: str
    description: str
    written_ns: int
    """Monotonic ns just after the last order's bytes were handed to the socket (0: unknown)."""

    async def open(self) -> None:
        """Connect, log in, warm up: everything a daemon does before it is armed."""

    def arm(self, text: str, price: Decimal, amount: Decimal) -> None:
        """Prepare the next order (untimed): what the daemon does before the book opens."""

    async def fire(self, t0_ns: int) -> None:
        """Place the armed order (the decision was taken at ``t0_ns``) and await the answer.

        Raises when the exchange refused the order or did not answer.
        """

    async def close(self) -> None:
        """Release connections."""


def order_request(text: str, price: Decimal, amount: Decimal) -> OrderRequest:
    """The benchmark's order: an IOC limit buy on the established pair."""
    return OrderRequest(PAIR, "buy", amount, price, text, "limit", "ioc")


def _nodelay(sock: socket.socket | None) -> None:
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class RawWsFloor:
    """Pre-built, pre-masked ``spot.order_place`` frame written with ``transport.write``."""

    name = "raw_ws_floor"
    description = (
        "floor: the complete masked WS order_place frame built before t0, one transport.write "
        "on a logged-in websocket"
    )

    def __init__(self, ws_url: str, credentials: Credentials) -> None:
        self._url = ws_url
        self._signer = Signer(credentials)
        self._ws: ClientConnection | None = None
        self._frame = b""
        self._req_id = ""
        self._n = 0
        self.written_ns = 0

    async def open(self) -> None:
        ws = await connect(self._url, compression=None, proxy=None, ping_interval=None)
        _nodelay(ws.transport.get_extra_info("socket"))
        self._ws = ws
        ts = str(int(time.time()))
        signature = self._signer.ws_api(CH_LOGIN, "", ts)
        await ws.send(
            encode_ws_login(self._signer.key, signature, ts, "floor-login", time_s=int(ts)),
            text=True,
        )
        reply = await self._final("floor-login")
        if reply.get("header", {}).get("status") != "200":
            raise RuntimeError(f"raw WS login refused: {reply}")

    def arm(self, text: str, price: Decimal, amount: Decimal) -> None:
        self._n += 1
        self._req_id = f"floor-{self._n}"
        now = time.time()
        data = encode_ws_api_request(
            CH_ORDER_PLACE,
            self._req_id,
            encode_order(order_request(text, price, amount), action_mode="ACK"),
            time_s=int(now),
            req_header={EXPTIME_HEADER: str(int(now * 1000) + TTL_MS)},
        )
        self._frame = Frame(Opcode.TEXT, data).serialize(mask=True)

    async def fire(self, _t0_ns: int) -> None:
        assert self._ws is not None
        self._ws.transport.write(self._frame)
        self.written_ns = time.monotonic_ns()
        reply = await self._final(self._req_id)
        if reply.get("header", {}).get("status") != "200":
            raise RuntimeError(f"raw WS order refused: {reply.get('data')}")

    async def _final(self, req_id: str) -> dict[str, Any]:
        assert self._ws is not None
        async with asyncio.timeout(REPLY_TIMEOUT_S):
            while True:
                msg = orjson.loads(await self._ws.recv(decode=False))
                if msg.get("request_id") == req_id and not msg.get("ack"):
                    return dict(msg)

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()


class RawHttpFloor:
    """Pre-built, pre-signed ``POST /spot/orders`` written on a keep-alive socket."""

    name = "raw_http_floor"
    description = (
        "floor: the complete signed HTTP/1.1 POST /spot/orders built before t0, one "
        "transport.write on a keep-alive connection"
    )

    def __init__(self, rest_url: str, credentials: Credentials) -> None:
        parts = urlsplit(rest_url)
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or 80
        self._signer = Signer(credentials)
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._request = b""
        self.written_ns = 0

    async def open(self) -> None:
        self._reader, self._writer = await asyncio.open_connection(self._host, self._port)
        _nodelay(self._writer.get_extra_info("socket"))

    def arm(self, text: str, price: Decimal, amount: Decimal) -> None:
        body = orjson.dumps(encode_order(order_request(text, price, amount), action_mode="ACK"))
        now = time.time()
        ts = str(int(now))
        sign = self._signer.rest("POST", ORDERS_PATH, "", body, ts)
        head = (
            f"POST {ORDERS_PATH} HTTP/1.1\r\n"
            f"Host: {self._host}:{self._port}\r\n"
            f"KEY: {self._signer.key}\r\n"
            f"Timestamp: {ts}\r\n"
            f"SIGN: {sign}\r\n"
            f"{EXPTIME_HEADER}: {int(now * 1000) + TTL_MS}\r\n"
            "Content-Type: application/json\r\n"
            "Accept: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        self._request = head.encode() + body

    async def fire(self, _t0_ns: int) -> None:
        assert self._writer is not None
        assert self._reader is not None
        self._writer.transport.write(self._request)
        self.written_ns = time.monotonic_ns()
        async with asyncio.timeout(REPLY_TIMEOUT_S):
            head = await self._reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            body = await self._reader.readexactly(length)
        status = head.split(b" ", 2)[1]
        if status != b"201":
            raise RuntimeError(f"raw HTTP order refused: {status!r} {body[:200]!r}")

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            await self._writer.wait_closed()


class SniperWs:
    """Our WS trading API path: ``GateWsTrader.prepare`` when armed, ``fire`` at the decision."""

    name = "sniper_ws"
    description = (
        "ours: GateWsTrader.fire(prepared, price, amount) on a logged-in connection "
        "(frame prepared when armed; action_mode ACK)"
    )

    def __init__(self, ws_url: str, credentials: Credentials) -> None:
        self._trader = GateWsTrader(
            ws_url, Signer(credentials), action_mode="ACK", ttl_ms=TTL_MS, name="bench-ws"
        )
        self._prepared: PreparedWsOrder | None = None
        self._price = Decimal(0)
        self._amount = Decimal(0)
        self.written_ns = 0

    async def open(self) -> None:
        self._trader.start()
        await self._trader.wait_ready(10.0)

    def arm(self, text: str, price: Decimal, amount: Decimal) -> None:
        self._prepared = self._trader.prepare(order_request(text, price, amount))
        self._price = price
        self._amount = amount

    async def fire(self, t0_ns: int) -> None:
        assert self._prepared is not None
        try:
            await self._trader.fire(self._prepared, self._price, self._amount, decision_ns=t0_ns)
        finally:
            self.written_ns = self._prepared.timing.written_ns

    async def close(self) -> None:
        await self._trader.close()


class SniperHttp:
    """Our raw HTTP fallback, :class:`sniper.gate.rawhttp.RawHttpOrderSender`.

    ``precompute=False``: body hash and HMAC at fire time (the price is only known then).
    ``precompute=True``: ``PreparedOrder.precompute(price, amount)`` when armed, the case of a
    price decided ahead (``buy_start`` with a fixed cap).
    """

    def __init__(
        self, module: Any, rest_url: str, credentials: Credentials, *, precompute: bool = False
    ) -> None:
        self._sender = module.RawHttpOrderSender(
            rest_url, credentials, ttl_ms=TTL_MS, ping_interval_s=None
        )
        self._precompute = precompute
        self.written_ns = 0
        self._prepared: Any = None
        self._price = Decimal(0)
        self._amount = Decimal(0)
        if precompute:
            self.name = "sniper_http_pre"
            self.description = (
                "ours: RawHttpOrderSender.fire, body + hash precomputed when armed "
                "(price known ahead), HMAC at fire, warm keep-alive socket"
            )
        else:
            self.name = "sniper_http"
            self.description = (
                "ours: RawHttpOrderSender.fire, body cut when armed; price/amount spliced, "
                "SHA-512 + HMAC at fire; warm keep-alive socket"
            )

    async def open(self) -> None:
        await self._sender.start()

    def arm(self, text: str, price: Decimal, amount: Decimal) -> None:
        self._prepared = self._sender.prepare(order_request(text, price, amount))
        if self._precompute:
            self._prepared.precompute(price, amount)
        self._price = price
        self._amount = amount

    async def fire(self, _t0_ns: int) -> None:
        try:
            await self._sender.fire(self._prepared, self._price, self._amount)
        finally:
            self.written_ns = int(getattr(self._prepared, "written_ns", 0))

    async def close(self) -> None:
        await self._sender.close()


class SniperRest:
    """Our general REST client (:class:`sniper.gate.rest.GateRest`, httpx) placing the order."""

    name = "sniper_rest"
    description = (
        "ours, not the hot path: GateRest.place(request) (httpx pool, signs at send time); "
        "shown to price the raw HTTP sender against it"
    )

    def __init__(self, module: Any, rest_url: str, credentials: Credentials) -> None:
        self._rest = module.GateRest(rest_url, credentials, keep_warm_s=None)
        self.written_ns = 0  # httpx does not tell
        self._request: OrderRequest | None = None

    async def open(self) -> None:
        await self._rest.start()

    def arm(self, text: str, price: Decimal, amount: Decimal) -> None:
        self._request = order_request(text, price, amount)

    async def fire(self, _t0_ns: int) -> None:
        await self._rest.place(self._request)

    async def close(self) -> None:
        await self._rest.aclose()


def load_optional(module: str) -> Any | None:
    """``module`` if it can be imported (edges are being written in parallel), else ``None``."""
    try:
        return importlib.import_module(module)
    except ImportError:
        return None


class CcxtGate:
    """``ccxt.async_support.gate`` the way a user runs it, pointed at the simulator."""

    name = "ccxt"
    description = (
        "baseline: ccxt.async_support.gate create_order (markets preloaded, enableRateLimit "
        "False, aiohttp keep-alive)"
    )

    def __init__(self, rest_url: str, credentials: Credentials) -> None:
        import ccxt.async_support as ccxt_async

        self._exchange = ccxt_async.gate(
            {
                "apiKey": credentials.key,
                "secret": credentials.secret,
                "enableRateLimit": False,
                "options": {"fetchMarkets": {"types": ["spot"]}},
            }
        )
        for section in self._exchange.urls["api"].values():
            for key in section:
                section[key] = rest_url
        self._args: tuple[float, float, dict[str, str]] = (0.0, 0.0, {})
        self.written_ns = 0  # aiohttp does not tell

    async def open(self) -> None:
        await self._exchange.load_markets()
        # one order first so the aiohttp session and its keep-alive connection exist
        self.arm("t-ccxtwarm", Decimal("50000"), Decimal("0.0001"))
        await self.fire(0)

    def arm(self, text: str, price: Decimal, amount: Decimal) -> None:
        # A ccxt user holds floats; converting here keeps Decimal->float out of the timing.
        self._args = (float(amount), float(price), {"text": text, "timeInForce": "IOC"})

    async def fire(self, _t0_ns: int) -> None:
        amount, price, params = self._args
        await self._exchange.create_order(CCXT_SYMBOL, "limit", "buy", amount, price, params)

    async def close(self) -> None:
        await self._exchange.close()


class GateSdk:
    """The official ``gate_api`` SDK: ``SpotApi.create_order`` blocking or in a thread."""

    def __init__(self, rest_url: str, credentials: Credentials, *, threaded: bool) -> None:
        import gate_api

        self._gate_api = gate_api
        config = gate_api.Configuration(
            host=rest_url, key=credentials.key, secret=credentials.secret
        )
        self._api = gate_api.SpotApi(gate_api.ApiClient(config))
        self._threaded = threaded
        self._fields: dict[str, str] = {}
        self.written_ns = 0  # urllib3 does not tell
        if threaded:
            self.name = "sdk_thread"
            self.description = (
                "baseline: gate_api SpotApi.create_order via asyncio.to_thread (how an asyncio "
                "program calls the sync SDK; urllib3 keep-alive pool)"
            )
        else:
            self.name = "sdk"
            self.description = (
                "baseline: gate_api SpotApi.create_order called directly, blocking "
                "(urllib3 keep-alive pool)"
            )

    async def open(self) -> None:
        self.arm("t-sdkwarm", Decimal("50000"), Decimal("0.0001"))
        await self.fire(0)

    def arm(self, text: str, price: Decimal, amount: Decimal) -> None:
        self._fields = {
            "currency_pair": PAIR,
            "type": "limit",
            "side": "buy",
            "amount": format_decimal(amount),
            "price": format_decimal(price),
            "time_in_force": "ioc",
            "text": text,
        }

    async def fire(self, _t0_ns: int) -> None:
        # The user builds the model when the price is known, i.e. after the decision.
        order = self._gate_api.Order(**self._fields)
        if self._threaded:
            await asyncio.to_thread(self._api.create_order, order)
        else:
            self._api.create_order(order)

    async def close(self) -> None:
        self._api.api_client.close()
