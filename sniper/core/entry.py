"""The entry state machine of one listing: when to fire, how much, and when to stop.

Rules (one screen)::

    state        input                         -> state        output
    ARMED        top(ask) within caps, budget  -> IN_FLIGHT    Fire(text, price, amount)
    ARMED        top(ask) but cap/size fails   -> ARMED        (nothing; waits for a better top)
    ARMED        tick past deadline            -> DONE         EntryFinished("deadline")
    IN_FLIGHT    result(order)                 -> ARMED|DONE   (DONE when budget/attempts spent)
    IN_FLIGHT    rejected(retryable label)     -> ARMED        (next top may fire again)
    IN_FLIGHT    rejected(final label)         -> DONE         EntryFinished(label)
    IN_FLIGHT    unknown outcome               -> RECONCILING  Reconcile(text)
    RECONCILING  result(order) for that text   -> ARMED|DONE
    RECONCILING  reconciled_absent(text)       -> ARMED|DONE   (the order never existed)
    any          halt()                        -> DONE         EntryFinished("halted")
    DONE         anything                      -> DONE

Only one buy is ever in flight, so the quote budget can never be exceeded: each new order is
sized from ``quote_budget - quote_spent`` where ``quote_spent`` counts every fill reported so far.
Client ids are allocated from a fixed, journaled list (``texts``), one per attempt; a restart
never reuses them for a new order (see ``sniper.app.session``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal
from enum import StrEnum

from sniper.core.models import Order, OrderStatus, PairInfo
from sniper.core.sizing import EntryPlan, plan_entry

# Labels that can be transient in the first instants of a listing (gate-v4.md section 5).
RETRYABLE_LABELS = frozenset(
    {
        "INVALID_CURRENCY_PAIR",
        "TRADE_RESTRICTED",
        "ORDER_BOOK_NOT_FOUND",
        "TOO_MANY_REQUESTS",
        "TOO_BUSY",
        "SERVER_ERROR",
        "INTERNAL",
        "FOK_NOT_FILL",
        "INVALID_PARAM_VALUE",  # "not open yet" on some pairs; bounded by max_attempts
    }
)


REFIRE_MIN_FRACTION = Decimal("0.1")
"""After a fill, a leftover budget below this fraction of ``quote_budget`` ends the entry."""


class EntryState(StrEnum):
    ARMED = "armed"
    IN_FLIGHT = "in_flight"
    RECONCILING = "reconciling"
    DONE = "done"


@dataclass(frozen=True, slots=True)
class EntryRules:
    """Caps for one listing's entry (from ``entry.*`` config)."""

    quote_budget: Decimal
    max_slippage_pct: Decimal
    max_price: Decimal | None
    deadline_ms: int
    """Exchange-time ms after which no new buy is sent."""


@dataclass(frozen=True, slots=True)
class Fire:
    """Send this buy now (IOC limit)."""

    text: str
    price: Decimal
    amount: Decimal
    attempt: int


@dataclass(frozen=True, slots=True)
class Reconcile:
    """The outcome of ``text`` is unknown: look it up before anything else is sent."""

    text: str


@dataclass(frozen=True, slots=True)
class EntryFinished:
    """No more buys for this listing."""

    reason: str
    quote_spent: Decimal
    base_filled: Decimal


