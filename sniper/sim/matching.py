"""One pair's order book: price-time priority, match planning, and book update ids.

Rules (shared/gate-v4.md §2.4, §6.4, §6.6):

- Resting orders queue per price level in arrival order; the best price trades first, and a
  trade happens at the resting (maker) order's price.
- A limit buy takes asks priced ``<= price``; a limit sell takes bids priced ``>= price``.
- A market buy spends quote: at each maker it takes as much base as the remaining quote buys,
  truncated to ``amount_precision`` (the exchange never fills a fraction it cannot represent).
  A market sell takes bids at any price.
- Every change to the visible levels advances the book's update id by one per changed level;
  :meth:`OrderBook.flush` reports them as one ``BookChanged`` (``U`` = previous ``u`` + 1), so
  a client replaying the events reproduces :meth:`OrderBook.depth` exactly at each id.

Planning (:func:`plan_fills`) never mutates: FOK and post-only checks need the answer before
anything happens.
"""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import ROUND_DOWN, Context, Decimal

from sniper.sim.entities import ZERO, SimOrder
from sniper.sim.events import BookChanged, BookLevel


@dataclass(frozen=True, slots=True)
class PlannedFill:
    """``amount`` base of ``maker`` would trade at ``price``."""

    maker: SimOrder
    price: Decimal
    amount: Decimal


def quantize_down(value: Decimal, places: int) -> Decimal:
    """``value`` truncated to ``places`` decimals (never rounded up)."""
    # A wide context: the default 28 digits would make quantize fail on large quote amounts.
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_DOWN, context=_WIDE)


_WIDE = Context(prec=80, rounding=ROUND_DOWN)


class _Side:
    """Levels of one side: ``prices`` ascending, a FIFO queue per price."""

    __slots__ = ("levels", "prices")

    def __init__(self) -> None:
        self.prices: list[Decimal] = []
        self.levels: dict[Decimal, deque[SimOrder]] = {}

    def add(self, order: SimOrder, price: Decimal) -> None:
        queue = self.levels.get(price)
        if queue is None:
            queue = deque()
            self.levels[price] = queue
            bisect.insort(self.prices, price)
        queue.append(order)

    def remove(self, order: SimOrder, price: Decimal) -> None:
        queue = self.levels[price]
        queue.remove(order)
        if not queue:
            del self.levels[price]
            del self.prices[bisect.bisect_left(self.prices, price)]

    def amount_at(self, price: Decimal) -> Decimal:
        queue = self.levels.get(price)
        if not queue:
            return ZERO
        return sum((o.visible_left for o in queue), ZERO)


