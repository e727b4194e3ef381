"""The exit state machine of one position: take profit, stop loss, trailing stop, max hold.

Rules (one screen; "advance" = decide again from the position once nothing is in flight)::

    state          input                                  -> state          output
    FLAT           fill(buy)                              -> HOLDING
    FLAT           entry_done (nothing filled or due)     -> CLOSED         Closed("no_fill")
    HOLDING        entry_done / fill / tick, TP sellable  -> TP_PENDING     PlaceSell(gtc)
    HOLDING        entry_done, held is dust               -> CLOSED         Closed("dust")
    HOLDING|TP_*   top: bid <= avg*(1-sl%), bid <= high*(1-trail%); tick: held >= max_hold_s
                                                          -> (exit set)     ExitTriggered(reason)
    TP_PENDING     place accepted / order open            -> TP_RESTING
    TP_PENDING     place unknown                          -> TP_PENDING     ReconcileOrder
    TP_PENDING     place rejected / reconciled absent     -> HOLDING        (retry on next tick)
    TP_RESTING     exit set, or more held than the TP     -> TP_CANCELLING  CancelOrder
    TP_RESTING     order cancelled by someone else        -> HOLDING        (re-place, <= N times)
    TP_RESTING     order closed (filled)                  -> HOLDING        -> advance
    TP_CANCELLING  order finished (cancelled or filled)   -> HOLDING        -> advance
    TP_CANCELLING  cancel rejected / unknown              -> TP_CANCELLING  ReconcileOrder
    TP_CANCELLING  reconciled: still open                 -> TP_CANCELLING  CancelOrder
    STOPPING       exit set, bid known, sellable          -> SELLING        PlaceSell(ioc)
    SELLING        order finished                         -> STOPPING       -> advance
    SELLING        place unknown                          -> SELLING        ReconcileOrder
    SELLING        place rejected / reconciled absent     -> STOPPING       (next top retries)
    *_PENDING|SELLING rejected BALANCE_NOT_ENOUGH         -> BALANCE_CHECK  ReadBalance
    BALANCE_CHECK  balance                                -> HOLDING|STOPPING -> advance
    BALANCE_CHECK  no balance for reconcile_after_ms      -> BALANCE_CHECK  ReadBalance
    any            order taken as absent/rejected is open -> (same)         CancelOrder
    HOLDING|STOPPING  nothing sellable left               -> CLOSED         Closed(reason)
    in flight      no answer for reconcile_after_ms       -> (same)         ReconcileOrder
    CLOSED         anything                               -> CLOSED

Invariants: at most one sell is live (placed and not known finished); a TP is cancelled and
confirmed finished before anything else is placed, so a sell never exceeds what is held net of
fills the exchange reported but whose trades have not arrived yet. An unknown outcome is never
taken as a rejection: the machine waits for the order's update or a reconcile answer.

Decisions: late buy fills after the TP is placed **cancel and replace** it (one resting sell,
not several); a TP cancelled by someone else is re-placed at most ``max_tp_replacements`` times
(a human who keeps cancelling it means "stop"); stops stay armed either way. ``now_ms`` is
exchange wall time (the same clock as fill ``time_ms``), never local monotonic time.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Final, Literal, TypeAlias

from sniper.core import sizing
from sniper.core.clientid import Purpose, make_text
from sniper.core.ledger import Position
from sniper.core.models import Balance, BookTop, Fill, Order, OrderRequest, OrderStatus, PairInfo

_ZERO: Final = Decimal(0)
_HUNDRED: Final = Decimal(100)
BALANCE_LABELS: Final = frozenset({"BALANCE_NOT_ENOUGH"})


class ExitState(StrEnum):
    """Where the exit of one position stands (see the table in the module docstring)."""

    FLAT = "flat"
    HOLDING = "holding"
    TP_PENDING = "tp_pending"
    TP_RESTING = "tp_resting"
    TP_CANCELLING = "tp_cancelling"
    STOPPING = "stopping"
    SELLING = "selling"
    BALANCE_CHECK = "balance_check"
    CLOSED = "closed"


# States in which the live order owes us an answer (placement, final state or cancel).
_AWAITING_ANSWER: Final = frozenset(
    {ExitState.TP_PENDING, ExitState.TP_CANCELLING, ExitState.SELLING}
)


@dataclass(frozen=True, slots=True)
class ExitRules:
    """Exit settings (``exit.*`` config). Percentages are percent (``"30"`` = 30 %)."""

    take_profit_pct: Decimal
    stop_loss_pct: Decimal | None
    trailing_stop_pct: Decimal | None
    max_hold_s: int | None
    stop_slippage_pct: Decimal
    max_tp_replacements: int = 3
    max_tp_failures: int = 5
    max_balance_reads: int = 3
    reconcile_after_ms: int = 5_000


# -- answers fed in ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Accepted:
    """The exchange accepted the request (placement: the order exists with ``order_id``)."""

    order_id: str = ""


@dataclass(frozen=True, slots=True)
class Rejected:
    """The exchange refused the request; it had no effect. ``label`` is Gate's error label."""

    label: str | None


