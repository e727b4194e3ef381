"""REST routes of the simulator under ``/api/v4`` (gate-v4.md §1-4).

Every route goes through :meth:`RestApi._serve`, which does what Gate's gateway does around a
handler: event log, injected faults, rate limits (with Gate's ``X-Gate-RateLimit-*`` headers),
signature check, ``X-In-Time``/``X-Out-Time`` (µs), and errors as ``{"label", "message"}``.

Choices where Gate's behaviour is unverified (documented so tests and users know):

- ``REQUEST_EXPIRED`` (stale ``Timestamp``) answers 401; a request received after its
  ``x-gate-exptime`` answers 400 ``REQUEST_EXPIRED`` "Request expired (x-gate-exptime)".
- ``currency_pair`` is required to get or cancel one order.
- Rate limits enforced: order placement 10/s per user and pair (REST and WS API share it),
  cancels 200/s per user, every other endpoint 200 per 10 s (per IP for public ones, per user
  for private ones). ``X-Gate-RateLimit-Reset-Timestamp`` is in milliseconds.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from aiohttp import web

from sniper.sim import render
from sniper.sim.auth import AuthFailedError
from sniper.sim.entities import SimOrder, SimReject
from sniper.sim.gateway import (
    JSON_HEADERS,
    Call,
    Handler,
    RateLimitedReject,
    RateLimiter,
    RateVerdict,
    error_response,
    json_response,
    order_params,
    reject,
    set_rate_headers,
)

if TYPE_CHECKING:
    from sniper.sim.server import SimServer

_log = logging.getLogger(__name__)

# Re-exported: the simulator's other servers import these from here.
__all__ = [
    "API_PREFIX",
    "JSON_HEADERS",
    "Call",
    "RateLimitedReject",
    "RateLimiter",
    "RateVerdict",
    "RestApi",
    "error_response",
    "json_response",
    "order_params",
    "reject",
]

API_PREFIX = "/api/v4"


def _limit(value: str | None, default: int, maximum: int) -> int:
    if value is None:
        return default
    try:
        n = int(value)
    except ValueError:
        raise reject(
            "INVALID_PARAM_VALUE", f"Invalid parameter `limit` with value: {value}"
        ) from None
    if n < 1 or n > maximum:
        raise reject("INVALID_PARAM_VALUE", f"Invalid parameter `limit` with value: {value}")
    return n


class RestApi:
    """The ``/api/v4`` routes, bound to one :class:`~sniper.sim.server.SimServer`."""

    def __init__(self, server: SimServer) -> None:
        self.s = server
        # (method, path template relative to /api/v4, handler, signed, rate scope)
        self._table: list[tuple[str, str, Handler, bool, str]] = [
            ("GET", "/spot/time", self.time, False, "public"),
            ("GET", "/spot/currencies", self.currencies, False, "public"),
            ("GET", "/spot/currency_pairs", self.currency_pairs, False, "public"),
            ("GET", "/spot/currency_pairs/{pair}", self.currency_pair, False, "public"),
            ("GET", "/margin/currency_pairs", self.margin_pairs, False, "public"),
            ("GET", "/spot/tickers", self.tickers, False, "public"),
            ("GET", "/spot/order_book", self.order_book, False, "public"),
            ("GET", "/spot/trades", self.trades, False, "public"),
            ("GET", "/spot/accounts", self.accounts, True, "private"),
            ("POST", "/spot/orders", self.create_order, True, "order"),
            ("GET", "/spot/orders", self.list_orders, True, "private"),
            ("DELETE", "/spot/orders", self.cancel_all, True, "cancel"),
            ("GET", "/spot/orders/{order_id}", self.get_order, True, "private"),
            ("DELETE", "/spot/orders/{order_id}", self.cancel_order, True, "cancel"),
            ("GET", "/spot/open_orders", self.open_orders, True, "private"),
            ("POST", "/spot/batch_orders", self.batch_orders, True, "order"),
            ("POST", "/spot/cancel_batch_orders", self.cancel_batch, True, "cancel"),
            ("GET", "/spot/my_trades", self.my_trades, True, "private"),
            ("GET", "/wallet/fee", self.wallet_fee, True, "private"),
            ("GET", "/spot/fee", self.wallet_fee, True, "private"),
            ("GET", "/account/detail", self.account_detail, True, "private"),
        ]

    def routes(self) -> list[web.RouteDef]:
        """aiohttp route definitions, ending with a Gate-shaped 404 for anything else."""
        defs = [
            web.route(method, API_PREFIX + path, self._bind(path, handler, signed, scope))
            for method, path, handler, signed, scope in self._table
        ]
        defs.append(web.route("*", API_PREFIX + "/{tail:.*}", self._not_found))
        return defs

    def _bind(
        self, template: str, handler: Handler, signed: bool, scope: str
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def endpoint(request: web.Request) -> web.StreamResponse:
            return await self._serve(request, template, handler, signed, scope)

        return endpoint

    async def _not_found(self, request: web.Request) -> web.StreamResponse:
        self.s.events.record("http_in", request.path, conn_id=_peer_port(request))
        resp = error_response("NOT_FOUND", f"Not found: {request.method} {request.path}", 404)
        self.s.events.record("http_out", request.path, status=404)
        return resp

    async def _serve(
        self,
        request: web.Request,
        template: str,
        handler: Handler,
        signed: bool,
        scope: str,
    ) -> web.StreamResponse:
        t_in_ns = time.monotonic_ns()
        in_us = time.time_ns() // 1000
        events = self.s.events
        path = request.path
        conn = _peer_port(request)
        events.record("http_in", path, t_ns=t_in_ns, conn_id=conn, event=request.method)
        self.s.catch_up()
        now_ms = self.s.server_now_ms()
        verdict: RateVerdict | None = None
        delay_ms = 0
        try:
            fault = self.s.faults.take_http_fault(path.removeprefix(API_PREFIX))
            if fault is not None and fault.mode == "reset":
                events.record("fault", "http_reset", conn_id=conn, detail=path)
                if request.transport is not None:
                    request.transport.close()
                raise web.HTTPServiceUnavailable  # never delivered: the socket is gone
            if fault is not None and fault.mode == "hostile":
                events.record("fault", "http_hostile", conn_id=conn, detail=path)
                hostile = web.Response(
                    body=fault.body, status=fault.status, content_type="application/json"
                )
                events.record("http_out", path, conn_id=conn, status=hostile.status)
                return hostile
            if fault is not None and fault.mode == "delay":
                delay_ms = fault.delay_ms
            elif fault is not None:
                events.record("fault", f"http{fault.status}", conn_id=conn, detail=path)
                if fault.reset_after_ms is not None:
                    verdict = RateVerdict(False, 10, 0, now_ms + fault.reset_after_ms)
                raise reject(fault.label, fault.message, fault.status)
            body = await request.read() if request.body_exists else b""
            t_body_ns = time.monotonic_ns()
            uid = 0
            if signed:
                raw_path, _, raw_query = request.raw_path.partition("?")
                uid = self.s.auth.verify_rest(
                    request.method, raw_path, raw_query, body, request.headers, now_ms
                )
            if scope in ("public", "private"):
                who = (request.remote or "?") if scope == "public" else str(uid)
                verdict = self.s.limiter.check((scope, who, template), 200, 10_000, now_ms)
            elif scope == "cancel":
                verdict = self.s.limiter.check(("cancel", str(uid), ""), 200, 1000, now_ms)
            if verdict is not None and not verdict.allowed:
                raise RateLimitedReject(verdict)
            response = await handler(Call(request, body, uid, now_ms, t_in_ns, t_body_ns))
        except SimReject as exc:
            response = error_response(exc.label, exc.message, exc.status)
            if isinstance(exc, RateLimitedReject):
                verdict = exc.verdict
        except AuthFailedError as exc:
            response = error_response(exc.label, exc.message, exc.status)
        except web.HTTPException:
            raise
        except Exception as exc:  # noqa: BLE001 - a simulator bug must still answer like Gate
            _log.exception("simulator error serving %s %s", request.method, path)
            events.record("error", path, conn_id=conn, detail=repr(exc))
            response = error_response("INTERNAL", f"simulator error: {exc!r}", 500)
        limited = response.headers.get("X-Gate-RateLimit-Limit")
        if verdict is not None and limited is None:
            set_rate_headers(response, verdict)
        if delay_ms:
            # processed already: the answer is late, not the work (a slow gateway)
            events.record("fault", "http_delay", conn_id=conn, detail=path)
            await asyncio.sleep(delay_ms / 1000)
        response.headers["X-In-Time"] = str(in_us)
        response.headers["X-Out-Time"] = str(time.time_ns() // 1000)
        events.record("http_out", path, conn_id=conn, status=response.status)
        return response

    # -- public -------------------------------------------------------------------------------

    async def time(self, call: Call) -> web.StreamResponse:
        return json_response({"server_time": call.now_ms})

    async def currencies(self, _call: Call) -> web.StreamResponse:
        seen: dict[str, None] = {}
        for pair in self.s.engine.visible_pairs():
            seen.setdefault(pair.base)
            seen.setdefault(pair.quote)
        return json_response([_currency_json(c) for c in seen])

    async def currency_pairs(self, _call: Call) -> web.StreamResponse:
        return json_response([render.pair_json(p) for p in self.s.engine.visible_pairs()])

    async def currency_pair(self, call: Call) -> web.StreamResponse:
        pair = self.s.engine.get_pair(call.request.match_info["pair"])
        return json_response(render.pair_json(pair))

    async def margin_pairs(self, _call: Call) -> web.StreamResponse:
        # The simulator has no margin trading; ccxt's load_markets asks anyway.
        return json_response([])

    async def tickers(self, call: Call) -> web.StreamResponse:
        pair = call.q("currency_pair")
        rows = [self.s.engine.ticker(pair)] if pair else list(self.s.engine.tickers())
        return json_response([render.ticker_json(r) for r in rows])

    async def order_book(self, call: Call) -> web.StreamResponse:
        pair = call.need("currency_pair")
        limit = _limit(call.q("limit"), 10, 1000)
        self.s.engine.get_pair(pair)
        update_id, asks, bids = self.s.engine.order_book(pair, limit)
        out: dict[str, Any] = {}
        if _truthy(call.q("with_id")):
            out["id"] = update_id
        out["current"] = call.now_ms
        out["update"] = call.now_ms
        out["asks"] = render.levels_json(asks)
        out["bids"] = render.levels_json(bids)
        return json_response(out)

    async def trades(self, call: Call) -> web.StreamResponse:
        pair = call.need("currency_pair")
        limit = _limit(call.q("limit"), 100, 1000)
        self.s.engine.get_pair(pair)
        trades = self.s.engine.recent_trades(pair, limit)
        return json_response([render.public_trade_json(t) for t in trades])

    # -- private ------------------------------------------------------------------------------

    async def accounts(self, call: Call) -> web.StreamResponse:
        only = call.q("currency")
        rows = [
            render.account_json(cur, avail, locked, 0)
            for cur, (avail, locked) in sorted(self.s.engine.balances(call.uid).items())
            if only is None or cur == only
        ]
        return json_response(rows)

    async def create_order(self, call: Call) -> web.StreamResponse:
        item = call.json()
        params = order_params(item)
        self.s.events.record(
            "order_in", call.request.path, t_ns=call.t_body_ns, text=params.get("text")
        )
        _check_exptime(call.request.headers.get("x-gate-exptime"), call.now_ms)
        mode = params.pop("action_mode", "FULL").upper()
        order, verdict = self.place(call.uid, params, call.now_ms)
        blackhole = self.s.faults.take_order_blackhole()
        if blackhole is not None:
            await self._blackhole(call.request, blackhole, order)
        response = json_response(render.order_json(order, mode=mode), 201)
        set_rate_headers(response, verdict)
        return response

    def place(
        self, uid: int, params: dict[str, str], now_ms: int, *, default_text: str = "apiv4"
    ) -> tuple[SimOrder, RateVerdict]:
        """Rate-check, place one order in the engine and broadcast what it caused."""
        pair = params.get("currency_pair", "")
        verdict = self.s.limiter.check(("order", str(uid), pair), 10, 1000, now_ms)
        if not verdict.allowed:
            raise RateLimitedReject(verdict, "Request Rate limit Exceeded (211)")
        order, happened = self.s.engine.place_order(uid, params, now_ms, default_text=default_text)
        self.s.events.record("order_accepted", pair, text=order.text, order_id=order.id)
        self.s.dispatch(happened)
        for hook in self.s.faults.take_order_hooks(order.side):
            self.s.events.record("fault", "after_order", text=order.text, order_id=order.id)
            hook(order)
        return order, verdict

    async def _blackhole(self, request: web.Request, mode: str, order: SimOrder) -> None:
        self.s.events.record("fault", f"order_{mode}", text=order.text, order_id=order.id)
        if mode == "close" and request.transport is not None:
            request.transport.close()
            raise web.HTTPServiceUnavailable  # never delivered: the socket is gone
        await self.s.wait_closed()  # hang until the server stops
        raise web.HTTPServiceUnavailable

    async def list_orders(self, call: Call) -> web.StreamResponse:
        pair = call.need("currency_pair")
        status = call.need("status")
        if status not in ("open", "finished"):
            raise reject("INVALID_PARAM_VALUE", f"Invalid parameter `status` with value: {status}")
        limit = _limit(call.q("limit"), 100, 1000)
        page = int(call.q("page") or 1)
        side = call.q("side")
        orders = [
            o for o in self.s.engine.list_orders(call.uid, pair, status) if side in (None, o.side)
        ]
        chunk = orders[(page - 1) * limit : page * limit]
        return json_response([render.order_json(o) for o in chunk])

    async def open_orders(self, call: Call) -> web.StreamResponse:
        out = []
        for pair in self.s.engine.visible_pairs():
            orders = self.s.engine.list_orders(call.uid, pair.pair, "open")
            if orders:
                out.append(
                    {
                        "currency_pair": pair.pair,
                        "total": len(orders),
                        "orders": [render.order_json(o) for o in orders],
                    }
                )
        return json_response(out)

    async def get_order(self, call: Call) -> web.StreamResponse:
        pair = call.need("currency_pair")
        order = self.s.engine.get_order(call.uid, pair, call.request.match_info["order_id"])
        return json_response(render.order_json(order))

    async def cancel_order(self, call: Call) -> web.StreamResponse:
        pair = call.need("currency_pair")
        _check_exptime(call.request.headers.get("x-gate-exptime"), call.now_ms)
        mode = (call.q("action_mode") or "FULL").upper()
        order, happened = self.s.engine.cancel_order(
            call.uid, pair, call.request.match_info["order_id"], call.now_ms
        )
        self.s.dispatch(happened)
        return json_response(render.order_json(order, mode=mode))

    async def cancel_all(self, call: Call) -> web.StreamResponse:
        _check_exptime(call.request.headers.get("x-gate-exptime"), call.now_ms)
        side = call.q("side")
        if side not in (None, "buy", "sell"):
            raise reject("INVALID_PARAM_VALUE", f"Invalid parameter `side` with value: {side}")
        orders, happened = self.s.engine.cancel_all(
            call.uid, call.q("currency_pair"), side, call.now_ms
        )
        self.s.dispatch(happened)
        out = []
        for order in orders:
            row = render.order_json(order)
            row.update({"succeeded": True, "label": "", "message": ""})
            out.append(row)
        return json_response(out)

    async def batch_orders(self, call: Call) -> web.StreamResponse:
        items = call.json()
        if not isinstance(items, list):
            raise reject("INVALID_REQUEST_BODY", "batch body must be a JSON array")
        t_ns = call.t_body_ns
        per_pair: dict[str, int] = {}
        for item in items:
            pair = str(item.get("currency_pair", "")) if isinstance(item, dict) else ""
            per_pair[pair] = per_pair.get(pair, 0) + 1
        if len(per_pair) > 4:
            raise reject("TOO_MANY_CURRENCY_PAIRS", "Too many currency pairs in one batch")
        if any(n > 10 for n in per_pair.values()):
            raise reject("TOO_MANY_ORDERS", "Too many orders for one currency pair")
        out = []
        for item in items:
            params = order_params(item)
            params.pop("action_mode", None)
            text = params.get("text", "")
            self.s.events.record("order_in", call.request.path, t_ns=t_ns, text=text)
            try:
                if not text:
                    raise reject("INVALID_PARAM_VALUE", "text is required in batch orders")
                order, _ = self.place(call.uid, params, call.now_ms)
            except SimReject as exc:
                out.append(_batch_failure(params, exc))
                continue
            row = render.order_json(order)
            row.update({"order_id": order.id, "succeeded": True, "label": "", "message": ""})
            out.append(row)
        return json_response(out)

    async def cancel_batch(self, call: Call) -> web.StreamResponse:
        items = call.json()
        if not isinstance(items, list) or len(items) > 20:
            raise reject("INVALID_REQUEST_BODY", "body must be an array of at most 20 items")
        out = []
        for item in items:
            pair = str(item.get("currency_pair", "")) if isinstance(item, dict) else ""
            oid = str(item.get("id", "")) if isinstance(item, dict) else ""
            row: dict[str, Any] = {"currency_pair": pair, "id": oid, "account": "spot"}
            try:
                order, happened = self.s.engine.cancel_order(call.uid, pair, oid, call.now_ms)
                self.s.dispatch(happened)
                row.update({"text": order.text, "succeeded": True, "label": "", "message": ""})
            except SimReject as exc:
                row.update(
                    {"text": "", "succeeded": False, "label": exc.label, "message": exc.message}
                )
            out.append(row)
        return json_response(out)

    async def my_trades(self, call: Call) -> web.StreamResponse:
        order_id = call.q("order_id")
        pair = call.q("currency_pair")
        if order_id and not pair:
            raise reject("MISSING_REQUIRED_PARAM", "Missing required parameter: currency_pair")
        limit = _limit(call.q("limit"), 100, 1000)
        trades = self.s.engine.my_trades(call.uid, pair, order_id, limit)
        return json_response([render.my_trade_json(t) for t in trades])

    async def wallet_fee(self, call: Call) -> web.StreamResponse:
        taker, maker = self.s.fee_rates(call.uid)
        return json_response(
            {
                "user_id": call.uid,
                "taker_fee": render.dec(taker),
                "maker_fee": render.dec(maker),
                "gt_discount": False,
                "gt_taker_fee": "0",
                "gt_maker_fee": "0",
                "loan_fee": "0.18",
                "point_type": "1",
                "futures_taker_fee": "0.0005",
                "futures_maker_fee": "0",
                "delivery_taker_fee": "0.0005",
                "delivery_maker_fee": "0",
                "debit_fee": 3,
            }
        )

    async def account_detail(self, call: Call) -> web.StreamResponse:
        return json_response(
            {
                "user_id": call.uid,
                "ip_whitelist": [],
                "currency_pairs": [],
                "key": {"mode": 1},
                "tier": 0,
                "tier_expire_time": "0001-01-01T00:00:00Z",
                "copy_trading_role": 0,
            }
        )


def _truthy(value: str | None) -> bool:
    """A boolean query value as Go's ``strconv.ParseBool`` reads it (the SDK sends ``True``)."""
    return value in ("1", "t", "T", "true", "True", "TRUE")


