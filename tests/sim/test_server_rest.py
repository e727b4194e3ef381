"""The simulator's REST API on loopback: shapes, auth, orders, errors, headers, event log."""

from __future__ import annotations

import asyncio
import io
import time
from decimal import Decimal

import httpx
import pytest

from sniper.core.signing import Credentials, Signer
from sniper.sim.auth import check_timestamp
from sniper.sim.runner import credentials_from_env, run_sim
from sniper.sim.server import SimServer
from tests.sim.conftest import SimRest


async def test_time_and_gateway_headers(rest: SimRest) -> None:
    before_ms = int(time.time() * 1000)
    r = await rest.get("/spot/time")
    assert r.status_code == 200
    server_ms = r.json()["server_time"]
    assert abs(server_ms - before_ms) < 5_000
    assert int(r.headers["X-Out-Time"]) >= int(r.headers["X-In-Time"]) > before_ms * 1000 - 5e6
    assert r.headers["X-Gate-RateLimit-Limit"] == "200"
    assert int(r.headers["X-Gate-RateLimit-Requests-Remain"]) == 199


async def test_currency_pairs_all_and_one(rest: SimRest) -> None:
    r = await rest.get("/spot/currency_pairs")
    pairs = {p["id"]: p for p in r.json()}
    assert pairs["BTC_USDT"]["trade_status"] == "tradable"
    btc = pairs["BTC_USDT"]
    assert btc["amount_precision"] == 6
    assert btc["precision"] == 1
    assert btc["min_quote_amount"] == "3"
    assert btc["fee"] == "0.2"
    assert isinstance(btc["buy_start"], int)
    one = await rest.get("/spot/currency_pairs/ETH_USDT")
    assert one.json()["id"] == "ETH_USDT"
    unknown = await rest.get("/spot/currency_pairs/NOPE_USDT")
    assert unknown.status_code == 400
    assert unknown.json()["label"] == "INVALID_CURRENCY_PAIR"


async def test_order_book_with_id_and_limit(rest: SimRest) -> None:
    r = await rest.get(
        "/spot/order_book", {"currency_pair": "BTC_USDT", "limit": "3", "with_id": "true"}
    )
    book = r.json()
    update_id, _, _ = rest.server.engine.order_book("BTC_USDT", 3)
    assert book["id"] == update_id
    assert len(book["asks"]) == 3
    assert len(book["bids"]) == 3
    asks = [Decimal(p) for p, _ in book["asks"]]
    bids = [Decimal(p) for p, _ in book["bids"]]
    assert asks == sorted(asks)
    assert bids == sorted(bids, reverse=True)
    assert bids[0] < asks[0]
    plain = await rest.get("/spot/order_book", {"currency_pair": "BTC_USDT"})
    assert "id" not in plain.json()
    missing = await rest.get("/spot/order_book")
    assert missing.status_code == 400
    assert missing.json()["label"] == "MISSING_REQUIRED_PARAM"


async def test_tickers_and_trades(rest: SimRest) -> None:
    r = await rest.get("/spot/tickers", {"currency_pair": "BTC_USDT"})
    (row,) = r.json()
    assert row["currency_pair"] == "BTC_USDT"
    assert Decimal(row["lowest_ask"]) > Decimal(row["highest_bid"])
    all_rows = (await rest.get("/spot/tickers")).json()
    assert {"BTC_USDT", "ETH_USDT"} <= {t["currency_pair"] for t in all_rows}
    await rest.order(
        currency_pair="BTC_USDT",
        side="buy",
        amount="0.001",
        price="66000",
        time_in_force="ioc",
        text="t-tape",
    )
    trades = (await rest.get("/spot/trades", {"currency_pair": "BTC_USDT"})).json()
    assert trades[0]["side"] == "buy"
    assert isinstance(trades[0]["id"], str)


async def test_accounts_signed(rest: SimRest) -> None:
    r = await rest.signed("GET", "/spot/accounts")
    assert r.status_code == 200
    rows = {row["currency"]: row for row in r.json()}
    assert rows["USDT"]["available"] == "10000"
    only = await rest.signed("GET", "/spot/accounts", {"currency": "USDT"})
    assert [row["currency"] for row in only.json()] == ["USDT"]