@dataclass(frozen=True, slots=True)
class Unknown:
    """Sent, no answer: the request may or may not have taken effect."""


RequestResult: TypeAlias = Accepted | Rejected | Unknown

# -- actions and events out -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PlaceSell:
    """Place a limit sell (``gtc`` take profit or ``ioc`` stop sell)."""

    text: str
    pair: str
    amount: Decimal
    price: Decimal
    time_in_force: Literal["gtc", "ioc"]
    purpose: Literal["take_profit", "stop"]

    def request(self) -> OrderRequest:
        """The order to send."""
        return OrderRequest(
            pair=self.pair, side="sell", amount=self.amount, price=self.price, text=self.text,
            time_in_force=self.time_in_force,
        )


@dataclass(frozen=True, slots=True)
class CancelOrder:
    """Cancel an order. ``order_id`` is the client ``text`` while the numeric id is unknown
    (Gate accepts either for an open order)."""

    order_id: str
    pair: str


@dataclass(frozen=True, slots=True)
class ReadBalance:
    """Read the spot balance of ``currency`` and feed it to :meth:`ExitMachine.on_balance`."""

    currency: str


@dataclass(frozen=True, slots=True)
class ReconcileOrder:
    """Find out what became of order ``text`` (by ``order_id`` when known); feed the order to
    :meth:`ExitMachine.on_order`, or call :meth:`ExitMachine.on_reconciled_absent`."""

    text: str
    pair: str
    order_id: str | None


@dataclass(frozen=True, slots=True)
class ExitTriggered:
    """A stop fired (``stop_loss``, ``trailing_stop``, ``max_hold``): stop buying, sell all."""

    reason: str


@dataclass(frozen=True, slots=True)
class Closed:
    """The exit is over. ``held_left`` is base left behind (dust, or unsellable)."""

    reason: str
    held_left: Decimal


ExitAction: TypeAlias = (
    PlaceSell | CancelOrder | ReadBalance | ReconcileOrder | ExitTriggered | Closed
)


class _Sell:
    """Our view of one sell order we placed."""

    __slots__ = ("amount", "cancel_failed", "cancel_sent", "filled", "finished", "is_tp",
                 "order_id", "seen_final", "text", "waiting_since_ms")

    def __init__(self, text: str, amount: Decimal, is_tp: bool, now_ms: int | None) -> None:
        self.text = text
        self.amount = amount
        self.is_tp = is_tp
        self.order_id: str | None = None
        self.filled = _ZERO
        self.finished = False
        self.seen_final = False  # the exchange itself reported it closed/cancelled
        self.cancel_sent = False
        self.cancel_failed = False
        self.waiting_since_ms = now_ms


