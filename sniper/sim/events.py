"""Facts the engine reports; the servers turn them into WebSocket pushes and the event log.

Every engine method that changes state returns these, in the order they happened. They are
frozen and carry snapshot copies, so a server may hold them after the engine moved on.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TypeAlias

from sniper.sim.entities import SimOrder, SimPair, SimTrade

BookLevel: TypeAlias = tuple[Decimal, Decimal]
"""(price, amount in base)."""


@dataclass(frozen=True, slots=True)
class BookChanged:
    """Levels of ``pair`` changed; update ids ``first_id..last_id`` (Gate ``U``/``u``).

    Amounts are absolute; ``0`` deletes the level (``spot.order_book_update``, §6.4).
    ``first_id`` is always the previous event's ``last_id + 1`` for the same pair.
    """

    pair: str
    first_id: int
    last_id: int
    bids: list[BookLevel]
    asks: list[BookLevel]
    time_ms: int


@dataclass(frozen=True, slots=True)
class PublicTradeHappened:
    """A trade on ``pair``; ``trade`` is the taker's record (``spot.trades``)."""

    pair: str
    trade: SimTrade


@dataclass(frozen=True, slots=True)
class OrderChanged:
    """An order of ``user_id`` was created (``put``), filled (``update``) or ended (``finish``)."""

    user_id: int
    order: SimOrder
    event: str


@dataclass(frozen=True, slots=True)
class UserTradeHappened:
    """A fill of one of ``user_id``'s orders (``spot.usertrades``)."""

    user_id: int
    trade: SimTrade


@dataclass(frozen=True, slots=True)
class BalanceChanged:
    """A balance moved (``spot.balances``): new ``available``/``locked``, ``change`` of the total.

    ``change_type`` is Gate's (``order-create``, ``order-match``, ``order-update``, ...).
    """

    user_id: int
    currency: str
    available: Decimal
    locked: Decimal
    change: Decimal
    change_type: str
    time_ms: int
    locked_change: Decimal = Decimal(0)


@dataclass(frozen=True, slots=True)
class PairListed:
    """A pair appeared in ``/spot/currency_pairs`` (snapshot copy)."""

    pair: SimPair


@dataclass(frozen=True, slots=True)
class PairStatusChanged:
    """A pair's ``trade_status`` changed (snapshot copy)."""

    pair: SimPair


@dataclass(frozen=True, slots=True)
class Announced:
    """A listing announcement (``announcement.summary_listing``, §5)."""

    title: str
    brief: str
    published_ms: int
    origin_url: str


SimEvent: TypeAlias = (
    BookChanged
    | PublicTradeHappened
    | OrderChanged
    | UserTradeHappened
    | BalanceChanged
    | PairListed
    | PairStatusChanged
    | Announced
)
"""Anything an engine method may return."""