@pytest.mark.parametrize(
    ("tamper", "label"),
    [
        ("wrong_secret", "INVALID_SIGNATURE"),
        ("unknown_key", "INVALID_KEY"),
        ("stale", "REQUEST_EXPIRED"),
        ("no_sign", "MISSING_REQUIRED_HEADER"),
        ("short_path", "INVALID_SIGNATURE"),
    ],
)
async def test_auth_failures(rest: SimRest, tamper: str, label: str) -> None:
    key = rest.server.credentials.key
    ts = str(int(time.time()))
    if tamper == "wrong_secret":
        r = await rest.signed("GET", "/spot/accounts", signer=Signer(Credentials(key, "nope")))
    elif tamper == "unknown_key":
        r = await rest.signed("GET", "/spot/accounts", signer=Signer(Credentials("k" * 32, "s")))
    elif tamper == "stale":
        r = await rest.signed("GET", "/spot/accounts", timestamp=str(int(time.time()) - 61))
    elif tamper == "no_sign":
        r = await rest.client.get(rest.base + "/spot/accounts", headers={"KEY": key})
    else:
        headers = rest.signer.rest_headers("GET", "/spot/accounts", "", b"", ts)
        r = await rest.client.get(rest.base + "/spot/accounts", headers=headers)
    assert r.status_code == 401
    assert r.json()["label"] == label


async def test_float_timestamp_and_encoded_query_accepted(rest: SimRest) -> None:
    # The official SDK signs time.time() as a float and the *decoded* query; ccxt signs the
    # encoded one. Both must pass.
    ts = repr(time.time())
    query = "currency_pair=BTC_USDT&status=open&text=a%20b"
    for signed_query in (query, "currency_pair=BTC_USDT&status=open&text=a b"):
        headers = rest.signer.rest_headers("GET", "/api/v4/spot/orders", signed_query, b"", ts)
        r = await rest.client.get(f"{rest.base}/spot/orders?{query}", headers=headers)
        assert r.status_code == 200, r.text


def test_timestamp_window_edges() -> None:
    check_timestamp("1000", 1_060_000)
    check_timestamp("1000.5", 940_500)
    for bad in ("999", "abc", "NaN"):
        with pytest.raises(Exception, match="REQUEST_EXPIRED"):
            check_timestamp(bad, 1_060_001)


async def test_resting_order_lifecycle(rest: SimRest) -> None:
    r = await rest.order(
        currency_pair="BTC_USDT", side="buy", amount="0.001", price="60000", text="t-rest1"
    )
    assert r.status_code == 201
    order = r.json()
    assert order["status"] == "open"
    assert order["text"] == "t-rest1"
    assert order["left"] == "0.001"
    assert isinstance(order["create_time_ms"], int)
    balances = {b["currency"]: b for b in (await rest.signed("GET", "/spot/accounts")).json()}
    assert Decimal(balances["USDT"]["locked"]) == Decimal("60")
    by_id = await rest.signed("GET", f"/spot/orders/{order['id']}", {"currency_pair": "BTC_USDT"})
    by_text = await rest.signed("GET", "/spot/orders/t-rest1", {"currency_pair": "BTC_USDT"})
    assert by_id.json()["id"] == by_text.json()["id"] == order["id"]
    listed = await rest.signed(
        "GET", "/spot/orders", {"currency_pair": "BTC_USDT", "status": "open"}
    )
    assert [o["id"] for o in listed.json()] == [order["id"]]
    open_all = (await rest.signed("GET", "/spot/open_orders")).json()
    assert open_all[0]["currency_pair"] == "BTC_USDT"
    assert open_all[0]["total"] == 1
    cancelled = await rest.signed(
        "DELETE", f"/spot/orders/{order['id']}", {"currency_pair": "BTC_USDT"}
    )
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["finish_as"] == "cancelled"
    again = await rest.signed(
        "DELETE", f"/spot/orders/{order['id']}", {"currency_pair": "BTC_USDT"}
    )
    assert again.status_code == 404
    assert again.json()["label"] == "ORDER_NOT_FOUND"
    finished = await rest.signed(
        "GET", "/spot/orders", {"currency_pair": "BTC_USDT", "status": "finished"}
    )
    assert finished.json()[0]["id"] == order["id"]


async def test_ioc_buy_fills_with_fee_in_base(rest: SimRest) -> None:
    r = await rest.order(
        currency_pair="ETH_USDT",
        side="buy",
        amount="0.01",
        price="3600",
        time_in_force="ioc",
        text="t-ioc1",
    )
    assert r.status_code == 201
    order = r.json()
    assert order["finish_as"] == "filled"
    assert order["status"] == "closed"
    assert Decimal(order["filled_amount"]) == Decimal("0.01")
    assert order["fee_currency"] == "ETH"
    assert Decimal(order["fee"]) == Decimal("0.01") * Decimal("0.002")
    trades = (
        await rest.signed(
            "GET", "/spot/my_trades", {"currency_pair": "ETH_USDT", "order_id": order["id"]}
        )
    ).json()
    assert len(trades) >= 1
    assert trades[0]["role"] == "taker"
    assert trades[0]["text"] == "t-ioc1"
    no_pair = await rest.signed("GET", "/spot/my_trades", {"order_id": order["id"]})
    assert no_pair.json()["label"] == "MISSING_REQUIRED_PARAM"


