"""Typed, immutable values shared by the core and the edges.

Money is :class:`~decimal.Decimal`. Names are ours (``pair``, ``price_precision``); Gate's
wire names (``currency_pair``, ``precision``, ``U``/``u``) live only in :mod:`sniper.core.codec`.
Times carry their unit in the name: ``_s`` exchange seconds, ``_ms`` exchange milliseconds,
``_ns`` local monotonic nanoseconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Literal, TypeAlias

Side: TypeAlias = Literal["buy", "sell"]
OrderType: TypeAlias = Literal["limit", "market"]
TimeInForce: TypeAlias = Literal["gtc", "ioc", "poc", "fok"]
Level: TypeAlias = tuple[Decimal, Decimal]
"""A book level: (price, amount in base)."""


class TradeStatus(StrEnum):
    """Gate's ``trade_status`` of a currency pair."""

    UNTRADABLE = "untradable"
    BUYABLE = "buyable"
    SELLABLE = "sellable"
    TRADABLE = "tradable"

    @property
    def can_buy(self) -> bool:
        return self in (TradeStatus.BUYABLE, TradeStatus.TRADABLE)

    @property
    def can_sell(self) -> bool:
        return self in (TradeStatus.SELLABLE, TradeStatus.TRADABLE)


class OrderStatus(StrEnum):
    """Gate's order ``status``. ``cancelled`` includes partly filled IOC remainders."""

    OPEN = "open"
    CLOSED = "closed"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class PairInfo:
    """One entry of ``GET /spot/currency_pairs``."""

    pair: str
    base: str
    quote: str
    trade_status: TradeStatus
    buy_start_s: int
    sell_start_s: int
    amount_precision: int
    price_precision: int
    min_base_amount: Decimal | None
    min_quote_amount: Decimal | None
    max_base_amount: Decimal | None = None
    max_quote_amount: Decimal | None = None
    fee_pct: Decimal = Decimal("0.2")
    premarket: bool = False
    delisting_time_s: int = 0


@dataclass(frozen=True, slots=True)
class BookSnapshot:
    """A depth snapshot (REST ``/spot/order_book?with_id=true`` or a ``full`` WS push)."""

    pair: str
    update_id: int
    asks: tuple[Level, ...]
    bids: tuple[Level, ...]
    time_ms: int = 0


@dataclass(frozen=True, slots=True)
class BookUpdate:
    """An incremental ``spot.order_book_update``: ids ``first_id..last_id``, absolute amounts."""

    pair: str
    first_id: int
    last_id: int
    asks: tuple[Level, ...]
    bids: tuple[Level, ...]
    time_ms: int = 0
    full: bool = False


@dataclass(frozen=True, slots=True)
class BookTop:
    """Best bid/ask (``spot.book_ticker``). Sides are ``None`` when empty."""

    pair: str
    update_id: int
    time_ms: int
    bid: Decimal | None
    bid_size: Decimal | None
    ask: Decimal | None
    ask_size: Decimal | None


@dataclass(frozen=True, slots=True)
class Ticker:
    """One ``/spot/tickers`` entry (fields that may be empty are ``None``)."""

    pair: str
    last: Decimal | None
    lowest_ask: Decimal | None
    highest_bid: Decimal | None


@dataclass(frozen=True, slots=True)
class PublicTrade:
    """One public trade (``spot.trades`` / ``/spot/trades``); ``side`` is the taker side."""

    pair: str
    trade_id: int
    side: Side
    price: Decimal
    amount: Decimal
    time_ms: int


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """What we ask Gate to place. ``text`` is the client id (``t-`` prefixed)."""

    pair: str
    side: Side
    amount: Decimal
    price: Decimal | None
    text: str
    type: OrderType = "limit"
    time_in_force: TimeInForce = "ioc"
    account: str = "spot"


@dataclass(frozen=True, slots=True)
class Order:
    """An order as Gate reports it (REST answers and ``spot.orders`` pushes).

    Fields Gate omits in ``ACK`` mode are zero / empty. ``event`` is ``put``/``update``/``finish``
    on WS pushes, ``None`` on REST answers.
    """

    id: str
    text: str
    pair: str
    side: Side
    type: OrderType
    time_in_force: TimeInForce
    status: OrderStatus
    amount: Decimal
    price: Decimal | None
    left: Decimal
    filled_amount: Decimal
    filled_total: Decimal
    avg_deal_price: Decimal | None
    fee: Decimal
    fee_currency: str
    finish_as: str
    create_time_ms: int
    update_time_ms: int
    event: str | None = None


@dataclass(frozen=True, slots=True)
class OrderAck:
    """Gate's minimal answer to a placement (``action_mode=ACK``): it exists, with this id."""

    id: str
    text: str


@dataclass(frozen=True, slots=True)
class Fill:
    """One of our own trades (``spot.usertrades`` / ``/spot/my_trades``)."""

    trade_id: str
    order_id: str
    text: str
    pair: str
    side: Side
    role: Literal["maker", "taker"]
    price: Decimal
    amount: Decimal
    fee: Decimal
    fee_currency: str
    time_ms: int


@dataclass(frozen=True, slots=True)
class Balance:
    """Spot balance of one currency (``/spot/accounts`` or a ``spot.balances`` push)."""

    currency: str
    available: Decimal
    locked: Decimal


@dataclass(frozen=True, slots=True)
class RateLimit:
    """Gate's per-endpoint rate-limit headers, when present."""

    remaining: int | None
    limit: int | None
    reset_ms: int | None
