"""Gate spot WebSocket v4 feed: subscriptions, acks, private auth, replay after reconnect.

Protocol: gate-v4.md §6 (https://www.gate.com/docs/developers/apiv4/ws/en/).

* Every subscribe/unsubscribe carries an ``id``; Gate echoes it in the reply, which resolves the
  caller's future. One unknown pair fails a whole request (error code 2), so the feed sends
  one request per ``subscribe`` call: callers subscribe each new pair on its own.
* Private channels are signed over ``channel=<c>&event=<e>&time=<t>`` with the request's own
  ``time`` (exchange seconds = injected clock + offset), and re-signed on every replay.
* Every subscription is remembered as PENDING until acked, then CONFIRMED. After a reconnect
  all of them go back to PENDING and are replayed; a replay that Gate refuses is forgotten and
  reported to ``on_subscription_failed``.
* ``spot.ping`` keeps the connection alive; a silent connection is dropped and reconnected
  (:mod:`sniper.gate.wsconn`); ``event: "upgrade"`` from the server means "reconnect".

Pushes (``event: "update"``, and the event-less ``spot.obu`` pushes) go straight to
``on_frame(frame, recv_ns)`` from the receive loop: no queue hop on the hot path.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

import structlog

from sniper.core.codec_ws import (
    CH_PONG,
    EV_SUBSCRIBE,
    EV_UNSUBSCRIBE,
    EV_UPDATE,
    EV_UPGRADE,
    WsFrame,
    decode_ws_error,
    decode_ws_message,
    encode_ws_ping,
    encode_ws_request,
    ws_auth,
)
from sniper.core.signing import Signer
from sniper.errors import ExchangeError, ProtocolError, TransientError
from sniper.gate.wsconn import DEFAULT_MAX_SIZE, BackoffPolicy, WsConnection, WsTuning

FrameHandler = Callable[[WsFrame, int], None]
"""``on_frame(frame, recv_ns)``: a push, with the monotonic ns it was received at."""

SubscriptionFailedHandler = Callable[[str, tuple[str, ...], ExchangeError], None]
"""``(channel, payload, error)`` for a replayed subscription Gate refused (it is forgotten)."""

DEFAULT_ACK_TIMEOUT_S: Final = 5.0

_log = structlog.get_logger(__name__)


class SubscriptionState(StrEnum):
    """Where one subscription is: sent or to be sent (PENDING), or acked by Gate (CONFIRMED)."""

    PENDING = "pending"
    CONFIRMED = "confirmed"


@dataclass(frozen=True, slots=True)
class SubscriptionInfo:
    """One remembered subscription, as reported by :meth:`GateFeed.statistics`."""

    channel: str
    payload: tuple[str, ...]
    private: bool
    state: SubscriptionState


@dataclass(frozen=True, slots=True)
class GateFeedStatistics:
    """Counters of one feed connection."""

    connected: bool
    frames: int
    reconnects: int
    last_frame_ns: int
    stalls: int
    upgrades: int
    pongs: int
    decode_errors: int
    handler_errors: int
    subscriptions: tuple[SubscriptionInfo, ...]


class _Subscription:
    """Mutable bookkeeping for one (channel, payload)."""

    __slots__ = ("channel", "payload", "private", "request_id", "state", "waiter", "waiting")

    def __init__(self, channel: str, payload: tuple[str, ...], private: bool) -> None:
        self.channel = channel
        self.payload = payload
        self.private = private
        self.state = SubscriptionState.PENDING
        self.request_id: int | None = None  # in flight on the current connection
        self.waiter: asyncio.Future[None] | None = None
        self.waiting = 0  # subscribe() calls currently awaiting the waiter


class GateFeed:
    """One market-data / private-channel connection to Gate's spot WebSocket.

    ``clock`` returns wall-clock seconds; ``clock_offset_s`` (settable) is added to it so the
    ``time`` of every request is Gate's time (private requests must be within 60 s of it).
    Call :meth:`start`, then :meth:`subscribe`; :meth:`close` when done. The connection
    keyword arguments (``name`` ... ``backoff``) are kept as :attr:`tuning`.
    """

    def __init__(
        self,
        url: str,
        on_frame: FrameHandler,
        *,
        signer: Signer | None = None,
        clock: Callable[[], float] = time.time,
        clock_offset_s: float = 0.0,
        name: str = "feed",
        ping_interval_s: float = 5.0,
        stall_timeout_s: float = 20.0,
        ack_timeout_s: float = DEFAULT_ACK_TIMEOUT_S,
        open_timeout_s: float = 10.0,
        max_size: int = DEFAULT_MAX_SIZE,
        backoff: BackoffPolicy | None = None,
        on_subscription_failed: SubscriptionFailedHandler | None = None,
    ) -> None:
        self._on_frame = on_frame
        self._signer = signer
        self._clock = clock
        self.clock_offset_s = clock_offset_s
        self._ack_timeout_s = ack_timeout_s
        self._on_subscription_failed = on_subscription_failed
        self._subs: dict[tuple[str, tuple[str, ...]], _Subscription] = {}
        self._sub_requests: dict[int, _Subscription] = {}
        self._unsub_requests: dict[int, asyncio.Future[None]] = {}
        self._next_id = 0
        self._upgrades = 0
        self._pongs = 0
        self._decode_errors = 0
        self.tuning = WsTuning(name=name, ping_interval_s=ping_interval_s,
                               stall_timeout_s=stall_timeout_s, open_timeout_s=open_timeout_s,
                               max_size=max_size, backoff=backoff)
        self._conn = WsConnection.tuned(url, self.tuning, on_message=self._on_message,
                                        on_open=self._replay, on_close=self._on_disconnect,
                                        make_ping=self._ping_bytes)

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Start connecting (in the background); subscriptions made before connect are queued."""
        self._conn.start()

    async def wait_connected(self, timeout_s: float | None = None) -> None:
        """Wait for an open connection; ``TimeoutError`` after ``timeout_s``."""
        await self._conn.wait_connected(timeout_s)

    async def close(self) -> None:
        """Close the connection and stop reconnecting. Pending subscribers get TransientError."""
        await self._conn.close()
        for sub in self._subs.values():
            _fail(sub.waiter, TransientError("feed closed"))
        for fut in self._unsub_requests.values():
            if not fut.done():
                fut.set_result(None)
        self._unsub_requests.clear()

    @property
    def connected(self) -> bool:
        """True while the socket is open."""
        return self._conn.connected

    def now_s(self) -> int:
        """Gate's time in whole seconds, as put in every request."""
        return int(self._clock() + self.clock_offset_s)

    # -- subscriptions ---------------------------------------------------------------------

    async def subscribe(
        self,
        channel: str,
        payload: Sequence[str] = (),
        *,
        private: bool = False,
        timeout_s: float | None = None,
    ) -> None:
        """Subscribe and wait for Gate's ack.

        Raises the typed error for a refusal (``PairNotTradableError`` for an unknown pair,
        ``AuthError`` for a bad signature); the subscription is then forgotten and the caller
        may retry. On timeout raises :class:`TransientError` but keeps the subscription
        PENDING: it is replayed on the next connection (call :meth:`unsubscribe` to drop it).
        """
        if private and self._signer is None:
            raise ValueError(f"{channel}: private channel needs a signer")
        key = (channel, tuple(payload))
        sub = self._subs.get(key)
        if sub is None:
            sub = _Subscription(channel, key[1], private)
            self._subs[key] = sub
        if sub.state is SubscriptionState.CONFIRMED:
            return
        if sub.waiter is None or sub.waiter.done():
            sub.waiter = asyncio.get_running_loop().create_future()
        waiter = sub.waiter
        if sub.request_id is None and self._conn.connected:
            # If the connection goes away meanwhile, the replay on reconnect sends it.
            with contextlib.suppress(ExchangeError):
                await self._send_subscribe(sub)
        limit = self._ack_timeout_s if timeout_s is None else timeout_s
        sub.waiting += 1
        try:
            async with asyncio.timeout(limit):
                await asyncio.shield(waiter)
        except TimeoutError:
            raise TransientError(
                f"subscribe {channel} {list(payload)}: no ack in {limit}s"
            ) from None
        finally:
            sub.waiting -= 1

    async def unsubscribe(
        self, channel: str, payload: Sequence[str] = (), *, timeout_s: float | None = None
    ) -> None:
        """Forget a subscription and tell Gate; waits for the ack when connected."""
        key = (channel, tuple(payload))
        sub = self._subs.pop(key, None)
        if sub is None:
            return
        _fail(sub.waiter, TransientError(f"unsubscribed {channel} {list(payload)}"))
        if not self._conn.connected:
            return  # the next connection simply does not replay it
        request_id = self._new_id()
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._unsub_requests[request_id] = fut
        time_s = self.now_s()
        auth = self._auth(channel, EV_UNSUBSCRIBE, time_s) if sub.private else None
        data = encode_ws_request(
            channel, EV_UNSUBSCRIBE, list(payload), time_s=time_s, id=request_id, auth=auth
        )
        try:
            await self._conn.send(data)
            limit = self._ack_timeout_s if timeout_s is None else timeout_s
            async with asyncio.timeout(limit):
                await fut
        except TimeoutError:
            raise TransientError(f"unsubscribe {channel}: no ack") from None
        except ExchangeError:
            if fut.done() and fut.exception() is not None:
                raise
            # not connected any more: the server side is gone with the connection
        finally:
            self._unsub_requests.pop(request_id, None)

    def subscriptions(self) -> tuple[SubscriptionInfo, ...]:
        """Every remembered subscription and its state."""
        return tuple(
            SubscriptionInfo(s.channel, s.payload, s.private, s.state) for s in self._subs.values()
        )

    def statistics(self) -> GateFeedStatistics:
        """Counters and the subscription table."""
        conn = self._conn.statistics()
        return GateFeedStatistics(
            connected=conn.connected,
            frames=conn.frames,
            reconnects=conn.reconnects,
            last_frame_ns=conn.last_frame_ns,
            stalls=conn.stalls,
            upgrades=self._upgrades,
            pongs=self._pongs,
            decode_errors=self._decode_errors,
            handler_errors=conn.handler_errors,
            subscriptions=self.subscriptions(),
        )

    # -- internals -------------------------------------------------------------------------

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def _auth(self, channel: str, event: str, time_s: int) -> dict[str, str]:
        assert self._signer is not None
        return ws_auth(self._signer.key, self._signer.ws_channel(channel, event, time_s))

    async def _send_subscribe(self, sub: _Subscription) -> None:
        request_id = self._new_id()
        time_s = self.now_s()
        auth = self._auth(sub.channel, EV_SUBSCRIBE, time_s) if sub.private else None
        data = encode_ws_request(
            sub.channel, EV_SUBSCRIBE, list(sub.payload), time_s=time_s, id=request_id, auth=auth
        )
        sub.request_id = request_id
        self._sub_requests[request_id] = sub
        try:
            await self._conn.send(data)
        except ExchangeError:
            # not sent (or the connection died): leave it for the replay on the next connection
            if sub.request_id == request_id:
                sub.request_id = None
            self._sub_requests.pop(request_id, None)
            raise

    async def _replay(self) -> None:
        """on_open: send every remembered subscription again, one request each."""
        try:
            for sub in list(self._subs.values()):
                if sub.request_id is None and self._subs.get((sub.channel, sub.payload)) is sub:
                    await self._send_subscribe(sub)
        except ExchangeError:
            return  # lost this connection too; the next one replays again
        if self._subs:
            _log.info("ws_subscriptions_replayed", conn=self._conn.name, count=len(self._subs))

    def _on_disconnect(self) -> None:
        for sub in self._subs.values():
            sub.state = SubscriptionState.PENDING
            sub.request_id = None
        self._sub_requests.clear()
        # An unsubscribe in flight is moot: the server forgot everything with the connection.
        for fut in self._unsub_requests.values():
            if not fut.done():
                fut.set_result(None)

    def _ping_bytes(self) -> bytes:
        return encode_ws_ping(time_s=self.now_s())

    def _on_message(self, data: bytes, recv_ns: int) -> None:
        try:
            msg = decode_ws_message(data)
        except ProtocolError:
            self._decode_errors += 1
            _log.warning("ws_undecodable", conn=self._conn.name, raw=data[:200])
            return
        if not isinstance(msg, WsFrame):
            return  # a trading-API reply has no business on a feed connection
        if msg.event == EV_UPDATE:
            self._on_frame(msg, recv_ns)
            return
        self._on_control(msg, recv_ns)

    def _on_control(self, frame: WsFrame, recv_ns: int) -> None:
        event = frame.event
        if event == EV_SUBSCRIBE and frame.id is not None:
            self._on_subscribe_reply(frame)
        elif event == EV_UNSUBSCRIBE and frame.id is not None:
            fut = self._unsub_requests.get(frame.id)
            if fut is not None and not fut.done():
                if frame.error_code is not None:
                    fut.set_exception(decode_ws_error(frame.error_code, frame.error_message))
                else:
                    fut.set_result(None)
        elif frame.channel == CH_PONG:
            self._pongs += 1
        elif event == EV_UPGRADE:
            self._upgrades += 1
            self._conn.request_reconnect("server upgrade")
        elif event == "" and frame.error_code is None and frame.result is not None:
            self._on_frame(frame, recv_ns)  # spot.obu pushes carry no event
        else:
            _log.info(
                "ws_unhandled_frame",
                conn=self._conn.name,
                channel=frame.channel,
                ws_event=event,
                code=frame.error_code,
                message=frame.error_message,
            )

    def _on_subscribe_reply(self, frame: WsFrame) -> None:
        assert frame.id is not None
        sub = self._sub_requests.pop(frame.id, None)
        if sub is None or sub.request_id != frame.id:
            return
        sub.request_id = None
        if self._subs.get((sub.channel, sub.payload)) is not sub:
            return  # unsubscribed while the request was in flight
        if frame.error_code is None:
            sub.state = SubscriptionState.CONFIRMED
            if sub.waiter is not None and not sub.waiter.done():
                sub.waiter.set_result(None)
            return
        error = decode_ws_error(frame.error_code, frame.error_message)
        del self._subs[(sub.channel, sub.payload)]
        _log.warning(
            "ws_subscribe_refused",
            conn=self._conn.name,
            channel=sub.channel,
            payload=list(sub.payload),
            error=str(error),
        )
        waited = sub.waiting > 0
        _fail(sub.waiter, error)
        if not waited and self._on_subscription_failed is not None:
            self._on_subscription_failed(sub.channel, sub.payload, error)


def _fail(fut: asyncio.Future[None] | None, error: BaseException) -> None:
    if fut is not None and not fut.done():
        fut.set_exception(error)
        fut.exception()  # mark retrieved: nobody may be awaiting it any more