def _check_exptime(value: str | None, now_ms: int) -> None:
    if not value:
        return
    try:
        exp_ms = int(Decimal(value))
    except ArithmeticError:
        raise reject("INVALID_PARAM_VALUE", f"Invalid x-gate-exptime: {value}") from None
    if now_ms > exp_ms:
        raise reject("REQUEST_EXPIRED", "Request expired (x-gate-exptime)")


def _batch_failure(params: dict[str, str], exc: SimReject) -> dict[str, Any]:
    return {
        "order_id": "",
        "id": "",
        "text": params.get("text", ""),
        "currency_pair": params.get("currency_pair", ""),
        "amend_text": "-",
        "succeeded": False,
        "label": exc.label,
        "message": exc.message,
    }


def _currency_json(currency: str) -> dict[str, Any]:
    return {
        "currency": currency,
        "name": currency,
        "delisted": False,
        "withdraw_disabled": False,
        "withdraw_delayed": False,
        "deposit_disabled": False,
        "trade_disabled": False,
        "fixed_rate": "",
        "chain": currency,
        "chains": [
            {
                "name": currency,
                "addr": "",
                "withdraw_disabled": False,
                "withdraw_delayed": False,
                "deposit_disabled": False,
            }
        ],
    }


def _peer_port(request: web.Request) -> int | None:
    transport = request.transport
    if transport is None:
        return None
    peer = transport.get_extra_info("peername")
    if isinstance(peer, tuple) and len(peer) >= 2:
        return int(peer[1])
    return None
