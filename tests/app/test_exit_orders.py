"""The exit machine's actions reach the exchange once each, and every answer gets back to it."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from sniper.app.journal import Journal
from sniper.app.ports import Handlers
from sniper.app.session import ListingSession, SessionSettings
from sniper.config import parse_config
from sniper.core.exits import ExitState
from sniper.core.models import Order, OrderAck, OrderRequest
from sniper.errors import OutcomeUnknownError, RateLimitedError
from tests.app.fakes import PAIR, FakeExchange, FakeMarket, fake_edges, settle

SETTINGS = SessionSettings.from_config(
    parse_config({"entry": {"quote_amount": "20"}, "exit": {"take_profit_pct": "30"}}),
    run_id="run1",
)
ASK = (Decimal("0.1000"), Decimal("1000"))
BID = (Decimal("0.0990"), Decimal("1000"))


class Clock:
    def __init__(self) -> None:
        self.now_ms = 2_000_000


def bought(tmp: Path, exchange: FakeExchange, clock: Clock) -> ListingSession:
    """A session whose buy filled; its first exit action is under way."""
    edges = fake_edges(exchange, FakeMarket([PAIR]))
    s = ListingSession.arm(PAIR, SETTINGS, edges, Journal.in_dir(tmp),
                           wall_ms=lambda: clock.now_ms, mono_ns=lambda: 0,
                           emit=lambda k, d: None, on_fatal=pytest.fail)
    edges.bind(Handlers(on_top=lambda *a: None, on_order=s.on_order, on_fill=s.on_fill,
                        on_balance=s.on_balance))
    s.on_top(BID, ASK, recv_ns=1, opened=True)
    return s


def sell_records(s: ListingSession) -> list[tuple[str, dict[str, object]]]:
    return [(e.kind, e.data) for e in s.journal.events() if e.kind.startswith("sell_")]


async def test_rate_limited_sell_is_journaled_and_placed_again_later(tmp_path: Path) -> None:
    exchange = FakeExchange(place_answers=[RateLimitedError("slow down", retry_after_s=0.001)])
    clock = Clock()
    s = bought(tmp_path, exchange, clock)
    await settle(s)
    first = exchange.placed[0]
    records = sell_records(s)
    assert [k for k, _ in records] == ["sell_sent", "sell_result"]
    assert records[1][1]["outcome"] == "rejected"
    assert records[1][1]["label"] == "TOO_MANY_REQUESTS"
    for _ in range(5):  # the machine retries on a later tick, never twice at once
        clock.now_ms += 1_000
        s.on_tick(clock.now_ms)
        await settle(s)
    assert len(exchange.placed) == 2
    assert exchange.placed[1].amount == first.amount
    assert s.exit.state is ExitState.TP_RESTING


class LoggingExchange(FakeExchange):
    """Records the order of placements and lookups."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.calls: list[tuple[str, str]] = []

    async def place(self, request: OrderRequest) -> Order | OrderAck:
        self.calls.append(("place", request.text))
        return await super().place(request)

    async def find_orders(self, pair: str, texts: frozenset[str]) -> list[Order]:
        self.calls.append(("find", ",".join(sorted(texts))))
        return await super().find_orders(pair, texts)


async def test_unknown_sell_is_looked_up_and_only_re_placed_once_proven_absent(
    tmp_path: Path,
) -> None:
    exchange = LoggingExchange(place_answers=[OutcomeUnknownError("silence", text="x")])
    clock = Clock()
    s = bought(tmp_path, exchange, clock)
    await settle(s)
    for _ in range(10):
        clock.now_ms += 1_000
        s.on_tick(clock.now_ms)
        await settle(s)
    assert [k for k, _ in sell_records(s)] == ["sell_sent", "sell_result", "sell_sent",
                                              "sell_result"]
    assert sell_records(s)[1][1]["outcome"] == "unknown"
    # the fake raised before recording an order: the lookup by client id finds nothing, so one
    # more sell goes out under a new client id, and only one
    (first, second) = [text for kind, text in exchange.calls if kind == "place"]
    assert first != second
    assert exchange.calls.index(("find", first)) < exchange.calls.index(("place", second))
    assert s.exit.state is ExitState.TP_RESTING
