"""A scripted local server that speaks enough of Gate's spot WebSocket v4 for edge tests.

Listens on 127.0.0.1 with an ephemeral port. It answers ``spot.ping`` with ``spot.pong``,
acks subscribe/unsubscribe (error code 2 for pairs in ``unknown_pairs``, code 4 for a bad
private-channel signature), checks ``spot.login`` signatures, and answers the trading API per
``order_script``. Tests push frames, drop or stall connections, and await what the client sent
with :meth:`GateWsServer.wait_for` (an event, never a sleep).

Signatures are recomputed here with ``hmac`` directly, independently of ``sniper.core.signing``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

KEY = "test-key-0123456789"
SECRET = "test-secret-abcdef"
PRIVATE_CHANNELS = frozenset({"spot.orders", "spot.usertrades", "spot.balances"})

# What the server does with a spot.order_place request.
FILL = "fill"  # ack, then the final reply with the order
REJECT = "reject"  # final reply with data.errs (label ``reject_label``), no ack
ACK_ONLY = "ack_only"  # ack, then nothing: the client must time out
SILENT = "silent"  # nothing at all
DROP_AFTER_ACK = "drop_after_ack"  # ack, then the connection is aborted


def _hmac(secret: str, text: str) -> str:
    return hmac.new(secret.encode(), text.encode(), hashlib.sha512).hexdigest()


@dataclass
class Received:
    """One message the server got: which connection (1-based), parsed and raw."""

    conn_no: int
    msg: dict[str, Any]
    raw: bytes


@dataclass
class _ConnState:
    logged_in: bool = False
    subscriptions: set[tuple[str, tuple[str, ...]]] = field(default_factory=set)


class GateWsServer:
    """Use as ``async with GateWsServer() as server:``; ``server.url`` is the ws:// address."""

    def __init__(
        self,
        *,
        key: str = KEY,
        secret: str = SECRET,
        unknown_pairs: set[str] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.key = key
        self.secret = secret
        self.unknown_pairs: set[str] = set(unknown_pairs or ())
        self.clock = clock
        self.stalled = False
        self.order_script = FILL
        self.reject_label = "BALANCE_NOT_ENOUGH"
        self.reject_status = "400"
        self.received: list[Received] = []
        self.connections: list[ServerConnection] = []
        self.states: list[_ConnState] = []
        self.orders: dict[str, dict[str, Any]] = {}
        self._next_order_id = 1000
        self._changed = asyncio.Event()
        self._server: Server | None = None

    async def __aenter__(self) -> GateWsServer:
        self._server = await serve(
            self._handler, "127.0.0.1", 0, compression=None, ping_interval=None
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    @property
    def url(self) -> str:
        assert self._server is not None
        port = next(iter(self._server.sockets)).getsockname()[1]
        return f"ws://127.0.0.1:{port}/ws/v4/"

    # -- test controls -----------------------------------------------------------------------

    async def wait_for(
        self, predicate: Callable[[Received], bool], *, timeout_s: float = 5.0, start: int = 0
    ) -> Received:
        """The first received message (from index ``start``) matching ``predicate``."""
        async with asyncio.timeout(timeout_s):
            while True:
                for item in self.received[start:]:
                    if predicate(item):
                        return item
                self._changed.clear()
                await self._changed.wait()

    async def wait_request(
        self, channel: str, event: str | None = None, *, conn_no: int | None = None, start: int = 0
    ) -> Received:
        """The first request on ``channel`` (and ``event``, connection) received."""

        def match(item: Received) -> bool:
            return (
                item.msg.get("channel") == channel
                and (event is None or item.msg.get("event") == event)
                and (conn_no is None or item.conn_no == conn_no)
            )

        return await self.wait_for(match, start=start)

    async def wait_connections(self, count: int, *, timeout_s: float = 5.0) -> ServerConnection:
        """Wait until ``count`` connections have been accepted in total; returns the last one."""
        async with asyncio.timeout(timeout_s):
            while len(self.connections) < count:
                self._changed.clear()
                await self._changed.wait()
        return self.connections[count - 1]

    def requests(self, channel: str, event: str | None = None) -> list[Received]:
        """Every received request on ``channel`` (and ``event``)."""
        return [
            r
            for r in self.received
            if r.msg.get("channel") == channel and (event is None or r.msg.get("event") == event)
        ]

    async def push(self, channel: str, result: Any, *, event: str = "update") -> None:
        """Send a push to the newest open connection."""
        now = self.clock()
        await self.send_raw(
            {
                "time": int(now),
                "time_ms": int(now * 1000),
                "channel": channel,
                "event": event,
                "result": result,
            }
        )

    async def send_raw(self, obj: Any) -> None:
        """Send any JSON (or raw text) to the newest open connection."""
        data = obj if isinstance(obj, str) else json.dumps(obj)
        await self.connections[-1].send(data)

    def drop(self) -> None:
        """Abort every open connection (no close handshake, like a network failure)."""
        for ws in self.connections:
            ws.transport.abort()

    # -- protocol ----------------------------------------------------------------------------

    def _notify(self) -> None:
        self._changed.set()

    async def _handler(self, ws: ServerConnection) -> None:
        self.connections.append(ws)
        state = _ConnState()
        self.states.append(state)
        conn_no = len(self.connections)
        self._notify()
        try:
            async for raw in ws:
                data = raw.encode() if isinstance(raw, str) else raw
                msg = json.loads(data)
                self.received.append(Received(conn_no, msg, data))
                self._notify()
                if not self.stalled:
                    await self._answer(ws, state, msg)
        except ConnectionClosed:
            pass

    async def _answer(self, ws: ServerConnection, state: _ConnState, msg: dict[str, Any]) -> None:
        channel = msg.get("channel")
        event = msg.get("event")
        now = self.clock()
        if channel == "spot.ping":
            await ws.send(
                json.dumps(
                    {
                        "time": int(now),
                        "time_ms": int(now * 1000),
                        "channel": "spot.pong",
                        "event": "",
                        "error": None,
                        "result": None,
                    }
                )
            )
        elif event in ("subscribe", "unsubscribe"):
            await ws.send(json.dumps(self._subscribe_reply(state, msg, now)))
        elif event == "api":
            await self._api(ws, state, msg)

    def _subscribe_reply(
        self, state: _ConnState, msg: dict[str, Any], now: float
    ) -> dict[str, Any]:
        channel = msg["channel"]
        event = msg["event"]
        payload = tuple(msg.get("payload") or ())
        reply: dict[str, Any] = {
            "time": int(now),
            "time_ms": int(now * 1000),
            "id": msg.get("id"),
            "channel": channel,
            "event": event,
            "error": None,
            "result": {"status": "success"},
        }
        error: dict[str, Any] | None = None
        if channel in PRIVATE_CHANNELS:
            auth = msg.get("auth") or {}
            expected = _hmac(self.secret, f"channel={channel}&event={event}&time={msg.get('time')}")
            fresh = abs(int(msg.get("time", 0)) - now) <= 60
            if auth.get("KEY") != self.key or auth.get("SIGN") != expected or not fresh:
                error = {"code": 4, "message": "Authentication failed"}
        unknown = [p for p in payload if p in self.unknown_pairs]
        if error is None and unknown:
            error = {"code": 2, "message": f"unknown currency pair {unknown[0]}"}
        if error is not None:
            reply["error"] = error
            reply["result"] = None
        elif event == "subscribe":
            state.subscriptions.add((channel, payload))
        else:
            state.subscriptions.discard((channel, payload))
        return reply

    def _api_reply(
        self,
        request_id: str,
        channel: str,
        *,
        status: str = "200",
        result: Any = None,
        errs: dict[str, str] | None = None,
        ack: bool = False,
    ) -> str:
        now_us = int(self.clock() * 1_000_000)
        reply: dict[str, Any] = {
            "request_id": request_id,
            "header": {
                "response_time": str(now_us // 1000),
                "status": status,
                "channel": channel,
                "event": "api",
                "x_in_time": now_us - 50,
                "x_out_time": now_us,
                "conn_id": "test",
            },
            "data": {"errs": errs} if errs is not None else {"result": result},
        }
        if ack:
            reply["ack"] = True
        return json.dumps(reply)

    async def _api(self, ws: ServerConnection, state: _ConnState, msg: dict[str, Any]) -> None:
        channel = msg["channel"]
        payload = msg.get("payload") or {}
        req_id = payload.get("req_id", "")
        if channel == "spot.login":
            expected = _hmac(self.secret, f"api\nspot.login\n\n{payload.get('timestamp')}")
            if payload.get("api_key") != self.key:
                errs = {"label": "INVALID_KEY", "message": "Invalid key provided"}
                await ws.send(self._api_reply(req_id, channel, status="401", errs=errs))
            elif payload.get("signature") != expected:
                errs = {"label": "INVALID_SIGNATURE", "message": "Signature mismatch"}
                await ws.send(self._api_reply(req_id, channel, status="401", errs=errs))
            else:
                state.logged_in = True
                result = {"api_key": self.key, "uid": "110284739"}
                await ws.send(self._api_reply(req_id, channel, result=result))
            return
        if not state.logged_in:
            errs = {"label": "INVALID_KEY", "message": "not logged in"}
            await ws.send(self._api_reply(req_id, channel, status="401", errs=errs))
            return
        if channel == "spot.order_place":
            await self._order_place(ws, channel, req_id, payload)
        elif channel in ("spot.order_cancel", "spot.order_status"):
            param = payload.get("req_param") or {}
            order = self.orders.get(str(param.get("order_id")))
            if order is None:
                errs = {"label": "ORDER_NOT_FOUND", "message": "Order not found"}
                await ws.send(self._api_reply(req_id, channel, status="404", errs=errs))
                return
            if channel == "spot.order_cancel" and order["status"] == "open":
                order["status"] = "cancelled"
                order["finish_as"] = "cancelled"
            await ws.send(self._api_reply(req_id, channel, result=order))

    async def _order_place(
        self, ws: ServerConnection, channel: str, req_id: str, payload: dict[str, Any]
    ) -> None:
        script = self.order_script
        if script == SILENT:
            return
        if script == REJECT:
            errs = {"label": self.reject_label, "message": "rejected by test script"}
            await ws.send(self._api_reply(req_id, channel, status=self.reject_status, errs=errs))
            return
        echo = {
            "req_id": req_id,
            "req_header": payload.get("req_header"),
            "req_param": payload.get("req_param"),
            "api_key": "",
            "timestamp": "",
            "signature": "",
        }
        await ws.send(self._api_reply(req_id, channel, result=echo, ack=True))
        if script == ACK_ONLY:
            return
        if script == DROP_AFTER_ACK:
            ws.transport.abort()
            return
        param = payload["req_param"]
        self._next_order_id += 1
        order_id = str(self._next_order_id)
        now_ms = int(self.clock() * 1000)
        order = {
            "id": order_id,
            "text": param.get("text", "apiv4-ws"),
            "amend_text": "-",
            "create_time": str(now_ms // 1000),
            "update_time": str(now_ms // 1000),
            "create_time_ms": now_ms,
            "update_time_ms": now_ms,
            "status": "closed",
            "currency_pair": param["currency_pair"],
            "type": param.get("type", "limit"),
            "account": param.get("account", "spot"),
            "side": param["side"],
            "amount": param["amount"],
            "price": param.get("price", "0"),
            "time_in_force": param.get("time_in_force", "gtc"),
            "iceberg": "0",
            "left": "0",
            "filled_amount": param["amount"],
            "fill_price": "0",
            "filled_total": "0",
            "avg_deal_price": param.get("price", "0"),
            "fee": "0",
            "fee_currency": param["currency_pair"].split("_")[0],
            "point_fee": "0",
            "gt_fee": "0",
            "gt_discount": False,
            "rebated_fee": "0",
            "rebated_fee_currency": "USDT",
            "finish_as": "filled",
        }
        self.orders[order_id] = order
        mode = param.get("action_mode", "FULL")
        result = {"id": order_id, "text": order["text"], "amend_text": "-"}
        await ws.send(self._api_reply(req_id, channel, result=result if mode == "ACK" else order))
