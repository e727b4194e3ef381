"""Local order book kept in sync with Gate's incremental stream: a pure state machine.

Protocol: gate-v4.md §6.6, method A (``spot.order_book_update`` + REST snapshot with
``with_id=true``) together with the newer ``full: true`` pushes, which replace the book.
Nothing here awaits, reads a clock or touches a socket; the edge feeds inputs and acts on
the returned :class:`BookResult` (fetch a snapshot when ``need_snapshot`` is set).

Rules
-----
1. Until a base exists, incremental updates are buffered (bounded; the oldest fall off).
2. Base from a REST snapshot with id ``B``: drop buffered updates with ``u < B+1``. If the first
   remaining one has ``U > B+1`` the snapshot is older than the stream: ask for another. Else
   set the book and apply the remaining buffered updates by rule 3.
3. An update applies when ``U <= local_id+1 <= u``: normally ``U == local_id+1``; the first one
   after a snapshot straddles it. Any other overlap is applied too, because amounts are
   absolute: every level changed in ``U..u`` is sent with its value at ``u``, so re-setting
   already-applied ones is harmless (ccxt notes ``U`` is at times inconsistent with the
   previous ``u``; a resync there would cost a REST round trip). ``u <= local_id`` is stale or
   a duplicate: ignored.
   ``U > local_id+1`` is a gap: updates were lost.
4. A ``full`` update replaces the book and sets ``local_id = u`` in any state, with no REST
   snapshot; updates buffered before it are older and are dropped.
5. Amounts are absolute: set the level; an amount of zero deletes it.
6. After every change the book must not be crossed (best bid < best ask), else resync.
7. A gap or a crossed book clears the book (nobody may trade on it) and enters RESYNCING.
8. ``opened`` is reported once per BookSync, by the first input that leaves the book LIVE with
   a non-empty ask side (for a new listing: the first asks seen).
9. ``need_snapshot`` is edge-triggered: set once per need. If the fetch fails, the edge retries
   it itself or calls :meth:`BookSync.snapshot_failed` so the next update asks again.

Transitions (state, input, condition -> next state: outcome)
-------------------------------------------------------------
======================  ===========  =============================  ============  ================
state                   input        condition                      next          outcome
======================  ===========  =============================  ============  ================
AWAITING_SNAPSHOT       update       not full                       (same)        BUFFERED
RESYNCING               update       not full                       (same)        BUFFERED
any                     update       full, not crossed              LIVE          FULL_APPLIED
any                     update       full, crossed                  RESYNCING     CROSSED
LIVE                    update       u <= local_id                  LIVE          STALE
LIVE                    update       U <= local_id+1 <= u, ok       LIVE          APPLIED
LIVE                    update       U > local_id+1                 RESYNCING     GAP
LIVE                    update       applied, crossed               RESYNCING     CROSSED
AWAITING / RESYNCING    snapshot     buffered first U > id+1        (same)        SNAPSHOT_TOO_OLD
AWAITING / RESYNCING    snapshot     applies (with buffer), ok      LIVE          SNAPSHOT_APPLIED
AWAITING / RESYNCING    snapshot     buffered chain has a gap       RESYNCING     GAP
AWAITING / RESYNCING    snapshot     crossed after applying         RESYNCING     CROSSED
LIVE                    snapshot     (already synced)               LIVE          SNAPSHOT_IGNORED
======================  ===========  =============================  ============  ================

Hot path (LIVE, chained update): one dict write per level, best price cached per side and
recomputed by a scan only when the best level itself is deleted; no sorting.
"""

from __future__ import annotations

import heapq
from collections import deque
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum
from functools import cache
from typing import Final, TypeAlias

from sniper.core.models import BookSnapshot, BookUpdate, Level

DEFAULT_MAX_BUFFERED: Final = 1024
"""Updates kept while waiting for a snapshot (20 ms stream: ~20 s). Older ones fall off, which
at worst makes the next snapshot look too old and asks for a newer one: safe."""

