"""The simulator's spot WebSocket (public, private, trading API) and announcement WebSocket."""

from __future__ import annotations

import json
import time
from decimal import Decimal
from typing import Any

from websockets.asyncio.client import ClientConnection

from sniper.core.signing import Credentials, Signer
from sniper.sim.events import Announced
from sniper.sim.server import SimServer
from tests.sim.conftest import SimRest, recv_json, recv_until, ws_connect


async def send(
    ws: ClientConnection, channel: str, event: str, payload: Any = None, **extra: Any
) -> None:
    msg: dict[str, Any] = {"time": int(time.time()), "channel": channel, "event": event}
    if payload is not None:
        msg["payload"] = payload
    msg.update(extra)
    await ws.send(json.dumps(msg))


def private_auth(signer: Signer, channel: str, event: str, time_s: int) -> dict[str, str]:
    return {
        "method": "api_key",
        "KEY": signer.key,
        "SIGN": signer.ws_channel(channel, event, time_s),
    }


async def subscribe_private(
    ws: ClientConnection, signer: Signer, channel: str, payload: Any
) -> dict[str, Any]:
    t = int(time.time())
    await ws.send(
        json.dumps(
            {
                "time": t,
                "channel": channel,
                "event": "subscribe",
                "payload": payload,
                "auth": private_auth(signer, channel, "subscribe", t),
            }
        )
    )
    return await recv_until(ws, channel, "subscribe")


async def login(ws: ClientConnection, signer: Signer) -> dict[str, Any]:
    ts = str(int(time.time()))
    await ws.send(
        json.dumps(
            {
                "time": int(ts),
                "channel": "spot.login",
                "event": "api",
                "payload": {
                    "api_key": signer.key,
                    "signature": signer.ws_api("spot.login", "", ts),
                    "timestamp": ts,
                    "req_id": "login-1",
                },
            }
        )
    )
    return await recv_until(ws, "spot.login")


async def api(
    ws: ClientConnection,
    channel: str,
    req_id: str,
    param: Any,
    header: dict[str, str] | None = None,
) -> None:
    payload: dict[str, Any] = {"req_id": req_id, "req_param": param}
    if header:
        payload["req_header"] = header
    await ws.send(
        json.dumps(
            {"time": int(time.time()), "channel": channel, "event": "api", "payload": payload}
        )
    )


async def test_ping_pong(sim: SimServer) -> None:
    async with await ws_connect(sim) as ws:
        await send(ws, "spot.ping", "")
        msg = await recv_json(ws)
        assert msg["channel"] == "spot.pong"
        assert msg["error"] is None


async def test_subscribe_ack_and_unknown_pair(sim: SimServer) -> None:
    async with await ws_connect(sim) as ws:
        await send(ws, "spot.trades", "subscribe", ["BTC_USDT"], id=7)
        ack = await recv_until(ws, "spot.trades", "subscribe")
        assert ack["result"] == {"status": "success"}
        assert ack["id"] == 7
        await send(ws, "spot.trades", "subscribe", ["BTC_USDT", "GIBBERISH_USD"])
        err = await recv_until(ws, "spot.trades", "subscribe")
        assert err["result"] is None
        assert err["error"]["code"] == 2
        assert "unknown currency pair GIBBERISH_USD" in err["error"]["message"]
        await send(ws, "spot.nonsense", "subscribe", ["BTC_USDT"])
        assert (await recv_until(ws, "spot.nonsense"))["error"]["code"] == 2
        await ws.send("not json")
        assert (await recv_json(ws))["error"]["code"] == 1


