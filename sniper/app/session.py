"""One listing from arming to exit: runs the entry and exit machines and carries out their actions.

The pure machines decide (``sniper.core.entry``, ``sniper.core.exits``, ``sniper.core.ledger``);
this class only does the I/O they ask for, journals it, and feeds the answers back.

Journal kinds written here (``pair`` = the listing)::

    armed        pair info + every client id this listing may ever use (before any order)
    buy_sent     text, price, amount, attempt, latency stamps (right after the write)
    buy_result   text, outcome (ok / rejected label / unknown), order state when known
    order        an order update (ours) from the private stream or a lookup
    fill         one of our trades (deduplicated by trade id when replayed)
    entry_done   reason, quote spent, base filled
    sell_sent    text, amount, price, purpose
    sell_result  text, outcome
    closed       reason
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import structlog

from sniper.app.journal import Journal
from sniper.app.ports import Edges
from sniper.config import Config
from sniper.core import exits as ex
from sniper.core.clientid import Purpose, make_text
from sniper.core.entry import EntryFinished, EntryMachine, EntryRules, EntryState, Fire, Reconcile
from sniper.core.ledger import Position
from sniper.core.models import (
    Balance,
    BookTop,
    Fill,
    Order,
    OrderRequest,
    OrderStatus,
    PairInfo,
    TradeStatus,
)
from sniper.errors import (
    AuthError,
    ExchangeError,
    JournalError,
    OutcomeUnknownError,
    RateLimitedError,
    RejectedError,
    TransientError,
)

log = structlog.get_logger("sniper.session")

Emit = Callable[[str, dict[str, Any]], None]


@dataclass(frozen=True, slots=True)
class SessionSettings:
    """Per-listing settings derived once from the config."""

    run_id: str
    quote_budget: Decimal
    max_slippage_pct: Decimal
    max_price: Decimal | None
    deadline_s: float
    max_attempts: int
    fire_policy: str
    busy_window_s: float
    exit_rules: ex.ExitRules

    @classmethod
    def from_config(cls, config: Config, run_id: str) -> SessionSettings:
        e, x = config.entry, config.exit
        return cls(
            run_id=run_id,
            quote_budget=e.quote_amount,
            max_slippage_pct=e.max_slippage_pct,
            max_price=e.max_price,
            deadline_s=e.deadline_s,
            max_attempts=e.max_attempts,
            fire_policy=e.fire_policy,
            busy_window_s=e.busy_window_s,
            exit_rules=ex.ExitRules(
                take_profit_pct=x.take_profit_pct,
                stop_loss_pct=x.stop_loss_pct,
                trailing_stop_pct=x.trailing_stop_pct,
                max_hold_s=x.max_hold_s,
                stop_slippage_pct=x.stop_slippage_pct,
            ),
        )


def pair_to_json(info: PairInfo) -> dict[str, Any]:
    return {
        "pair": info.pair, "base": info.base, "quote": info.quote,
        "trade_status": str(info.trade_status), "buy_start_s": info.buy_start_s,
        "sell_start_s": info.sell_start_s, "amount_precision": info.amount_precision,
        "price_precision": info.price_precision,
        "min_base_amount": info.min_base_amount, "min_quote_amount": info.min_quote_amount,
        "max_base_amount": info.max_base_amount, "max_quote_amount": info.max_quote_amount,
        "fee_pct": info.fee_pct,
    }


def pair_from_json(d: dict[str, Any]) -> PairInfo:
    def dec(v: Any) -> Decimal | None:
        return None if v is None else Decimal(str(v))

    return PairInfo(
        pair=d["pair"], base=d["base"], quote=d["quote"],
        trade_status=TradeStatus(d["trade_status"]), buy_start_s=int(d["buy_start_s"]),
        sell_start_s=int(d["sell_start_s"]), amount_precision=int(d["amount_precision"]),
        price_precision=int(d["price_precision"]), min_base_amount=dec(d["min_base_amount"]),
        min_quote_amount=dec(d["min_quote_amount"]), max_base_amount=dec(d["max_base_amount"]),
        max_quote_amount=dec(d["max_quote_amount"]), fee_pct=Decimal(str(d["fee_pct"])),
    )


def fill_to_json(f: Fill) -> dict[str, Any]:
    return {
        "trade_id": f.trade_id, "order_id": f.order_id, "text": f.text, "side": f.side,
        "role": f.role, "price": f.price, "amount": f.amount, "fee": f.fee,
        "fee_currency": f.fee_currency, "time_ms": f.time_ms,
    }


def fill_from_json(pair: str, d: dict[str, Any]) -> Fill:
    return Fill(
        trade_id=str(d["trade_id"]), order_id=str(d["order_id"]), text=d["text"], pair=pair,
        side=d["side"], role=d["role"], price=Decimal(d["price"]), amount=Decimal(d["amount"]),
        fee=Decimal(d["fee"]), fee_currency=d["fee_currency"], time_ms=int(d["time_ms"]),
    )


def order_to_json(o: Order) -> dict[str, Any]:
    return {
        "id": o.id, "text": o.text, "side": o.side, "type": o.type, "tif": o.time_in_force,
        "status": str(o.status), "amount": o.amount, "price": o.price, "left": o.left,
        "filled_amount": o.filled_amount, "filled_total": o.filled_total,
        "avg_deal_price": o.avg_deal_price, "fee": o.fee, "fee_currency": o.fee_currency,
        "finish_as": o.finish_as, "create_time_ms": o.create_time_ms,
        "update_time_ms": o.update_time_ms, "event": o.event,
    }


def order_from_json(pair: str, d: dict[str, Any]) -> Order:
    def dec(v: Any) -> Decimal | None:
        return None if v is None else Decimal(str(v))

    return Order(
        id=str(d["id"]), text=d["text"], pair=pair, side=d["side"], type=d["type"],
        time_in_force=d["tif"], status=OrderStatus(d["status"]), amount=Decimal(d["amount"]),
        price=dec(d["price"]), left=Decimal(d["left"]),
        filled_amount=Decimal(d["filled_amount"]), filled_total=Decimal(d["filled_total"]),
        avg_deal_price=dec(d["avg_deal_price"]), fee=Decimal(d["fee"]),
        fee_currency=d["fee_currency"], finish_as=d["finish_as"],
        create_time_ms=int(d["create_time_ms"]), update_time_ms=int(d["update_time_ms"]),
        event=d["event"],
    )


ABSENT_AFTER_LOOKUPS = 3
"""An order not found this many times (the last ~1.7 s after the send) never reached Gate."""

FILL_BACKFILL_DELAYS_S = (0.3, 1.0, 3.0)
"""When orders report more filled than our trades say, the trades' pushes are late or lost
(a dropped private connection): ask ``/spot/my_trades`` after each of these waits."""

RATE_LIMIT_WAIT_MAX_S = 10.0
"""Longest wait a 429's reset header may impose (Gate's windows are at most 10 s)."""

SELL_AUDIT_MS = 2_000
"""A resting sell is looked up this often: its fill may happen while the private stream is
down, and no push would ever say so."""


class ListingSession:
    """Entry + exit of one listing (see module docstring)."""

    RECONCILE_DELAYS_S: tuple[float, ...] = (0.2, 0.5, 1.0, 2.0, 4.0)

    def __init__(
        self,
        pair: PairInfo,
        settings: SessionSettings,
        edges: Edges,
        journal: Journal,
        texts: tuple[str, ...],
        *,
        wall_ms: Callable[[], int],
        mono_ns: Callable[[], int],
        emit: Emit,
        on_fatal: Callable[[BaseException], None],
        armed_ms: int,
        replaying: bool = False,
    ) -> None:
        self.replaying = replaying
        self._busy = False
        self._queued: list[Any] = []
        self._buy_activity = False
        self._journaled_sells: set[str] = set()
        self._answered_sells: set[str] = set()
        self.pair = pair
        self.settings = settings
        self.edges = edges
        self.journal = journal
        self.wall_ms = wall_ms
        self.mono_ns = mono_ns
        self.emit = emit
        self.on_fatal = on_fatal
        deadline_ms = max(pair.buy_start_s * 1000, armed_ms) + int(settings.deadline_s * 1000)
        self.entry = EntryMachine(
            pair,
            EntryRules(settings.quote_budget, settings.max_slippage_pct, settings.max_price,
                       deadline_ms),
            texts,
        )
        self.position = Position.for_pair(pair)
        self.exit = ex.ExitMachine(pair, settings.exit_rules, run_id=settings.run_id,
                                   position=self.position)
        self.buy_texts = frozenset(texts)
        self.sell_texts: set[str] = set()
        self.closed = False
        self.close_reason: str | None = None
        self.entry_finished = False
        self.opened_ns: int | None = None
        self.latencies: list[dict[str, Any]] = []
        self._prepared: dict[str, object] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._entry_spent_at: list[tuple[int, Decimal]] = []
        self._sell_filled: dict[str, Decimal] = {}  # sell order id -> filled, as reported
        self._buy_blocked_until_ns = 0  # a 429 said when buying may resume
        self._sell_journaled: dict[str, tuple[OrderStatus, Decimal, Decimal]] = {}
        self._backfilling = False
        self._auditing = False
        self._last_audit_ms = 0
        self._prepare_all()

    # -- construction -----------------------------------------------------------------------

    @classmethod
    def arm(
        cls,
        pair: PairInfo,
        settings: SessionSettings,
        edges: Edges,
        journal: Journal,
        *,
        wall_ms: Callable[[], int],
        mono_ns: Callable[[], int],
        emit: Emit,
        on_fatal: Callable[[BaseException], None],
    ) -> ListingSession:
        """A new listing: allocate and journal every client id before anything is sent."""
        texts = tuple(
            make_text(settings.run_id, pair.pair, Purpose.BUY, attempt)
            for attempt in range(settings.max_attempts)
        )
        now = wall_ms()
        journal.append("armed", pair.pair, {"info": pair_to_json(pair), "texts": list(texts)},
                       ts_ms=now)
        return cls(pair, settings, edges, journal, texts, wall_ms=wall_ms, mono_ns=mono_ns,
                   emit=emit, on_fatal=on_fatal, armed_ms=now)

    def _prepare_all(self) -> None:
        # Validate and pre-encode every attempt now, not at T0. The placeholder price/amount
        # are replaced at fire time.
        for text in self.entry.texts[self.entry.attempt:]:
            req = OrderRequest(self.pair.pair, "buy", Decimal(1), Decimal(1), text)
            try:
                self._prepared[text] = self.edges.entry.prepare(req)
            except ExchangeError as exc:
                log.error("prepare failed", pair=self.pair.pair, text=text, error=str(exc))

    def update_pair(self, info: PairInfo) -> None:
        """Fresh pair info from the poller (status/precision may change before the open)."""
        self.pair = info
        self.entry.pair = info

    # -- hot path -----------------------------------------------------------------------------

    def on_top(self, bid: Any, ask: Any, recv_ns: int, opened: bool) -> None:
        """Best bid/ask changed (called from the book stream; must not block)."""
        if opened and self.opened_ns is None:
            self.opened_ns = recv_ns
        if self.entry.state is EntryState.ARMED and recv_ns >= self._buy_blocked_until_ns:
            decision = self.entry.on_top(None if ask is None else ask[0], self.wall_ms())
            if isinstance(decision, Fire):
                self._fire_now(decision, recv_ns)
            elif isinstance(decision, EntryFinished):
                self._entry_finished(decision)
        if bid is not None and self.entry_finished and not self.closed:
            now = self.wall_ms()
            top = BookTop(self.pair.pair, 0, now, bid[0], bid[1],
                          None if ask is None else ask[0], None if ask is None else ask[1])
            self._run_exit(self.exit.on_top(top, now))

    def _fire_now(self, fire: Fire, recv_ns: int) -> None:
        """Write the order in this very loop iteration when the sender can (``fire_nowait``).

        Spawning a task to fire costs one more loop iteration before the write; a sender with
        ``fire_nowait`` writes synchronously here and only the answer is awaited in a task.
        """
        fire_nowait = getattr(self.edges.entry, "fire_nowait", None)
        if fire_nowait is None:
            self._spawn(self._fire(fire, recv_ns))
            return
        decision_ns = self.mono_ns()
        prepared = self._prepared.pop(fire.text, None)
        try:
            if prepared is None:
                raise TransientError(f"{fire.text}: not prepared")
            fire_nowait(prepared, fire.price, fire.amount, decision_ns=decision_ns)
        except ExchangeError as exc:
            self._spawn(self._fire(fire, recv_ns, decision_ns=decision_ns, failed=exc))
            return
        self._spawn(self._fire(fire, recv_ns, decision_ns=decision_ns, written=prepared))

    async def _fire(
        self,
        fire: Fire,
        recv_ns: int,
        *,
        decision_ns: int = 0,
        written: object | None = None,
        failed: ExchangeError | None = None,
    ) -> None:
        # ``written``: already sent by fire_nowait, await its answer; ``failed``: fire_nowait
        # raised, handle it here like any other outcome.
        decision_ns = decision_ns or self.mono_ns()
        try:
            if failed is not None:
                raise failed
            if written is not None:
                result = await self.edges.entry.wait_result(written)  # type: ignore[attr-defined]
            else:
                prepared = self._prepared.pop(fire.text, None)
                if prepared is None:
                    raise TransientError(f"{fire.text}: not prepared")
                result = await self.edges.entry.fire(prepared, fire.price, fire.amount)
        except OutcomeUnknownError:
            self._journal("buy_result", {"text": fire.text, "outcome": "unknown"})
            self._stamp(fire, recv_ns, decision_ns)
            self.emit("buy_unknown", {"pair": self.pair.pair, "text": fire.text})
            rec = self.entry.on_unknown(fire.text)
            if isinstance(rec, Reconcile):
                self._spawn(self._reconcile_buy(rec.text))
            return
        except AuthError as exc:
            if exc.label == "REQUEST_EXPIRED":
                # x-gate-exptime passed before Gate saw it (or the clock is off): not placed
                self._journal("buy_result", {"text": fire.text, "outcome": "rejected",
                                             "label": exc.label})
                self._entry_finished(self.entry.on_rejected(fire.text, "TOO_BUSY"))
                return
            self._journal("buy_result", {"text": fire.text, "outcome": "auth", "label": exc.label})
            self._entry_finished(self.entry.on_rejected(fire.text, "AUTH") or
                                 self.entry.halt("auth"))
            self.on_fatal(exc)
            return
        except TransientError as exc:
            # nothing was written: the attempt did not happen; the text is not reused
            self._journal("buy_result", {"text": fire.text, "outcome": "not_sent",
                                         "error": str(exc)})
            self._entry_finished(self.entry.on_rejected(fire.text, None))
            return
        except RateLimitedError as exc:
            # refused, not placed: the next top may fire again, once Gate's window has reset
            self._journal("buy_result", {"text": fire.text, "outcome": "rejected",
                                         "label": exc.label or "TOO_MANY_REQUESTS",
                                         "retry_after_s": exc.retry_after_s})
            wait_s = min(exc.retry_after_s or 0.0, RATE_LIMIT_WAIT_MAX_S)
            self._buy_blocked_until_ns = self.mono_ns() + int(wait_s * 1e9)
            self._entry_finished(self.entry.on_rejected(fire.text, "TOO_MANY_REQUESTS"))
            return
        except RejectedError as exc:
            self._journal("buy_result", {"text": fire.text, "outcome": "rejected",
                                         "label": exc.label, "message": exc.message})
            self._stamp(fire, recv_ns, decision_ns)
            self.emit("buy_rejected", {"pair": self.pair.pair, "text": fire.text,
                                       "label": exc.label})
            self._entry_finished(self.entry.on_rejected(fire.text, exc.label))
            return
        self._stamp(fire, recv_ns, decision_ns)
        self._journal("buy_sent", {"text": fire.text, "price": fire.price,
                                   "amount": fire.amount, "attempt": fire.attempt})
        self.emit("buy_sent", {"pair": self.pair.pair, "text": fire.text, "price": fire.price,
                               "amount": fire.amount, "latency": self.latencies[-1],
                               "filled": isinstance(result, Order) and result.filled_amount > 0})
        if isinstance(result, Order):
            self.on_order(result)
        # an OrderAck resolves through spot.orders

    def _stamp(self, fire: Fire, recv_ns: int, decision_ns: int) -> None:
        stamps: dict[str, Any] = {"text": fire.text, "recv_ns": recv_ns,
                                  "decision_ns": decision_ns}
        timings = getattr(self.edges.entry, "timings", None)
        if callable(timings):
            for t in reversed(timings()):
                if getattr(t, "decision_ns", None) and t.decision_ns >= decision_ns:
                    stamps["written_ns"] = t.written_ns
                    stamps["result_ns"] = getattr(t, "result_ns", 0)
                    break
        self.latencies.append(stamps)

    async def _reconcile_buy(self, text: str) -> None:
        """Find out what happened to ``text``; never re-send it."""
        delays = self.RECONCILE_DELAYS_S
        for i, delay in enumerate(delays):
            await asyncio.sleep(delay)
            if self.entry.in_flight_text != text:
                return  # resolved by the private stream meanwhile
            try:
                found = await self.edges.execution.find_orders(self.pair.pair, frozenset({text}))
            except ExchangeError as exc:
                log.warning("reconcile failed", text=text, error=str(exc))
                continue
            for order in found:
                self.on_order(order)
                if order.status.value != "open":
                    return
            if not found and i >= ABSENT_AFTER_LOOKUPS - 1:
                self._journal("buy_result", {"text": text, "outcome": "absent"})
                self._entry_finished(self.entry.on_reconciled_absent(text))
                return

    # -- private stream ---------------------------------------------------------------------

    def on_order(self, order: Order) -> None:
        if order.text in self.buy_texts:
            self._journal("order", order_to_json(order))
            self._entry_finished(self.entry.on_result(order))
        elif order.text in self.sell_texts:
            state = (order.status, order.filled_amount, order.left)
            if self._sell_journaled.get(order.id) != state:  # lookups repeat the same state
                self._sell_journaled[order.id] = state
                self._journal("order", order_to_json(order))
            self._sell_filled[order.id] = max(order.filled_amount,
                                              self._sell_filled.get(order.id, Decimal(0)))
            self._run_exit(self.exit.on_order(order))
        else:
            return
        self._check_fills_soon()

    def _fills_missing(self) -> bool:
        """Orders reported fills whose trades have not reached us."""
        if self.entry.base_filled > self.position.base_bought:
            return True
        return any(filled > self.position.sold_by_order(oid)
                   for oid, filled in self._sell_filled.items())

    def _check_fills_soon(self) -> None:
        if self.replaying or self._backfilling or not self._fills_missing():
            return
        self._backfilling = True
        self._spawn(self._backfill_fills())

    async def _backfill_fills(self) -> None:
        """Fetch our trades when their pushes do not come (deduplicated by trade id)."""
        try:
            for delay in FILL_BACKFILL_DELAYS_S:
                await asyncio.sleep(delay)
                if not self._fills_missing():
                    return
                try:
                    fills = await self.edges.execution.my_fills(self.pair.pair)
                except ExchangeError as exc:
                    log.warning("fill backfill failed", pair=self.pair.pair, error=str(exc))
                    continue
                for fill in sorted(fills, key=lambda f: (f.time_ms, f.trade_id)):
                    self.on_fill(fill)
        finally:
            self._backfilling = False

    async def _audit_sell(self, text: str) -> None:
        """Look a resting sell up (a missed fill or cancel); absence proves nothing here."""
        try:
            found = await self.edges.execution.find_orders(self.pair.pair, frozenset({text}))
        except ExchangeError as exc:
            log.warning("sell audit failed", text=text, error=str(exc))
            return
        finally:
            self._auditing = False
        for order in found:
            self.on_order(order)

    def on_fill(self, fill: Fill) -> None:
        if fill.text not in self.buy_texts and fill.text not in self.sell_texts:
            return
        if not self.position.apply_fill(fill):
            return  # duplicate
        self._journal("fill", fill_to_json(fill))
        if fill.side == "buy":
            self._entry_spent_at.append((fill.time_ms, fill.price * fill.amount))
        self.emit("fill", {"pair": self.pair.pair, "side": fill.side, "price": fill.price,
                           "amount": fill.amount, "fee": fill.fee,
                           "fee_currency": fill.fee_currency})
        self._run_exit(self.exit.on_fill(fill))

    def on_balance(self, balance: Balance) -> None:
        if balance.currency == self.pair.base and not self.closed:
            self.position.apply_balance(balance)
            self._run_exit(self.exit.on_balance(balance))

    def on_tick(self, now_ms: int) -> None:
        if self.entry.state is not EntryState.DONE:
            self._entry_finished(self.entry.on_tick(now_ms))
        if self.entry_finished and not self.closed:
            self._run_exit(self.exit.on_tick(now_ms))
            live = self.exit.live_sell
            if (live is not None and self.exit.state is ex.ExitState.TP_RESTING
                    and not self._auditing and now_ms - self._last_audit_ms >= SELL_AUDIT_MS):
                self._last_audit_ms = now_ms
                self._auditing = True
                self._spawn(self._audit_sell(live))

    # -- busy window -----------------------------------------------------------------------

    BUSY_AFTER_START_S = 3.0
    """How long past ``buy_start`` the busy window lasts when no ask has come yet."""

    def busy_window_due(self, now_ms: int) -> bool:
        """True when the loop should spin for this listing now (and is not already)."""
        start_ms = self.pair.buy_start_s * 1000
        lead_ms = int(self.settings.busy_window_s * 1000)
        return (
            lead_ms > 0
            and not self._busy
            and self.entry.state is EntryState.ARMED
            and start_ms - lead_ms <= now_ms <= start_ms + int(self.BUSY_AFTER_START_S * 1000)
        )

    async def busy_window(self) -> int:
        """Spin the event loop (never sleeping in epoll) and rehearse the next order's bytes
        until the entry leaves ARMED or the window ends; returns the number of spins.

        Waking an idle loop costs more than deciding and sending (DESIGN.md section 5): at
        the open, frames are read by a loop that is already running.
        """
        self._busy = True
        end_ms = self.pair.buy_start_s * 1000 + int(self.BUSY_AFTER_START_S * 1000)
        rehearse = getattr(self.edges.entry, "rehearse", None)
        spins = 0
        try:
            while self.entry.state is EntryState.ARMED and self.wall_ms() <= end_ms:
                if rehearse is not None and spins % 64 == 0:
                    text = self.entry.texts[self.entry.attempt]
                    prepared = self._prepared.get(text)
                    if prepared is not None:
                        rehearse(prepared, self.settings.max_price or Decimal(1), Decimal(1))
                spins += 1
                await asyncio.sleep(0)
        finally:
            self._busy = False
        return spins

    def stop_buying(self, reason: str) -> None:
        """No more buys for this listing, ever (journaled: survives restarts)."""
        self._entry_finished(self.entry.halt(reason))

    def pause_buying(self) -> None:
        """Shutdown: send no more buys from this process, but record no end of the entry.

        The listing stays armed in the journal, so a daemon restarted before the open still
        buys it, and one restarted after a buy resumes the exit (reconcile ends the entry with
        reason ``restart``). Journaling ``entry_done`` here would close an unfilled listing
        for good (``no_fill``) on every SIGTERM. A buy already in flight still gets its answer
        journaled.
        """
        self.entry.halt("shutdown")

    # -- entry -> exit ------------------------------------------------------------------------

    def _entry_finished(self, done: EntryFinished | None) -> None:
        if done is None or self.entry_finished:
            return
        self.entry_finished = True
        self._journal("entry_done", {"reason": done.reason, "quote_spent": done.quote_spent,
                                     "base_filled": done.base_filled})
        self.emit("entry_done", {"pair": self.pair.pair, "reason": done.reason,
                                 "quote_spent": done.quote_spent})
        self._run_exit(self.exit.entry_done(done.base_filled, self.wall_ms()))

    def _run_exit(self, actions: list[Any] | None) -> None:
        for action in actions or ():
            if self.replaying and not isinstance(action, ex.Closed):
                self._queued.append(action)  # carried out after reconciliation
                continue
            if isinstance(action, ex.PlaceSell):
                self.sell_texts.add(action.text)
                self._spawn(self._place_sell(action))
            elif isinstance(action, ex.CancelOrder):
                self._spawn(self._cancel(action))
            elif isinstance(action, ex.ReadBalance):
                self._spawn(self._read_balance(action))
            elif isinstance(action, ex.ReconcileOrder):
                self._spawn(self._reconcile_sell(action))
            elif isinstance(action, ex.ExitTriggered):
                self.emit("exit_triggered", {"pair": self.pair.pair, "reason": action.reason})
                self._entry_finished(self.entry.halt(action.reason))
            elif isinstance(action, ex.Closed):
                self._close(action.reason)

    async def _place_sell(self, action: ex.PlaceSell) -> None:
        if action.text in self._answered_sells:
            return  # answered before a restart; the machine already knows
        if action.text in self._journaled_sells:
            # sent (or about to be) before a restart: find it, never send it twice
            found = await self.edges.execution.find_orders(self.pair.pair,
                                                           frozenset({action.text}))
            if found:
                self._run_exit(self.exit.on_place_result(action.text, ex.Accepted(found[0].id)))
                for order in found:
                    self.on_order(order)
                return
        req = OrderRequest(self.pair.pair, "sell", action.amount, action.price, action.text,
                           time_in_force=action.time_in_force)
        self._journal("sell_sent", {"text": action.text, "amount": action.amount,
                                    "price": action.price, "tif": action.time_in_force})
        try:
            result = await self.edges.execution.place(req)
        except OutcomeUnknownError:
            self._journal("sell_result", {"text": action.text, "outcome": "unknown"})
            self._run_exit(self.exit.on_place_result(action.text, ex.Unknown()))
            return
        except ExchangeError as exc:
            self._journal("sell_result", {"text": action.text, "outcome": "rejected",
                                          "label": exc.label})
            if isinstance(exc, RateLimitedError) and exc.retry_after_s:
                # not placed; the machine keeps this sell live (nothing else is sent) until
                # the window Gate announced has reset, then retries on its next tick
                await asyncio.sleep(min(exc.retry_after_s, RATE_LIMIT_WAIT_MAX_S))
            self._run_exit(self.exit.on_place_result(action.text, ex.Rejected(exc.label)))
            return
        oid = result.id
        self._journal("sell_result", {"text": action.text, "outcome": "ok", "id": oid})
        self.emit("sell_placed", {"pair": self.pair.pair, "text": action.text,
                                  "amount": action.amount, "price": action.price,
                                  "purpose": action.purpose})
        self._run_exit(self.exit.on_place_result(action.text, ex.Accepted(oid)))
        if isinstance(result, Order):
            self.on_order(result)

    async def _cancel(self, action: ex.CancelOrder) -> None:
        try:
            order = await self.edges.execution.cancel(action.order_id, self.pair.pair)
        except OutcomeUnknownError:
            self._run_exit(self.exit.on_cancel_result(action.order_id, ex.Unknown()))
            return
        except ExchangeError as exc:
            self._run_exit(self.exit.on_cancel_result(action.order_id, ex.Rejected(exc.label)))
            return
        self._run_exit(self.exit.on_cancel_result(action.order_id, ex.Accepted(order.id)))
        self.on_order(order)

    async def _reconcile_sell(self, action: ex.ReconcileOrder) -> None:
        try:
            if action.order_id:
                found = [await self.edges.execution.status(action.order_id, self.pair.pair)]
            else:
                found = await self.edges.execution.find_orders(self.pair.pair,
                                                               frozenset({action.text}))
        except ExchangeError as exc:
            log.warning("sell reconcile failed", text=action.text, error=str(exc))
            return  # the machine asks again after reconcile_after_ms
        if not found:
            self._run_exit(self.exit.on_reconciled_absent(action.text))
        for order in found:
            self.on_order(order)

    async def _read_balance(self, action: ex.ReadBalance) -> None:
        try:
            balance = await self.edges.execution.balance(action.currency)
        except ExchangeError as exc:
            log.warning("balance read failed", error=str(exc))
            return
        self.on_balance(balance)

    def _close(self, reason: str) -> None:
        if self.closed:
            return
        self.closed = True
        self.close_reason = reason
        snap = self.position.snapshot()
        self._journal("closed", {"reason": reason})
        self.emit("closed", {"pair": self.pair.pair, "reason": reason,
                             "pnl_quote": snap.realized_pnl})

    # -- plumbing ------------------------------------------------------------------------------

    def _journal(self, kind: str, data: dict[str, Any]) -> None:
        if self.replaying:
            return
        try:
            self.journal.append(kind, self.pair.pair, data, ts_ms=self.wall_ms())
        except JournalError as exc:
            self.entry.halt("journal")
            self.on_fatal(exc)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            log.error("session task failed", pair=self.pair.pair, error=repr(exc))
            if exc is not None:
                self.on_fatal(exc)

    def quote_spent_since(self, since_ms: int) -> Decimal:
        return sum((q for t, q in self._entry_spent_at if t >= since_ms), Decimal(0))

    def describe(self) -> dict[str, Any]:
        snap = self.position.snapshot()
        return {"held": snap.held, "entry": str(self.entry.state), "closed": self.closed}

    # -- restart ---------------------------------------------------------------------------

    def replay(self, events: list[Any]) -> None:
        """Rebuild the machines from this listing's journal (no I/O, nothing re-journaled)."""
        pair = self.pair.pair
        for event in events:
            kind, data = event.kind, event.data
            if kind in ("buy_sent", "buy_result"):
                self._buy_activity = True
            elif kind == "order":
                self.on_order(order_from_json(pair, data))
            elif kind == "fill":
                self.on_fill(fill_from_json(pair, data))
            elif kind == "entry_done":
                self._entry_finished(self.entry.halt(str(data.get("reason", "journal")))
                                     or EntryFinished("journal", Decimal(0), Decimal(0)))
            elif kind == "sell_sent":
                self.sell_texts.add(data["text"])
                self._journaled_sells.add(data["text"])
            elif kind == "sell_result":
                self._answered_sells.add(data["text"])
                outcome = data.get("outcome")
                if outcome == "ok":
                    result: ex.RequestResult = ex.Accepted(str(data.get("id") or ""))
                elif outcome == "unknown":
                    result = ex.Unknown()
                else:
                    result = ex.Rejected(data.get("label"))
                self._run_exit(self.exit.on_place_result(data["text"], result))
            elif kind == "closed":
                self._close(str(data.get("reason", "journal")))

    async def reconcile(self) -> None:
        """After a restart: adopt what the exchange knows about our client ids, then resume.

        A listing with any sign of a buy (journaled, or an order with one of its ids on the
        exchange) never buys again: the entry ends with reason ``restart``.
        """
        self.replaying = False
        pair = self.pair.pair
        texts = frozenset(self.buy_texts | self.sell_texts)
        orders = await self.edges.execution.find_orders(pair, texts)
        for fill in await self.edges.execution.my_fills(pair):
            self.on_fill(fill)
        for order in orders:
            self.on_order(order)
        if self.position.base_bought > 0:
            # what is really held now (someone may have sold while we were down): caps `held`
            self.on_balance(await self.edges.execution.balance(self.pair.base))
        if (self._buy_activity or any(o.text in self.buy_texts for o in orders)
                or self.position.buy_fills):
            self._entry_finished(self.entry.halt("restart")
                                 or EntryFinished("restart", self.entry.quote_spent,
                                                  self.entry.base_filled))
        queued, self._queued = self._queued, []
        self._run_exit(queued)
