"""Gate v4 REST client (gate-v4.md §1-4): one warm httpx pool, exact-bytes signing, typed errors.

How a call goes (:meth:`GateRest._call`)::

    Endpoint.build(params) ─▶ URL + body bytes ─▶ httpx.Request ─▶ sign(path+query of the
    final URL, exact body bytes) ─▶ _send() ──httpx errors──▶ translate_httpx_error()
                                      │
                                      ▼ status, headers (rate limit, X-In/Out-Time kept)
                              2xx ─▶ codec decoder        non-2xx ─▶ codec.decode_error

* Only idempotent GETs are retried (bounded, jittered :class:`~sniper.core.backoff.Backoff`;
  a 429 waits for Gate's reset header when given). POST/DELETE are sent once.
* A request that may have reached Gate and got no readable answer is never reported as
  rejected: for non-idempotent endpoints it raises
  :class:`~sniper.errors.OutcomeUnknownError` (``text`` = the client id), and so does a 5xx,
  because a gateway error in front of the matching engine says nothing about the order.
  Connect errors (nothing was sent) raise :class:`~sniper.errors.TransientError`.
* Every httpx exception is translated in :func:`translate_httpx_error`, driven by
  :data:`HTTPX_ERROR_FATES`; a test walks httpx's exception classes against that table.

One :class:`GateRest` owns one connection pool; the application builds one per process, so
every call shares the same warm keep-alive connections (:meth:`GateRest.start` opens and warms
one, the keep-warm task stops it going idle).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, Final, TypeVar

import httpx
import structlog

from sniper.core.backoff import Backoff, is_retryable, retry_after_s
from sniper.core.codec import (
    decode_balances,
    decode_book_snapshot,
    decode_error,
    decode_fills_push,
    decode_order,
    decode_order_or_ack,
    decode_pair,
    decode_pairs,
    decode_rate_limit,
    decode_server_time,
    decode_tickers,
    encode_order_body,
    loads,
)
from sniper.core.models import (
    Balance,
    BookSnapshot,
    Fill,
    Order,
    OrderAck,
    OrderRequest,
    PairInfo,
    RateLimit,
    Ticker,
)
from sniper.core.ratelimit import MAX_HEADER_BLOCK_S
from sniper.core.signing import Credentials, Signer
from sniper.errors import (
    AuthError,
    ConfigError,
    ExchangeError,
    OutcomeUnknownError,
    ProtocolError,
    RateLimitedError,
    SniperError,
    TransientError,
)
from sniper.gate import endpoints as ep
from sniper.gate.endpoints import Endpoint

_T = TypeVar("_T")

DEFAULT_TIMEOUT_S: Final = 5.0
DEFAULT_ORDER_TTL_MS: Final = 1500
DEFAULT_KEEP_WARM_S: Final = 15.0
"""Below every common keep-alive idle timeout (nginx/openresty default 60-75 s)."""

MISSING_KEY_ENV: Final = "GATE_API_KEY"

_log = structlog.get_logger(__name__)


class Fate(Enum):
    """What an httpx exception tells us about the request that raised it."""

    NOT_SENT = "not sent"
    """Nothing reached the server (connect failed, no pool slot): safe to send again."""
    MAYBE_SENT = "maybe sent"
    """Bytes may have reached the server and no answer came (timeout, drop, garbage)."""
    BAD_ANSWER = "bad answer"
    """The server answered but we cannot read the answer (bad gzip, redirects)."""
    CONFIG = "config"
    """The URL itself is unusable: a configuration problem."""
    MISUSE = "misuse"
    """httpx used wrongly (stream read twice...): a bug here, never sent in our usage."""


HTTPX_ERROR_FATES: Final[dict[type[BaseException], Fate]] = {
    # Bases: reached only by a subclass that is not listed; assume the worst.
    httpx.HTTPError: Fate.MAYBE_SENT,
    httpx.RequestError: Fate.MAYBE_SENT,
    httpx.TransportError: Fate.MAYBE_SENT,
    httpx.TimeoutException: Fate.MAYBE_SENT,
    httpx.NetworkError: Fate.MAYBE_SENT,
    httpx.ProtocolError: Fate.MAYBE_SENT,
    # Before the request leaves.
    httpx.ConnectTimeout: Fate.NOT_SENT,
    httpx.ConnectError: Fate.NOT_SENT,
    httpx.PoolTimeout: Fate.NOT_SENT,
    httpx.ProxyError: Fate.NOT_SENT,
    # While or after the request leaves. A write error may follow a partial write; a local
    # protocol error may come after the head was written: neither proves "not sent".
    httpx.ReadTimeout: Fate.MAYBE_SENT,
    httpx.WriteTimeout: Fate.MAYBE_SENT,
    httpx.ReadError: Fate.MAYBE_SENT,
    httpx.WriteError: Fate.MAYBE_SENT,
    httpx.CloseError: Fate.MAYBE_SENT,
    httpx.RemoteProtocolError: Fate.MAYBE_SENT,
    httpx.LocalProtocolError: Fate.MAYBE_SENT,
    # Answered, unreadable.
    httpx.DecodingError: Fate.BAD_ANSWER,
    httpx.TooManyRedirects: Fate.BAD_ANSWER,
    httpx.HTTPStatusError: Fate.BAD_ANSWER,
    # Configuration.
    httpx.UnsupportedProtocol: Fate.CONFIG,
    httpx.InvalidURL: Fate.CONFIG,
    # Misuse of httpx objects.
    httpx.CookieConflict: Fate.MISUSE,
    httpx.StreamError: Fate.MISUSE,
    httpx.StreamConsumed: Fate.MISUSE,
    httpx.StreamClosed: Fate.MISUSE,
    httpx.ResponseNotRead: Fate.MISUSE,
    httpx.RequestNotRead: Fate.MISUSE,
}
"""Every httpx exception class, by what it means for the request (checked by a test)."""

_HTTPX_ERRORS: Final = (
    httpx.HTTPError,
    httpx.InvalidURL,
    httpx.CookieConflict,
    httpx.StreamError,
    OSError,  # httpcore wraps socket errors, but a stray one must still be translated
)


def fate_of(exc: BaseException) -> Fate:
    """The :class:`Fate` of ``exc`` (most specific listed class; unknown ones: maybe sent)."""
    for cls in type(exc).__mro__:
        fate = HTTPX_ERROR_FATES.get(cls)
        if fate is not None:
            return fate
    return Fate.MAYBE_SENT


def translate_httpx_error(
    exc: BaseException, *, what: str, idempotent: bool, text: str | None = None
) -> SniperError:
    """The project error for an httpx (or socket) exception raised by request ``what``.

    ``idempotent`` requests that may have been sent become :class:`TransientError` (sending
    again is harmless); the others become :class:`OutcomeUnknownError` carrying ``text``.
    """
    fate = fate_of(exc)
    detail = f"{what}: {type(exc).__name__}: {exc}"
    if fate is Fate.NOT_SENT:
        return TransientError(f"{detail} (not sent)")
    if fate is Fate.CONFIG:
        return ConfigError("exchange.rest_url", detail)
    if fate is Fate.MISUSE:
        return ProtocolError(f"{detail} (client misuse)")
    if idempotent:
        if fate is Fate.BAD_ANSWER:
            return ProtocolError(detail)
        return TransientError(detail)
    return OutcomeUnknownError(f"{detail} (may have been sent)", text=text)


@dataclass(frozen=True, slots=True)
class GatewayTimes:
    """Gate's API gateway receive/send times of one reply (µs, exchange clock; §1.3)."""

    in_us: int | None
    out_us: int | None


