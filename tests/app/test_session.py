"""ListingSession with in-memory edges: the decisions reach the exchange exactly once."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from sniper.app.journal import Journal
from sniper.app.ports import Handlers
from sniper.app.recovery import recover_sessions
from sniper.app.session import ListingSession, SessionSettings
from sniper.config import parse_config
from sniper.core.entry import EntryState
from sniper.errors import InvalidOrderError, OutcomeUnknownError
from tests.app.fakes import PAIR, FakeExchange, FakeMarket, fake_edges, settle

SETTINGS = SessionSettings.from_config(
    parse_config(
        {
            "entry": {"quote_amount": "20", "max_attempts": 3},
            "exit": {"take_profit_pct": "30", "stop_loss_pct": "20"},
        }
    ),
    run_id="run1",
)


class World:
    def __init__(self, tmp: Path) -> None:
        self.exchange = FakeExchange()
        self.market = FakeMarket([PAIR])
        self.edges = fake_edges(self.exchange, self.market)
        self.journal = Journal.in_dir(tmp)
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.fatal: list[BaseException] = []
        self.now_ms = 2_000_000

    def session(self, settings: SessionSettings = SETTINGS) -> ListingSession:
        s = ListingSession.arm(
            PAIR,
            settings,
            self.edges,
            self.journal,
            wall_ms=lambda: self.now_ms,
            mono_ns=lambda: 0,
            emit=lambda k, d: self.events.append((k, d)),
            on_fatal=self.fatal.append,
        )
        self.bind(s)
        return s

    def bind(self, s: ListingSession) -> None:
        self.edges.bind(
            Handlers(
                on_top=lambda *a: None,
                on_order=s.on_order,
                on_fill=s.on_fill,
                on_balance=s.on_balance,
            )
        )

    def kinds(self) -> list[str]:
        return [e.kind for e in self.journal.events()]


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path)


ASK = (Decimal("0.1000"), Decimal("1000"))
BID = (Decimal("0.0990"), Decimal("1000"))


async def test_arm_journals_ids_before_anything_is_sent(world: World) -> None:
    s = world.session()
    assert world.kinds() == ["armed"]
    armed = next(world.journal.events())
    assert armed.data["texts"] == list(s.entry.texts)
    assert len(set(s.entry.texts)) == 3
    assert world.exchange.fired == []


async def test_first_ask_fires_capped_buy_then_take_profit_for_net_held(world: World) -> None:
    s = world.session()
    s.on_top(BID, ASK, recv_ns=1, opened=True)
    await settle(s)
    ((_req, price, amount),) = world.exchange.fired
    assert price == Decimal("0.11")  # ask * 1.10
    assert price * amount <= Decimal("20")
    assert amount == Decimal("181.81")
    # the fill used the whole budget less rounding: entry done, TP placed for held-after-fee
    assert s.entry.state is EntryState.DONE
    (tp,) = world.exchange.placed
    held = amount - amount * Decimal("0.002")
    assert tp.side == "sell"
    assert tp.time_in_force == "gtc"
    assert tp.amount == held.quantize(Decimal("0.01"), rounding="ROUND_DOWN")
    assert tp.amount <= held
    assert tp.price >= Decimal("0.11") * Decimal("1.3")
    kinds = world.kinds()
    assert kinds.index("buy_sent") < kinds.index("entry_done") < kinds.index("sell_sent")


async def test_tp_fill_closes_the_position(world: World) -> None:
    s = world.session()
    s.on_top(BID, ASK, recv_ns=1, opened=True)
    await settle(s)
    world.exchange.fill_resting(world.exchange.placed[0].text)
    await settle(s)
    assert s.closed
    assert s.close_reason == "take_profit"
    assert "closed" in world.kinds()


async def test_unknown_outcome_is_reconciled_never_resent(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ListingSession, "RECONCILE_DELAYS_S", (0.0, 0.0, 0.0))
    world.exchange.fire_answers = [OutcomeUnknownError("silence", text="x")]
    s = world.session()
    s.on_top(BID, ASK, recv_ns=1, opened=True)
    await settle(s)
    # not on the exchange (the fake raised before recording an order): proven absent, so the
    # next top may use the *next* id; the first id is never sent again
    assert s.entry.state is EntryState.ARMED
    s.on_top(BID, ASK, recv_ns=2, opened=False)
    await settle(s)
    texts = [req.text for req, _, _ in world.exchange.fired]
    assert texts == [s.entry.texts[0], s.entry.texts[1]]


async def test_final_rejection_ends_entry_without_position(world: World) -> None:
    world.exchange.fire_answers = [InvalidOrderError("bad", label="BALANCE_NOT_ENOUGH")]
    s = world.session()
    s.on_top(BID, ASK, recv_ns=1, opened=True)
    await settle(s)
    assert s.entry.state is EntryState.DONE
    assert world.exchange.placed == []
    assert s.closed
    assert s.close_reason == "no_fill"


async def test_restart_after_fill_places_exactly_one_tp_and_never_buys(
    world: World, tmp_path: Path
) -> None:
    s = world.session()
    s.on_top(BID, ASK, recv_ns=1, opened=True)
    await settle(s)
    assert len(world.exchange.placed) == 1
    # crash: rebuild from the journal with the same exchange state
    sessions = list(
        recover_sessions(
            world.journal,
            SETTINGS,
            world.edges,
            wall_ms=lambda: world.now_ms,
            mono_ns=lambda: 0,
            emit=lambda k, d: None,
            on_fatal=world.fatal.append,
        )
    )
    (again,) = sessions
    world.bind(again)
    await again.reconcile()
    again.on_top(BID, ASK, recv_ns=3, opened=False)
    await settle(again)
    assert len(world.exchange.fired) == 1  # never a second buy
    assert len(world.exchange.placed) == 1  # the resting TP is adopted, not re-placed
    assert again.entry.state is EntryState.DONE


async def test_restart_with_tp_journaled_but_never_sent_places_it_once(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = world.session()

    async def die_while_sending(request: Any) -> Any:
        raise asyncio.CancelledError  # the process died between journal and send

    monkeypatch.setattr(world.exchange, "place", die_while_sending)
    s.on_top(BID, ASK, recv_ns=1, opened=True)
    await settle(s)
    assert world.kinds()[-1] == "sell_sent"
    journaled_tp = list(world.journal.events())[-1].data["text"]
    monkeypatch.undo()

    (again,) = recover_sessions(
        world.journal,
        SETTINGS,
        world.edges,
        wall_ms=lambda: world.now_ms,
        mono_ns=lambda: 0,
        emit=lambda k, d: None,
        on_fatal=world.fatal.append,
    )
    world.bind(again)
    await again.reconcile()
    await settle(again)
    assert len(world.exchange.fired) == 1
    assert [p.text for p in world.exchange.placed] == [journaled_tp]


async def test_busy_window_spins_from_lead_until_the_first_buy(world: World) -> None:
    s = world.session()
    start_ms = PAIR.buy_start_s * 1000
    world.now_ms = start_ms - 2_000
    assert not s.busy_window_due(world.now_ms)  # 1 s lead (config default)
    world.now_ms = start_ms - 900
    assert s.busy_window_due(world.now_ms)
    task = asyncio.ensure_future(s.busy_window())
    for _ in range(200):
        await asyncio.sleep(0)
    assert not task.done()
    assert not s.busy_window_due(world.now_ms)  # already spinning: never two windows
    assert world.exchange.rehearsed >= 2
    assert world.exchange.fired == []  # rehearsal never sends
    s.on_top(BID, ASK, recv_ns=1, opened=True)  # the book opens: the window ends
    spins = await asyncio.wait_for(task, 1)
    assert spins >= 200
    assert len(world.exchange.fired) == 1


async def test_busy_window_ends_by_time_without_an_ask(world: World) -> None:
    s = world.session()
    world.now_ms = PAIR.buy_start_s * 1000 + int(ListingSession.BUSY_AFTER_START_S * 1000) + 1
    assert not s.busy_window_due(world.now_ms)
    assert await asyncio.wait_for(s.busy_window(), 1) == 0


async def test_buy_start_policy_fires_at_buy_start_at_the_price_cap(world: World) -> None:
    settings = SessionSettings.from_config(
        parse_config(
            {"entry": {"quote_amount": "20", "fire_policy": "buy_start", "max_price": "0.12"}}
        ),
        run_id="run1",
    )
    s = world.session(settings)
    world.now_ms = PAIR.buy_start_s * 1000 - 1
    s.on_tick(world.now_ms)
    await settle(s)
    assert world.exchange.fired == []  # not before buy_start, and no ask has been seen
    world.now_ms = PAIR.buy_start_s * 1000
    s.on_tick(world.now_ms)
    await settle(s)
    ((_req, price, amount),) = world.exchange.fired
    assert price == Decimal("0.12")
    assert amount == Decimal("166.66")  # 20 / 0.12 rounded down to 2 places
    s.on_tick(world.now_ms + 100)
    await settle(s)
    assert len(world.exchange.fired) == 1  # once


async def test_first_ask_policy_never_fires_on_time_alone(world: World) -> None:
    s = world.session()
    world.now_ms = PAIR.buy_start_s * 1000 + 10
    s.on_tick(world.now_ms)
    await settle(s)
    assert world.exchange.fired == []
