"""Spot WebSocket v4 of the simulator: public and private channels.

Route ``/ws/v4/`` (gate-v4.md §6, §7). One :class:`WsSession` per connection; its frames go
through one queue and one writer task, so they leave in order and fault injection (delay,
drop) applies per frame. :class:`SpotHub` turns engine events into pushes. Frames with
``event: "api"`` go to the WS trading API (:mod:`sniper.sim.ws_api`).

Choices where Gate's behaviour is unverified (documented for users of the simulator):

- ``spot.order_book_update`` pushes every engine book change immediately (ids ``U``/``u``
  exactly the engine's), whatever the requested interval; the first push after a subscribe is
  a ``full: true`` snapshot (``U == u`` = the current book id, 100 or 20 levels).
- ``spot.book_ticker`` is pushed whenever the best bid or ask of a pair changes.
- ``spot.tickers`` and ``spot.order_book`` are pushed on subscribe and then at most once per
  second / per the requested interval for pairs that changed.
- A subscribe naming a pair that is not (yet) in ``/spot/currency_pairs`` fails as a whole
  with error code 2 "unknown currency pair X"; a listed-but-not-open pair is accepted.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import WSMsgType, web

from sniper.sim import render
from sniper.sim.auth import AuthFailedError
from sniper.sim.entities import SimReject
from sniper.sim.events import (
    BalanceChanged,
    BookChanged,
    OrderChanged,
    PublicTradeHappened,
    SimEvent,
    UserTradeHappened,
)
from sniper.sim.rest import reject

if TYPE_CHECKING:
    from sniper.sim.server import SimServer

_log = logging.getLogger(__name__)
_conn_ids = itertools.count(1)
_CLOSED = (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR)

SIM_KEY: web.AppKey[SimServer] = web.AppKey("sim")
"""Where the aiohttp application keeps its :class:`~sniper.sim.server.SimServer`."""

PUBLIC_PAIR_CHANNELS = ("spot.tickers", "spot.book_ticker", "spot.trades")
PRIVATE_CHANNELS = ("spot.orders", "spot.usertrades", "spot.balances")
BOOK_LEVELS = {"5", "10", "20", "50", "100"}
BOOK_INTERVALS = {"100ms": 100, "1000ms": 1000}
UPDATE_INTERVALS = {"20ms": 20, "100ms": 100}
ALL = "!all"


@dataclass(frozen=True, slots=True)
class _Frame:
    channel: str
    event: str
    data: bytes
    detail: str | None


def new_ws_response() -> web.WebSocketResponse:
    """A server-side WebSocket as Gate runs it: no compression, protocol pings answered."""
    return web.WebSocketResponse(compress=False, autoping=True, heartbeat=None, timeout=1.0)


class WsSession:
    """One WebSocket connection: an ordered outgoing queue and a writer task."""

    def __init__(self, server: SimServer, ws: web.WebSocketResponse, request: web.Request) -> None:
        self.server = server
        self.ws = ws
        self.route = request.path
        self._transport = request.transport
        self.conn_id = next(_conn_ids)
        self.conn_hex = f"{self.conn_id:016x}"
        self._queue: asyncio.Queue[_Frame | None] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None
        self.stalled = False
        """Fault: nothing is sent or processed any more, and the connection stays open."""

    def start(self) -> None:
        """Start the writer task."""
        self._writer = asyncio.create_task(self._write_loop())

    def send(
        self, channel: str, event: str, message: dict[str, Any], detail: str | None = None
    ) -> None:
        """Queue one frame (never waits); ``detail`` goes to the event log (pair, ids)."""
        self._queue.put_nowait(_Frame(channel, event, orjson.dumps(message), detail))

    def envelope(
        self,
        channel: str,
        event: str,
        *,
        result: Any = None,
        error: dict[str, Any] | None = None,
        req_id: Any = None,
        payload: Any = None,
    ) -> dict[str, Any]:
        """Gate's server message envelope (§6.1)."""
        now_ms = self.server.server_now_ms()
        out: dict[str, Any] = {"time": now_ms // 1000, "time_ms": now_ms}
        if req_id is not None:
            out["id"] = req_id
        out["conn_id"] = self.conn_hex
        out["channel"] = channel
        out["event"] = event
        if payload is not None:
            out["payload"] = payload
        out["error"] = error
        out["result"] = result
        return out

    def push(self, channel: str, result: Any, detail: str | None = None) -> None:
        """Queue an ``update`` push."""
        self.send(channel, "update", self.envelope(channel, "update", result=result), detail)

    async def _write_loop(self) -> None:
        faults = self.server.faults
        events = self.server.events
        while True:
            item = await self._queue.get()
            if item is None or self.ws.closed:
                return
            channel = item.channel
            if self.stalled:
                events.record("ws_stall", channel, conn_id=self.conn_id, event=item.event)
                continue
            if faults.frame_delay_ms > 0:
                await asyncio.sleep(faults.frame_delay_ms / 1000)
            hostile = faults.take_hostile_frame(channel)
            if hostile is not None:
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await self.ws.send_str(hostile)
                events.record("ws_out", "hostile", conn_id=self.conn_id, event="garbage")
            if faults.take_frame_drop(channel):
                events.record(
                    "ws_drop", channel, conn_id=self.conn_id, event=item.event, detail=item.detail
                )
                continue
            try:
                await self.ws.send_str(item.data.decode())
            except (ConnectionError, RuntimeError):
                return
            events.record(
                "ws_out", channel, conn_id=self.conn_id, event=item.event, detail=item.detail
            )

    def on_text(self, data: str, t_ns: int) -> None:
        """Handle one received text frame (``t_ns`` = when it was received)."""
        raise NotImplementedError

    async def serve(self) -> None:
        """Read frames until the connection closes; then clean up."""
        server = self.server
        server.register_session(self)
        self.start()
        server.events.record("ws_open", self.route, conn_id=self.conn_id)
        try:
            while True:
                msg = await self.ws.receive()
                t_ns = time.monotonic_ns()
                if msg.type in _CLOSED:
                    break
                data = msg.data if msg.type == WSMsgType.TEXT else None
                if msg.type == WSMsgType.BINARY:
                    data = msg.data.decode(errors="replace")
                if data is None or self.stalled:
                    continue
                try:
                    self.on_text(data, t_ns)
                except Exception as exc:  # noqa: BLE001 - a simulator bug must not drop the link
                    _log.exception("simulator error on %s", self.route)
                    server.events.record(
                        "error", self.route, conn_id=self.conn_id, detail=repr(exc)
                    )
        finally:
            server.unregister_session(self)
            await self.close()
            server.events.record("ws_close", self.route, conn_id=self.conn_id)

    async def close(self) -> None:
        """Stop the writer (frames still queued are dropped)."""
        self._queue.put_nowait(None)
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer

    def abort(self) -> None:
        """Drop the connection without a close frame (a network failure, as the client sees)."""
        if self._transport is not None:
            self._transport.close()


@dataclass(slots=True)
class _Subs:
    """One spot session's subscriptions."""

    pairs: dict[str, set[str]] = field(default_factory=dict)  # channel -> pairs
    book: dict[str, int] = field(default_factory=dict)  # spot.order_book pair -> levels
    book_interval_ms: dict[str, int] = field(default_factory=dict)
    updates: dict[str, int] = field(default_factory=dict)  # order_book_update pair -> levels
    private: dict[str, tuple[int, set[str]]] = field(default_factory=dict)  # ch -> (uid, pairs)


class SpotSession(WsSession):
    """A ``/ws/v4/`` connection: subscriptions plus the WS trading API."""

    def __init__(self, server: SimServer, ws: web.WebSocketResponse, request: web.Request) -> None:
        super().__init__(server, ws, request)
        self.subs = _Subs()
        self.login_uid: int | None = None

    # -- incoming -----------------------------------------------------------------------------

    def on_text(self, data: str, t_ns: int) -> None:
        """Handle one received text frame (``t_ns`` = when it was received)."""
        self.server.catch_up()
        try:
            msg = orjson.loads(data)
        except orjson.JSONDecodeError:
            msg = None
        if not isinstance(msg, dict):
            self.server.events.record("ws_in", "", t_ns=t_ns, conn_id=self.conn_id)
            err = {"code": 1, "message": "invalid request body format"}
            self.send("", "", self.envelope("", "", error=err))
            return
        channel = str(msg.get("channel", ""))
        event = str(msg.get("event", ""))
        if event == "api":
            self.server.ws_api.handle(self, channel, msg, t_ns)
            return
        self.server.events.record("ws_in", channel, t_ns=t_ns, conn_id=self.conn_id, event=event)
        if channel == "spot.ping":
            self.send("spot.pong", "", self.envelope("spot.pong", ""))
        elif event in ("subscribe", "unsubscribe"):
            self._subscription(channel, event, msg)
        else:
            err = {"code": 1, "message": f"unknown event {event!r}"}
            self.send(
                channel, event, self.envelope(channel, event, error=err, req_id=msg.get("id"))
            )

    def _subscription(self, channel: str, event: str, msg: dict[str, Any]) -> None:
        payload = msg.get("payload")
        req_id = msg.get("id")
        try:
            after = self._apply(channel, event, payload, msg)
        except AuthFailedError as exc:
            err = {"code": 4, "message": f"{exc.label}: {exc.message}"}
            self.send(channel, event, self.envelope(channel, event, error=err, req_id=req_id))
            return
        except SimReject as exc:
            err = {"code": 2, "message": exc.message}
            self.send(channel, event, self.envelope(channel, event, error=err, req_id=req_id))
            return
        ack = self.envelope(
            channel, event, result={"status": "success"}, req_id=req_id, payload=payload
        )
        self.send(channel, event, ack)
        for push in after:
            push()

    def _pairs(self, payload: Any) -> list[str]:
        if not isinstance(payload, list) or not payload:
            raise reject("INVALID_ARGUMENT", "payload must be a non-empty list of pairs")
        pairs = [str(p) for p in payload]
        for pair in pairs:
            if pair != ALL:
                self._known(pair)
        return pairs

    def _known(self, pair: str) -> None:
        try:
            self.server.engine.get_pair(pair)
        except SimReject:
            raise reject("INVALID_CURRENCY_PAIR", f"unknown currency pair {pair}") from None

    def _apply(self, channel: str, event: str, payload: Any, msg: dict[str, Any]) -> list[Any]:
        """Change subscriptions; return the pushes to send right after the ack."""
        sub = event == "subscribe"
        hub = self.server.hub
        after: list[Any] = []
        if channel in PUBLIC_PAIR_CHANNELS:
            pairs = self._pairs(payload)
            if ALL in pairs:
                raise reject("INVALID_ARGUMENT", f"unknown currency pair {ALL}")
            current = self.subs.pairs.setdefault(channel, set())
            if sub:
                current.update(pairs)
                if channel == "spot.tickers":
                    after += [lambda p=p: hub.push_ticker(self, p) for p in pairs]
                elif channel == "spot.book_ticker":
                    after += [lambda p=p: hub.push_book_ticker(self, p) for p in pairs]
            else:
                current.difference_update(pairs)
        elif channel == "spot.order_book":
            if not isinstance(payload, list) or len(payload) != 3:
                raise reject("INVALID_ARGUMENT", "payload must be [pair, level, interval]")
            pair, level, interval = (str(x) for x in payload)
            self._known(pair)
            if level not in BOOK_LEVELS or interval not in BOOK_INTERVALS:
                raise reject("INVALID_ARGUMENT", f"invalid level or interval: {payload}")
            if sub:
                self.subs.book[pair] = int(level)
                self.subs.book_interval_ms[pair] = BOOK_INTERVALS[interval]
                after.append(lambda: hub.push_book(self, pair))
            else:
                self.subs.book.pop(pair, None)
        elif channel == "spot.order_book_update":
            if not isinstance(payload, list) or len(payload) != 2:
                raise reject("INVALID_ARGUMENT", "payload must be [pair, interval]")
            pair, interval = (str(x) for x in payload)
            self._known(pair)
            if interval not in UPDATE_INTERVALS:
                raise reject("INVALID_ARGUMENT", f"invalid interval: {interval}")
            if sub:
                self.subs.updates[pair] = 20 if interval == "20ms" else 100
                after.append(lambda: hub.push_full_book(self, pair))
            else:
                self.subs.updates.pop(pair, None)
        elif channel in PRIVATE_CHANNELS:
            uid = self.server.auth.verify_ws_channel(
                msg.get("auth"), channel, event, msg.get("time")
            )
            pairs = [ALL] if channel == "spot.balances" else self._pairs(payload)
            if sub:
                _, current_pairs = self.subs.private.get(channel, (uid, set()))
                self.subs.private[channel] = (uid, current_pairs | set(pairs))
            elif channel in self.subs.private:
                owner, current_pairs = self.subs.private[channel]
                self.subs.private[channel] = (owner, current_pairs - set(pairs))
        else:
            raise reject("INVALID_ARGUMENT", f"unknown channel {channel}")
        return after

    # -- what a session wants -----------------------------------------------------------------

    def wants(self, channel: str, pair: str) -> bool:
        """Subscribed to a public per-pair channel for ``pair``."""
        pairs = self.subs.pairs.get(channel)
        return pairs is not None and pair in pairs

    def wants_private(self, channel: str, uid: int, pair: str) -> bool:
        """Subscribed to a private channel of user ``uid`` covering ``pair``."""
        entry = self.subs.private.get(channel)
        if entry is None or entry[0] != uid:
            return False
        return ALL in entry[1] or pair in entry[1]


class SpotHub:
    """Turns engine events into pushes to the spot sessions that want them."""

    def __init__(self, server: SimServer) -> None:
        self.server = server
        self.sessions: set[SpotSession] = set()
        self._dirty_tickers: set[str] = set()
        self._dirty_books: set[str] = set()
        self._last_ticker_ms = 0
        self._last_book_ms: dict[tuple[int, str], int] = {}
        self._tops: dict[str, tuple[Any, Any]] = {}
        self._held_updates: dict[str, tuple[dict[str, Any], str]] = {}  # reorder fault

    def remove(self, session: SpotSession) -> None:
        """Forget a closed session."""
        self.sessions.discard(session)
        for key in [k for k in self._last_book_ms if k[0] == session.conn_id]:
            del self._last_book_ms[key]

    def publish(self, events: Iterable[SimEvent]) -> None:
        """Fan events out; called right after every engine call that returned events."""
        sessions = self.sessions
        touched: set[str] = set()
        for ev in events:
            if isinstance(ev, BookChanged):
                touched.add(ev.pair)
                self._book_update(ev)
            elif isinstance(ev, PublicTradeHappened):
                self._dirty_tickers.add(ev.pair)
                result = render.ws_public_trade_json(ev.trade)
                for s in sessions:
                    if s.wants("spot.trades", ev.pair):
                        s.push("spot.trades", result, ev.pair)
            elif isinstance(ev, OrderChanged):
                self._private(
                    "spot.orders",
                    ev.user_id,
                    ev.order.pair,
                    lambda e=ev: [render.ws_order_json(e.order, e.event)],
                    f"{ev.order.text}:{ev.order.id}:{ev.event}",
                )
            elif isinstance(ev, UserTradeHappened):
                self._private(
                    "spot.usertrades",
                    ev.user_id,
                    ev.trade.pair,
                    lambda e=ev: [render.ws_user_trade_json(e.trade)],
                )
            elif isinstance(ev, BalanceChanged):
                self._private(
                    "spot.balances", ev.user_id, ALL, lambda e=ev: [render.ws_balance_json(e)]
                )
        for pair in touched:
            self._dirty_books.add(pair)
            self._dirty_tickers.add(pair)
            self._book_ticker(pair)

    def _private(self, channel: str, uid: int, pair: str, build: Any, detail: str = "") -> None:
        result = None
        for s in self.sessions:
            if s.wants_private(channel, uid, pair) or (
                channel == "spot.balances" and s.wants_private(channel, uid, ALL)
            ):
                if result is None:
                    result = build()
                s.push(channel, result, detail or pair)

    def _book_update(self, ev: BookChanged) -> None:
        result: dict[str, Any] | None = None
        skip_checked = False
        held: tuple[dict[str, Any], str] | None = None
        for s in self.sessions:
            if ev.pair not in s.subs.updates:
                continue
            if not skip_checked:
                skip_checked = True
                if self.server.faults.take_book_skip(ev.pair):
                    self.server.events.record(
                        "fault", "skip_book", detail=f"{ev.pair}:{ev.last_id}"
                    )
                    return
                held = self._held_updates.pop(ev.pair, None)
                if held is None and self.server.faults.take_book_reorder(ev.pair):
                    self._held_updates[ev.pair] = (
                        render.book_update_json(
                            ev.pair, ev.first_id, ev.last_id, ev.bids, ev.asks, ev.time_ms
                        ),
                        f"{ev.pair}:{ev.first_id}-{ev.last_id}",
                    )
                    self.server.events.record(
                        "fault", "reorder_book", detail=f"{ev.pair}:{ev.last_id}"
                    )
                    return
            if result is None:
                result = render.book_update_json(
                    ev.pair, ev.first_id, ev.last_id, ev.bids, ev.asks, ev.time_ms
                )
            s.push("spot.order_book_update", result, f"{ev.pair}:{ev.first_id}-{ev.last_id}")
        if held is not None:  # the held-back update follows the one after it
            for session in self.sessions:
                if ev.pair in session.subs.updates:
                    session.push("spot.order_book_update", held[0], held[1])

    def _book_ticker(self, pair: str) -> None:
        wanted = [s for s in self.sessions if s.wants("spot.book_ticker", pair)]
        try:
            update_id, asks, bids = self.server.engine.order_book(pair, 1)
        except SimReject:  # a book moved before its pair was listed: nobody can watch it
            return
        top = (bids[0] if bids else None, asks[0] if asks else None)
        if self._tops.get(pair) == top:
            return
        self._tops[pair] = top
        if not wanted:
            return
        result = render.book_ticker_json(pair, update_id, self.server.server_now_ms(), *top)
        for s in wanted:
            s.push("spot.book_ticker", result, f"{pair}:{update_id}")

    def push_book_ticker(self, session: SpotSession, pair: str) -> None:
        """Send the current best bid/ask of ``pair`` to one session."""
        update_id, asks, bids = self.server.engine.order_book(pair, 1)
        result = render.book_ticker_json(
            pair,
            update_id,
            self.server.server_now_ms(),
            bids[0] if bids else None,
            asks[0] if asks else None,
        )
        session.push("spot.book_ticker", result)

    def push_ticker(self, session: SpotSession, pair: str) -> None:
        """Send the current ticker of ``pair`` to one session."""
        session.push("spot.tickers", render.ws_ticker_json(self.server.engine.ticker(pair)))

    def push_book(self, session: SpotSession, pair: str) -> None:
        """Send a ``spot.order_book`` snapshot of ``pair`` to one session."""
        levels = session.subs.book.get(pair)
        if levels is None:
            return
        update_id, asks, bids = self.server.engine.order_book(pair, levels)
        now_ms = self.server.server_now_ms()
        result = render.order_book_json(pair, update_id, now_ms, levels, asks, bids)
        session.push("spot.order_book", result, f"{pair}:{update_id}")

    def push_full_book(self, session: SpotSession, pair: str) -> None:
        """Send the ``full: true`` first push of ``spot.order_book_update``."""
        levels = session.subs.updates.get(pair, 100)
        update_id, asks, bids = self.server.engine.order_book(pair, levels)
        now_ms = self.server.server_now_ms()
        result = render.book_update_json(
            pair, update_id, update_id, bids, asks, now_ms, full=True, levels=levels
        )
        session.push("spot.order_book_update", result, f"{pair}:full:{update_id}")

    def flush(self, now_ms: int) -> None:
        """Periodic pushes (tickers, ``spot.order_book``); called from the clock tick."""
        if self._dirty_books:
            for s in self.sessions:
                for pair, interval in s.subs.book_interval_ms.items():
                    if pair not in self._dirty_books or pair not in s.subs.book:
                        continue
                    key = (s.conn_id, pair)
                    if now_ms - self._last_book_ms.get(key, 0) >= interval:
                        self._last_book_ms[key] = now_ms
                        self.push_book(s, pair)
            self._dirty_books.clear()
        if self._dirty_tickers and now_ms - self._last_ticker_ms >= 1000:
            self._last_ticker_ms = now_ms
            for pair in self._dirty_tickers:
                wanted = [s for s in self.sessions if s.wants("spot.tickers", pair)]
                if wanted:
                    result = render.ws_ticker_json(self.server.engine.ticker(pair))
                    for s in wanted:
                        s.push("spot.tickers", result)
            self._dirty_tickers.clear()


async def serve_spot(request: web.Request) -> web.StreamResponse:
    """aiohttp handler of ``/ws/v4/``."""
    server = request.app[SIM_KEY]
    ws = new_ws_response()
    await ws.prepare(request)
    session = SpotSession(server, ws, request)
    server.hub.sessions.add(session)
    try:
        await session.serve()
    finally:
        server.hub.remove(session)
    return ws