async def test_action_mode_ack_and_default_text(rest: SimRest) -> None:
    r = await rest.order(
        currency_pair="BTC_USDT", side="buy", amount="0.001", price="60000", action_mode="ACK"
    )
    assert r.status_code == 201
    assert set(r.json()) == {"id", "text", "amend_text"}
    assert r.json()["text"] == "apiv4"


@pytest.mark.parametrize(
    ("fields", "label", "message_part"),
    [
        (
            {"currency_pair": "NEWCOIN_USDT", "side": "buy", "amount": "100", "price": "0.05"},
            "INVALID_CURRENCY_PAIR",
            "",
        ),
        (
            {"currency_pair": "BTC_USDT", "side": "buy", "amount": "0.00001", "price": "60000"},
            "INVALID_PARAM_VALUE",
            "The minimum is 3 USDT",
        ),
        (
            {"currency_pair": "BTC_USDT", "side": "buy", "amount": "0.0000001", "price": "60000"},
            "INVALID_PRECISION",
            "",
        ),
        (
            {"currency_pair": "BTC_USDT", "side": "buy", "amount": "1", "price": "60000"},
            "BALANCE_NOT_ENOUGH",
            "",
        ),
        (
            {
                "currency_pair": "BTC_USDT",
                "side": "buy",
                "amount": "0.001",
                "price": "60000",
                "text": "no-prefix",
            },
            "INVALID_PARAM_VALUE",
            "text",
        ),
        (
            {
                "currency_pair": "BTC_USDT",
                "side": "buy",
                "type": "market",
                "amount": "10",
                "time_in_force": "gtc",
            },
            "INVALID_PARAM_VALUE",
            "time_in_force",
        ),
    ],
)
async def test_order_rejections(
    rest: SimRest, fields: dict[str, str], label: str, message_part: str
) -> None:
    # NEWCOIN_USDT may not be listed yet at this instant; either way it is not tradable.
    r = await rest.order(**fields)
    assert r.status_code == 400
    assert r.json()["label"] == label
    assert message_part in r.json()["message"]


async def test_batch_orders_partial_success(rest: SimRest) -> None:
    body = [
        {
            "currency_pair": "BTC_USDT",
            "side": "buy",
            "amount": "0.001",
            "price": "60000",
            "text": "t-b1",
        },
        {
            "currency_pair": "BTC_USDT",
            "side": "buy",
            "amount": "0.001",
            "price": "60000.55",
            "text": "t-b2",
        },
    ]
    r = await rest.signed("POST", "/spot/batch_orders", body=body)
    assert r.status_code == 200
    first, second = r.json()
    assert first["succeeded"] is True
    assert first["text"] == "t-b1"
    assert second["succeeded"] is False
    assert second["label"] == "INVALID_PRECISION"


async def test_cancel_all_for_pair(rest: SimRest) -> None:
    for i in range(3):
        await rest.order(
            currency_pair="BTC_USDT", side="buy", amount="0.001", price="60000", text=f"t-ca{i}"
        )
    await rest.order(
        currency_pair="ETH_USDT", side="buy", amount="0.01", price="3000", text="t-keep"
    )
    r = await rest.signed("DELETE", "/spot/orders", {"currency_pair": "BTC_USDT"})
    assert r.status_code == 200
    assert sorted(o["text"] for o in r.json()) == ["t-ca0", "t-ca1", "t-ca2"]
    assert all(o["succeeded"] and o["status"] == "cancelled" for o in r.json())
    left = await rest.signed("GET", "/spot/orders", {"currency_pair": "ETH_USDT", "status": "open"})
    assert [o["text"] for o in left.json()] == ["t-keep"]


async def test_exptime_in_the_past_is_refused(rest: SimRest) -> None:
    past = str(int(time.time() * 1000) - 1000)
    r = await rest.signed(
        "POST",
        "/spot/orders",
        body={"currency_pair": "BTC_USDT", "side": "buy", "amount": "0.001", "price": "60000"},
        headers={"x-gate-exptime": past},
    )
    assert r.status_code == 400
    assert r.json()["label"] == "REQUEST_EXPIRED"
    assert rest.server.engine.list_orders(rest.server.uid, "BTC_USDT", "open") == []