class ExitMachine:
    """Decides every sell of one position. Pure: feed it events, carry out what it returns."""

    def __init__(
        self, pair: PairInfo, rules: ExitRules, *, run_id: str, position: Position | None = None
    ) -> None:
        self.pair = pair
        self.rules = rules
        self.run_id = run_id
        self.position = position if position is not None else Position.for_pair(pair)
        self.state = ExitState.HOLDING if self.position.base_received > 0 else ExitState.FLAT
        self.exit_reason: str | None = None
        self.close_reason: str | None = None
        self.entry_open = True
        self.high_water_bid: Decimal | None = None
        self.last_bid: Decimal | None = None
        self.tp_replacements = 0
        self.tp_failures = 0
        self.balance_reads = 0
        self._live: _Sell | None = None
        self._sells: dict[str, _Sell] = {}
        self._attempts = {Purpose.TAKE_PROFIT: 0, Purpose.STOP: 0}
        self._now_ms: int | None = None
        self._held_since_ms: int | None = None
        self._expected_base = _ZERO
        self._fills_due_ms: int | None = None
        self._balance_asked_ms: int | None = None
        self._tp_wait = False  # a TP was just refused: retry on the next tick, not at once
        self._sell_wait = False  # a stop sell did nothing: retry on the next top, not at once
        self._sold_by_tp = False
        self._sold_by_stop = False

    # -- inputs ------------------------------------------------------------------------------

    def on_fill(self, fill: Fill) -> list[ExitAction]:
        """One of our trades (buy or sell). Safe to feed twice: the position deduplicates."""
        if fill.pair != self.pair.pair:
            return []
        self.position.apply_fill(fill)  # even when closed: the accounting stays exact
        if self.state is ExitState.CLOSED:
            return []
        if self.state is ExitState.FLAT and self.position.base_received > 0:
            self.state = ExitState.HOLDING
        return self._advance()

    def on_order(self, order: Order) -> list[ExitAction]:
        """An order update (WS push, REST answer, cancel reply or reconcile result)."""
        sell = self._find(order.text, order.id)
        if sell is None or self.state is ExitState.CLOSED:
            return []
        sell.order_id = order.id
        sell.filled = max(sell.filled, order.filled_amount)
        if sell.filled > 0:
            if sell.is_tp:
                self._sold_by_tp = True
            else:
                self._sold_by_stop = True
        out: list[ExitAction] = []
        if sell is not self._live:
            if order.status is not OrderStatus.OPEN:
                sell.seen_final = True
            elif not sell.seen_final and not sell.cancel_sent:
                # We took it for rejected/absent, yet it rests on the book: never leave a
                # second sell live. (A stale "put" after its own finish is ignored.)
                sell.cancel_sent = True
                out.append(CancelOrder(order.id, self.pair.pair))
            return out + self._advance()
        if order.status is OrderStatus.OPEN:
            sell.waiting_since_ms = None
            if self.state is ExitState.TP_PENDING:
                self.state = ExitState.TP_RESTING
            elif self.state is ExitState.TP_CANCELLING and sell.cancel_failed:
                sell.cancel_failed = False
                sell.waiting_since_ms = self._now_ms
                out.append(CancelOrder(order.id, self.pair.pair))
            return out + self._advance()
        sell.finished = sell.seen_final = True
        self._live = None
        if sell.is_tp:
            if order.status is OrderStatus.CANCELLED and not sell.cancel_sent:
                self.tp_replacements += 1  # someone else cancelled our take profit
            self.state = ExitState.HOLDING
        else:
            self._sell_wait = order.filled_amount <= 0  # no progress: wait for a new bid
            self.state = ExitState.STOPPING
        return self._advance()

    def on_top(self, top: BookTop, now_ms: int) -> list[ExitAction]:
        """Best bid/ask changed: check stop loss and trailing stop, retry a stalled stop sell."""
        if top.pair != self.pair.pair or self.state is ExitState.CLOSED:
            return []
        self._clock(now_ms)
        out: list[ExitAction] = []
        if top.bid is not None and top.bid > 0:
            self.last_bid = top.bid
            self._sell_wait = False
            if self.state is not ExitState.FLAT:
                if self.high_water_bid is None or top.bid > self.high_water_bid:
                    self.high_water_bid = top.bid
                out += self._check_price_stops(top.bid)
        out += self._check_max_hold(now_ms)
        if not out and self.state is ExitState.TP_RESTING and self.exit_reason is None:
            # Nothing a bid can change: the TP's size depends on fills and balances only, and
            # every input that changes those already decided again. (The common case: skip.)
            return out
        return out + self._advance()

    def on_tick(self, now_ms: int) -> list[ExitAction]:
        """Time passed: max hold, TP retries, and reconciling requests that got no answer."""
        if self.state is ExitState.CLOSED:
            return []
        self._clock(now_ms)
        self._tp_wait = False
        out = self._check_max_hold(now_ms)
        live = self._live
        if live is not None and self.state in _AWAITING_ANSWER:
            if live.waiting_since_ms is None:
                live.waiting_since_ms = now_ms
            elif now_ms - live.waiting_since_ms >= self.rules.reconcile_after_ms:
                live.waiting_since_ms = now_ms
                out.append(ReconcileOrder(live.text, self.pair.pair, live.order_id))
        if self.state is ExitState.BALANCE_CHECK:
            if self._balance_asked_ms is None:
                self._balance_asked_ms = now_ms
            elif now_ms - self._balance_asked_ms >= self.rules.reconcile_after_ms:
                self._balance_asked_ms = now_ms
                out.append(ReadBalance(self.pair.base))  # the last read got lost
        return out + self._advance()

    def on_place_result(self, text: str, result: RequestResult) -> list[ExitAction]:
        """The answer to a :class:`PlaceSell`."""
        sell = self._sells.get(text)
        if sell is None or sell is not self._live or self.state is ExitState.CLOSED:
            return []
        if isinstance(result, Accepted):
            self.balance_reads = 0
            if result.order_id:
                sell.order_id = result.order_id
            if self.state is ExitState.TP_PENDING:
                sell.waiting_since_ms = None
                self.state = ExitState.TP_RESTING
            return self._advance()
        if isinstance(result, Unknown):
            # it may exist: ask, and keep it live until its update or an "absent" answer
            sell.waiting_since_ms = self._now_ms
            return [ReconcileOrder(text, self.pair.pair, sell.order_id)]
        sell.finished = True
        self._live = None
        if result.label in BALANCE_LABELS:
            self.balance_reads += 1
            if self.balance_reads > self.rules.max_balance_reads:
                return self._close("balance_not_enough")
            self.state = ExitState.BALANCE_CHECK
            self._balance_asked_ms = self._now_ms
            return [ReadBalance(self.pair.base)]
        if sell.is_tp:
            self.tp_failures += 1
            self._tp_wait = True
            self.state = ExitState.HOLDING
        else:
            self._sell_wait = True
            self.state = ExitState.STOPPING
        return self._advance()

    def on_cancel_result(self, order_id: str, result: RequestResult) -> list[ExitAction]:
        """The answer to a :class:`CancelOrder`. Feed the cancelled order to :meth:`on_order`."""
        sell = self._find(order_id, order_id)
        if sell is None or sell is not self._live or self.state is not ExitState.TP_CANCELLING:
            return []
        if isinstance(result, Accepted):
            return []  # the order's final update (filled part included) settles it
        # Refused (already filled? already cancelled?) or unknown: learn the order's real state.
        sell.cancel_failed = True
        sell.waiting_since_ms = self._now_ms
        return [ReconcileOrder(sell.text, self.pair.pair, sell.order_id)]

    def on_reconciled_absent(self, text: str) -> list[ExitAction]:
        """Reconciliation proved the order ``text`` never reached the exchange."""
        sell = self._sells.get(text)
        if sell is None or sell is not self._live or self.state is ExitState.CLOSED:
            return []
        sell.finished = True
        self._live = None
        self.state = ExitState.HOLDING if sell.is_tp else ExitState.STOPPING
        return self._advance()

    def on_balance(self, balance: Balance) -> list[ExitAction]:
        """A balance of our base currency: caps what we think we hold."""
        if balance.currency != self.pair.base or self.state is ExitState.CLOSED:
            return []
        self.position.apply_balance(balance)
        if self.state is ExitState.BALANCE_CHECK:
            self.state = ExitState.STOPPING if self.exit_reason else ExitState.HOLDING
            self._tp_wait = self._sell_wait = False
        return self._advance()

    def entry_done(
        self, base_filled: Decimal | None = None, now_ms: int | None = None
    ) -> list[ExitAction]:
        """Buying is over. ``base_filled`` (from the buy orders' updates) lets the machine wait
        up to ``reconcile_after_ms`` for trades still on their way before sizing the TP."""
        if self.state is ExitState.CLOSED or not self.entry_open:
            return []
        if now_ms is not None:
            self._clock(now_ms)
        self.entry_open = False
        if base_filled is not None and base_filled > self.position.base_bought:
            self._expected_base = base_filled
            if self._now_ms is not None:
                self._fills_due_ms = self._now_ms + self.rules.reconcile_after_ms
        if self.state is ExitState.FLAT and self._expected_base <= 0:
            return self._close("no_fill")
        return self._advance()

    # -- queries -----------------------------------------------------------------------------

    @property
    def live_sell(self) -> str | None:
        """``text`` of the sell in flight or resting, if any."""
        return self._live.text if self._live is not None else None

    def free_base(self) -> Decimal:
        """Held base not yet known to be sold: the position, less order fills whose trades have
        not arrived yet."""
        unreported = _ZERO
        for sell in self._sells.values():
            if sell.order_id is not None and sell.filled > 0:
                unreported += max(_ZERO, sell.filled - self.position.sold_by_order(sell.order_id))
        return max(_ZERO, self.position.held - unreported)

    # -- decisions ---------------------------------------------------------------------------

    def _advance(self) -> list[ExitAction]:
        """Decide again from the position: called after every input."""
        state = self.state
        live = self._live
        if state in (ExitState.CLOSED, ExitState.FLAT, ExitState.BALANCE_CHECK):
            return []
        if live is not None:
            if state is ExitState.TP_RESTING and (self.exit_reason or self._tp_too_small(live)):
                live.cancel_sent = True
                live.waiting_since_ms = self._now_ms
                self.state = ExitState.TP_CANCELLING
                return [CancelOrder(live.order_id or live.text, self.pair.pair)]
            return []
        if self.exit_reason is not None:
            self.state = ExitState.STOPPING
            return self._stop_sell()
        self.state = ExitState.HOLDING
        if self.entry_open:
            return []
        return self._take_profit()

    def _fills_on_the_way(self) -> bool:
        """Buying may still add base: the entry is open, or the buy orders reported fills whose
        trades have not arrived (for up to ``reconcile_after_ms`` after :meth:`entry_done`)."""
        if self.entry_open:
            return True
        if self._fills_due_ms is None:
            return False
        if self.position.base_bought < self._expected_base and (
            self._now_ms is None or self._now_ms < self._fills_due_ms
        ):
            return True
        self._fills_due_ms = None
        return False

    def _take_profit(self) -> list[ExitAction]:
        avg = self.position.avg_entry_price
        if avg is None or self._fills_on_the_way():
            return []
        price = sizing.take_profit_price(avg, self.rules.take_profit_pct, self.pair)
        amount = sizing.sellable_amount(self.free_base(), self.pair, price)
        if amount <= 0:
            return self._close(self._finish_reason())
        if (
            self._tp_wait
            or self.tp_replacements > self.rules.max_tp_replacements
            or self.tp_failures >= self.rules.max_tp_failures
        ):
            return []  # hold; the stops stay armed
        self.state = ExitState.TP_PENDING
        return [self._place(Purpose.TAKE_PROFIT, amount, price, "gtc")]

    def _stop_sell(self) -> list[ExitAction]:
        free = self.free_base()
        if sizing.sellable_amount(free, self.pair) <= 0:
            return [] if self._fills_on_the_way() else self._close(self._finish_reason())
        if self.last_bid is None or self._sell_wait:
            return []
        price = sizing.stop_sell_price(self.last_bid, self.rules.stop_slippage_pct, self.pair)
        amount = sizing.sellable_amount(free, self.pair, price)
        if amount <= 0:
            # worth less than min_quote_amount at the price we could sell at
            return [] if self._fills_on_the_way() else self._close(self._finish_reason())
        self.state = ExitState.SELLING
        return [self._place(Purpose.STOP, amount, price, "ioc")]

    def _place(
        self, purpose: Purpose, amount: Decimal, price: Decimal, tif: Literal["gtc", "ioc"]
    ) -> PlaceSell:
        assert self._live is None, "one live sell at a time"
        attempt = self._attempts[purpose]
        self._attempts[purpose] = attempt + 1
        text = make_text(self.run_id, self.pair.pair, purpose, attempt)
        is_tp = purpose is Purpose.TAKE_PROFIT
        self._live = self._sells[text] = _Sell(text, amount, is_tp, self._now_ms)
        return PlaceSell(
            text, self.pair.pair, amount, price, tif, "take_profit" if is_tp else "stop"
        )

    def _tp_too_small(self, tp: _Sell) -> bool:
        """More is held than the resting TP sells (late buy fills): it must be re-sized."""
        if self.state is not ExitState.TP_RESTING or self.position.avg_entry_price is None:
            return False
        sold = max(tp.filled, self.position.sold_by_order(tp.order_id or ""))
        remaining = tp.amount - sold
        price = sizing.take_profit_price(
            self.position.avg_entry_price, self.rules.take_profit_pct, self.pair
        )
        return sizing.sellable_amount(self.free_base(), self.pair, price) > remaining

    def _check_price_stops(self, bid: Decimal) -> list[ExitAction]:
        avg = self.position.avg_entry_price
        stop_loss, trailing = self.rules.stop_loss_pct, self.rules.trailing_stop_pct
        high = self.high_water_bid
        if stop_loss is not None and avg is not None and bid <= avg * (1 - stop_loss / _HUNDRED):
            return self._trigger("stop_loss")
        if trailing is not None and high is not None and bid <= high * (1 - trailing / _HUNDRED):
            return self._trigger("trailing_stop")
        return []

    def _check_max_hold(self, now_ms: int) -> list[ExitAction]:
        if self.rules.max_hold_s is None or self.state is ExitState.FLAT:
            return []
        since = self.position.first_buy_ms or self._held_since_ms
        if since is None:
            self._held_since_ms = since = now_ms  # fills without exchange times
        if now_ms - since >= self.rules.max_hold_s * 1000:
            return self._trigger("max_hold")
        return []

    def _trigger(self, reason: str) -> list[ExitAction]:
        if self.exit_reason is not None or self.state is ExitState.CLOSED:
            return []
        self.exit_reason = reason
        return [ExitTriggered(reason)]

    def _finish_reason(self) -> str:
        if self._sold_by_stop and self.exit_reason:
            return self.exit_reason
        if self._sold_by_tp:
            return "take_profit"
        if self.position.base_received <= 0:
            return "no_fill"
        return "dust"

    def _close(self, reason: str) -> list[ExitAction]:
        self.state = ExitState.CLOSED
        self.close_reason = reason
        self.position.mark_closed()
        return [Closed(reason, self.free_base())]

    def _clock(self, now_ms: int) -> None:
        self._now_ms = now_ms if self._now_ms is None else max(self._now_ms, now_ms)

    def _find(self, text: str, order_id: str) -> _Sell | None:
        sell = self._sells.get(text)
        if sell is not None:
            return sell
        for candidate in self._sells.values():
            if candidate.order_id == order_id:
                return candidate
        return None
