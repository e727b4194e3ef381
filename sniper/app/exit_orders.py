"""The exchange calls behind the exit machine's actions, with their answers fed back.

:class:`~sniper.core.exits.ExitMachine` decides (``PlaceSell``, ``CancelOrder``,
``ReconcileOrder``, ``ReadBalance``); :meth:`ListingSession._run_exit
<sniper.app.session.ListingSession._run_exit>` spawns one of these coroutines per action.
Each one does the I/O, journals what must survive a restart, and hands the outcome back to
the machine (an unknown outcome stays unknown: the machine reconciles it, never re-sends).
These functions are parts of the session and work on its state.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import structlog

from sniper.core import exits as ex
from sniper.core.models import Order, OrderRequest
from sniper.errors import ExchangeError, OutcomeUnknownError, RateLimitedError

if TYPE_CHECKING:
    from sniper.app.session import ListingSession

log = structlog.get_logger("sniper.session")

RATE_LIMIT_WAIT_MAX_S = 10.0
"""Longest wait a 429's reset header may impose (Gate's windows are at most 10 s)."""


async def place_sell(session: ListingSession, action: ex.PlaceSell) -> None:
    """Place one sell, at most once per client id, even across a restart."""
    s = session
    if action.text in s._answered_sells:
        return  # answered before a restart; the machine already knows
    if action.text in s._journaled_sells:
        # sent (or about to be) before a restart: find it, never send it twice
        found = await s.edges.execution.find_orders(s.pair.pair, frozenset({action.text}))
        if found:
            s._run_exit(s.exit.on_place_result(action.text, ex.Accepted(found[0].id)))
            for order in found:
                s.on_order(order)
            return
    req = OrderRequest(s.pair.pair, "sell", action.amount, action.price, action.text,
                       time_in_force=action.time_in_force)
    s._journal("sell_sent", {"text": action.text, "amount": action.amount,
                             "price": action.price, "tif": action.time_in_force})
    try:
        result = await s.edges.execution.place(req)
    except OutcomeUnknownError:
        s._journal("sell_result", {"text": action.text, "outcome": "unknown"})
        s._run_exit(s.exit.on_place_result(action.text, ex.Unknown()))
        return
    except ExchangeError as exc:
        s._journal("sell_result", {"text": action.text, "outcome": "rejected",
                                   "label": exc.label})
        if isinstance(exc, RateLimitedError) and exc.retry_after_s:
            # not placed; the machine keeps this sell live (nothing else is sent) until
            # the window Gate announced has reset, then retries on its next tick
            await asyncio.sleep(min(exc.retry_after_s, RATE_LIMIT_WAIT_MAX_S))
        s._run_exit(s.exit.on_place_result(action.text, ex.Rejected(exc.label)))
        return
    oid = result.id
    s._journal("sell_result", {"text": action.text, "outcome": "ok", "id": oid})
    s.emit("sell_placed", {"pair": s.pair.pair, "text": action.text,
                           "amount": action.amount, "price": action.price,
                           "purpose": action.purpose})
    s._run_exit(s.exit.on_place_result(action.text, ex.Accepted(oid)))
    if isinstance(result, Order):
        s.on_order(result)


async def cancel_order(session: ListingSession, action: ex.CancelOrder) -> None:
    """Cancel one of our sells; the machine learns whether it went."""
    s = session
    try:
        order = await s.edges.execution.cancel(action.order_id, s.pair.pair)
    except OutcomeUnknownError:
        s._run_exit(s.exit.on_cancel_result(action.order_id, ex.Unknown()))
        return
    except ExchangeError as exc:
        s._run_exit(s.exit.on_cancel_result(action.order_id, ex.Rejected(exc.label)))
        return
    s._run_exit(s.exit.on_cancel_result(action.order_id, ex.Accepted(order.id)))
    s.on_order(order)


async def reconcile_sell(session: ListingSession, action: ex.ReconcileOrder) -> None:
    """Look up a sell whose placement or cancel had no answer (by id, else by client id)."""
    s = session
    try:
        if action.order_id:
            found = [await s.edges.execution.status(action.order_id, s.pair.pair)]
        else:
            found = await s.edges.execution.find_orders(s.pair.pair, frozenset({action.text}))
    except ExchangeError as exc:
        log.warning("sell reconcile failed", text=action.text, error=str(exc))
        return  # the machine asks again after reconcile_after_ms
    if not found:
        s._run_exit(s.exit.on_reconciled_absent(action.text))
    for order in found:
        s.on_order(order)


async def read_balance(session: ListingSession, action: ex.ReadBalance) -> None:
    """Read what is really held (caps the sell amount)."""
    try:
        balance = await session.edges.execution.balance(action.currency)
    except ExchangeError as exc:
        log.warning("balance read failed", error=str(exc))
        return
    session.on_balance(balance)
