"""The WS trading API of the simulator (``event: "api"`` on ``/ws/v4/``, gate-v4.md §7).

:class:`WsTradingApi` answers ``spot.login``, ``spot.order_place`` (one order or a batch),
``spot.order_cancel``, ``spot.order_cancel_ids``, ``spot.order_cancel_cp``,
``spot.order_status`` and ``spot.order_list``. A request is authenticated by an earlier
``spot.login`` on the same connection or by its own signature. An order placement is answered
twice, as Gate does: an ``ack`` frame first, then the result; an order the engine refuses still
gets its ack before the error. Errors go to ``data.errs`` with ``header.status``.

Choices where Gate's behaviour is unverified: a call on a connection that is not logged in
(and carries no per-request signature) is answered ``401`` ``INVALID_KEY`` "not logged in";
an ``x-gate-exptime`` in ``req_header`` that has passed is refused with ``REQUEST_EXPIRED``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from sniper.sim import render
from sniper.sim.auth import AuthFailedError
from sniper.sim.entities import SimReject
from sniper.sim.rest import RateLimitedReject, RateVerdict, order_params, reject

if TYPE_CHECKING:
    from sniper.sim.server import SimServer
    from sniper.sim.ws import SpotSession

WS_TEXT = "apiv4-ws"  # Gate's default ``text`` for orders placed over the WS API


class WsTradingApi:
    """The WS trading API (``event: "api"``, §7) on the spot connection."""

    def __init__(self, server: SimServer) -> None:
        self.server = server

    def handle(self, session: SpotSession, channel: str, msg: dict[str, Any], t_ns: int) -> None:
        """Answer one ``api`` request (errors go to ``data.errs`` with ``header.status``)."""
        in_us = time.time_ns() // 1000
        payload = msg.get("payload")
        payload = payload if isinstance(payload, dict) else {}
        req_id = payload.get("req_id")
        param = payload.get("req_param")
        events = self.server.events
        texts = _texts(param) if channel == "spot.order_place" else []
        events.record(
            "ws_in",
            channel,
            t_ns=t_ns,
            conn_id=session.conn_id,
            event="api",
            text=texts[0] if len(texts) == 1 else None,
        )
        for text in texts:
            events.record("order_in", channel, t_ns=t_ns, conn_id=session.conn_id, text=text)
        now_ms = self.server.server_now_ms()
        verdict: RateVerdict | None = None
        try:
            if channel == "spot.login":
                uid = self._login(payload, now_ms)
                session.login_uid = uid
                api_key = str(payload.get("api_key", ""))
                result: Any = {"api_key": api_key, "uid": str(uid)}
            else:
                uid = self._uid(session, channel, payload, now_ms)
                header = payload.get("req_header")
                if isinstance(header, dict):
                    _exptime(header.get("x-gate-exptime"), now_ms)
                if channel == "spot.order_place":
                    _injected(self.server, channel, now_ms)
                    outcome = self._place(session, uid, param, now_ms, req_id, payload, in_us)
                    if outcome is None:
                        return
                    result, verdict = outcome
                else:
                    result = self._other(uid, channel, param, now_ms)
        except (SimReject, AuthFailedError) as exc:
            if isinstance(exc, RateLimitedReject):
                verdict = exc.verdict
            self._reply(
                session,
                channel,
                req_id,
                in_us,
                exc.status,
                errs=(exc.label, exc.message),
                verdict=verdict,
            )
            return
        self._reply(session, channel, req_id, in_us, 200, result=result, verdict=verdict)

    def _login(self, payload: dict[str, Any], now_ms: int) -> int:
        return self.server.auth.verify_ws_api(
            str(payload.get("api_key", "")),
            str(payload.get("signature", "")),
            str(payload.get("timestamp", "")),
            "spot.login",
            payload.get("req_param"),
            now_ms,
        )

    def _uid(self, session: SpotSession, channel: str, payload: dict[str, Any], now_ms: int) -> int:
        if payload.get("signature"):
            return self.server.auth.verify_ws_api(
                str(payload.get("api_key", "")),
                str(payload.get("signature", "")),
                str(payload.get("timestamp", "")),
                channel,
                payload.get("req_param"),
                now_ms,
            )
        if session.login_uid is None:
            raise AuthFailedError("INVALID_KEY", "not logged in")
        return session.login_uid

    def _place(
        self,
        session: SpotSession,
        uid: int,
        param: Any,
        now_ms: int,
        req_id: Any,
        payload: dict[str, Any],
        in_us: int,
    ) -> tuple[Any, RateVerdict | None] | None:
        """Place one order or a batch. ``None`` means: answer nothing (blackhole fault)."""
        rest = self.server.rest
        if isinstance(param, list):
            items: list[Any] = []
            for item in param:
                params = order_params(item)
                mode = params.pop("action_mode", "FULL").upper()
                try:
                    order, _ = rest.place(uid, params, now_ms, default_text=WS_TEXT)
                except SimReject as exc:
                    items.append(
                        {
                            "text": params.get("text", ""),
                            "succeeded": False,
                            "label": exc.label,
                            "message": exc.message,
                        }
                    )
                    continue
                row = render.order_json(order, mode=mode)
                row.update({"succeeded": True})
                items.append(row)
            self._ack(session, req_id, payload, in_us)
            return items, None
        params = order_params(param)
        mode = params.pop("action_mode", "FULL").upper()
        try:
            order, verdict = rest.place(uid, params, now_ms, default_text=WS_TEXT)
        except SimReject:
            # Received and processed, then refused: the ack still comes first.
            self._ack(session, req_id, payload, in_us)
            raise
        blackhole = self.server.faults.take_order_blackhole()
        if blackhole is not None:
            self.server.events.record(
                "fault", f"order_{blackhole}", text=order.text, order_id=order.id
            )
            if blackhole == "close":
                session.abort()
            return None
        self._ack(session, req_id, payload, in_us)
        return render.order_json(order, mode=mode), verdict

    def _other(self, uid: int, channel: str, param: Any, now_ms: int) -> Any:
        engine = self.server.engine
        p = param if isinstance(param, dict) else {}
        pair = str(p.get("currency_pair", ""))
        if channel == "spot.order_cancel":
            order, happened = engine.cancel_order(uid, pair, str(p.get("order_id", "")), now_ms)
            self.server.dispatch(happened)
            return render.order_json(order)
        if channel == "spot.order_status":
            return render.order_json(engine.get_order(uid, pair, str(p.get("order_id", ""))))
        if channel == "spot.order_cancel_cp":
            side = p.get("side")
            orders, happened = engine.cancel_all(uid, pair or None, side, now_ms)
            self.server.dispatch(happened)
            return [render.order_json(o) for o in orders]
        if channel == "spot.order_list":
            status = str(p.get("status", "open"))
            return [render.order_json(o) for o in engine.list_orders(uid, pair, status)]
        if channel == "spot.order_cancel_ids":
            out = []
            for item in param if isinstance(param, list) else []:
                ipair = str(item.get("currency_pair", ""))
                oid = str(item.get("id", ""))
                try:
                    order, happened = engine.cancel_order(uid, ipair, oid, now_ms)
                    self.server.dispatch(happened)
                    out.append(
                        {"currency_pair": ipair, "id": oid, "text": order.text, "succeeded": True}
                    )
                except SimReject as exc:
                    out.append(
                        {
                            "currency_pair": ipair,
                            "id": oid,
                            "succeeded": False,
                            "label": exc.label,
                            "message": exc.message,
                        }
                    )
            return out
        raise reject("INVALID_ARGUMENT", f"unknown channel {channel}")

    def _header(
        self, session: SpotSession, channel: str, in_us: int, status: int
    ) -> dict[str, Any]:
        return {
            "response_time": str(self.server.server_now_ms()),
            "status": str(status),
            "channel": channel,
            "event": "api",
            "client_id": f"127.0.0.1-{session.conn_hex}",
            "x_in_time": in_us,
            "x_out_time": time.time_ns() // 1000,
            "conn_id": session.conn_hex,
            "conn_trace_id": session.conn_hex,
            "trace_id": f"{session.conn_hex}{in_us:x}",
        }

    def _ack(self, session: SpotSession, req_id: Any, payload: dict[str, Any], in_us: int) -> None:
        result = {
            "req_id": req_id,
            "req_header": payload.get("req_header"),
            "req_param": payload.get("req_param"),
            "api_key": "",
            "timestamp": "",
            "signature": "",
        }
        msg = {
            "request_id": req_id,
            "ack": True,
            "header": self._header(session, "spot.order_place", in_us, 200),
            "data": {"result": result},
        }
        session.send("spot.order_place", "ack", msg)

    def _reply(
        self,
        session: SpotSession,
        channel: str,
        req_id: Any,
        in_us: int,
        status: int,
        *,
        result: Any = None,
        errs: tuple[str, str] | None = None,
        verdict: RateVerdict | None = None,
    ) -> None:
        header = self._header(session, channel, in_us, status)
        if verdict is not None:
            header["x_gate_ratelimit_requests_remain"] = verdict.remaining
            header["x_gate_ratelimit_limit"] = verdict.limit
            header["x_gat_ratelimit_reset_timestamp"] = verdict.reset_ms
        data: dict[str, Any] = (
            {"errs": {"label": errs[0], "message": errs[1]}} if errs else {"result": result}
        )
        msg = {"request_id": req_id, "ack": False, "header": header, "data": data}
        session.send(channel, "api", msg)


def _injected(server: SimServer, channel: str, now_ms: int) -> None:
    """Raise the injected answer for a request on ``channel``, if a fault is armed."""
    fault = server.faults.take_ws_api_fault(channel)
    if fault is None or fault.mode != "answer":
        return  # only status answers apply to the WS API
    server.events.record("fault", f"ws_api{fault.status}", detail=channel)
    if fault.status == 429 and fault.reset_after_ms is not None:
        raise RateLimitedReject(RateVerdict(False, 10, 0, now_ms + fault.reset_after_ms))
    raise reject(fault.label, fault.message, fault.status)


def _texts(param: Any) -> list[str]:
    items = param if isinstance(param, list) else [param]
    return [str(i.get("text", "")) for i in items if isinstance(i, dict)]


def _exptime(value: Any, now_ms: int) -> None:
    if value in (None, ""):
        return
    try:
        exp_ms = int(str(value))
    except ValueError:
        raise reject("INVALID_PARAM_VALUE", f"Invalid x-gate-exptime: {value}") from None
    if now_ms > exp_ms:
        raise reject("REQUEST_EXPIRED", "Request expired (x-gate-exptime)")