class EntryMachine:
    """Decides each buy of one listing; pure (prices and times are arguments)."""

    def __init__(self, pair: PairInfo, rules: EntryRules, texts: tuple[str, ...]) -> None:
        if not texts:
            raise ValueError("at least one client id is needed")
        self.pair = pair
        self.rules = rules
        self.texts = texts
        self.state = EntryState.ARMED
        self.attempt = 0
        self.quote_spent = Decimal(0)
        self.base_filled = Decimal(0)
        self.finish_reason: str | None = None
        self._in_flight: str | None = None
        self._seen_orders: dict[str, tuple[Decimal, Decimal]] = {}

    @property
    def in_flight_text(self) -> str | None:
        return self._in_flight

    def budget_left(self) -> Decimal:
        return self.rules.quote_budget - self.quote_spent

    def plan(self, best_ask: Decimal) -> EntryPlan | None:
        """The order that would be sent for ``best_ask`` now, or ``None`` (pure peek)."""
        result = plan_entry(
            self.pair,
            best_ask,
            quote_budget=self.budget_left(),
            max_slippage_pct=self.rules.max_slippage_pct,
            max_price=self.rules.max_price,
        )
        return result if isinstance(result, EntryPlan) else None

    def on_top(self, best_ask: Decimal | None, now_ms: int) -> Fire | EntryFinished | None:
        """A new best ask was seen. Returns what to do, if anything."""
        if self.state is not EntryState.ARMED:
            return None
        if now_ms > self.rules.deadline_ms:
            return self._finish("deadline")
        if best_ask is None:
            return None
        planned = self.plan(best_ask)
        if planned is None:
            return None
        if self.attempt == 0:
            # The cap is anchored to the first ask: a re-fire after a partial fill ate the
            # book must not pay max_slippage_pct above whatever ask is left then.
            cap = self.rules.max_price
            self.rules = replace(self.rules, max_price=planned.price if cap is None
                                 else min(cap, planned.price))
        text = self.texts[self.attempt]
        self.attempt += 1
        self.state = EntryState.IN_FLIGHT
        self._in_flight = text
        return Fire(text, planned.price, planned.amount, self.attempt)

    def on_tick(self, now_ms: int) -> EntryFinished | None:
        if self.state is EntryState.ARMED and now_ms > self.rules.deadline_ms:
            return self._finish("deadline")
        return None

    def on_result(self, order: Order) -> EntryFinished | None:
        """A final answer (REST/WS reply or ``spot.orders`` push) for one of our buys."""
        if order.text not in self.texts:
            return None
        previous = self._seen_orders.get(order.text, (Decimal(0), Decimal(0)))
        current = (order.filled_total, order.filled_amount)
        if current[0] > previous[0] or current[1] > previous[1]:
            self.quote_spent += current[0] - previous[0]
            self.base_filled += current[1] - previous[1]
            self._seen_orders[order.text] = current
        if order.status is OrderStatus.OPEN:
            return None  # an IOC is never left open; a push of the "put" event
        if order.text == self._in_flight:
            self._in_flight = None
            if self.state in (EntryState.IN_FLIGHT, EntryState.RECONCILING):
                return self._after_attempt()
        return None

    def on_rejected(self, text: str, label: str | None) -> EntryFinished | None:
        """Gate refused the buy ``text`` (it had no effect)."""
        if text != self._in_flight:
            return None
        self._in_flight = None
        if label in RETRYABLE_LABELS or label is None:
            return self._after_attempt()
        return self._finish(label or "rejected")

    def on_unknown(self, text: str) -> Reconcile | None:
        """No answer for ``text``: it may exist. Never assume it was rejected."""
        if text != self._in_flight:
            return None
        self.state = EntryState.RECONCILING
        return Reconcile(text)

    def on_reconciled_absent(self, text: str) -> EntryFinished | None:
        """Reconciliation proved ``text`` never reached the book."""
        if text != self._in_flight or self.state is not EntryState.RECONCILING:
            return None
        self._in_flight = None
        return self._after_attempt()

    def halt(self, reason: str = "halted") -> EntryFinished | None:
        if self.state is EntryState.DONE:
            return None
        if self.state is not EntryState.ARMED:
            # an order is out: stop after its answer, but never send another
            self.attempt = len(self.texts)
            return None
        return self._finish(reason)

    def _after_attempt(self) -> EntryFinished | None:
        if self.attempt >= len(self.texts):
            return self._finish("attempts")
        # Crumbs are not worth the wait: the take-profit is placed only once the entry is
        # done, and a leftover below REFIRE_MIN_FRACTION of the budget would hold it back.
        floor = max(self.pair.min_quote_amount or Decimal(0),
                    self.rules.quote_budget * REFIRE_MIN_FRACTION)
        if self.budget_left() <= 0 or (self.quote_spent > 0 and self.budget_left() < floor):
            return self._finish("budget")
        if self.budget_left() < (self.pair.min_quote_amount or Decimal(0)):
            return self._finish("budget")
        self.state = EntryState.ARMED
        return None

    def _finish(self, reason: str) -> EntryFinished:
        self.state = EntryState.DONE
        self.finish_reason = reason
        return EntryFinished(reason, self.quote_spent, self.base_filled)
