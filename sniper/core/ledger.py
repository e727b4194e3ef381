"""Position accounting from our own fills: what we hold, what it cost, what we made.

A :class:`Position` is a pure fold over :class:`~sniper.core.models.Fill` and
:class:`~sniper.core.models.Balance` events, so replaying the journal rebuilds it exactly:
fills are deduplicated by ``trade_id`` (the private WS push and the ``my_trades`` reconcile
both deliver them), and every total is order-independent.

Fee rules (gate-v4.md sections 2.5 and 11, fact 4): Gate charges the fee in the currency
received unless GT or points pay it, so

* a fee in the **base** currency reduces the base we hold (a buy normally),
* a fee in the **quote** currency reduces the quote we receive (a sell normally) or adds to
  what a buy cost,
* a fee in any other currency (GT, POINT) changes neither; it is only counted.

``avg_entry_price`` is quote spent over the *gross* base bought (the exchange's average fill
price, which the take-profit target is based on); realized PnL uses the *net* cost of each base
unit we actually received, so fees are never hidden.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Final

from sniper.core.models import Balance, Fill, PairInfo

_ZERO: Final = Decimal(0)


@dataclass(frozen=True, slots=True)
class PositionSnapshot:
    """A position's numbers at one moment (for the journal, metrics and the report)."""

    pair: str
    held: Decimal
    """Base we really hold: net of fees, capped by the exchange balance when that is lower."""
    base_bought: Decimal
    """Gross base bought (sum of buy fill amounts)."""
    base_received: Decimal
    """Base bought minus base-currency fees."""
    base_sold: Decimal
    quote_spent: Decimal
    """Sum of ``price * amount`` over buys (quote-currency buy fees are in ``quote_fees``)."""
    quote_received: Decimal
    """Sum of ``price * amount`` over sells, minus quote-currency sell fees."""
    quote_fees: Decimal
    avg_entry_price: Decimal | None
    avg_exit_price: Decimal | None
    realized_pnl: Decimal
    balance_shortfall: Decimal
    """How much less base the exchange reported than our fills say (0 when it agrees)."""
    other_fees: tuple[tuple[str, Decimal], ...]
    """Fees paid in neither base nor quote (GT, POINT), by currency."""
    buy_fills: int
    sell_fills: int
    closed: bool