_ZERO: Final = Decimal(0)

_TopKey: TypeAlias = tuple[Decimal | None, Decimal | None, Decimal | None, Decimal | None]
"""Best bid price and amount, best ask price and amount: compared to detect a top change."""


class BookState(Enum):
    """Where the book is in the sync protocol (see the module's transition table)."""

    AWAITING_SNAPSHOT = "awaiting_snapshot"
    LIVE = "live"
    RESYNCING = "resyncing"


class Outcome(Enum):
    """What one input did to the book."""

    BUFFERED = "buffered"
    APPLIED = "applied"
    STALE = "stale"
    GAP = "gap"
    CROSSED = "crossed"
    FULL_APPLIED = "full_applied"
    SNAPSHOT_APPLIED = "snapshot_applied"
    SNAPSHOT_TOO_OLD = "snapshot_too_old"
    SNAPSHOT_IGNORED = "snapshot_ignored"


@dataclass(frozen=True, slots=True)
class BookResult:
    """Answer to one input. Instances are shared (cached): compare fields, not identity.

    ``need_snapshot``: the edge should fetch ``/spot/order_book?with_id=true`` now.
    ``top_changed``: best bid or best ask (price or amount) differs from before the input.
    ``opened``: the ask side became non-empty for the first time ("book opened").
    """

    outcome: Outcome
    need_snapshot: bool
    top_changed: bool
    opened: bool


@cache
def _result(outcome: Outcome, need_snapshot: bool, top_changed: bool, opened: bool) -> BookResult:
    # Cached so the hot path returns a shared instance instead of building a frozen dataclass.
    return BookResult(outcome, need_snapshot, top_changed, opened)


@dataclass(frozen=True, slots=True)
class BookStatistics:
    """Counters since the BookSync was created."""

    state: BookState
    update_id: int
    updates_applied: int
    updates_buffered: int
    updates_stale: int
    gaps: int
    crossed: int
    resyncs: int
    snapshots_applied: int
    snapshots_too_old: int
    full_pushes: int
    ask_levels: int
    bid_levels: int


class _Side:
    """One side of the book: price -> amount plus the cached best price."""

    __slots__ = ("best", "is_ask", "levels")

    def __init__(self, is_ask: bool) -> None:
        self.is_ask = is_ask
        self.levels: dict[Decimal, Decimal] = {}
        self.best: Decimal | None = None

    def clear(self) -> None:
        self.levels.clear()
        self.best = None

    def top(self) -> Level | None:
        best = self.best
        return None if best is None else (best, self.levels[best])

    def set(self, price: Decimal, amount: Decimal) -> None:
        levels = self.levels
        if amount == _ZERO:
            if levels.pop(price, None) is not None and price == self.best:
                # The only case that needs a scan: the best level itself went away.
                if not levels:
                    self.best = None
                else:
                    self.best = min(levels) if self.is_ask else max(levels)
            return
        levels[price] = amount
        best = self.best
        if best is None or (price < best if self.is_ask else price > best):
            self.best = price

    def depth(self, n: int) -> tuple[Level, ...]:
        levels = self.levels
        prices = heapq.nsmallest(n, levels) if self.is_ask else heapq.nlargest(n, levels)
        return tuple((p, levels[p]) for p in prices)