@dataclass(frozen=True, slots=True)
class GateRestStatistics:
    """Counters since construction."""

    requests: int
    retries: int
    errors: int
    outcome_unknown: int
    offset_ms: int


class GateRest:
    """Async client for the Gate v4 REST endpoints in :mod:`sniper.gate.endpoints`.

    Implements :class:`sniper.gate.ports.OrderGateway` (``place``/``cancel``/``status``).
    ``base_url`` ends with ``/api/v4`` (any host, port and prefix path; the signed path is
    taken from the final URL). ``credentials`` may be ``None``: public calls work, private
    ones raise :class:`~sniper.errors.AuthError`. ``clock`` returns local wall seconds;
    :attr:`offset_ms` (set by :meth:`sync_clock`) maps it to Gate's clock for timestamps.
    """

    def __init__(
        self,
        base_url: str,
        credentials: Credentials | None = None,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        connect_timeout_s: float | None = None,
        order_ttl_ms: int | None = DEFAULT_ORDER_TTL_MS,
        action_mode: str = "ACK",
        clock: Callable[[], float] = time.time,
        max_retries: int = 2,
        backoff_base_s: float = 0.05,
        backoff_max_s: float = 2.0,
        max_retry_wait_s: float = MAX_HEADER_BLOCK_S,
        rand: Callable[[], float] = random.random,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        keep_warm_s: float | None = DEFAULT_KEEP_WARM_S,
        max_connections: int = 8,
        keepalive_expiry_s: float = 120.0,
        proxy: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        url = httpx.URL(base_url.rstrip("/"))
        if url.scheme not in ("http", "https") or not url.host:
            raise ConfigError("exchange.rest_url", f"not an http(s) URL: {base_url!r}")
        self.base_url = str(url)
        self._signer = Signer(credentials) if credentials is not None else None
        self._clock = clock
        self.offset_ms = 0
        self.order_ttl_ms = order_ttl_ms
        self.action_mode = action_mode
        self.keep_warm_s = keep_warm_s
        self._max_retries = max_retries
        self._backoff_base_s = backoff_base_s
        self._backoff_max_s = backoff_max_s
        self._max_retry_wait_s = max_retry_wait_s
        self._rand = rand
        self._sleep = sleep
        self.last_rate_limit: dict[str, RateLimit] = {}
        """The latest rate-limit headers per endpoint name (only replies that carried them)."""
        self.last_gateway_times_us: dict[str, GatewayTimes] = {}
        """The latest ``X-In-Time``/``X-Out-Time`` per endpoint name."""
        self._requests = 0
        self._retries = 0
        self._errors = 0
        self._unknown = 0
        self._keep_warm_task: asyncio.Task[None] | None = None
        # One pool, HTTP/1.1 only (HTTP/2 on Gate is undocumented, §10), no env proxies or
        # redirects: what is sent is exactly what we built and signed.
        self._client = httpx.AsyncClient(
            http1=True,
            http2=False,
            timeout=httpx.Timeout(timeout_s, connect=connect_timeout_s or timeout_s),
            limits=httpx.Limits(
                max_connections=max_connections,
                max_keepalive_connections=max_connections,
                keepalive_expiry=keepalive_expiry_s,
            ),
            headers={"Accept": "application/json"},
            follow_redirects=False,
            trust_env=False,
            proxy=proxy,
            transport=transport,
        )

    def __repr__(self) -> str:
        key = "none" if self._signer is None else repr(self._signer)
        return f"GateRest({self.base_url!r}, signer={key})"

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Open and warm a pooled connection (``GET /spot/time``); start the keep-warm task."""
        await self.server_time_ms()
        if self.keep_warm_s is not None:
            self.keep_warm(self.keep_warm_s)

    def keep_warm(self, interval_s: float) -> asyncio.Task[None]:
        """(Re)start a background task pinging ``/spot/time`` every ``interval_s`` seconds."""
        if interval_s <= 0:
            raise ValueError("interval_s must be positive")
        if self._keep_warm_task is not None:
            self._keep_warm_task.cancel()
        self._keep_warm_task = asyncio.create_task(
            self._keep_warm_loop(interval_s), name="gate-rest-keep-warm"
        )
        return self._keep_warm_task

    async def _keep_warm_loop(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            try:
                await self._call(ep.SERVER_TIME, None, decode_server_time)
            except ExchangeError as exc:
                _log.warning("rest_keep_warm_failed", error=str(exc))

    async def aclose(self) -> None:
        """Stop keep-warm and close the pool."""
        task, self._keep_warm_task = self._keep_warm_task, None
        if task is not None:
            task.cancel()
            # gather() hands the task's CancelledError back as a value; ours still propagates.
            await asyncio.gather(task, return_exceptions=True)
        await self._client.aclose()

    async def __aenter__(self) -> GateRest:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- clock -----------------------------------------------------------------------------

    def now_ms(self) -> int:
        """Our estimate of Gate's clock, in ms."""
        return int(self._clock() * 1000) + self.offset_ms

    async def sync_clock(self, samples: int = 3) -> int:
        """Measure ``offset_ms`` (Gate minus local) with ``/spot/time``; returns it.

        The sample with the shortest round trip wins: its midpoint is the least uncertain.
        """
        best: tuple[float, int] | None = None
        for _ in range(max(1, samples)):
            sent_s = self._clock()
            server_ms = await self.server_time_ms()
            received_s = self._clock()
            rtt_s = received_s - sent_s
            offset = server_ms - round((sent_s + received_s) * 500)
            if best is None or rtt_s < best[0]:
                best = (rtt_s, offset)
        assert best is not None
        self.offset_ms = best[1]
        return self.offset_ms

    def statistics(self) -> GateRestStatistics:
        """Counters since construction."""
        return GateRestStatistics(
            requests=self._requests,
            retries=self._retries,
            errors=self._errors,
            outcome_unknown=self._unknown,
            offset_ms=self.offset_ms,
        )

    # -- public endpoints --------------------------------------------------------------------

    async def server_time_ms(self) -> int:
        """Gate's clock (``GET /spot/time``), ms."""
        result: int = await self._call(ep.SERVER_TIME, None, decode_server_time)
        return result

    async def currency_pairs(self) -> list[PairInfo]:
        """Every pair, including not-yet-tradable ones (strict: one bad entry fails the call)."""
        return await self._call(ep.CURRENCY_PAIRS, None, decode_pairs)

    async def currency_pair(self, pair: str) -> PairInfo:
        """One pair."""
        return await self._call(ep.CURRENCY_PAIR, {"pair": pair}, decode_pair)

    async def order_book(self, pair: str, limit: int = 100) -> BookSnapshot:
        """Depth snapshot with its update id (``with_id=true``)."""
        return await self._call(
            ep.ORDER_BOOK, {"pair": pair, "limit": limit}, lambda o: decode_book_snapshot(o, pair)
        )

    async def tickers(self, pair: str | None = None) -> list[Ticker]:
        """All tickers, or the one of ``pair``."""
        return await self._call(ep.TICKERS, {"pair": pair}, decode_tickers)

    # -- private endpoints -------------------------------------------------------------------

    async def accounts(self, currency: str | None = None) -> list[Balance]:
        """Spot balances (all currencies, or one)."""
        return await self._call(ep.ACCOUNTS, {"currency": currency}, decode_balances)

    async def create_order(
        self, req: OrderRequest, *, action_mode: str | None = None
    ) -> Order | OrderAck:
        """Place an order (``POST /spot/orders``, sent once, with ``x-gate-exptime``).

        Returns an :class:`OrderAck` in ``ACK`` mode, an :class:`Order` otherwise. Raises
        :class:`OutcomeUnknownError` (``text=req.text``) when it may exist without an answer.
        """
        body = encode_order_body(req, action_mode=action_mode or self.action_mode)
        return await self._call(ep.CREATE_ORDER, None, decode_order_or_ack, body, req.text)

    async def get_order(self, order_id: str, pair: str) -> Order:
        """One order by id (or by ``text`` while it is open)."""
        return await self._call(ep.GET_ORDER, {"order_id": order_id, "pair": pair}, decode_order)

    async def cancel_order(self, order_id: str, pair: str) -> Order:
        """Cancel one order; silence after sending raises :class:`OutcomeUnknownError`."""
        return await self._call(ep.CANCEL_ORDER, {"order_id": order_id, "pair": pair}, decode_order)

    async def list_orders(
        self, pair: str, status: str = "open", *, limit: int = 100, page: int | None = None
    ) -> list[Order]:
        """Orders of ``pair`` with ``status`` ``open`` or ``finished``."""
        params = {"pair": pair, "status": status, "limit": limit, "page": page}
        return await self._call(ep.LIST_ORDERS, params, _orders)

    async def cancel_all(self, pair: str, side: str | None = None) -> list[Order]:
        """Cancel every open order of ``pair`` (one ``side`` or both).

        Returns the orders as Gate reports them; check each one's ``status``.
        """
        return await self._call(ep.CANCEL_ALL, {"pair": pair, "side": side}, _orders)

    async def my_trades(
        self, pair: str, order_id: str | None = None, limit: int = 100
    ) -> list[Fill]:
        """Our recent fills of ``pair`` (last 7 days), optionally of one order."""
        params = {"pair": pair, "order_id": order_id, "limit": limit}
        return await self._call(ep.MY_TRADES, params, decode_fills_push)

    # -- OrderGateway ------------------------------------------------------------------------

    async def place(self, request: OrderRequest) -> Order | OrderAck:
        """:meth:`create_order` (OrderGateway)."""
        return await self.create_order(request)

    async def cancel(self, order_id: str, pair: str) -> Order:
        """:meth:`cancel_order` (OrderGateway)."""
        return await self.cancel_order(order_id, pair)

    async def status(self, order_id: str, pair: str) -> Order:
        """:meth:`get_order` (OrderGateway)."""
        return await self.get_order(order_id, pair)

    # -- plumbing ----------------------------------------------------------------------------

    async def _call(
        self,
        endpoint: Endpoint,
        params: dict[str, Any] | None,
        decode: Callable[[Any], _T],
        body: bytes = b"",
        text: str | None = None,
    ) -> _T:
        """Send ``endpoint`` (retrying idempotent ones) and decode the 2xx answer."""
        if endpoint.signed and self._signer is None:
            raise AuthError(
                f"{endpoint.name} needs API credentials: set {MISSING_KEY_ENV} and "
                "GATE_API_SECRET (or their _FILE variants)"
            )
        path, query = endpoint.build(params)
        backoff: Backoff | None = None
        while True:
            try:
                return await self._once(endpoint, path, query, body, text, decode)
            except ExchangeError as exc:
                self._errors += 1
                if isinstance(exc, OutcomeUnknownError):
                    self._unknown += 1
                if not endpoint.idempotent or not is_retryable(exc, idempotent=True):
                    raise
                if backoff is None:
                    backoff = Backoff(self._backoff_base_s, self._backoff_max_s)
                if backoff.attempts >= self._max_retries:
                    raise
                delay_s = backoff.next_delay(self._rand(), at_least_s=retry_after_s(exc))
                if delay_s > self._max_retry_wait_s:
                    raise
                self._retries += 1
                _log.info("rest_retry", endpoint=endpoint.name, delay_s=delay_s, error=str(exc))
                await self._sleep(delay_s)

    async def _once(
        self,
        endpoint: Endpoint,
        path: str,
        query: str,
        body: bytes,
        text: str | None,
        decode: Callable[[Any], _T],
    ) -> _T:
        url = self.base_url + path + ("?" + query if query else "")
        request = self._client.build_request(endpoint.method, url, content=body or None)
        headers = request.headers
        if body:
            headers["Content-Type"] = "application/json"
        if endpoint.exptime and self.order_ttl_ms is not None:
            headers[ep.H_EXPTIME] = str(self.now_ms() + self.order_ttl_ms)
        if endpoint.signed:
            assert self._signer is not None  # checked by _call
            # Sign what goes on the wire: the final URL's raw path and query, the body bytes.
            signed_path, _, signed_query = request.url.raw_path.decode("ascii").partition("?")
            timestamp = str(self.now_ms() // 1000)
            headers[ep.H_KEY] = self._signer.key
            headers[ep.H_TIMESTAMP] = timestamp
            headers[ep.H_SIGN] = self._signer.rest(
                endpoint.method, signed_path, signed_query, body, timestamp
            )
        response = await self._send(endpoint, request, text)
        limit = self._observe(endpoint.name, response.headers)
        status = response.status_code
        content = response.content
        if 200 <= status < 300:
            try:
                return decode(loads(content))
            except ProtocolError as exc:
                if endpoint.idempotent:
                    raise
                raise OutcomeUnknownError(
                    f"{endpoint.name}: undecodable {status} answer: {exc.message}", text=text
                ) from exc
        error = decode_error(content, status)
        if isinstance(error, RateLimitedError):
            error.retry_after_s = self._reset_wait_s(limit)
        if status >= 500 and not endpoint.idempotent:
            raise OutcomeUnknownError(
                f"{endpoint.name}: {error} (server error after sending)", text=text
            ) from error
        raise error

    async def _send(
        self, endpoint: Endpoint, request: httpx.Request, text: str | None
    ) -> httpx.Response:
        """The one place httpx exceptions are caught and translated."""
        self._requests += 1
        try:
            return await self._client.send(request)
        except _HTTPX_ERRORS as exc:
            raise translate_httpx_error(
                exc, what=endpoint.name, idempotent=endpoint.idempotent, text=text
            ) from exc

    def _observe(self, name: str, headers: httpx.Headers) -> RateLimit:
        """Keep the reply's rate-limit and gateway-time headers; returns the rate limit."""
        limit = decode_rate_limit(headers)
        if limit.remaining is not None or limit.limit is not None or limit.reset_ms is not None:
            self.last_rate_limit[name] = limit
        times = gateway_times(headers)
        if times is not None:
            self.last_gateway_times_us[name] = times
        return limit

    def _reset_wait_s(self, limit: RateLimit) -> float | None:
        """Seconds until the reset Gate announced in a 429 (None if it did not say)."""
        if limit.reset_ms is None:
            return None
        wait_s = (limit.reset_ms - self.now_ms()) / 1000
        return min(max(wait_s, 0.0), MAX_HEADER_BLOCK_S)


def _orders(obj: Any) -> list[Order]:
    if not isinstance(obj, list):
        raise ProtocolError("orders: expected an array", raw=obj)
    return [decode_order(item) for item in obj]


def gateway_times(headers: Mapping[str, str]) -> GatewayTimes | None:
    """``X-In-Time``/``X-Out-Time`` of a reply (lower-case or case-insensitive headers)."""
    in_us = _opt_int(headers.get(ep.H_IN_TIME))
    out_us = _opt_int(headers.get(ep.H_OUT_TIME))
    if in_us is None and out_us is None:
        return None
    return GatewayTimes(in_us, out_us)


def _opt_int(value: str | None) -> int | None:
    """An advisory header integer; garbage reads as absent (it must never fail a reply)."""
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None
