"""One listing after a restart: replay its journal, then reconcile with the exchange.

:func:`sniper.app.recovery.recover_sessions` finds the listings to rebuild; for each, the
session's ``replay`` rebuilds the machines from the journal with no I/O and nothing
re-journaled (exit actions are queued, not carried out), then ``reconcile`` adopts what the
exchange knows about our client ids and carries the queued actions out. These functions are
parts of :class:`~sniper.app.session.ListingSession` and work on its state.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sniper.app.records import fill_from_json, order_from_json
from sniper.core import exits as ex
from sniper.core.entry import EntryFinished

if TYPE_CHECKING:
    from sniper.app.session import ListingSession


def replay_journal(session: ListingSession, events: list[Any]) -> None:
    """Feed this listing's journal records (after ``armed``) back through the session."""
    s = session
    pair = s.pair.pair
    for event in events:
        kind, data = event.kind, event.data
        if kind in ("buy_sent", "buy_result"):
            s._buy_activity = True
        elif kind == "order":
            s.on_order(order_from_json(pair, data))
        elif kind == "fill":
            s.on_fill(fill_from_json(pair, data))
        elif kind == "entry_done":
            s._entry_finished(s.entry.halt(str(data.get("reason", "journal")))
                              or EntryFinished("journal", Decimal(0), Decimal(0)))
        elif kind == "sell_sent":
            s.sell_texts.add(data["text"])
            s._journaled_sells.add(data["text"])
        elif kind == "sell_result":
            s._answered_sells.add(data["text"])
            outcome = data.get("outcome")
            if outcome == "ok":
                result: ex.RequestResult = ex.Accepted(str(data.get("id") or ""))
            elif outcome == "unknown":
                result = ex.Unknown()
            else:
                result = ex.Rejected(data.get("label"))
            s._run_exit(s.exit.on_place_result(data["text"], result))
        elif kind == "closed":
            s._close(str(data.get("reason", "journal")))


async def reconcile_with_exchange(session: ListingSession) -> None:
    """Adopt the exchange's orders, trades and balance for our client ids, then resume.

    A listing with any sign of a buy (journaled, or an order with one of its ids on the
    exchange) never buys again: the entry ends with reason ``restart``.
    """
    s = session
    s.replaying = False
    pair = s.pair.pair
    texts = frozenset(s.buy_texts | s.sell_texts)
    orders = await s.edges.execution.find_orders(pair, texts)
    for fill in await s.edges.execution.my_fills(pair):
        s.on_fill(fill)
    for order in orders:
        s.on_order(order)
    if s.position.base_bought > 0:
        # what is really held now (someone may have sold while we were down): caps `held`
        s.on_balance(await s.edges.execution.balance(s.pair.base))
    if (s._buy_activity or any(o.text in s.buy_texts for o in orders)
            or s.position.buy_fills):
        s._entry_finished(s.entry.halt("restart")
                          or EntryFinished("restart", s.entry.quote_spent, s.entry.base_filled))
    queued, s._queued = s._queued, []
    s._run_exit(queued)
