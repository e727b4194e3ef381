"""Gate's WebSocket trading API (gate-v4.md §7): orders over an already logged-in socket.

Protocol (https://www.gate.com/docs/developers/apiv4/ws/en/#spot-account-trade):

* one ``spot.login`` per connection, signed over ``"api\\nspot.login\\n\\n<ts>"``; repeated
  after every reconnect. Requests are refused until it has succeeded.
* ``spot.order_place`` / ``spot.order_cancel`` / ``spot.order_status`` carry a ``req_id`` that
  Gate echoes as ``request_id``. A placement gets an ``ack: true`` message first, which only
  means "received"; the request resolves on the *final* reply (the order, or ``data.errs``,
  mapped through :func:`sniper.errors.error_for_label`).
* Once a request may have been written, silence (timeout) or a dropped connection raises
  :class:`~sniper.errors.OutcomeUnknownError` carrying the client id: the order may exist and
  is reconciled by ``text``; it is never reported as rejected.

Hot path: :meth:`GateWsTrader.prepare` encodes the whole request ahead of time with sentinel
values, cuts it into byte segments and draws the frame's masking key (a
:class:`~sniper.gate.prepared.PreparedWsOrder`);
:meth:`GateWsTrader.fire_nowait` splices the request time, the ``x-gate-exptime`` header,
price and amount into it, masks it under a pre-built WebSocket header and writes it straight
to the socket, synchronously (:meth:`WsConnection.write_frame_nowait`; no trip through
``ClientConnection.send``); :meth:`GateWsTrader.wait_result` then awaits the one future.
:meth:`GateWsTrader.fire` is both. :meth:`GateWsTrader.rehearse` runs the same render and
framing into a scratch buffer without sending, to keep caches warm before an expected open.
Each request's monotonic timestamps (decision, written, ack, result) are kept on a
:class:`WsOrderTiming` for latency histograms.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

import structlog

from sniper.core.codec import (
    CH_LOGIN,
    CH_ORDER_CANCEL,
    CH_ORDER_PLACE,
    CH_ORDER_STATUS,
    EV_UPGRADE,
    WsApiReply,
    decode_order,
    decode_order_or_ack,
    decode_ws_message,
    encode_order,
    encode_order_ref,
    encode_ws_api_request,
    encode_ws_login,
    encode_ws_ping,
)
from sniper.core.models import Order, OrderAck, OrderRequest
from sniper.core.ratelimit import MAX_HEADER_BLOCK_S
from sniper.core.signing import Signer
from sniper.errors import (
    AuthError,
    ExchangeError,
    InvalidOrderError,
    OutcomeUnknownError,
    ProtocolError,
    RateLimitedError,
    TransientError,
    error_for_label,
)
from sniper.gate.prepared import PreparedWsOrder, WsOrderTiming, prepare_ws_order
from sniper.gate.wsconn import DEFAULT_MAX_SIZE, BackoffPolicy, WsConnection, WsTuning

__all__ = [
    "DEFAULT_REPLY_TIMEOUT_S",
    "DEFAULT_TTL_MS",
    "GateWsTrader",
    "GateWsTraderStatistics",
    "PreparedWsOrder",
    "WsOrderTiming",
]

DEFAULT_REPLY_TIMEOUT_S: Final = 5.0
DEFAULT_TTL_MS: Final = 1_000

_log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class GateWsTraderStatistics:
    """Counters of the trading connection."""

    connected: bool
    logged_in: bool
    logins: int
    reconnects: int
    frames: int
    requests_sent: int
    replies: int
    unknown_outcomes: int
    in_flight: int


class _Pending:
    __slots__ = ("decode", "future", "timing")

    def __init__(
        self,
        future: asyncio.Future[Any],
        decode: Callable[[Any], Any],
        timing: WsOrderTiming | None,
    ) -> None:
        self.future = future
        self.decode = decode
        self.timing = timing


class GateWsTrader:
    """Orders over Gate's WS trading API; implements :class:`sniper.gate.ports.OrderGateway`.

    ``clock`` returns wall-clock seconds and ``clock_offset_s`` (settable) maps it to Gate's
    time, used for ``time``, the login timestamp and ``x-gate-exptime``. :meth:`start`
    connects and logs in in the background; :meth:`wait_ready` waits for that. The connection
    keyword arguments (``name`` ... ``backoff``) are kept as :attr:`tuning`.
    """

    def __init__(
        self,
        url: str,
        signer: Signer,
        *,
        clock: Callable[[], float] = time.time,
        clock_offset_s: float = 0.0,
        action_mode: str = "ACK",
        ttl_ms: int | None = DEFAULT_TTL_MS,
        reply_timeout_s: float = DEFAULT_REPLY_TIMEOUT_S,
        ready_timeout_s: float = 2.0,
        name: str = "trader",
        ping_interval_s: float = 5.0,
        stall_timeout_s: float = 20.0,
        open_timeout_s: float = 10.0,
        max_size: int = DEFAULT_MAX_SIZE,
        backoff: BackoffPolicy | None = None,
        history: int = 1024,
    ) -> None:
        self._signer = signer
        self._clock = clock
        self.clock_offset_s = clock_offset_s
        self.action_mode = action_mode
        self.ttl_ms = ttl_ms
        self._reply_timeout_s = reply_timeout_s
        self._ready_timeout_s = ready_timeout_s
        self._session = secrets.token_hex(3)
        self._next_id = 0
        self._pending: dict[str, _Pending] = {}
        self._ready = asyncio.Event()
        self._login_changed = asyncio.Event()  # set on every login success or refusal
        self._login_error: AuthError | None = None
        self._logins = 0
        self._requests_sent = 0
        self._replies = 0
        self._unknown = 0
        self._timings: deque[WsOrderTiming] = deque(maxlen=history)
        self.tuning = WsTuning(name=name, ping_interval_s=ping_interval_s,
                               stall_timeout_s=stall_timeout_s, open_timeout_s=open_timeout_s,
                               max_size=max_size, backoff=backoff)
        self._conn = WsConnection.tuned(url, self.tuning, on_message=self._on_message,
                                        on_open=self._login, on_close=self._on_disconnect,
                                        make_ping=lambda: encode_ws_ping(time_s=self.now_s()))

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Connect and log in in the background (idempotent)."""
        self._conn.start()

    async def close(self) -> None:
        """Close the connection; requests still waiting get OutcomeUnknownError."""
        await self._conn.close()
        self._fail_pending()

    @property
    def logged_in(self) -> bool:
        """True when the current connection is open and logged in."""
        return self._ready.is_set()

    async def wait_ready(self, timeout_s: float | None = None) -> None:
        """Wait until connected and logged in.

        Raises :class:`AuthError` if Gate refused the login and :class:`TransientError` if not
        ready within ``timeout_s`` (default ``ready_timeout_s``).
        """
        limit = self._ready_timeout_s if timeout_s is None else timeout_s
        try:
            async with asyncio.timeout(limit):
                while not self._ready.is_set():
                    if self._login_error is not None:
                        raise self._login_error
                    self._login_changed.clear()
                    await self._login_changed.wait()
        except TimeoutError:
            raise TransientError(f"{self._conn.name}: not logged in after {limit}s") from None

    def now_s(self) -> int:
        """Gate's time in whole seconds."""
        return int(self._clock() + self.clock_offset_s)

    def timings(self) -> tuple[WsOrderTiming, ...]:
        """Timings of the most recent finished requests, oldest first."""
        return tuple(self._timings)

    def statistics(self) -> GateWsTraderStatistics:
        """Counters since construction."""
        conn = self._conn.statistics()
        return GateWsTraderStatistics(
            connected=conn.connected,
            logged_in=self.logged_in,
            logins=self._logins,
            reconnects=conn.reconnects,
            frames=conn.frames,
            requests_sent=self._requests_sent,
            replies=self._replies,
            unknown_outcomes=self._unknown,
            in_flight=len(self._pending),
        )

    # -- OrderGateway ----------------------------------------------------------------------

    async def place(self, request: OrderRequest) -> Order | OrderAck:
        """Place one order (``spot.order_place``); see :meth:`fire` for the errors."""
        prepared = self.prepare(request)
        return await self.fire(prepared, request.price, request.amount)

    async def cancel(self, order_id: str, pair: str) -> Order:
        """Cancel an order (``spot.order_cancel``). Silence raises OutcomeUnknownError."""
        result: Order = await self._call(
            CH_ORDER_CANCEL, encode_order_ref(order_id, pair), decode_order, unknown_on_silence=True
        )
        return result

    async def status(self, order_id: str, pair: str) -> Order:
        """Look an order up (``spot.order_status``). Silence raises TransientError."""
        result: Order = await self._call(
            CH_ORDER_STATUS,
            encode_order_ref(order_id, pair),
            decode_order,
            unknown_on_silence=False,
        )
        return result

    # -- hot path ----------------------------------------------------------------------------

    def prepare(
        self, request: OrderRequest, *, action_mode: str | None = None, ttl_ms: int | None = -1
    ) -> PreparedWsOrder:
        """Encode a placement ahead of time (validates it: InvalidOrderError if Gate would).

        ``ttl_ms`` (default the trader's) sets ``x-gate-exptime`` = send time + ttl; ``None``
        sends no expiry. ``request.price``/``amount`` are only checked here: :meth:`fire`
        supplies the values actually sent.
        """
        mode = self.action_mode if action_mode is None else action_mode
        ttl = self.ttl_ms if ttl_ms == -1 else ttl_ms
        encode_order(request, action_mode=mode)  # validate the real request now, not at T0
        return prepare_ws_order(request, self._new_req_id(), action_mode=mode, ttl_ms=ttl)

    async def fire(
        self,
        prepared: PreparedWsOrder,
        price: Decimal | None,
        amount: Decimal,
        *,
        decision_ns: int = 0,
    ) -> Order | OrderAck:
        """Send a prepared placement with these values and wait for Gate's final answer.

        Waits for the login first if needed, then :meth:`fire_nowait` + :meth:`wait_result`.
        Raises :class:`TransientError` if nothing was sent (not connected / not logged in:
        the prepared order may be fired again), the typed error from ``data.errs`` if Gate
        refused it, and :class:`OutcomeUnknownError` (``text`` set) on silence or a dropped
        connection after the write. A prepared order that was written cannot be fired again.
        """
        decision_ns = decision_ns or time.monotonic_ns()
        if prepared.fired:
            raise InvalidOrderError(f"{prepared.req_id}: already fired; prepare a new order")
        _check_values(prepared, price, amount)
        if not self._ready.is_set():
            await self.wait_ready()
        self.fire_nowait(prepared, price, amount, decision_ns=decision_ns)
        return await self.wait_result(prepared)

    def fire_nowait(
        self,
        prepared: PreparedWsOrder,
        price: Decimal | None,
        amount: Decimal,
        *,
        decision_ns: int = 0,
    ) -> None:
        """Write a prepared placement now, synchronously; :meth:`wait_result` gets the answer.

        Never waits (callable from a frame callback, so the order leaves in the same loop
        iteration that decided it). Raises :class:`InvalidOrderError` (bad values, already
        fired), :class:`TransientError` if nothing was written (not logged in, connection not
        open: the prepared order may be fired again) and :class:`OutcomeUnknownError`
        (``text`` set) if the socket failed during the write.
        """
        if prepared.fired:
            raise InvalidOrderError(f"{prepared.req_id}: already fired; prepare a new order")
        timing = prepared.timing
        timing.decision_ns = decision_ns or time.monotonic_ns()
        _check_values(prepared, price, amount)
        if not self._ready.is_set():
            raise TransientError(f"{self._conn.name}: not logged in")
        frame = prepared.frame(self._clock() + self.clock_offset_s, price, amount)
        req_id = prepared.req_id
        try:
            self._conn.write_frame_nowait(frame)
        except OutcomeUnknownError as exc:
            prepared.fired = True  # the bytes may be out: never again under this req_id
            timing.outcome = "unknown"
            raise OutcomeUnknownError(
                f"{CH_ORDER_PLACE} {req_id}: {exc.message}", text=prepared.request.text
            ) from exc
        timing.written_ns = time.monotonic_ns()
        # Registered after the write: nothing can answer before it, and nothing else runs
        # on this loop in between.
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[req_id] = _Pending(future, decode_order_or_ack, timing)
        prepared.fired = True
        prepared._future = future
        self._requests_sent += 1

    async def wait_result(self, prepared: PreparedWsOrder) -> Order | OrderAck:
        """Gate's final answer to an order written by :meth:`fire_nowait` (await it once).

        Raises the typed error from ``data.errs`` if Gate refused it and
        :class:`OutcomeUnknownError` (``text`` set) on silence (``reply_timeout_s`` from now)
        or a dropped connection; :class:`InvalidOrderError` if the order was not written.
        """
        future = prepared._future
        if future is None:
            raise InvalidOrderError(f"{prepared.req_id}: not written (or already awaited)")
        prepared._future = None
        timing = prepared.timing
        req_id = prepared.req_id
        try:
            result: Order | OrderAck = await self._await(future, prepared.request.text, True)
            return result
        except OutcomeUnknownError as exc:
            timing.outcome = "unknown"
            raise OutcomeUnknownError(
                f"{CH_ORDER_PLACE} {req_id}: {exc.message}", text=prepared.request.text
            ) from exc
        except ExchangeError as exc:
            timing.outcome = exc.label or "error"
            raise
        finally:
            self._pending.pop(req_id, None)
            self._timings.append(timing)

    def rehearse(self, prepared: PreparedWsOrder, price: Decimal | None, amount: Decimal) -> int:
        """Render and frame ``prepared`` for these values without sending; the frame's size.

        Run it in a busy window before an expected open: the code, its data and the value
        texts are then hot when the real decision comes (a cold fire costs about twice as
        much). The prepared order stays unfired.
        """
        return len(prepared.frame(self._clock() + self.clock_offset_s, price, amount))

    # -- internals ---------------------------------------------------------------------------

    def _new_req_id(self) -> str:
        self._next_id += 1
        return f"{self._session}-{self._next_id}"

    async def _await(self, future: asyncio.Future[Any], text: str | None, unknown: bool) -> Any:
        try:
            async with asyncio.timeout(self._reply_timeout_s):
                return await future
        except TimeoutError:
            what = f"no final reply in {self._reply_timeout_s}s"
            if unknown:
                self._unknown += 1
                raise OutcomeUnknownError(what, text=text) from None
            raise TransientError(what) from None

    async def _call(
        self,
        channel: str,
        req_param: Any,
        decode: Callable[[Any], Any],
        *,
        unknown_on_silence: bool,
    ) -> Any:
        if not self._ready.is_set():
            await self.wait_ready()
        req_id = self._new_req_id()
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        timing = WsOrderTiming(req_id=req_id, text="", decision_ns=time.monotonic_ns())
        self._pending[req_id] = _Pending(future, decode, timing)
        data = encode_ws_api_request(channel, req_id, req_param, time_s=self.now_s())
        try:
            await self._conn.send(data)
            timing.written_ns = time.monotonic_ns()
            self._requests_sent += 1
            return await self._await(future, None, unknown_on_silence)
        except OutcomeUnknownError:
            if not unknown_on_silence:
                raise TransientError(f"{channel} {req_id}: connection lost") from None
            raise
        finally:
            self._pending.pop(req_id, None)

    async def _login(self) -> None:
        """on_open: log this connection in; a refusal is kept and raised to every caller."""
        timestamp = str(self.now_s())
        signature = self._signer.ws_api(CH_LOGIN, "", timestamp)
        req_id = self._new_req_id()
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[req_id] = _Pending(future, _identity, None)
        data = encode_ws_login(
            self._signer.key, signature, timestamp, req_id, time_s=int(timestamp)
        )
        try:
            await self._conn.send(data)
            await self._await(future, None, False)
        except AuthError as exc:
            self._login_error = exc
            self._login_changed.set()
            _log.error("ws_login_refused", conn=self._conn.name, error=str(exc))
            return
        except ExchangeError as exc:
            _log.warning("ws_login_failed", conn=self._conn.name, error=str(exc))
            self._conn.request_reconnect("login failed")
            return
        finally:
            self._pending.pop(req_id, None)
        self._login_error = None
        self._logins += 1
        self._ready.set()
        self._login_changed.set()
        _log.info("ws_logged_in", conn=self._conn.name)

    def _on_disconnect(self) -> None:
        self._ready.clear()
        self._fail_pending()

    def _fail_pending(self) -> None:
        for pending in self._pending.values():
            if not pending.future.done():
                self._unknown += 1
                pending.future.set_exception(OutcomeUnknownError("connection lost"))
                pending.future.exception()  # the awaiting request re-raises it; never "unretrieved"

    def _on_message(self, data: bytes, recv_ns: int) -> None:
        try:
            msg = decode_ws_message(data)
        except ProtocolError:
            # If this was a final reply its request times out into OutcomeUnknownError.
            _log.warning("ws_undecodable", conn=self._conn.name, raw=data[:200])
            return
        if isinstance(msg, WsApiReply):
            self._on_reply(msg, recv_ns)
        elif msg.event == EV_UPGRADE:
            self._conn.request_reconnect("server upgrade")

    def _on_reply(self, reply: WsApiReply, recv_ns: int) -> None:
        pending = self._pending.get(reply.request_id)
        if pending is None or pending.future.done():
            return  # late reply to a request that already timed out
        timing = pending.timing
        failed = reply.error_label is not None or reply.status >= 400
        if reply.ack and not failed:
            if timing is not None:
                timing.ack_ns = recv_ns
            return
        self._replies += 1
        if timing is not None:
            timing.result_ns = recv_ns
            timing.gate_in_us = reply.x_in_time_us
            timing.gate_out_us = reply.x_out_time_us
        if failed:
            error = error_for_label(
                reply.error_label, reply.error_message or f"status {reply.status}", reply.status
            )
            reset_ms = reply.rate_limit.reset_ms
            if isinstance(error, RateLimitedError) and reset_ms is not None:
                # Gate said when its window resets (a 429 is never placed): callers wait that
                wait_s = (reset_ms - (self._clock() + self.clock_offset_s) * 1000) / 1000
                error.retry_after_s = min(max(wait_s, 0.0), MAX_HEADER_BLOCK_S)
            if isinstance(error, TransientError) and timing is not None:
                # A 5xx for a placement does not prove the engine never took the order:
                # reconcile by client id rather than fire again (a second buy is the risk).
                unknown = OutcomeUnknownError(f"{error} (server error: outcome unknown)")
                unknown.__cause__ = error
                pending.future.set_exception(unknown)
                return
            pending.future.set_exception(error)
            return
        try:
            value = pending.decode(reply.result)
        except ProtocolError as exc:
            # Gate answered "done" in a shape we cannot read: the order may well exist.
            unknown = OutcomeUnknownError(f"undecodable reply: {exc.message}")
            unknown.__cause__ = exc
            pending.future.set_exception(unknown)
            return
        if timing is not None:
            timing.outcome = "ok"
        pending.future.set_result(value)


def _check_values(prepared: PreparedWsOrder, price: Decimal | None, amount: Decimal) -> None:
    if amount <= 0 or (price is not None and price <= 0):
        raise InvalidOrderError(f"{prepared.req_id}: price and amount must be positive")
    if (price is None) != (prepared.request.price is None):
        raise InvalidOrderError(f"{prepared.req_id}: price given for a market order or missing")


def _identity(value: Any) -> Any:
    return value
