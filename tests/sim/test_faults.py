"""Fault injection: HTTP 429/5xx, WS drops and delays, book gaps, lost answers, clock skew."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from sniper.core.signing import Signer
from sniper.errors import ConfigError
from sniper.sim.eventlog import EventLog
from sniper.sim.faults import Faults
from sniper.sim.server import SimServer
from tests.sim.conftest import SimRest, recv_json, recv_until, ws_connect
from tests.sim.test_server_ws import api, login, send

BODY = {"currency_pair": "BTC_USDT", "side": "buy", "amount": "0.001", "price": "60000"}


async def test_http_429_for_next_n_on_a_path_only(rest: SimRest) -> None:
    rest.server.faults.fail_http(2, 429, path_prefix="/spot/order_book")
    other = await rest.get("/spot/time")
    assert other.status_code == 200
    for _ in range(2):
        r = await rest.get("/spot/order_book", {"currency_pair": "BTC_USDT"})
        assert r.status_code == 429
        assert r.json()["label"] == "TOO_MANY_REQUESTS"
    r = await rest.get("/spot/order_book", {"currency_pair": "BTC_USDT"})
    assert r.status_code == 200
    assert rest.server.faults.statistics()["http429"] == 2


async def test_http_5xx_does_not_reach_the_engine(rest: SimRest) -> None:
    rest.server.faults.fail_http(1, 503)
    r = await rest.order(**BODY, text="t-503")
    assert r.status_code == 503
    assert r.json()["label"] == "TOO_BUSY"
    assert rest.server.engine.list_orders(rest.server.uid, "BTC_USDT", "open") == []


async def test_drop_all_ws_connections(sim: SimServer) -> None:
    async with await ws_connect(sim) as ws:
        await send(ws, "spot.ping", "")
        await recv_json(ws)
        sim.faults.drop_ws_connections()
        with pytest.raises(ConnectionClosed):
            await recv_json(ws)
    assert sim.events.find("fault", "drop_ws")


async def test_drop_next_frames(sim: SimServer) -> None:
    async with await ws_connect(sim) as ws:
        sim.faults.drop_frames(1, channel="spot.pong")
        await send(ws, "spot.ping", "", id=1)
        await send(ws, "spot.ping", "", id=2)
        await send(ws, "spot.trades", "subscribe", ["BTC_USDT"], id=3)
        first = await recv_json(ws)
        assert first["channel"] == "spot.pong"
        second = await recv_json(ws)
        assert second["channel"] == "spot.trades"  # exactly one pong was dropped
        assert len(sim.events.find("ws_drop", "spot.pong")) == 1


async def test_delay_frames(sim: SimServer) -> None:
    async with await ws_connect(sim) as ws:
        sim.faults.delay_frames(150)
        t0 = time.monotonic()
        await send(ws, "spot.ping", "")
        await recv_json(ws)
        assert time.monotonic() - t0 >= 0.14
        sim.faults.delay_frames(0)


async def test_skip_book_update_makes_a_gap(sim: SimServer, rest: SimRest) -> None:
    async with await ws_connect(sim) as ws:
        await send(ws, "spot.order_book_update", "subscribe", ["BTC_USDT", "100ms"])
        full = (await recv_until(ws, "spot.order_book_update", "update"))["result"]
        sim.faults.skip_book_update(1, "BTC_USDT")
        await rest.order(**BODY, text="t-gap1")  # this change is withheld
        await rest.order(**{**BODY, "price": "59000"}, text="t-gap2")
        upd = (await recv_until(ws, "spot.order_book_update", "update"))["result"]
        assert upd["U"] > full["u"] + 1
        assert sim.events.find("fault", "skip_book")


async def test_rest_order_accepted_then_no_answer(rest: SimRest) -> None:
    rest.server.faults.blackhole_orders(1, "hang")
    with pytest.raises(httpx.ReadTimeout):
        await rest.client.post(
            rest.base + "/spot/orders",
            content=json.dumps({**BODY, "text": "t-hang"}).encode(),
            headers={
                **rest.signer.rest_headers(
                    "POST",
                    "/api/v4/spot/orders",
                    "",
                    json.dumps({**BODY, "text": "t-hang"}).encode(),
                    str(int(time.time())),
                ),
                "Content-Type": "application/json",
            },
            timeout=0.3,
        )
    # The order exists: a client must reconcile by its text, never assume a rejection.
    found = await rest.signed("GET", "/spot/orders/t-hang", {"currency_pair": "BTC_USDT"})
    assert found.status_code == 200
    assert found.json()["status"] == "open"


async def test_rest_order_accepted_then_connection_closed(rest: SimRest) -> None:
    rest.server.faults.blackhole_orders(1, "close")
    with pytest.raises(httpx.TransportError):
        await rest.order(**BODY, text="t-close")
    found = await rest.signed("GET", "/spot/orders/t-close", {"currency_pair": "BTC_USDT"})
    assert found.json()["text"] == "t-close"


async def test_ws_order_accepted_then_no_answer(sim: SimServer) -> None:
    async with await ws_connect(sim) as ws:
        await login(ws, Signer(sim.credentials))
        sim.faults.blackhole_orders(1, "hang")
        await api(ws, "spot.order_place", "h1", {**BODY, "text": "t-wshang"})
        await send(ws, "spot.ping", "")
        assert (await recv_json(ws))["channel"] == "spot.pong"  # nothing about h1 came first
    orders = sim.engine.list_orders(sim.uid, "BTC_USDT", "open")
    assert [o.text for o in orders] == ["t-wshang"]


async def test_ws_order_accepted_then_connection_closed(sim: SimServer) -> None:
    async with await ws_connect(sim) as ws:
        await login(ws, Signer(sim.credentials))
        sim.faults.blackhole_orders(1, "close")
        await api(ws, "spot.order_place", "c1", {**BODY, "text": "t-wsclose"})
        with pytest.raises(ConnectionClosed):
            await recv_json(ws)
    assert sim.engine.get_order(sim.uid, "BTC_USDT", "t-wsclose").status == "open"


async def test_clock_skew(rest: SimRest) -> None:
    rest.server.faults.set_clock_skew(120_000)
    server_ms = (await rest.get("/spot/time")).json()["server_time"]
    assert server_ms - time.time() * 1000 > 100_000
    r = await rest.signed("GET", "/spot/accounts")
    assert r.status_code == 401
    assert r.json()["label"] == "REQUEST_EXPIRED"
    ok = await rest.signed("GET", "/spot/accounts", timestamp=str(server_ms // 1000))
    assert ok.status_code == 200


def test_from_spec() -> None:
    faults = Faults.from_spec(
        "skew_ms=-2000, http429=2@/spot/orders, http503=1, drop_frames=3, delay_ms=5,"
        " skip_book=1, order_hang=1, order_close=1, drop_ws_every_s=30, seed=1"
    )
    assert faults.clock_skew_ms == -2000
    assert faults.frame_delay_ms == 5
    assert faults.drop_ws_every_s == 30
    assert faults.take_http_fault("/spot/time") is not None  # the 503 matches any path
    assert faults.take_http_fault("/spot/time") is None
    first = faults.take_http_fault("/spot/orders/1")
    assert first is not None
    assert first.status == 429
    assert faults.take_order_blackhole() == "hang"
    assert faults.take_order_blackhole() == "close"
    assert faults.take_order_blackhole() is None
    assert faults.take_book_skip("ANY_PAIR")
    assert not faults.take_book_skip("ANY_PAIR")
    assert [faults.take_frame_drop("x") for _ in range(4)] == [True, True, True, False]


@pytest.mark.parametrize("spec", ["nonsense", "bogus=1", "http429=x", "delay_ms=fast"])
def test_bad_spec_is_a_config_error(spec: str) -> None:
    with pytest.raises(ConfigError):
        Faults.from_spec(spec)


def test_drop_probability_is_seeded() -> None:
    a = Faults(seed=3)
    b = Faults(seed=3)
    a.drop_frames(0, probability=0.5)
    b.drop_frames(0, probability=0.5)
    seq_a = [a.take_frame_drop("c") for _ in range(50)]
    assert seq_a == [b.take_frame_drop("c") for _ in range(50)]
    assert 5 < sum(seq_a) < 45


async def test_event_log_jsonl_and_wait_for(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    log = EventLog(capacity=3, jsonl_path=path)
    waiter = asyncio.ensure_future(log.wait_for(lambda e: e.kind == "order_in", 2))
    await asyncio.sleep(0)
    for i in range(5):
        log.record("http_in", f"/p{i}")
    log.record("order_in", "/api/v4/spot/orders", text="t-x")
    hit = await waiter
    assert hit.text == "t-x"
    assert len(log) == 3  # ring keeps the newest
    log.close()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(lines) == 6
    assert lines[-1]["kind"] == "order_in"
    assert isinstance(lines[0]["t_ns"], int)


def _boom(*_args: object, **_kwargs: object) -> None:
    raise RuntimeError("engine bug")


async def test_engine_bug_answers_gate_shaped_500(
    rest: SimRest, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rest.server.engine, "visible_pairs", _boom)
    r = await rest.get("/spot/currency_pairs")
    assert r.status_code == 500
    assert r.json()["label"] == "INTERNAL"
    assert rest.server.events.find("error", "/api/v4/spot/currency_pairs")


async def test_engine_bug_on_ws_keeps_the_connection(
    sim: SimServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with await ws_connect(sim) as ws:
        await login(ws, Signer(sim.credentials))
        monkeypatch.setattr(sim.engine, "get_order", _boom)
        await api(ws, "spot.order_status", "b1", {"order_id": "1", "currency_pair": "BTC_USDT"})
        await send(ws, "spot.ping", "")
        assert (await recv_json(ws))["channel"] == "spot.pong"
    assert sim.events.find("error", "/ws/v4/")


async def test_clock_tick_survives_an_engine_bug(
    sim: SimServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = 0
    ticked_again = asyncio.Event()
    real_advance = sim.engine.advance

    def flaky(now_ms: int) -> object:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("engine bug")
        ticked_again.set()
        return real_advance(now_ms)

    monkeypatch.setattr(sim.engine, "advance", flaky)
    await sim.events.wait_for(lambda e: e.kind == "error" and e.name == "tick", 2)
    await asyncio.wait_for(ticked_again.wait(), 2)