async def test_order_book_update_ids_follow_rest_snapshot(sim: SimServer, rest: SimRest) -> None:
    async with await ws_connect(sim) as ws:
        await send(ws, "spot.order_book_update", "subscribe", ["BTC_USDT", "100ms"])
        await recv_until(ws, "spot.order_book_update", "subscribe")
        full = (await recv_until(ws, "spot.order_book_update", "update"))["result"]
        assert full["full"] is True
        snapshot = (
            await rest.get(
                "/spot/order_book", {"currency_pair": "BTC_USDT", "limit": "100", "with_id": "true"}
            )
        ).json()
        # The REST snapshot is never older than the full push it follows.
        assert snapshot["id"] >= full["u"]
        await rest.order(
            currency_pair="BTC_USDT", side="buy", amount="0.002", price="60000", text="t-bookmove"
        )
        last_u = full["u"]
        saw_our_level = False
        for _ in range(50):
            upd = (await recv_until(ws, "spot.order_book_update", "update"))["result"]
            assert upd["U"] == last_u + 1, (upd["U"], last_u)
            last_u = upd["u"]
            if ["60000.0", "0.002000"] in upd["b"] or any(
                Decimal(p) == 60000 and Decimal(a) == Decimal("0.002") for p, a in upd["b"]
            ):
                saw_our_level = True
                break
        assert saw_our_level


async def test_book_ticker_and_trades_push(sim: SimServer, rest: SimRest) -> None:
    async with await ws_connect(sim) as ws:
        await send(ws, "spot.book_ticker", "subscribe", ["ETH_USDT"])
        await send(ws, "spot.trades", "subscribe", ["ETH_USDT"])
        first = (await recv_until(ws, "spot.book_ticker", "update"))["result"]
        assert first["s"] == "ETH_USDT"
        assert Decimal(first["a"]) > Decimal(first["b"])
        await rest.order(
            currency_pair="ETH_USDT",
            side="buy",
            amount="0.01",
            price=first["a"],
            time_in_force="ioc",
            text="t-tick",
        )
        trade = (await recv_until(ws, "spot.trades", "update"))["result"]
        assert trade["currency_pair"] == "ETH_USDT"
        assert trade["side"] == "buy"
        assert isinstance(trade["id"], int)


async def test_tickers_and_order_book_snapshot_on_subscribe(sim: SimServer) -> None:
    async with await ws_connect(sim) as ws:
        await send(ws, "spot.tickers", "subscribe", ["BTC_USDT"])
        ticker = (await recv_until(ws, "spot.tickers", "update"))["result"]
        assert ticker["currency_pair"] == "BTC_USDT"
        await send(ws, "spot.order_book", "subscribe", ["BTC_USDT", "5", "100ms"])
        book = (await recv_until(ws, "spot.order_book", "update"))["result"]
        assert len(book["asks"]) == 5
        assert book["lastUpdateId"] > 0
        await send(ws, "spot.order_book", "subscribe", ["BTC_USDT", "7", "100ms"])
        assert (await recv_until(ws, "spot.order_book", "subscribe"))["error"]["code"] == 2


async def test_private_channels_need_valid_auth(sim: SimServer) -> None:
    bad = Signer(Credentials(sim.credentials.key, "wrong"))
    async with await ws_connect(sim) as ws:
        ack = await subscribe_private(ws, bad, "spot.orders", ["!all"])
        assert ack["error"]["code"] == 4
        await send(ws, "spot.orders", "subscribe", ["!all"])
        assert (await recv_until(ws, "spot.orders", "subscribe"))["error"]["code"] == 4


async def test_private_orders_usertrades_balances(sim: SimServer, rest: SimRest) -> None:
    signer = Signer(sim.credentials)
    async with await ws_connect(sim) as ws:
        for channel, payload in (
            ("spot.orders", ["!all"]),
            ("spot.usertrades", ["ETH_USDT"]),
            ("spot.balances", None),
        ):
            ack = await subscribe_private(ws, signer, channel, payload)
            assert ack["result"] == {"status": "success"}, ack
        r = await rest.order(
            currency_pair="ETH_USDT",
            side="buy",
            amount="0.01",
            price="3600",
            time_in_force="ioc",
            text="t-priv",
        )
        order_id = r.json()["id"]
        events: list[str] = []
        got_trade = got_balance = False
        for _ in range(200):
            msg = await recv_json(ws)
            if msg["event"] != "update":
                continue
            if msg["channel"] == "spot.orders":
                (row,) = msg["result"]
                assert row["id"] == order_id
                assert isinstance(row["create_time_ms"], str)
                events.append(row["event"])
            elif msg["channel"] == "spot.usertrades":
                assert msg["result"][0]["order_id"] == order_id
                assert msg["result"][0]["text"] == "t-priv"
                got_trade = True
            elif msg["channel"] == "spot.balances":
                assert msg["result"][0]["user"] == str(sim.uid)
                got_balance = True
            if events and events[-1] == "finish" and got_trade and got_balance:
                break
        assert events[0] == "put"
        assert events[-1] == "finish"
        assert got_trade
        assert got_balance


