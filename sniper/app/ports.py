"""What the pipeline needs from the outside world, chosen once at assembly.

Live, dry-run (paper) and replay each provide these; nothing below assembly asks which mode
it is in.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from sniper.core.models import (
    Balance,
    BookSnapshot,
    Fill,
    Order,
    OrderAck,
    OrderRequest,
    PairInfo,
)

TopHandler = Callable[[str, Any, Any, int, bool], None]
"""``on_top(pair, best_bid, best_ask, recv_ns, opened)``; bid/ask are ``Level | None``."""


class MarketData(Protocol):
    """Pair list, snapshots and per-pair book streams."""

    async def currency_pairs(self) -> list[PairInfo]: ...

    async def order_book(self, pair: str, limit: int = 100) -> BookSnapshot: ...

    async def watch_book(self, pair: str) -> None:
        """Start streaming ``pair``'s book to the top handler (subscribe ahead of the open)."""
        ...

    async def unwatch_book(self, pair: str) -> None: ...


class EntrySender(Protocol):
    """The latency-critical buy path: prepare ahead, fire with one write."""

    def prepare(self, request: OrderRequest) -> object: ...

    async def fire(self, prepared: object, price: Any, amount: Any) -> Order | OrderAck: ...


class Execution(Protocol):
    """Orders (sells, cancels, lookups) and account state."""

    async def place(self, request: OrderRequest) -> Order | OrderAck: ...

    async def cancel(self, order_id: str, pair: str) -> Order: ...

    async def status(self, order_id: str, pair: str) -> Order: ...

    async def find_orders(self, pair: str, texts: frozenset[str]) -> list[Order]:
        """Open and recently finished orders of ``pair`` whose client id is in ``texts``."""
        ...

    async def my_fills(self, pair: str) -> list[Fill]: ...

    async def balance(self, currency: str) -> Balance: ...


@dataclass(frozen=True, slots=True)
class Handlers:
    """Where the edges deliver what they receive (called on the event loop, never blocking)."""

    on_top: TopHandler
    on_order: Callable[[Order], None]
    on_fill: Callable[[Fill], None]
    on_balance: Callable[[Balance], None]
    on_announcement: Callable[[str, int | None], None] | None = None
    """``(symbol, start_s)`` of a listing announced before its pair appears."""


@dataclass
class Edges:
    """The assembled outside world. ``start``/``stop`` bring connections up and down."""

    market: MarketData
    entry: EntrySender
    execution: Execution
    server_time_ms: Callable[[], Awaitable[int]]
    bind: Callable[[Handlers], None]
    start: Callable[[], Awaitable[None]]
    stop: Callable[[], Awaitable[None]]
    describe: str = "live"
    extra: dict[str, Any] = field(default_factory=dict)