@dataclass(slots=True)
class Position:
    """One listing's position, folded from fills (idempotent) and balances."""

    pair: str
    base: str
    quote: str
    base_bought: Decimal = _ZERO
    base_sold: Decimal = _ZERO
    base_fees: Decimal = _ZERO
    quote_spent: Decimal = _ZERO
    quote_gross_received: Decimal = _ZERO
    quote_fees_buy: Decimal = _ZERO
    quote_fees_sell: Decimal = _ZERO
    balance_shortfall: Decimal = _ZERO
    buy_fills: int = 0
    sell_fills: int = 0
    first_buy_ms: int | None = None
    closed: bool = False
    other_fees: dict[str, Decimal] = field(default_factory=dict)
    _trade_ids: set[str] = field(default_factory=set, repr=False)
    _sold_by_order: dict[str, Decimal] = field(default_factory=dict, repr=False)

    @classmethod
    def for_pair(cls, pair: PairInfo) -> Position:
        """An empty position for ``pair``."""
        return cls(pair=pair.pair, base=pair.base, quote=pair.quote)

    # -- inputs ------------------------------------------------------------------------------

    def apply_fill(self, fill: Fill) -> bool:
        """Fold one of our trades in. Returns ``False`` when ``trade_id`` was already applied."""
        if fill.pair != self.pair:
            raise ValueError(f"fill for {fill.pair} applied to position {self.pair}")
        if fill.trade_id in self._trade_ids:
            return False
        self._trade_ids.add(fill.trade_id)
        value = fill.price * fill.amount
        if fill.side == "buy":
            self.buy_fills += 1
            self.base_bought += fill.amount
            self.quote_spent += value
            if fill.time_ms > 0 and (self.first_buy_ms is None or fill.time_ms < self.first_buy_ms):
                self.first_buy_ms = fill.time_ms
        else:
            self.sell_fills += 1
            self.base_sold += fill.amount
            self.quote_gross_received += value
            self._sold_by_order[fill.order_id] = (
                self._sold_by_order.get(fill.order_id, _ZERO) + fill.amount
            )
        if fill.fee_currency == self.base:
            self.base_fees += fill.fee
        elif fill.fee_currency == self.quote:
            if fill.side == "buy":
                self.quote_fees_buy += fill.fee
            else:
                self.quote_fees_sell += fill.fee
        elif fill.fee:
            key = fill.fee_currency or "?"
            self.other_fees[key] = self.other_fees.get(key, _ZERO) + fill.fee
        return True

    def apply_balance(self, balance: Balance) -> bool:
        """Cap ``held`` by the exchange's ``available + locked`` of our base currency.

        The latest balance wins: a lower one records a shortfall, an equal or higher one clears
        it (never raising ``held`` above what the fills say, since the account may hold base
        that is not ours). Returns ``True`` when the shortfall changed.
        """
        if balance.currency != self.base:
            return False
        total = balance.available + balance.locked
        shortfall = max(_ZERO, self.held_by_fills - total)
        changed = shortfall != self.balance_shortfall
        self.balance_shortfall = shortfall
        return changed

    def mark_closed(self) -> None:
        """The exit is finished (sold, or dust left behind): no longer an open position."""
        self.closed = True

    # -- derived values ----------------------------------------------------------------------

    @property
    def base_received(self) -> Decimal:
        """Gross base bought minus fees charged in base."""
        return self.base_bought - self.base_fees

    @property
    def held_by_fills(self) -> Decimal:
        """What the fills alone say we hold."""
        return self.base_received - self.base_sold

    @property
    def held(self) -> Decimal:
        """Base we really hold: fills, less any shortfall the exchange balance reported."""
        return max(_ZERO, self.held_by_fills - self.balance_shortfall)

    @property
    def avg_entry_price(self) -> Decimal | None:
        """Quote spent over gross base bought (the exchange's average fill price)."""
        return self.quote_spent / self.base_bought if self.base_bought else None

    @property
    def avg_exit_price(self) -> Decimal | None:
        """Gross quote received over base sold."""
        return self.quote_gross_received / self.base_sold if self.base_sold else None

    @property
    def quote_received(self) -> Decimal:
        """Quote from sells, net of quote-currency fees."""
        return self.quote_gross_received - self.quote_fees_sell

    @property
    def cost_per_unit(self) -> Decimal | None:
        """What one unit of base we received cost, fees included."""
        if self.base_received <= 0:
            return None
        return (self.quote_spent + self.quote_fees_buy) / self.base_received

    @property
    def realized_pnl(self) -> Decimal:
        """Quote received for what was sold, minus what those units cost (average cost)."""
        unit = self.cost_per_unit
        if unit is None:
            return self.quote_received - self.quote_spent - self.quote_fees_buy
        return self.quote_received - unit * self.base_sold

    def unrealized_pnl(self, price: Decimal) -> Decimal:
        """Mark what is held at ``price`` (before sell fees)."""
        unit = self.cost_per_unit or _ZERO
        return (price - unit) * self.held

    def sold_by_order(self, order_id: str) -> Decimal:
        """Base sold by fills of ``order_id`` (to compare with the order's ``filled_amount``)."""
        return self._sold_by_order.get(order_id, _ZERO)

    def has_trade(self, trade_id: str) -> bool:
        """Whether ``trade_id`` was applied."""
        return trade_id in self._trade_ids

    def snapshot(self) -> PositionSnapshot:
        """The numbers now, frozen."""
        return PositionSnapshot(
            pair=self.pair,
            held=self.held,
            base_bought=self.base_bought,
            base_received=self.base_received,
            base_sold=self.base_sold,
            quote_spent=self.quote_spent,
            quote_received=self.quote_received,
            quote_fees=self.quote_fees_buy + self.quote_fees_sell,
            avg_entry_price=self.avg_entry_price,
            avg_exit_price=self.avg_exit_price,
            realized_pnl=self.realized_pnl,
            balance_shortfall=self.balance_shortfall,
            other_fees=tuple(sorted(self.other_fees.items())),
            buy_fills=self.buy_fills,
            sell_fills=self.sell_fills,
            closed=self.closed,
        )


class Ledger:
    """Positions by pair. Fills and balances are routed to the position(s) they concern."""

    __slots__ = ("_positions",)

    def __init__(self) -> None:
        self._positions: dict[str, Position] = {}

    def open(self, pair: PairInfo) -> Position:
        """The position of ``pair``, created empty on first use."""
        position = self._positions.get(pair.pair)
        if position is None:
            position = self._positions[pair.pair] = Position.for_pair(pair)
        return position

    def get(self, pair: str) -> Position | None:
        """The position of ``pair`` if one was opened."""
        return self._positions.get(pair)

    def apply_fill(self, fill: Fill) -> bool:
        """Route ``fill`` to its position. ``False`` when duplicate or for a pair we never opened
        (the ``!all`` private channel also reports trades we did not make)."""
        position = self._positions.get(fill.pair)
        return position.apply_fill(fill) if position is not None else False

    def apply_balance(self, balance: Balance) -> list[Position]:
        """Apply ``balance`` to every position in that base currency; returns those changed."""
        return [p for p in self._positions.values() if p.apply_balance(balance)]

    def open_positions(self) -> list[Position]:
        """Positions holding base (or with fills) that are not closed yet."""
        return [
            p for p in self._positions.values() if not p.closed and (p.held > 0 or p.buy_fills)
        ]

    def __iter__(self) -> Iterator[Position]:
        return iter(self._positions.values())

    def __len__(self) -> int:
        return len(self._positions)

    def snapshot(self) -> tuple[PositionSnapshot, ...]:
        """Snapshots of every position, by pair."""
        return tuple(self._positions[k].snapshot() for k in sorted(self._positions))