class BookSync:
    """The local book of one pair, synced by the rules in this module's docstring.

    Feed every ``spot.order_book_update`` to :meth:`on_update` and every REST snapshot to
    :meth:`on_snapshot`; fetch a snapshot whenever a result says ``need_snapshot``.
    """

    __slots__ = (
        "_asks",
        "_bids",
        "_buffer",
        "_ever_had_asks",
        "_n_applied",
        "_n_buffered",
        "_n_crossed",
        "_n_full",
        "_n_gaps",
        "_n_resyncs",
        "_n_snapshots",
        "_n_stale",
        "_n_too_old",
        "_snapshot_requested",
        "_state",
        "_update_id",
        "pair",
    )

    def __init__(self, pair: str, *, max_buffered: int = DEFAULT_MAX_BUFFERED) -> None:
        if max_buffered < 1:
            raise ValueError("max_buffered must be at least 1")
        self.pair = pair
        self._state = BookState.AWAITING_SNAPSHOT
        self._update_id = 0
        self._asks = _Side(is_ask=True)
        self._bids = _Side(is_ask=False)
        self._buffer: deque[BookUpdate] = deque(maxlen=max_buffered)
        self._snapshot_requested = False
        self._ever_had_asks = False
        self._n_applied = 0
        self._n_buffered = 0
        self._n_stale = 0
        self._n_gaps = 0
        self._n_crossed = 0
        self._n_resyncs = 0
        self._n_snapshots = 0
        self._n_too_old = 0
        self._n_full = 0

    # ----------------------------------------------------------------------------- views

    @property
    def state(self) -> BookState:
        """Current sync state."""
        return self._state

    @property
    def update_id(self) -> int:
        """Id of the last change applied (``local_id``); 0 before the first base."""
        return self._update_id

    @property
    def is_live(self) -> bool:
        """True when the book mirrors Gate's and may be traded on."""
        return self._state is BookState.LIVE

    def best_ask(self) -> Level | None:
        """Lowest ask (price, amount), or ``None`` when the ask side is empty."""
        return self._asks.top()

    def best_bid(self) -> Level | None:
        """Highest bid (price, amount), or ``None`` when the bid side is empty."""
        return self._bids.top()

    def asks(self, n: int) -> tuple[Level, ...]:
        """The ``n`` best asks, lowest price first."""
        return self._asks.depth(n)

    def bids(self, n: int) -> tuple[Level, ...]:
        """The ``n`` best bids, highest price first."""
        return self._bids.depth(n)

    def statistics(self) -> BookStatistics:
        """A snapshot of the counters."""
        return BookStatistics(
            state=self._state,
            update_id=self._update_id,
            updates_applied=self._n_applied,
            updates_buffered=self._n_buffered,
            updates_stale=self._n_stale,
            gaps=self._n_gaps,
            crossed=self._n_crossed,
            resyncs=self._n_resyncs,
            snapshots_applied=self._n_snapshots,
            snapshots_too_old=self._n_too_old,
            full_pushes=self._n_full,
            ask_levels=len(self._asks.levels),
            bid_levels=len(self._bids.levels),
        )

    # ---------------------------------------------------------------------------- inputs

    def on_update(self, update: BookUpdate) -> BookResult:
        """Feed one incremental (or ``full``) update from the stream."""
        if update.pair != self.pair:
            self._wrong_pair(update.pair)
        if update.full:
            return self._apply_full(update)
        if self._state is not BookState.LIVE:
            self._buffer.append(update)
            self._n_buffered += 1
            return _result(Outcome.BUFFERED, self._ask_for_snapshot(), False, False)
        before = self._top()
        outcome = self._step(update)
        if outcome is Outcome.STALE:
            return _result(Outcome.STALE, False, False, False)
        return self._finish(outcome, before)

    def on_snapshot(self, snapshot: BookSnapshot) -> BookResult:
        """Feed a REST depth snapshot (``with_id=true``; ``update_id`` is Gate's ``id``)."""
        if snapshot.pair != self.pair:
            self._wrong_pair(snapshot.pair)
        self._snapshot_requested = False
        if self._state is BookState.LIVE:
            # Requested before a ``full`` push synced us; the stream is already ahead of it.
            return _result(Outcome.SNAPSHOT_IGNORED, False, False, False)

        base_id = snapshot.update_id
        buffer = self._buffer
        while buffer and buffer[0].last_id < base_id + 1:
            buffer.popleft()
        if buffer and buffer[0].first_id > base_id + 1:
            self._n_too_old += 1
            return _result(Outcome.SNAPSHOT_TOO_OLD, self._ask_for_snapshot(), False, False)

        before = self._top()
        self._replace(snapshot.asks, snapshot.bids, base_id)
        self._n_snapshots += 1
        if self._is_crossed():
            self._reject_crossed()  # the buffer stays: it may bridge the next snapshot
            return self._finish(Outcome.CROSSED, before)
        pending = tuple(buffer)
        buffer.clear()
        for index, update in enumerate(pending):
            outcome = self._step(update)
            if outcome is Outcome.GAP or outcome is Outcome.CROSSED:
                # Keep what came after the break: it may bridge the next snapshot.
                buffer.extend(pending[index + 1 :])
                return self._finish(outcome, before)
        return self._finish(Outcome.SNAPSHOT_APPLIED, before)

    def snapshot_failed(self) -> None:
        """The edge could not fetch the requested snapshot: ask again on the next input."""
        self._snapshot_requested = False

    # --------------------------------------------------------------------------- helpers

    def _step(self, update: BookUpdate) -> Outcome:
        """Rule 3 for one update while LIVE; may leave the state RESYNCING."""
        next_id = self._update_id + 1
        if update.last_id < next_id:
            self._n_stale += 1
            return Outcome.STALE
        if update.first_id > next_id:
            self._n_gaps += 1
            self._enter_resync()
            self._buffer.append(update)  # may bridge the next snapshot
            return Outcome.GAP
        self._apply_levels(update.asks, update.bids)
        self._update_id = update.last_id
        self._n_applied += 1
        if self._is_crossed():
            self._reject_crossed()
            return Outcome.CROSSED
        return Outcome.APPLIED

    def _finish(self, outcome: Outcome, before: _TopKey) -> BookResult:
        """Build the result of a change: resync requests, top change, the opened signal."""
        top_changed = self._top() != before
        if self._state is not BookState.LIVE:
            return _result(outcome, self._ask_for_snapshot(), top_changed, False)
        opened = False
        if not self._ever_had_asks and self._asks.best is not None:
            self._ever_had_asks = True
            opened = True
        return _result(outcome, False, top_changed, opened)

    def _wrong_pair(self, pair: str) -> None:
        raise ValueError(f"book for {self.pair} fed data for {pair}")

    def _top(self) -> _TopKey:
        # One flat tuple (not two Level tuples): this runs twice per update on the hot path.
        bids = self._bids
        asks = self._asks
        bid = bids.best
        ask = asks.best
        return (
            bid,
            None if bid is None else bids.levels[bid],
            ask,
            None if ask is None else asks.levels[ask],
        )

    def _is_crossed(self) -> bool:
        bid = self._bids.best
        ask = self._asks.best
        return bid is not None and ask is not None and bid >= ask

    def _ask_for_snapshot(self) -> bool:
        if self._snapshot_requested:
            return False
        self._snapshot_requested = True
        return True

    def _apply_levels(self, asks: tuple[Level, ...], bids: tuple[Level, ...]) -> None:
        ask_side = self._asks
        for price, amount in asks:
            ask_side.set(price, amount)
        bid_side = self._bids
        for price, amount in bids:
            bid_side.set(price, amount)

    def _replace(self, asks: tuple[Level, ...], bids: tuple[Level, ...], update_id: int) -> None:
        self._asks.clear()
        self._bids.clear()
        self._apply_levels(asks, bids)
        self._update_id = update_id
        self._state = BookState.LIVE
        self._snapshot_requested = False

    def _apply_full(self, update: BookUpdate) -> BookResult:
        before = self._top()
        self._buffer.clear()  # everything buffered predates the full picture
        self._replace(update.asks, update.bids, update.last_id)
        self._n_full += 1
        if self._is_crossed():
            self._reject_crossed()
            return self._finish(Outcome.CROSSED, before)
        return self._finish(Outcome.FULL_APPLIED, before)

    def _reject_crossed(self) -> None:
        self._n_crossed += 1
        self._enter_resync()

    def _enter_resync(self) -> None:
        self._asks.clear()
        self._bids.clear()
        self._state = BookState.RESYNCING
        self._n_resyncs += 1
