"""Fidelity: ccxt (``ccxt.async_support.gate``), unchanged, against the simulator.

Only the URLs are overridden (every ``urls['api']`` section points at the simulator's
``/api/v4``), and market loading is limited to spot. If ccxt sends something the simulator
rejects, the simulator is wrong.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import ccxt
import ccxt.async_support as ccxt_async
import pytest

from sniper.sim.server import SimServer


def make_exchange(sim: SimServer, secret: str | None = None) -> Any:
    assert sim.urls is not None
    exchange = ccxt_async.gate(
        {
            "apiKey": sim.credentials.key,
            "secret": sim.credentials.secret if secret is None else secret,
            "options": {"fetchMarkets": {"types": ["spot"]}},
            "enableRateLimit": False,
        }
    )
    api_urls = exchange.urls["api"]
    for section in api_urls.values():
        for name in section:
            section[name] = sim.urls.rest
    return exchange


@pytest.fixture
async def gate(sim: SimServer) -> AsyncIterator[Any]:
    exchange = make_exchange(sim)
    try:
        yield exchange
    finally:
        await exchange.close()


async def test_ccxt_load_markets_and_balance(gate: Any) -> None:
    markets = await gate.load_markets()
    btc = markets["BTC/USDT"]
    assert btc["id"] == "BTC_USDT"
    assert btc["active"] is True
    assert btc["precision"]["amount"] == pytest.approx(0.000001)
    balance = await gate.fetch_balance()
    assert balance["USDT"]["free"] == pytest.approx(10000)


async def test_ccxt_create_fetch_cancel(gate: Any) -> None:
    await gate.load_markets()
    order = await gate.create_order("BTC/USDT", "limit", "buy", 0.001, 60000, {"text": "t-ccxt1"})
    assert order["status"] == "open"
    assert order["clientOrderId"] == "t-ccxt1"
    fetched = await gate.fetch_order(order["id"], "BTC/USDT")
    assert fetched["id"] == order["id"]
    assert fetched["remaining"] == pytest.approx(0.001)
    open_orders = await gate.fetch_open_orders("BTC/USDT")
    assert [o["id"] for o in open_orders] == [order["id"]]
    cancelled = await gate.cancel_order(order["id"], "BTC/USDT")
    assert cancelled["status"] == "canceled"


async def test_ccxt_ioc_fill_trades_and_book(gate: Any) -> None:
    await gate.load_markets()
    book = await gate.fetch_order_book("ETH/USDT", 5)
    ask = book["asks"][0][0]
    order = await gate.create_order("ETH/USDT", "limit", "buy", 0.01, ask, {"timeInForce": "IOC"})
    assert order["filled"] == pytest.approx(0.01)
    fees = {f["currency"]: f["cost"] for f in order["fees"]}
    assert fees["ETH"] == pytest.approx(0.01 * 0.002)  # charged in what was received
    trades = await gate.fetch_my_trades("ETH/USDT")
    assert any(t["order"] == order["id"] for t in trades)
    ticker = await gate.fetch_ticker("ETH/USDT")
    assert ticker["ask"] > ticker["bid"]


async def test_ccxt_wrong_secret_is_authentication_error(sim: SimServer) -> None:
    exchange = make_exchange(sim, secret="definitely-not-the-secret")
    try:
        with pytest.raises(ccxt.AuthenticationError, match="INVALID_SIGNATURE"):
            await exchange.fetch_balance()
    finally:
        await exchange.close()


async def test_ccxt_insufficient_funds(gate: Any) -> None:
    await gate.load_markets()
    with pytest.raises(ccxt.InsufficientFunds):
        await gate.create_order("BTC/USDT", "limit", "buy", 1, 60000)