async def test_ws_api_login_place_status_cancel(sim: SimServer) -> None:
    signer = Signer(sim.credentials)
    async with await ws_connect(sim) as ws:
        reply = await login(ws, signer)
        assert reply["header"]["status"] == "200"
        assert reply["data"]["result"]["uid"] == str(sim.uid)
        order = {
            "currency_pair": "BTC_USDT",
            "side": "buy",
            "amount": "0.001",
            "price": "60000",
            "text": "t-wsapi1",
            "time_in_force": "gtc",
        }
        await api(ws, "spot.order_place", "r1", order)
        ack = await recv_json(ws)
        assert ack["request_id"] == "r1"
        assert ack["ack"] is True
        assert ack["data"]["result"]["req_param"] == order
        result = await recv_json(ws)
        assert result["request_id"] == "r1"
        assert not result.get("ack")
        assert result["header"]["status"] == "200"
        assert result["header"]["x_gate_ratelimit_limit"] == 10
        placed = result["data"]["result"]
        assert placed["text"] == "t-wsapi1"
        assert placed["status"] == "open"
        await api(
            ws, "spot.order_status", "r2", {"order_id": placed["id"], "currency_pair": "BTC_USDT"}
        )
        status = await recv_json(ws)
        assert status["data"]["result"]["id"] == placed["id"]
        await api(
            ws, "spot.order_cancel", "r3", {"order_id": "t-wsapi1", "currency_pair": "BTC_USDT"}
        )
        cancelled = await recv_json(ws)
        assert cancelled["data"]["result"]["status"] == "cancelled"
        await api(ws, "spot.order_place", "r4", {**order, "price": "60000.123", "text": "t-bad"})
        await recv_json(ws)  # ack
        err = await recv_json(ws)
        assert err["header"]["status"] == "400"
        assert err["data"]["errs"]["label"] == "INVALID_PRECISION"
    arrivals = sim.events.find("order_in", text="t-wsapi1")
    assert len(arrivals) == 1


async def test_ws_api_default_text_and_ack_mode(sim: SimServer) -> None:
    async with await ws_connect(sim) as ws:
        await login(ws, Signer(sim.credentials))
        await api(
            ws,
            "spot.order_place",
            "m1",
            {
                "currency_pair": "BTC_USDT",
                "side": "buy",
                "amount": "0.001",
                "price": "60000",
                "action_mode": "ACK",
            },
        )
        await recv_json(ws)
        result = (await recv_json(ws))["data"]["result"]
        assert result["text"] == "apiv4-ws"
        assert set(result) == {"id", "text", "amend_text"}


async def test_ws_api_requires_login(sim: SimServer) -> None:
    async with await ws_connect(sim) as ws:
        await api(ws, "spot.order_status", "x1", {"order_id": "1", "currency_pair": "BTC_USDT"})
        reply = await recv_json(ws)
        assert reply["header"]["status"] == "401"
        assert reply["data"]["errs"]["label"] == "INVALID_KEY"
        bad = Signer(Credentials(sim.credentials.key, "wrong"))
        reply = await login(ws, bad)
        assert reply["data"]["errs"]["label"] == "INVALID_SIGNATURE"


