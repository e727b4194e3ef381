"""Journal record encoders: every value survives the journal (JSON, Decimal as text) exactly."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from sniper.app.journal import Journal
from sniper.app.records import (
    fill_from_json,
    fill_to_json,
    order_from_json,
    order_to_json,
    pair_from_json,
    pair_to_json,
)
from sniper.core.models import Fill, Order, OrderStatus, PairInfo, TradeStatus
from tests.app.fakes import PAIR

FULL_PAIR = PairInfo(
    pair="ABC_USDT", base="ABC", quote="USDT", trade_status=TradeStatus.TRADABLE,
    buy_start_s=1_700_000_000, sell_start_s=1_700_000_100, amount_precision=3,
    price_precision=8, min_base_amount=Decimal("0.001"), min_quote_amount=Decimal("3"),
    max_base_amount=Decimal("1000000"), max_quote_amount=Decimal("5000000.5"),
    fee_pct=Decimal("0.2"),
)

FILL = Fill(
    trade_id="9001", order_id="123", text="t-abc", pair="ABC_USDT", side="buy", role="taker",
    price=Decimal("0.00012345"), amount=Decimal("181.81"), fee=Decimal("0.36362"),
    fee_currency="ABC", time_ms=1_700_000_000_123,
)


def order(**changes: Any) -> Order:
    base: dict[str, Any] = {
        "id": "123", "text": "t-abc", "pair": "ABC_USDT", "side": "sell", "type": "limit",
        "time_in_force": "gtc", "status": OrderStatus.OPEN, "amount": Decimal("181.44"),
        "price": Decimal("0.143"), "left": Decimal("100.44"), "filled_amount": Decimal("81"),
        "filled_total": Decimal("11.583"), "avg_deal_price": Decimal("0.143"),
        "fee": Decimal("0.023166"), "fee_currency": "USDT", "finish_as": "open",
        "create_time_ms": 1, "update_time_ms": 2, "event": "update",
    }
    return Order(**{**base, **changes})


@pytest.mark.parametrize("info", [PAIR, FULL_PAIR], ids=["optional-unset", "all-set"])
def test_pair_round_trips_through_the_journal(info: PairInfo, tmp_path: Path) -> None:
    journal = Journal.in_dir(tmp_path)
    journal.append("armed", info.pair, {"info": pair_to_json(info)}, ts_ms=1)
    (event,) = journal.events()
    assert pair_from_json(event.data["info"]) == info


@pytest.mark.parametrize(
    "value",
    [
        order(),
        order(price=None, avg_deal_price=None, type="market", time_in_force="ioc",
              status=OrderStatus.CLOSED, finish_as="filled", event=None),
        order(status=OrderStatus.CANCELLED, filled_amount=Decimal(0), avg_deal_price=None),
    ],
    ids=["resting", "market-no-price", "cancelled"],
)
def test_order_round_trips_through_the_journal(value: Order, tmp_path: Path) -> None:
    journal = Journal.in_dir(tmp_path)
    journal.append("order", value.pair, order_to_json(value), ts_ms=1)
    (event,) = journal.events()
    assert order_from_json(event.pair, event.data) == value


def test_fill_round_trips_through_the_journal(tmp_path: Path) -> None:
    journal = Journal.in_dir(tmp_path)
    journal.append("fill", FILL.pair, fill_to_json(FILL), ts_ms=1)
    (event,) = journal.events()
    back = fill_from_json(event.pair, event.data)
    assert back == FILL
    assert str(back.fee) == "0.36362"  # exact digits, not a float's


def test_numeric_ids_from_older_records_decode_as_text() -> None:
    data = {**fill_to_json(FILL), "trade_id": 9001, "order_id": 123}
    back = fill_from_json("ABC_USDT", data)
    assert (back.trade_id, back.order_id) == ("9001", "123")