async def test_order_rate_limit_per_pair(manual_sim: SimServer) -> None:
    # The manual clock does not move, so all requests fall in one 1-second window.
    async with httpx.AsyncClient(timeout=5.0) as client:
        rest = SimRest(manual_sim, client)
        statuses = []
        for i in range(11):
            r = await rest.order(
                currency_pair="BTC_USDT",
                side="buy",
                amount="0.001",
                price="50000",
                text=f"t-rl{i}",
            )
            statuses.append(r.status_code)
        assert statuses == [201] * 10 + [429]
        assert r.json()["label"] == "TOO_MANY_REQUESTS"
        assert r.headers["X-Gate-RateLimit-Requests-Remain"] == "0"
        other = await rest.order(currency_pair="ETH_USDT", side="buy", amount="0.01", price="3000")
        assert other.status_code == 201  # the budget is per pair
        assert other.headers["X-Gate-RateLimit-Limit"] == "10"
        await manual_sim.advance(1000)
        again = await rest.order(
            currency_pair="BTC_USDT", side="buy", amount="0.001", price="50000"
        )
        assert again.status_code == 201


async def test_unknown_path_is_gate_404(rest: SimRest) -> None:
    r = await rest.get("/spot/nothing_here")
    assert r.status_code == 404
    assert r.json()["label"] == "NOT_FOUND"


async def test_wallet_fee_and_account_detail(rest: SimRest) -> None:
    fee = (await rest.signed("GET", "/wallet/fee")).json()
    assert fee["taker_fee"] == "0.002"
    assert fee["user_id"] == rest.server.uid
    detail = (await rest.signed("GET", "/account/detail")).json()
    assert detail["key"]["mode"] == 1


async def test_event_log_records_order_arrival(rest: SimRest) -> None:
    await rest.order(
        currency_pair="BTC_USDT", side="buy", amount="0.001", price="60000", text="t-logged"
    )
    log = rest.server.events
    (arrival,) = log.find("order_in", text="t-logged")
    (accepted,) = log.find("order_accepted", text="t-logged")
    assert accepted.order_id
    ins = [e for e in log.find("http_in", "/api/v4/spot/orders") if e.t_ns <= arrival.t_ns]
    outs = [e for e in log.find("http_out", "/api/v4/spot/orders") if e.t_ns >= arrival.t_ns]
    assert ins
    assert outs
    assert outs[0].status == 201


async def test_listing_appears_and_opens_on_the_script(rest: SimRest) -> None:
    sim = rest.server
    deadline = time.monotonic() + 6
    seen: list[str] = []
    while time.monotonic() < deadline:
        pairs = {p["id"]: p for p in (await rest.get("/spot/currency_pairs")).json()}
        status = pairs.get("NEWCOIN_USDT", {}).get("trade_status", "absent")
        if not seen or seen[-1] != status:
            seen.append(status)
        if status == "tradable":
            break
        await asyncio.sleep(0.05)  # polling an HTTP API, as a client would
    assert seen[-1] == "tradable", seen
    assert "sellable" in seen
    buy_start = pairs["NEWCOIN_USDT"]["buy_start"]
    assert buy_start * 1000 <= sim.server_now_ms() + 50


async def test_run_sim_prints_urls_and_env_credentials() -> None:
    out = io.StringIO()
    stop = asyncio.Event()
    started: asyncio.Future[SimServer] = asyncio.get_running_loop().create_future()
    env = {"GATE_API_KEY": "envkey1234567890", "GATE_API_SECRET": "envsecret1234567890"}
    task = asyncio.create_task(
        run_sim("127.0.0.1", 0, "quiet", out=out, env=env, stop=stop, started=started)
    )
    server = await asyncio.wait_for(started, 5)
    assert server.credentials.key == "envkey1234567890"
    banner = out.getvalue()
    assert server.urls is not None
    assert server.urls.rest in banner
    assert server.urls.ws in banner
    assert "envsecret1234567890" not in banner
    async with httpx.AsyncClient() as client:
        r = await client.get(server.urls.rest + "/spot/time")
        assert r.status_code == 200
    stop.set()
    assert await asyncio.wait_for(task, 5) == 0


def test_credentials_from_env_generates_when_missing() -> None:
    creds, from_env = credentials_from_env({})
    assert not from_env
    assert len(creds.key) == 32
    assert len(creds.secret) == 64
    creds2, from_env2 = credentials_from_env({"GATE_API_KEY": "k", "GATE_API_SECRET": " s\n"})
    assert from_env2
    assert creds2.secret == "s"