async def test_ws_api_sdk_style_per_request_signature(sim: SimServer) -> None:
    # The official WS SDK signs every api request over json.dumps(req_param).
    signer = Signer(sim.credentials)
    param = {"order_id": "1", "currency_pair": "BTC_USDT"}
    ts = str(int(time.time()))
    async with await ws_connect(sim) as ws:
        await ws.send(
            json.dumps(
                {
                    "time": int(ts),
                    "channel": "spot.order_status",
                    "event": "api",
                    "payload": {
                        "req_id": "s1",
                        "req_param": param,
                        "api_key": signer.key,
                        "timestamp": ts,
                        "signature": signer.ws_api("spot.order_status", json.dumps(param), ts),
                    },
                }
            )
        )
        reply = await recv_json(ws)
        assert reply["data"]["errs"]["label"] == "ORDER_NOT_FOUND"
        assert reply["header"]["status"] == "404"


async def test_announcement_push(manual_sim: SimServer) -> None:
    sim = manual_sim
    async with await ws_connect(sim, "ann") as ws:
        await send(ws, "announcement.ping", "")
        assert (await recv_json(ws))["channel"] == "announcement.pong"
        await send(ws, "announcement.summary_listing", "subscribe", ["en"])
        ack = await recv_json(ws)
        assert ack["result"] == {"status": "success"}
        announced = []
        for _ in range(100):
            announced = [e for e in await sim.advance(50) if isinstance(e, Announced)]
            if announced:
                break
        assert announced
        push = await recv_json(ws)
        assert push["channel"] == "announcement.summary_listing"
        assert push["event"] == "update"
        result = push["result"]
        assert result["lang"] == "en"
        assert result["title"] == announced[0].title
        assert "NEWCOIN" in result["title"] + result["brief"]
        assert result["published_at"] == announced[0].published_ms // 1000
        await send(ws, "announcement.summary_listing", "subscribe", ["xx"])
        assert (await recv_json(ws))["error"]["code"] == 2


async def test_listing_opens_on_the_book_stream_and_an_order_at_the_open_fills(
    manual_sim: SimServer,
) -> None:
    sim = manual_sim
    for _ in range(100):
        await sim.advance(50)
        if any(p.pair == "NEWCOIN_USDT" for p in sim.engine.visible_pairs()):
            break
    assert not sim.engine.get_pair("NEWCOIN_USDT").can_buy
    async with await ws_connect(sim) as ws:
        await login(ws, Signer(sim.credentials))
        await send(ws, "spot.order_book_update", "subscribe", ["NEWCOIN_USDT", "20ms"])
        assert (await recv_until(ws, "spot.order_book_update", "subscribe"))["error"] is None
        full = (await recv_until(ws, "spot.order_book_update", "update"))["result"]
        assert full["full"] is True
        assert full["a"] == []
        early = {
            "currency_pair": "NEWCOIN_USDT",
            "side": "buy",
            "amount": "100",
            "price": "0.06",
            "time_in_force": "ioc",
            "text": "t-early",
        }
        await api(ws, "spot.order_place", "early", early)
        refused = await recv_until(ws, "spot.order_place", "api")
        assert refused["data"]["errs"]["label"] == "INVALID_CURRENCY_PAIR"
        for _ in range(200):
            await sim.advance(20)
            if sim.engine.order_book("NEWCOIN_USDT", 1)[1]:
                break
        last_u = full["u"]
        asks: list[Decimal] = []
        while not asks:
            upd = (await recv_until(ws, "spot.order_book_update", "update"))["result"]
            assert upd["U"] == last_u + 1
            last_u = upd["u"]
            asks = [Decimal(p) for p, a in upd["a"] if Decimal(a) > 0]
        price = (min(asks) * Decimal("1.1")).quantize(Decimal("0.000001"))
        await api(ws, "spot.order_place", "fire", {**early, "price": str(price), "text": "t-fire"})
        result = (await recv_until(ws, "spot.order_place", "api"))["data"]["result"]
        assert Decimal(result["filled_amount"]) == Decimal("100")
        assert result["fee_currency"] == "NEWCOIN"
    first_ask_frame = next(
        e
        for e in sim.events.find("ws_out", "spot.order_book_update")
        if e.detail and e.detail.startswith(f"NEWCOIN_USDT:{full['u'] + 1}-")
    )
    (fire,) = sim.events.find("order_in", text="t-fire")
    assert first_ask_frame.t_ns < fire.t_ns
