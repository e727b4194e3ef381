"""Looking after a listing's orders when the private stream falls silent.

Gate pushes our trades on ``spot.usertrades`` and our orders on ``spot.orders``; while that
connection is down (or a push is lost) nothing says an order filled. Two checks cover it:

- **fill backfill**: when orders report more filled than the trades we hold account for, the
  trades' pushes are late or lost, so ``/spot/my_trades`` is asked after a few waits
  (fills are deduplicated by trade id, so a late push and a lookup never count twice);
- **resting-sell audit**: a resting take-profit is looked up every :data:`SELL_AUDIT_MS`,
  since its fill may happen while the stream is down and no push would ever say so.

:class:`SessionUpkeep` is a part of :class:`~sniper.app.session.ListingSession` and works
through it: what it finds goes back in by ``on_order`` / ``on_fill`` like any push.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import TYPE_CHECKING

import structlog

from sniper.core import exits as ex
from sniper.core.models import Order
from sniper.errors import ExchangeError

if TYPE_CHECKING:
    from sniper.app.session import ListingSession

log = structlog.get_logger("sniper.session")

FILL_BACKFILL_DELAYS_S = (0.3, 1.0, 3.0)
"""When orders report more filled than our trades say, the trades' pushes are late or lost
(a dropped private connection): ask ``/spot/my_trades`` after each of these waits."""

SELL_AUDIT_MS = 2_000
"""A resting sell is looked up this often: its fill may happen while the private stream is
down, and no push would ever say so."""


class SessionUpkeep:
    """The fill backfill and resting-sell audit of one :class:`ListingSession`."""

    __slots__ = ("_auditing", "_backfilling", "_last_audit_ms", "_sell_filled", "_session")

    def __init__(self, session: ListingSession) -> None:
        self._session = session
        self._sell_filled: dict[str, Decimal] = {}  # sell order id -> filled, as reported
        self._backfilling = False
        self._auditing = False
        self._last_audit_ms = 0

    def note_sell(self, order: Order) -> None:
        """Remember how much one of our sells reports filled (never decreasing)."""
        self._sell_filled[order.id] = max(order.filled_amount,
                                          self._sell_filled.get(order.id, Decimal(0)))

    def fills_missing(self) -> bool:
        """Orders reported fills whose trades have not reached us."""
        s = self._session
        if s.entry.base_filled > s.position.base_bought:
            return True
        return any(filled > s.position.sold_by_order(oid)
                   for oid, filled in self._sell_filled.items())

    def check_fills_soon(self) -> None:
        """Start a backfill if trades are missing (one at a time; never while replaying)."""
        if self._session.replaying or self._backfilling or not self.fills_missing():
            return
        self._backfilling = True
        self._session._spawn(self._backfill_fills())

    def on_tick(self, now_ms: int) -> None:
        """Audit the resting take-profit when one is due (one lookup at a time)."""
        s = self._session
        live = s.exit.live_sell
        if (live is not None and s.exit.state is ex.ExitState.TP_RESTING
                and not self._auditing and now_ms - self._last_audit_ms >= SELL_AUDIT_MS):
            self._last_audit_ms = now_ms
            self._auditing = True
            s._spawn(self._audit_sell(live))

    async def _backfill_fills(self) -> None:
        """Fetch our trades when their pushes do not come (deduplicated by trade id)."""
        s = self._session
        try:
            for delay in FILL_BACKFILL_DELAYS_S:
                await asyncio.sleep(delay)
                if not self.fills_missing():
                    return
                try:
                    fills = await s.edges.execution.my_fills(s.pair.pair)
                except ExchangeError as exc:
                    log.warning("fill backfill failed", pair=s.pair.pair, error=str(exc))
                    continue
                for fill in sorted(fills, key=lambda f: (f.time_ms, f.trade_id)):
                    s.on_fill(fill)
        finally:
            self._backfilling = False

    async def _audit_sell(self, text: str) -> None:
        """Look a resting sell up (a missed fill or cancel); absence proves nothing here."""
        s = self._session
        try:
            found = await s.edges.execution.find_orders(s.pair.pair, frozenset({text}))
        except ExchangeError as exc:
            log.warning("sell audit failed", text=text, error=str(exc))
            return
        finally:
            self._auditing = False
        for order in found:
            s.on_order(order)
