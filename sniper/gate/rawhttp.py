"""The prepared-order fallback hot path: ``POST /spot/orders`` on a warm raw HTTP/1.1 socket.

Why not httpx: on loopback httpx + httpcore add ~370 µs per request (pool bookkeeping, h11
events, header objects). Here an order is one ``transport.write`` of bytes that were almost
entirely built ahead of time, and one awaited read of the answer (gate-v4.md §10).

What is prepared, and when:

* :class:`RawHttpOrderSender` (once): the request line, ``Host``, ``Accept``,
  ``Content-Type`` and ``KEY`` header bytes, and the signed path (``/api/v4/spot/orders``,
  taken from the base URL so any prefix is signed too, §1.2).
* :meth:`RawHttpOrderSender.prepare` (at arming): the JSON body from
  :func:`sniper.core.codec.encode_order_body`, cut around sentinel price/amount values
  (:func:`sniper.gate.prepared.prepare_order`), with the client id (``text``) already in it.
  :meth:`PreparedOrder.precompute` can go further and render the body and its SHA-512 for an
  expected price/amount.
* :meth:`RawHttpOrderSender.send` (at fire): splice price and amount (the body hash is taken
  over the exact final bytes, unless precomputed for these values), the timestamp, the HMAC,
  ``x-gate-exptime`` and ``Content-Length``; write once; parse the answer.

Outcomes: a refusal maps through :func:`sniper.core.codec.decode_error`. After the write, a
timeout, a dropped connection, an unparseable answer or a 5xx raise
:class:`~sniper.errors.OutcomeUnknownError` with the client id: the order may exist and is
reconciled by ``text``, never re-sent. Failing to connect raises
:class:`~sniper.errors.TransientError` (nothing was sent). A dropped connection is re-opened
on the next call; an optional keep-alive ping (``GET /spot/time``) keeps it from idling out.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Final
from urllib.parse import urlsplit

import structlog

from sniper.core.codec import (
    decode_error,
    decode_order_or_ack,
    decode_rate_limit,
    decode_server_time,
    encode_order,
    loads,
)
from sniper.core.models import Order, OrderAck, OrderRequest, RateLimit
from sniper.core.ratelimit import MAX_HEADER_BLOCK_S
from sniper.core.signing import Credentials, Signer
from sniper.errors import (
    ConfigError,
    ExchangeError,
    InvalidOrderError,
    OutcomeUnknownError,
    ProtocolError,
    RateLimitedError,
    TransientError,
)
from sniper.gate import endpoints as ep
from sniper.gate.httpwire import BadResponseError, read_response
from sniper.gate.prepared import PreparedOrder, prepare_order
from sniper.gate.rest import GatewayTimes, gateway_times

__all__ = [
    "DEFAULT_PING_S",
    "DEFAULT_TIMEOUT_S",
    "DEFAULT_TTL_MS",
    "PreparedOrder",
    "RawHttpOrderSender",
    "RawHttpStatistics",
    "read_response",
]

DEFAULT_TIMEOUT_S: Final = 5.0
DEFAULT_TTL_MS: Final = 1500
DEFAULT_PING_S: Final = 15.0
_log = structlog.get_logger(__name__)


_WIRE_ERRORS: Final = (
    OSError,  # reset, broken pipe, TLS errors
    TimeoutError,  # no answer within timeout_s
    EOFError,  # asyncio.IncompleteReadError: closed mid-answer
    asyncio.LimitOverrunError,  # a header block larger than the stream limit
    BadResponseError,
)
"""What a dropped, silent or garbled connection raises once a request has been written."""


@dataclass(frozen=True, slots=True)
class RawHttpStatistics:
    """Counters of the sender since construction."""

    connected: bool
    connects: int
    orders_sent: int
    pings: int
    errors: int
    outcome_unknown: int


class _Conn:
    """One keep-alive connection; ``lock`` keeps request/response pairs from interleaving."""

    __slots__ = ("lock", "reader", "writer")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    def usable(self) -> bool:
        reader, writer = self.reader, self.writer
        return (
            reader is not None
            and writer is not None
            and not writer.is_closing()
            and not reader.at_eof()  # the server closed it while idle: do not write into it
            and reader.exception() is None
        )

    def drop(self) -> None:
        writer = self.writer
        self.reader = self.writer = None
        if writer is not None:
            writer.transport.abort()


class RawHttpOrderSender:
    """Sends prepared orders over raw keep-alive HTTP/1.1 connections to Gate's REST host.

    ``base_url`` is the REST base (``https://api.gateio.ws/api/v4``); ``clock`` returns local
    wall seconds and ``clock_offset_s`` (settable; :meth:`sync_clock` measures it) maps it to
    Gate's time for ``Timestamp`` and ``x-gate-exptime``. ``connections`` sockets are kept,
    so that many orders can be in flight at once.
    """

    def __init__(
        self,
        base_url: str,
        credentials: Credentials,
        *,
        clock: Callable[[], float] = time.time,
        clock_offset_s: float = 0.0,
        ttl_ms: int | None = DEFAULT_TTL_MS,
        action_mode: str = "ACK",
        timeout_s: float = DEFAULT_TIMEOUT_S,
        connect_timeout_s: float = DEFAULT_TIMEOUT_S,
        ping_interval_s: float | None = DEFAULT_PING_S,
        connections: int = 1,
        ssl_context: ssl.SSLContext | None = None,
        sync_clock_on_start: bool = True,
    ) -> None:
        parts = urlsplit(base_url.rstrip("/"))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError("exchange.rest_url", f"not an http(s) URL: {base_url!r}")
        if connections < 1:
            raise ValueError("connections must be >= 1")
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self._tls = ssl_context or (
            ssl.create_default_context() if parts.scheme == "https" else None
        )
        host_header = f"[{self.host}]" if ":" in self.host else self.host
        if parts.port is not None:
            host_header += f":{parts.port}"
        prefix = parts.path
        self.order_path = prefix + ep.CREATE_ORDER.path
        self._time_path = prefix + ep.SERVER_TIME.path
        self._signer = Signer(credentials)
        self._clock = clock
        self.clock_offset_s = clock_offset_s
        self.ttl_ms = ttl_ms
        self.action_mode = action_mode
        self.timeout_s = timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.ping_interval_s = ping_interval_s
        self.sync_clock_on_start = sync_clock_on_start
        self._order_head = (
            f"POST {self.order_path} HTTP/1.1\r\nHost: {host_header}\r\n"
            "Accept: application/json\r\nContent-Type: application/json\r\n"
            f"{ep.H_KEY}: {self._signer.key}\r\n"
        ).encode()
        self._ping_request = (
            f"GET {self._time_path} HTTP/1.1\r\nHost: {host_header}\r\n"
            "Accept: application/json\r\n\r\n"
        ).encode()
        self._conns = [_Conn() for _ in range(connections)]
        self._next = 0
        self._ping_task: asyncio.Task[None] | None = None
        self.last_rate_limit: RateLimit | None = None
        """Rate-limit headers of the latest order answer that carried them."""
        self.last_gateway_times_us: GatewayTimes | None = None
        """``X-In-Time``/``X-Out-Time`` of the latest order answer."""
        self._connects = 0
        self._orders = 0
        self._pings = 0
        self._errors = 0
        self._unknown = 0

    def __repr__(self) -> str:
        return f"RawHttpOrderSender({self.host}:{self.port}, signer={self._signer!r})"

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Open and warm every connection (``GET /spot/time``); measure the clock offset."""
        if self.sync_clock_on_start:
            await self.sync_clock()
        for conn in self._conns:
            await self._ping(conn)
        if self.ping_interval_s is not None and self._ping_task is None:
            self._ping_task = asyncio.create_task(
                self._ping_loop(self.ping_interval_s), name="rawhttp-keepalive"
            )

    async def close(self) -> None:
        """Stop the keep-alive pings and close every connection."""
        task, self._ping_task = self._ping_task, None
        if task is not None:
            task.cancel()
            # gather() hands the task's CancelledError back as a value; ours still propagates.
            await asyncio.gather(task, return_exceptions=True)
        for conn in self._conns:
            conn.drop()

    async def sync_clock(self, samples: int = 3) -> int:
        """Measure Gate's clock minus ours (ms) over this connection; sets ``clock_offset_s``."""
        best: tuple[float, int] | None = None
        for _ in range(max(1, samples)):
            sent_s = self._clock()
            server_ms = await self.ping()
            received_s = self._clock()
            offset_ms = server_ms - round((sent_s + received_s) * 500)
            if best is None or received_s - sent_s < best[0]:
                best = (received_s - sent_s, offset_ms)
        assert best is not None
        self.clock_offset_s = best[1] / 1000
        return best[1]

    def statistics(self) -> RawHttpStatistics:
        """Counters since construction."""
        return RawHttpStatistics(
            connected=any(conn.usable() for conn in self._conns),
            connects=self._connects,
            orders_sent=self._orders,
            pings=self._pings,
            errors=self._errors,
            outcome_unknown=self._unknown,
        )

    # -- hot path ------------------------------------------------------------------------------

    def prepare(
        self, request: OrderRequest, *, action_mode: str | None = None, ttl_ms: int | None = -1
    ) -> PreparedOrder:
        """Encode a placement ahead of time (InvalidOrderError now if Gate would refuse it).

        ``request.text`` is the client id the order will carry. ``ttl_ms`` (default the
        sender's) sets ``x-gate-exptime`` = send time + ttl; ``None`` sends no expiry.
        """
        mode = self.action_mode if action_mode is None else action_mode
        ttl = self.ttl_ms if ttl_ms == -1 else ttl_ms
        encode_order(request, action_mode=mode)  # validate the real values at arming time
        return prepare_order(request, action_mode=mode, ttl_ms=ttl)

    def render(self, prepared: PreparedOrder, price: Decimal | None, amount: Decimal) -> bytes:
        """The complete request bytes for these values at the current (Gate) time."""
        body, body_hash = prepared.body_and_hash(price, amount)
        now_s = self._clock() + self.clock_offset_s
        timestamp = str(int(now_s))
        sign = prepared.sign(self._signer, self.order_path, body_hash, timestamp)
        exptime = (
            f"{ep.H_EXPTIME}: {int(now_s * 1000) + prepared.ttl_ms}\r\n"
            if prepared.ttl_ms is not None
            else ""
        )
        head = (
            f"{ep.H_TIMESTAMP}: {timestamp}\r\n{ep.H_SIGN}: {sign}\r\n{exptime}"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        return b"".join((self._order_head, head.encode(), body))

    async def send(
        self, prepared: PreparedOrder, price: Decimal | None, amount: Decimal
    ) -> Order | OrderAck:
        """Fire a prepared order with these values; Gate's answer (ACK or full order).

        Raises :class:`TransientError` if it could not be sent (no connection; the prepared
        order may be sent again), Gate's typed refusal, or :class:`OutcomeUnknownError`
        (``text`` set) when it was written and no readable answer came.
        """
        if prepared.fired:
            raise InvalidOrderError(f"{prepared.text}: already sent; prepare a new order")
        if amount <= 0 or (price is not None and price <= 0):
            raise InvalidOrderError(f"{prepared.text}: price and amount must be positive")
        if (price is None) != (prepared.request.price is None):
            raise InvalidOrderError(f"{prepared.text}: price given for a market order or missing")
        conn = self._pick()
        async with conn.lock:
            if not conn.usable():
                await self._connect(conn)  # TransientError: nothing was sent
            data = self.render(prepared, price, amount)
            prepared.fired = True
            try:
                status, headers, body = await self._exchange(conn, data, prepared)
            except _WIRE_ERRORS as exc:
                conn.drop()
                self._errors += 1
                self._unknown += 1
                raise OutcomeUnknownError(
                    f"raw order {type(exc).__name__}: {exc} (may have been sent)",
                    text=prepared.text,
                ) from exc
            except asyncio.CancelledError:
                # Its answer may still arrive: a later request must never read it as its own.
                conn.drop()
                self._unknown += 1
                raise
        self._orders += 1
        limit = self._observe(headers)
        return self._outcome(prepared, status, body, limit)

    async def fire(
        self, prepared: PreparedOrder, price: Decimal | None, amount: Decimal
    ) -> Order | OrderAck:
        """:meth:`send` (the ``EntrySender`` spelling)."""
        return await self.send(prepared, price, amount)

    async def place(self, request: OrderRequest) -> Order | OrderAck:
        """Prepare and send in one go (not the hot path)."""
        return await self.send(self.prepare(request), request.price, request.amount)

    async def ping(self) -> int:
        """``GET /spot/time`` over a pooled connection (re-opening it if needed): Gate ms."""
        return await self._ping(self._pick())

    # -- internals -----------------------------------------------------------------------------

    def _pick(self) -> _Conn:
        """A free connection if there is one (round robin), else the next in turn."""
        conns = self._conns
        count = len(conns)
        for step in range(count):
            conn = conns[(self._next + step) % count]
            if not conn.lock.locked():
                self._next = (self._next + step + 1) % count
                return conn
        conn = conns[self._next]
        self._next = (self._next + 1) % count
        return conn

    async def _connect(self, conn: _Conn) -> None:
        conn.drop()
        try:
            async with asyncio.timeout(self.connect_timeout_s):
                reader, writer = await asyncio.open_connection(
                    self.host,
                    self.port,
                    ssl=self._tls,
                    server_hostname=self.host if self._tls is not None else None,
                )
        except (OSError, TimeoutError) as exc:
            self._errors += 1
            raise TransientError(
                f"raw http connect {self.host}:{self.port}: {type(exc).__name__}: {exc}"
            ) from exc
        conn.reader, conn.writer = reader, writer
        self._connects += 1

    async def _exchange(
        self, conn: _Conn, data: bytes, prepared: PreparedOrder | None
    ) -> tuple[int, dict[str, str], bytes]:
        reader, writer = conn.reader, conn.writer
        assert reader is not None
        assert writer is not None
        # No drain(): a request is far below the transport's high-water mark, so write()
        # never buffers enough to need one, and the only await left is the answer.
        writer.write(data)
        if prepared is not None:
            prepared.written_ns = time.monotonic_ns()
        async with asyncio.timeout(self.timeout_s):
            status, headers, body = await read_response(reader)
        if prepared is not None:
            prepared.answered_ns = time.monotonic_ns()
        if headers.get("connection", "").lower() == "close" or reader.at_eof():
            conn.drop()
        return status, headers, body

    async def _ping(self, conn: _Conn) -> int:
        async with conn.lock:
            if not conn.usable():
                await self._connect(conn)
            try:
                status, _, body = await self._exchange(conn, self._ping_request, None)
            except _WIRE_ERRORS as exc:
                conn.drop()
                self._errors += 1
                raise TransientError(f"raw http ping: {type(exc).__name__}: {exc}") from exc
            except asyncio.CancelledError:
                conn.drop()  # the answer may still arrive; never hand it to the next request
                raise
        self._pings += 1
        if not 200 <= status < 300:
            raise decode_error(body, status)
        return decode_server_time(loads(body))

    async def _ping_loop(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            for conn in self._conns:
                if conn.lock.locked():
                    continue  # in use: it is warm anyway
                try:
                    await self._ping(conn)
                except ExchangeError as exc:
                    _log.warning("rawhttp_ping_failed", error=str(exc))

    def _observe(self, headers: dict[str, str]) -> RateLimit:
        limit = decode_rate_limit(headers)
        if limit.remaining is not None or limit.limit is not None or limit.reset_ms is not None:
            self.last_rate_limit = limit
        times = gateway_times(headers)
        if times is not None:
            self.last_gateway_times_us = times
        return limit

    def _outcome(
        self, prepared: PreparedOrder, status: int, body: bytes, limit: RateLimit
    ) -> Order | OrderAck:
        if 200 <= status < 300:
            try:
                return decode_order_or_ack(loads(body))
            except ProtocolError as exc:
                self._unknown += 1
                raise OutcomeUnknownError(
                    f"raw order: undecodable {status} answer: {exc.message}", text=prepared.text
                ) from exc
        self._errors += 1
        error = decode_error(body, status)
        if isinstance(error, RateLimitedError) and limit.reset_ms is not None:
            now_ms = (self._clock() + self.clock_offset_s) * 1000
            wait_s = (limit.reset_ms - now_ms) / 1000
            error.retry_after_s = min(max(wait_s, 0.0), MAX_HEADER_BLOCK_S)
        if status >= 500:
            # A gateway error in front of the matching engine says nothing about the order.
            self._unknown += 1
            raise OutcomeUnknownError(
                f"raw order: {error} (server error after sending)", text=prepared.text
            ) from error
        raise error
