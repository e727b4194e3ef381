"""Daemon discovery and risk rules with in-memory edges."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from sniper.app.daemon import Daemon
from sniper.app.journal import Journal
from sniper.app.killswitch import HALT_FLAG
from sniper.config import parse_config
from sniper.core.models import PairInfo, TradeStatus
from tests.app.fakes import PAIR, FakeExchange, FakeMarket, fake_edges, settle

OLD = dataclasses.replace(PAIR, pair="OLD_USDT", base="OLD", trade_status=TradeStatus.TRADABLE)


def listing(name: str, quote: str = "USDT") -> PairInfo:
    return dataclasses.replace(
        PAIR, pair=f"{name}_{quote}", base=name, quote=quote, buy_start_s=9_999_999_999
    )


class Harness:
    def __init__(self, tmp: Path, **cfg: Any) -> None:
        self.config = parse_config({"state_dir": str(tmp), **cfg})
        self.exchange = FakeExchange()
        self.market = FakeMarket([OLD])
        self.journal = Journal.in_dir(tmp)
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.daemon = Daemon(
            self.config,
            fake_edges(self.exchange, self.market),
            self.journal,
            run_id="r",
            wall_ms=lambda: 1_000_000,
            mono_ns=lambda: 0,
            observer=lambda k, d: self.events.append((k, d)),
        )

    async def start(self) -> None:
        # what run() does before its loops: bind, recover, baseline
        self.daemon.edges.bind(self.daemon._handlers())
        pairs = await self.market.currency_pairs()
        self.daemon.tracker.observe(pairs, 1_000)

    def kinds(self, kind: str) -> list[dict[str, Any]]:
        return [d for k, d in self.events if k == kind]


@pytest.fixture
async def h(tmp_path: Path) -> Harness:
    harness = Harness(tmp_path, risk={"max_open_positions": 2})
    await harness.start()
    return harness


async def test_baseline_and_other_quotes_are_never_armed(h: Harness) -> None:
    h.market.pairs = [OLD, listing("BTCX", "BTC")]
    await h.daemon.poll_once()
    assert h.daemon.sessions == {}
    h.market.pairs = [OLD, listing("BTCX", "BTC"), listing("NEW")]
    await h.daemon.poll_once()
    assert list(h.daemon.sessions) == ["NEW_USDT"]
    assert h.market.watched == ["NEW_USDT"]
    # the baseline pair opening later is still never a listing
    h.market.pairs = [dataclasses.replace(OLD, buy_start_s=0), listing("NEW")]
    await h.daemon.poll_once()
    assert list(h.daemon.sessions) == ["NEW_USDT"]


async def test_duplicate_polls_arm_once(h: Harness) -> None:
    h.market.pairs = [OLD, listing("NEW")]
    for _ in range(3):
        await h.daemon.poll_once()
    assert len(h.kinds("armed")) == 1
    assert [e.kind for e in h.journal.events()] == ["armed"]


async def test_max_open_positions_caps_arming(h: Harness) -> None:
    h.market.pairs = [OLD, listing("AAA"), listing("BBB"), listing("CCC")]
    await h.daemon.poll_once()
    assert sorted(h.daemon.sessions) == ["AAA_USDT", "BBB_USDT"]
    assert h.kinds("skipped") == [{"pair": "CCC_USDT", "reason": "max_open_positions"}]


async def test_halt_flag_stops_arming_and_firing_within_one_poll(h: Harness) -> None:
    h.market.pairs = [OLD, listing("AAA")]
    await h.daemon.poll_once()
    session = h.daemon.sessions["AAA_USDT"]
    h.journal.set_flag(HALT_FLAG, "1")
    h.market.pairs = [OLD, listing("AAA"), listing("BBB")]
    await h.daemon.poll_once()
    assert "BBB_USDT" not in h.daemon.sessions
    session.on_top(None, (Decimal("0.1"), Decimal("10")), 1, True)
    await settle(session)
    assert h.exchange.fired == []


async def test_daily_quote_cap(tmp_path: Path) -> None:
    harness = Harness(
        tmp_path,
        entry={"quote_amount": "20"},
        risk={"max_open_positions": 5, "max_quote_per_day": "30"},
    )
    await harness.start()
    harness.market.pairs = [OLD, listing("AAA")]
    await harness.daemon.poll_once()
    s = harness.daemon.sessions["AAA_USDT"]
    s.on_top(None, (Decimal("0.1"), Decimal("1000")), 1, True)
    await settle(s)
    assert s.quote_spent_since(0) > Decimal("19")
    harness.market.pairs = [OLD, listing("AAA"), listing("BBB")]
    await harness.daemon.poll_once()
    assert harness.kinds("skipped") == [{"pair": "BBB_USDT", "reason": "max_quote_per_day"}]
