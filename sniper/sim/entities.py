"""The simulator's own records: pairs, orders, trades and the rejection it raises.

These are the simulator's view of Gate v4 (shared/gate-v4.md §2.1, §2.5, §2.7), independent of
the daemon's codec and models on purpose: the simulator must be able to disagree with the
daemon, or it could not catch the daemon's mistakes. Money is :class:`~decimal.Decimal`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

ZERO = Decimal(0)


class SimReject(Exception):  # noqa: N818 -- the name is the servers' contract
    """Gate refused a request: ``label`` is Gate's error label, ``status`` the HTTP status.

    Servers render it as ``{"label": label, "message": message}`` with ``status``
    (shared/gate-v4.md §3).
    """

    def __init__(self, label: str, message: str, status: int = 400) -> None:
        super().__init__(f"[{status}] {label}: {message}")
        self.label = label
        self.message = message
        self.status = status


@dataclass(slots=True)
class SimPair:
    """One currency pair as ``GET /spot/currency_pairs`` shows it (§2.1).

    ``fee_pct`` is in percent, like Gate's deprecated ``fee`` field. ``visible`` is false until
    the scenario lists the pair; invisible pairs do not exist for any endpoint.
    """

    pair: str
    base: str
    quote: str
    trade_status: str
    buy_start_s: int
    sell_start_s: int
    amount_precision: int
    precision: int
    min_base_amount: Decimal | None
    min_quote_amount: Decimal | None
    max_base_amount: Decimal | None = None
    max_quote_amount: Decimal | None = None
    fee_pct: Decimal = Decimal("0.2")
    type: str = "normal"
    visible: bool = True
    delisting_time_s: int = 0
    up_rate: Decimal = Decimal("0.5")
    down_rate: Decimal = Decimal("0.5")
    slippage: Decimal = Decimal("0.1")
    market_order_max_stock: Decimal | None = None
    market_order_max_money: Decimal | None = None

    @property
    def can_buy(self) -> bool:
        """Buys are accepted (``tradable`` or ``buyable``)."""
        return self.trade_status in ("tradable", "buyable")

    @property
    def can_sell(self) -> bool:
        """Sells are accepted (``tradable`` or ``sellable``)."""
        return self.trade_status in ("tradable", "sellable")


@dataclass(slots=True)
class SimOrder:
    """An order as Gate reports it (§2.5). Mutable inside the engine; events carry copies.

    ``amount`` and ``left`` are in quote for a market buy, in base otherwise.
    ``iceberg`` is the displayed amount (``0`` = all of it).
    """

    id: str
    text: str
    user_id: int
    pair: str
    side: str
    type: str
    time_in_force: str
    price: Decimal | None
    amount: Decimal
    left: Decimal
    filled_amount: Decimal
    filled_total: Decimal
    fee: Decimal
    fee_currency: str
    status: str
    finish_as: str
    create_time_ms: int
    update_time_ms: int
    account: str = "spot"
    iceberg: Decimal = ZERO
    amend_text: str = "-"

    @property
    def avg_deal_price(self) -> Decimal | None:
        """Average fill price (``filled_total / filled_amount``), ``None`` before any fill."""
        if not self.filled_amount:
            return None
        return self.filled_total / self.filled_amount

    @property
    def is_open(self) -> bool:
        """Still resting (or being matched)."""
        return self.status == "open"

    @property
    def visible_left(self) -> Decimal:
        """What the book shows of this order: all of ``left``, or the iceberg tip."""
        if self.iceberg > 0:
            return min(self.left, self.iceberg)
        return self.left


@dataclass(frozen=True, slots=True)
class SimTrade:
    """One side of one fill (``spot.usertrades`` / ``/spot/my_trades``, §2.7, §6.5).

    ``id`` is global, ``id_market`` consecutive within the pair. The public view of a trade is
    the taker's record (Gate reports only the taker side publicly).
    """

    id: int
    pair: str
    order_id: str
    user_id: int
    side: str
    role: str
    price: Decimal
    amount: Decimal
    fee: Decimal
    fee_currency: str
    text: str
    time_ms: int
    id_market: int


@dataclass(slots=True)
class UserAccount:
    """A simulated user: credentials, fee rates, balances ``{currency: [available, locked]}``.

    ``robot`` marks the scenario's own market maker and crowd: their finished orders and
    trades are not kept (they would only grow memory), and only their fills are reported as
    events, not the lock/put/cancel churn of every re-quote.
    """

    uid: int
    api_key: str
    api_secret: str
    taker_fee: Decimal
    maker_fee: Decimal
    robot: bool = False
    balances: dict[str, list[Decimal]] = field(default_factory=dict)
