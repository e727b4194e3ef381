"""Plays a scenario: listings appear and open, a market maker quotes, a crowd trades.

Everything is a timed step on one queue, ordered by (time, sequence), so the same scenario and
start time always give the same events (randomness comes from ``random.Random(seed)``).

Per listing (shared/gate-v4.md §5): announce (``open - announce_lead_s``), appear in
``currency_pairs`` with ``initial_status`` and a future ``buy_start``, flip to ``tradable`` at
exactly ``buy_start``, the market maker posts its ladder ``mm_delay_s`` later and re-quotes along
the price path (a spike, then a fade) while it lasts; the crowd sends market orders throughout.
The market maker and the crowd are ordinary users: their trades with anyone are real fills with
events on both sides, and a re-quote whose bids cross a user's resting ask fills it.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import TYPE_CHECKING

from sniper.sim.entities import SimPair
from sniper.sim.events import Announced, SimEvent
from sniper.sim.matching import quantize_down
from sniper.sim.scenarios import (
    EstablishedPair,
    LadderSpec,
    Listing,
    PricePoint,
    Scenario,
    TradeFlow,
)
from sniper.sim.validation import OrderSpec

if TYPE_CHECKING:
    from sniper.sim.engine import SimEngine

_ROBOT_FUNDS = Decimal(10) ** 15
_OLD_SELL_START_S = 30 * 86_400  # pending pairs on Gate show a sell_start long in the past
Step = Callable[[int], list[SimEvent]]


def ladder_prices(
    mid: Decimal, spec: LadderSpec, precision: int
) -> tuple[list[Decimal], list[Decimal]]:
    """``(asks low→high, bids high→low)`` around ``mid``, rounded outwards to ``precision``.

    Levels that round onto the same price are merged; bids that would be ``<= 0`` are dropped.
    """
    quantum = Decimal(1).scaleb(-precision)
    half_spread = spec.spread_pct / 200
    asks: list[Decimal] = []
    bids: list[Decimal] = []
    for i in range(spec.levels):
        offset = half_spread + spec.step_pct * i / 100
        ask = (mid * (1 + offset)).quantize(quantum, rounding=ROUND_CEILING)
        bid = (mid * (1 - offset)).quantize(quantum, rounding=ROUND_FLOOR)
        if not asks or ask > asks[-1]:
            asks.append(ask)
        if bid > 0 and (not bids or bid < bids[-1]):
            bids.append(bid)
    return asks, bids


def mid_at(path: tuple[PricePoint, ...], t_s: float) -> Decimal:
    """The path's multiplier at ``t_s`` seconds after the open, linear between points."""
    if t_s <= path[0].at_s:
        return path[0].mid
    for before, after in itertools.pairwise(path):
        if t_s <= after.at_s:
            span = after.at_s - before.at_s
            weight = Decimal(str(round((t_s - before.at_s) / span, 6))) if span else Decimal(1)
            return before.mid + (after.mid - before.mid) * weight
    return path[-1].mid


def announcement(base: str, quote: str, open_ms: int, seq: int) -> Announced:
    """A listing announcement in Gate's style; the time is in the title and the brief (§5)."""
    when = datetime.fromtimestamp(open_ms / 1000, tz=UTC)
    day = when.day
    suffix = "th" if 11 <= day % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    title = (
        f"Gate will commence {base} ({base}) Trading at {when:%H:%M:%S} UTC "
        f"{day}{suffix} {when:%B %Y}"
    )
    brief = (
        f"Gate will list {base} ({base}) in the Innovation Zone. {base}/{quote} spot trading "
        f"opens at {when:%Y-%m-%d %H:%M:%S} UTC."
    )
    return Announced(
        title=title,
        brief=brief,
        published_ms=0,  # replaced by the caller with the publication time
        origin_url=f"https://www.gate.com/announcements/article/{40000 + seq}",
    )