class OrderBook:
    """Resting orders of one pair. Orders must be limit orders with a price."""

    def __init__(self, pair: str, update_id: int = 0) -> None:
        self.pair = pair
        self.update_id = update_id
        self._asks = _Side()
        self._bids = _Side()
        self._touched_asks: set[Decimal] = set()
        self._touched_bids: set[Decimal] = set()
        # What clients were last told per level, so unchanged levels are not re-sent.
        self._shown_asks: dict[Decimal, Decimal] = {}
        self._shown_bids: dict[Decimal, Decimal] = {}

    def __len__(self) -> int:
        return sum(len(q) for q in self._asks.levels.values()) + sum(
            len(q) for q in self._bids.levels.values()
        )

    def add(self, order: SimOrder) -> None:
        """Rest ``order`` at the back of its price level."""
        price = _price(order)
        if order.side == "buy":
            self._bids.add(order, price)
            self._touched_bids.add(price)
        else:
            self._asks.add(order, price)
            self._touched_asks.add(price)

    def remove(self, order: SimOrder) -> None:
        """Take ``order`` out of the book (filled or cancelled)."""
        price = _price(order)
        if order.side == "buy":
            self._bids.remove(order, price)
            self._touched_bids.add(price)
        else:
            self._asks.remove(order, price)
            self._touched_asks.add(price)

    def touch(self, order: SimOrder) -> None:
        """``order``'s ``left`` changed in place (partial fill): its level must be re-sent."""
        (self._touched_bids if order.side == "buy" else self._touched_asks).add(_price(order))

    def best_ask(self) -> Decimal | None:
        """Lowest ask price."""
        return self._asks.prices[0] if self._asks.prices else None

    def best_bid(self) -> Decimal | None:
        """Highest bid price."""
        return self._bids.prices[-1] if self._bids.prices else None

    def depth(self, limit: int) -> tuple[list[BookLevel], list[BookLevel]]:
        """``(asks low→high, bids high→low)``, at most ``limit`` levels each, visible amounts."""
        asks = [(p, self._asks.amount_at(p)) for p in self._asks.prices[:limit]]
        bid_prices = self._bids.prices[::-1][:limit]
        bids = [(p, self._bids.amount_at(p)) for p in bid_prices]
        return asks, bids

    def makers_for(self, taker_side: str) -> Iterator[SimOrder]:
        """Resting orders a ``taker_side`` taker meets, best price first, then time.

        Iterates over a snapshot, so the caller may fill (and remove) as it goes.
        """
        if taker_side == "buy":
            side, prices = self._asks, list(self._asks.prices)
        else:
            side, prices = self._bids, self._bids.prices[::-1]
        for price in prices:
            yield from list(side.levels.get(price, ()))

    def orders(self) -> Iterator[SimOrder]:
        """Every resting order (no particular order)."""
        for side in (self._asks, self._bids):
            for queue in side.levels.values():
                yield from queue

    def flush(self, time_ms: int) -> BookChanged | None:
        """The visible changes since the last flush as one event, or ``None`` if nothing shows."""
        asks = _diff(self._asks, self._touched_asks, self._shown_asks)
        bids = _diff(self._bids, self._touched_bids, self._shown_bids)
        self._touched_asks.clear()
        self._touched_bids.clear()
        changed = len(asks) + len(bids)
        if not changed:
            return None
        first = self.update_id + 1
        self.update_id += changed
        return BookChanged(
            pair=self.pair,
            first_id=first,
            last_id=self.update_id,
            bids=bids,
            asks=asks,
            time_ms=time_ms,
        )


def _price(order: SimOrder) -> Decimal:
    if order.price is None:
        raise ValueError(f"order {order.id} has no price and cannot rest")
    return order.price


def _diff(side: _Side, touched: set[Decimal], shown: dict[Decimal, Decimal]) -> list[BookLevel]:
    changes: list[BookLevel] = []
    for price in sorted(touched):
        amount = side.amount_at(price)
        if shown.get(price, ZERO) == amount:
            continue
        changes.append((price, amount))
        if amount:
            shown[price] = amount
        else:
            shown.pop(price, None)
    return changes


def plan_fills(
    book: OrderBook,
    side: str,
    limit_price: Decimal | None,
    base_amount: Decimal | None,
    quote_amount: Decimal | None,
    amount_precision: int,
) -> list[PlannedFill]:
    """What a taker would trade right now, without changing anything.

    Give ``base_amount`` (limit orders, market sells) or ``quote_amount`` (market buys).
    ``limit_price`` ``None`` means a market order.
    """
    fills: list[PlannedFill] = []
    base_left = base_amount
    quote_left = quote_amount
    for maker in book.makers_for(side):
        price = _price(maker)
        if limit_price is not None and (
            (side == "buy" and price > limit_price) or (side == "sell" and price < limit_price)
        ):
            break
        if base_left is not None:
            amount = min(base_left, maker.left)
        else:
            assert quote_left is not None
            amount = min(quote_left_to_base(quote_left, price, amount_precision), maker.left)
        if amount <= 0:
            break
        fills.append(PlannedFill(maker, price, amount))
        if base_left is not None:
            base_left -= amount
            if base_left <= 0:
                break
        else:
            assert quote_left is not None
            quote_left -= amount * price
            if quote_left <= 0:
                break
    return fills


def quote_left_to_base(quote: Decimal, price: Decimal, amount_precision: int) -> Decimal:
    """How much base ``quote`` buys at ``price``, truncated to ``amount_precision``."""
    # Divide rounding down, so the base bought never costs more than the quote given.
    return quantize_down(_WIDE.divide(quote, price), amount_precision)


def would_cross(book: OrderBook, side: str, price: Decimal) -> bool:
    """A limit order at ``price`` would take liquidity (post-only check)."""
    if side == "buy":
        best = book.best_ask()
        return best is not None and best <= price
    best = book.best_bid()
    return best is not None and best >= price
