"""Fidelity: the official ``gate-api`` SDK, unchanged, against the simulator.

The SDK is synchronous (urllib3), so each call runs in a worker thread while the simulator
keeps serving on the test's event loop. If the SDK sends something the simulator rejects, the
simulator is wrong.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

import gate_api
import pytest
from gate_api.exceptions import GateApiException

from sniper.sim.server import SimServer


def spot_api(sim: SimServer, secret: str | None = None) -> gate_api.SpotApi:
    assert sim.urls is not None
    config = gate_api.Configuration(
        host=sim.urls.rest,
        key=sim.credentials.key,
        secret=sim.credentials.secret if secret is None else secret,
    )
    return gate_api.SpotApi(gate_api.ApiClient(config))


async def test_sdk_lists_pairs_and_reads_market_data(sim: SimServer) -> None:
    api = spot_api(sim)
    pairs = await asyncio.to_thread(api.list_currency_pairs)
    by_id = {p.id: p for p in pairs}
    assert by_id["BTC_USDT"].trade_status == "tradable"
    assert by_id["BTC_USDT"].amount_precision == 6
    one = await asyncio.to_thread(api.get_currency_pair, "ETH_USDT")
    assert one.quote == "USDT"
    book = await asyncio.to_thread(api.list_order_book, "BTC_USDT", limit=5, with_id=True)
    assert book.id > 0
    assert len(book.asks) == 5
    tickers = await asyncio.to_thread(api.list_tickers, currency_pair="BTC_USDT")
    assert tickers[0].currency_pair == "BTC_USDT"


async def test_sdk_balances_place_get_cancel(sim: SimServer) -> None:
    api = spot_api(sim)
    accounts = await asyncio.to_thread(api.list_spot_accounts)
    usdt = next(a for a in accounts if a.currency == "USDT")
    assert Decimal(usdt.available) == Decimal("10000")
    order = gate_api.Order(
        currency_pair="BTC_USDT",
        side="buy",
        amount="0.001",
        price="60000",
        time_in_force="gtc",
        text="t-sdk1",
    )
    created = await asyncio.to_thread(api.create_order, order)
    assert created.status == "open"
    assert created.text == "t-sdk1"
    assert api.api_client.last_response.status == 201
    fetched = await asyncio.to_thread(api.get_order, created.id, "BTC_USDT")
    assert fetched.id == created.id
    assert Decimal(fetched.left) == Decimal("0.001")
    open_orders = await asyncio.to_thread(api.list_orders, "BTC_USDT", "open")
    assert [o.id for o in open_orders] == [created.id]
    cancelled = await asyncio.to_thread(api.cancel_order, created.id, "BTC_USDT")
    assert cancelled.status == "cancelled"


async def test_sdk_ioc_fill_and_my_trades(sim: SimServer) -> None:
    api = spot_api(sim)
    order = gate_api.Order(
        currency_pair="ETH_USDT",
        side="buy",
        amount="0.01",
        price="3600",
        time_in_force="ioc",
        text="t-sdkioc",
    )
    created = await asyncio.to_thread(api.create_order, order)
    assert created.finish_as == "filled"
    assert created.fee_currency == "ETH"
    trades = await asyncio.to_thread(
        api.list_my_trades, currency_pair="ETH_USDT", order_id=created.id
    )
    assert trades
    assert trades[0].order_id == created.id


async def test_sdk_wrong_secret_is_invalid_signature(sim: SimServer) -> None:
    api = spot_api(sim, secret="definitely-not-the-secret")
    with pytest.raises(GateApiException) as info:
        await asyncio.to_thread(api.list_spot_accounts)
    assert info.value.label == "INVALID_SIGNATURE"
    assert info.value.status == 401


async def test_sdk_sees_gate_error_labels(sim: SimServer) -> None:
    api = spot_api(sim)
    order = gate_api.Order(
        currency_pair="BTC_USDT", side="buy", amount="0.00001", price="60000", text="t-small"
    )
    with pytest.raises(GateApiException) as info:
        await asyncio.to_thread(api.create_order, order)
    assert info.value.label == "INVALID_PARAM_VALUE"
    assert "minimum" in info.value.message
