"""One listing from arming to exit: runs the entry and exit machines and carries out their actions.

The pure machines decide (``sniper.core.entry``, ``sniper.core.exits``, ``sniper.core.ledger``);
this class only does the I/O they ask for, journals it, and feeds the answers back. The journal
kinds it writes are listed in :mod:`sniper.app.records`.

:class:`ListingSession` is split by responsibility; the parts work on its state:

- this module: arming, the buy (hot path, answers, reconcile of an unknown buy), the private
  stream, the busy window, entry -> exit, plumbing;
- :mod:`sniper.app.exit_orders`: the exchange calls behind the exit machine's actions;
- :mod:`sniper.app.upkeep`: fill backfill and resting-sell audit (a silent private stream);
- :mod:`sniper.app.restart`: journal replay and reconcile after a restart;
- :mod:`sniper.app.records`: the journal records' JSON encoders.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import structlog

from sniper.app import exit_orders, restart
from sniper.app.exit_orders import RATE_LIMIT_WAIT_MAX_S
from sniper.app.journal import Journal
from sniper.app.ports import Edges
from sniper.app.records import fill_to_json, order_to_json, pair_to_json
from sniper.app.upkeep import SessionUpkeep
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


ABSENT_AFTER_LOOKUPS = 3
"""An order not found this many times (the last ~1.7 s after the send) never reached Gate."""



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
        self._buy_blocked_until_ns = 0  # a 429 said when buying may resume
        self._sell_journaled: dict[str, tuple[OrderStatus, Decimal, Decimal]] = {}
        self._upkeep = SessionUpkeep(self)
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
            self._upkeep.note_sell(order)
            self._run_exit(self.exit.on_order(order))
        else:
            return
        self._upkeep.check_fills_soon()

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
        self._fire_at_buy_start(now_ms)
        if self.entry.state is not EntryState.DONE:
            self._entry_finished(self.entry.on_tick(now_ms))
        if self.entry_finished and not self.closed:
            self._run_exit(self.exit.on_tick(now_ms))
            self._upkeep.on_tick(now_ms)

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
                if self._fire_at_buy_start(self.wall_ms()):
                    break
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

    def _fire_at_buy_start(self, now_ms: int) -> bool:
        """``entry.fire_policy: buy_start``: the first buy goes at ``buy_start`` (exchange
        time) without waiting for an ask, priced at ``entry.max_price`` (the config requires
        it with this policy); it fills against whatever asks are there up to that cap.
        Later buys follow the book as usual. Returns True when it fired."""
        cap = self.settings.max_price
        if (
            self.settings.fire_policy != "buy_start"
            or cap is None
            or self.entry.state is not EntryState.ARMED
            or self.entry.attempt > 0
            or self.pair.buy_start_s <= 0
            or now_ms < self.pair.buy_start_s * 1000
            or self.mono_ns() < self._buy_blocked_until_ns
        ):
            return False
        decision = self.entry.on_top(cap, now_ms)
        if isinstance(decision, Fire):
            self._fire_now(decision, self.mono_ns())
            return True
        if isinstance(decision, EntryFinished):
            self._entry_finished(decision)
        return False

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
                self._spawn(exit_orders.place_sell(self, action))
            elif isinstance(action, ex.CancelOrder):
                self._spawn(exit_orders.cancel_order(self, action))
            elif isinstance(action, ex.ReadBalance):
                self._spawn(exit_orders.read_balance(self, action))
            elif isinstance(action, ex.ReconcileOrder):
                self._spawn(exit_orders.reconcile_sell(self, action))
            elif isinstance(action, ex.ExitTriggered):
                self.emit("exit_triggered", {"pair": self.pair.pair, "reason": action.reason})
                self._entry_finished(self.entry.halt(action.reason))
            elif isinstance(action, ex.Closed):
                self._close(action.reason)

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
        restart.replay_journal(self, events)

    async def reconcile(self) -> None:
        """After a restart: adopt what the exchange knows about our client ids, then resume.

        A listing with any sign of a buy (journaled, or an order with one of its ids on the
        exchange) never buys again: the entry ends with reason ``restart``.
        """
        await restart.reconcile_with_exchange(self)