class ScenarioScript:
    """The timed steps of one scenario, run by :meth:`SimEngine.advance`."""

    def __init__(self, engine: SimEngine, scenario: Scenario, start_ms: int) -> None:
        self._engine = engine
        self._scenario = scenario
        self._start_ms = start_ms
        self._rng = random.Random(scenario.seed)
        self._queue: list[tuple[int, int, Step]] = []
        self._seq = 0
        robot_funds = self._robot_balances()
        self.mm_uid = engine.add_user(
            "sim-market-maker", "sim-market-maker-secret", robot_funds, robot=True
        )
        self.crowd_uid = engine.add_user("sim-crowd", "sim-crowd-secret", robot_funds, robot=True)
        for item in scenario.established:
            self._setup_established(item)
        for index, listing in enumerate(scenario.listings):
            self._setup_listing(listing, index)

    def next_due_ms(self) -> int | None:
        """Time of the next step, if any."""
        return self._queue[0][0] if self._queue else None

    def run_until(self, now_ms: int) -> list[SimEvent]:
        """Run every step due at or before ``now_ms``, in time order."""
        events: list[SimEvent] = []
        while self._queue and self._queue[0][0] <= now_ms:
            due_ms, _, step = heapq.heappop(self._queue)
            events.extend(step(due_ms))
        return events

    # ---- setup ----------------------------------------------------------------------------

    def _robot_balances(self) -> dict[str, Decimal]:
        currencies: set[str] = set()
        for item in self._scenario.established:
            currencies.update((item.rules.base, item.rules.quote))
        for listing in self._scenario.listings:
            currencies.update((listing.rules.base, listing.rules.quote))
        return dict.fromkeys(sorted(currencies), _ROBOT_FUNDS)

    def _at(self, due_ms: int, step: Step) -> None:
        heapq.heappush(self._queue, (due_ms, self._seq, step))
        self._seq += 1

    def _ms(self, seconds: float) -> int:
        return round(seconds * 1000)

    def _sim_pair(
        self, rules_owner: EstablishedPair | Listing, status: str, buy_start_s: int
    ) -> SimPair:
        rules = rules_owner.rules
        start_s = self._start_ms // 1000
        return SimPair(
            pair=rules.pair,
            base=rules.base,
            quote=rules.quote,
            trade_status=status,
            buy_start_s=buy_start_s,
            sell_start_s=start_s - _OLD_SELL_START_S,
            amount_precision=rules.amount_precision,
            precision=rules.precision,
            min_base_amount=rules.min_base_amount,
            min_quote_amount=rules.min_quote_amount,
            max_base_amount=rules.max_base_amount,
            max_quote_amount=rules.max_quote_amount,
            fee_pct=self._scenario.taker_fee * 100,
        )

    def _setup_established(self, item: EstablishedPair) -> None:
        start_s = self._start_ms // 1000
        pair = self._sim_pair(item, "tradable", start_s - _OLD_SELL_START_S)
        self._engine.register_pair(pair)
        # The opening ladder is the world as it was before the simulation started: no events.
        self._requote(pair.pair, item.mid, item.ladder, self._start_ms)
        name, mid, ladder = pair.pair, item.mid, item.ladder
        if item.requote_every_s > 0:
            every_ms = max(1, self._ms(item.requote_every_s))
            self._repeat(
                self._start_ms + every_ms, every_ms, lambda t: self._requote(name, mid, ladder, t)
            )
        if item.flow is not None:
            self._schedule_flow(name, item.flow, self._start_ms, lambda _t: 0)

    def _setup_listing(self, listing: Listing, index: int) -> None:
        appear_ms = self._start_ms + self._ms(listing.appear_at_s)
        # Gate's buy_start is whole seconds; the simulator opens exactly on it.
        open_s = math.ceil((appear_ms + self._ms(listing.opens_after_s)) / 1000)
        open_ms = open_s * 1000
        pair = self._sim_pair(listing, listing.initial_status, open_s)
        pair.visible = False
        self._engine.register_pair(pair)
        name = pair.pair
        if listing.announce_lead_s is not None:
            published_ms = max(self._start_ms, open_ms - self._ms(listing.announce_lead_s))
            note = announcement(pair.base, pair.quote, open_ms, index)
            self._at(published_ms, lambda t: [_published(note, t)])
        self._at(appear_ms, lambda _t: self._engine.list_pair(name))
        self._at(open_ms, lambda _t: self._engine.set_trade_status(name, "tradable"))
        quote_from_ms = open_ms + self._ms(listing.mm_delay_s)
        path_end_ms = open_ms + self._ms(listing.price_path[-1].at_s)
        every_ms = max(1, self._ms(listing.requote_every_s))

        def requote(now_ms: int) -> list[SimEvent]:
            t_s = (now_ms - open_ms) / 1000
            mid = listing.open_price * mid_at(listing.price_path, t_s)
            return self._requote(name, mid, listing.ladder, now_ms)

        def requote_along_path(now_ms: int) -> list[SimEvent]:
            events = requote(now_ms)
            if now_ms < path_end_ms:
                self._at(min(now_ms + every_ms, path_end_ms), requote_along_path)
            return events

        self._at(quote_from_ms, requote_along_path)
        if listing.flow is not None:
            path = listing.price_path

            def trend(now_ms: int) -> int:
                t_s = (now_ms - open_ms) / 1000
                ahead = mid_at(path, t_s + 0.001) - mid_at(path, t_s)
                return (ahead > 0) - (ahead < 0)

            self._schedule_flow(name, listing.flow, quote_from_ms, trend)

    # ---- steps ----------------------------------------------------------------------------

    def _repeat(self, first_ms: int, every_ms: int, step: Step) -> None:
        def again(now_ms: int) -> list[SimEvent]:
            self._at(now_ms + every_ms, again)
            return step(now_ms)

        self._at(first_ms, again)

    def _requote(self, pair: str, mid: Decimal, ladder: LadderSpec, now_ms: int) -> list[SimEvent]:
        """Replace the market maker's ladder on ``pair`` with one around ``mid``."""
        engine = self._engine
        record = engine.pair_record(pair)
        events: list[SimEvent] = []
        engine.cancel_user_orders(self.mm_uid, pair, now_ms, events)
        amount = quantize_down(ladder.amount, record.amount_precision)
        if amount > 0:
            asks, bids = ladder_prices(mid, ladder, record.precision)
            # Bids go first: when the mid has risen, they take any resting asks below it (a
            # user's take-profit fills on the spike), before the new asks go up.
            for side, prices in (("buy", bids), ("sell", asks)):
                for price in prices:
                    spec = OrderSpec(
                        pair=pair,
                        side=side,
                        type="limit",
                        time_in_force="gtc",
                        price=price,
                        amount=amount,
                        text="t-sim-mm",
                        account="spot",
                        iceberg=Decimal(0),
                    )
                    engine.submit(self.mm_uid, spec, now_ms, events)
        engine.flush(pair, now_ms, events)
        return events

    def _schedule_flow(
        self, pair: str, flow: TradeFlow, from_ms: int, trend: Callable[[int], int]
    ) -> None:
        every_ms = max(1, self._ms(flow.every_s))

        def trade(now_ms: int) -> list[SimEvent]:
            return self._crowd_trade(pair, flow, trend(now_ms), now_ms)

        self._repeat(from_ms + every_ms, every_ms, trade)

    def _crowd_trade(self, pair: str, flow: TradeFlow, trend: int, now_ms: int) -> list[SimEvent]:
        """One market order from the crowd, leaning with the price path's direction."""
        engine = self._engine
        record = engine.pair_record(pair)
        if not record.visible or not record.can_buy:
            return []
        book = engine.book(pair)
        buy = self._rng.random() < 0.5 + 0.3 * trend
        span = flow.quote_max - flow.quote_min
        quote = flow.quote_min + span * Decimal(str(round(self._rng.random(), 4)))
        quote = quote.quantize(Decimal("0.01"))
        if buy:
            amount = quote
        else:
            bid = book.best_bid()
            if bid is None:
                return []
            amount = quantize_down(quote / bid, record.amount_precision)
        if amount <= 0:
            return []
        spec = OrderSpec(
            pair=pair,
            side="buy" if buy else "sell",
            type="market",
            time_in_force="ioc",
            price=None,
            amount=amount,
            text="t-sim-crowd",
            account="spot",
            iceberg=Decimal(0),
        )
        events: list[SimEvent] = []
        engine.submit(self.crowd_uid, spec, now_ms, events)
        engine.flush(pair, now_ms, events)
        return events


def _published(note: Announced, published_ms: int) -> Announced:
    return Announced(
        title=note.title,
        brief=note.brief,
        published_ms=published_ms,
        origin_url=note.origin_url,
    )
