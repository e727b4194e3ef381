"""Fill backfill and resting-sell audit: fills the private stream never delivered are found."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import pytest

from sniper.app import upkeep
from sniper.app.journal import Journal
from sniper.app.ports import Handlers
from sniper.app.session import ListingSession, SessionSettings
from sniper.config import parse_config
from sniper.core.exits import ExitState
from sniper.core.models import Fill, Order, OrderRequest, OrderStatus
from sniper.errors import TransientError
from tests.app.fakes import PAIR, FakeExchange, FakeMarket, fake_edges, order, settle

SETTINGS = SessionSettings.from_config(
    parse_config({"entry": {"quote_amount": "20"}, "exit": {"take_profit_pct": "30"}}),
    run_id="run1",
)
ASK = (Decimal("0.1000"), Decimal("1000"))
BID = (Decimal("0.0990"), Decimal("1000"))
NOW_MS = 2_000_000


@dataclass
class CountingExchange(FakeExchange):
    """Counts lookups; ``fills_failures`` makes that many ``my_fills`` calls fail first."""

    fills_failures: int = 0
    fills_calls: int = 0
    find_calls: list[frozenset[str]] = field(default_factory=list)

    async def my_fills(self, pair: str) -> list[Fill]:
        self.fills_calls += 1
        if self.fills_failures > 0:
            self.fills_failures -= 1
            raise TransientError("connection reset")
        return await super().my_fills(pair)

    async def find_orders(self, pair: str, texts: frozenset[str]) -> list[Order]:
        self.find_calls.append(texts)
        return await super().find_orders(pair, texts)


def swallow(*_: object) -> None:
    """A private stream that is down: pushes go nowhere."""


SILENT = Handlers(on_top=swallow, on_order=swallow, on_fill=swallow, on_balance=swallow)


def make_session(tmp: Path, exchange: CountingExchange, *, stream_up: bool) -> ListingSession:
    edges = fake_edges(exchange, FakeMarket([PAIR]))
    s = ListingSession.arm(PAIR, SETTINGS, edges, Journal.in_dir(tmp), wall_ms=lambda: NOW_MS,
                           mono_ns=lambda: 0, emit=lambda k, d: None, on_fatal=pytest.fail)
    edges.bind(Handlers(on_top=swallow, on_order=s.on_order, on_fill=s.on_fill,
                        on_balance=s.on_balance) if stream_up else SILENT)
    return s


@pytest.fixture(autouse=True)
def no_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(upkeep, "FILL_BACKFILL_DELAYS_S", (0.0, 0.0))


async def test_lost_buy_fill_push_is_backfilled_and_the_exit_proceeds(tmp_path: Path) -> None:
    exchange = CountingExchange()
    s = make_session(tmp_path, exchange, stream_up=False)
    s.on_top(BID, ASK, recv_ns=1, opened=True)
    await settle(s)
    (buy_fill,) = [f for f in exchange.known_fills if f.side == "buy"]
    assert s.position.base_bought == buy_fill.amount
    assert exchange.fills_calls == 1
    assert [e.kind for e in s.journal.events()].count("fill") == 1
    (tp,) = exchange.placed  # the exit went on with what was really bought
    assert tp.side == "sell"


async def test_backfill_retries_after_a_failed_lookup(tmp_path: Path) -> None:
    exchange = CountingExchange(fills_failures=1)
    s = make_session(tmp_path, exchange, stream_up=False)
    s.on_top(BID, ASK, recv_ns=1, opened=True)
    await settle(s)
    assert exchange.fills_calls == 2
    assert s.position.base_bought > 0


async def test_no_lookup_when_the_pushes_arrive(tmp_path: Path) -> None:
    exchange = CountingExchange()
    s = make_session(tmp_path, exchange, stream_up=True)
    s.on_top(BID, ASK, recv_ns=1, opened=True)
    await settle(s)
    assert s.position.base_bought > 0
    assert exchange.fills_calls == 0


async def test_resting_sell_is_audited_at_most_every_interval_and_a_silent_fill_closes(
    tmp_path: Path,
) -> None:
    exchange = CountingExchange()
    s = make_session(tmp_path, exchange, stream_up=True)
    s.on_top(BID, ASK, recv_ns=1, opened=True)
    await settle(s)
    assert s.exit.state is ExitState.TP_RESTING
    (tp,) = exchange.placed
    exchange.find_calls.clear()

    s.on_tick(NOW_MS)
    await settle(s)
    s.on_tick(NOW_MS + upkeep.SELL_AUDIT_MS - 1)  # too soon for another lookup
    await settle(s)
    assert exchange.find_calls == [frozenset({tp.text})]

    exchange.handlers = SILENT  # the private stream drops; the take-profit fills meanwhile
    exchange.fill_resting(tp.text)
    assert not s.closed
    s.on_tick(NOW_MS + upkeep.SELL_AUDIT_MS)
    await settle(s)
    assert len(exchange.find_calls) == 2
    assert s.closed
    assert s.close_reason == "take_profit"
    assert s.position.snapshot().sell_fills == 1


async def test_nothing_is_looked_up_while_replaying(tmp_path: Path) -> None:
    exchange = CountingExchange()
    s = make_session(tmp_path, exchange, stream_up=False)
    amount, price = Decimal("100"), Decimal("0.1")
    buy = order(OrderRequest(PAIR.pair, "buy", amount, price, s.entry.texts[0]), "7",
                filled=amount, price=price, status=OrderStatus.CLOSED)
    exchange._fill(buy, amount, price)  # on the exchange; the push went nowhere
    s.replaying = True
    s.on_order(buy)  # a journaled report replayed: its fill is not in yet
    await settle(s)
    assert s._upkeep.fills_missing()
    assert exchange.fills_calls == 0
    s.replaying = False  # reconciled: now a missing fill is looked up
    s.on_order(buy)
    await settle(s)
    assert exchange.fills_calls == 1
    assert s.position.base_bought == amount
