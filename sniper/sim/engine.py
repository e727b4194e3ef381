"""The simulated Gate v4 exchange: pure, synchronous, deterministic.

Servers call it with the simulated exchange time (``now_ms``) and turn what it returns into
REST answers and WebSocket pushes. Nothing here awaits, reads a clock or touches a socket.

- Pairs, listing schedule and market robots come from a :class:`~sniper.sim.scenarios.Scenario`;
  :meth:`SimEngine.advance` plays the script (see :mod:`sniper.sim.script`).
- Orders are validated as Gate does (:mod:`sniper.sim.validation`), matched with price-time
  priority (:mod:`sniper.sim.matching`), and settled with fees in the currency received
  (:mod:`sniper.sim.clearing`, which also states the status semantics).
- An order can be named by numeric id or by ``text`` while it is open; finished orders only by
  id (§2.6). Unknown orders are ``ORDER_NOT_FOUND`` (404), including cancelling a finished one.
- A market order against an empty opposite side is refused with ``ORDER_BOOK_NOT_FOUND``.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Iterable
from decimal import Decimal

from sniper.sim.accounts import Accounts
from sniper.sim.clearing import Clearing, lock_needed
from sniper.sim.entities import ZERO, SimOrder, SimPair, SimReject, SimTrade, UserAccount
from sniper.sim.events import (
    Announced,
    BalanceChanged,
    BookChanged,
    OrderChanged,
    PairListed,
    PairStatusChanged,
    PublicTradeHappened,
    SimEvent,
    UserTradeHappened,
)
from sniper.sim.matching import OrderBook
from sniper.sim.scenarios import Scenario
from sniper.sim.script import ScenarioScript
from sniper.sim.validation import OrderSpec, parse_order, reject

__all__ = [
    "Announced",
    "BalanceChanged",
    "BookChanged",
    "OrderChanged",
    "PairListed",
    "PairStatusChanged",
    "PublicTradeHappened",
    "SimEngine",
    "SimEvent",
    "SimOrder",
    "SimPair",
    "SimReject",
    "SimTrade",
    "UserTradeHappened",
]


class SimEngine:
    """One simulated exchange. Not thread-safe; call it from one task."""

    def __init__(self, scenario: Scenario, start_ms: int) -> None:
        self.scenario = scenario
        self.start_ms = start_ms
        self.now_ms = start_ms
        self._accounts = Accounts()
        self._pairs: dict[str, SimPair] = {}
        self._books: dict[str, OrderBook] = {}
        self._clearing = Clearing(self._accounts, self._pairs, self._books)
        self._script = ScenarioScript(self, scenario, start_ms)

    # ---- users -------------------------------------------------------------------------

    def add_user(
        self,
        api_key: str,
        api_secret: str,
        balances: dict[str, Decimal],
        *,
        taker_fee: Decimal | None = None,
        maker_fee: Decimal | None = None,
        robot: bool = False,
    ) -> int:
        """Create a user with starting balances; fee rates default to the scenario's."""
        return self._accounts.add(
            api_key,
            api_secret,
            balances,
            taker_fee=self.scenario.taker_fee if taker_fee is None else taker_fee,
            maker_fee=self.scenario.maker_fee if maker_fee is None else maker_fee,
            robot=robot,
        )

    def user_by_key(self, api_key: str) -> tuple[int, str] | None:
        """``(uid, api_secret)`` for a key, or ``None`` (the server answers ``INVALID_KEY``)."""
        return self._accounts.by_key(api_key)

    def user(self, uid: int) -> UserAccount:
        """The user record (fee rates for ``/wallet/fee``)."""
        return self._accounts.get(uid)

    @property
    def mm_uid(self) -> int:
        """The market maker's uid (owns every ladder order)."""
        return self._script.mm_uid

    @property
    def crowd_uid(self) -> int:
        """The background taker's uid."""
        return self._script.crowd_uid

    # ---- time ----------------------------------------------------------------------------

    def advance(self, now_ms: int) -> list[SimEvent]:
        """Play the scenario up to ``now_ms``; events carry the time each step happened."""
        events = self._script.run_until(now_ms)
        self.now_ms = max(self.now_ms, now_ms)
        return events

    def next_event_ms(self) -> int | None:
        """When the script next has something to do (lets a server sleep until then)."""
        return self._script.next_due_ms()

    # ---- market data -------------------------------------------------------------------

    def visible_pairs(self) -> list[SimPair]:
        """Every listed pair (copies), as ``/spot/currency_pairs`` returns them."""
        return [dataclasses.replace(p) for p in self._pairs.values() if p.visible]

    def get_pair(self, pair: str) -> SimPair:
        """One listed pair (a copy); ``INVALID_CURRENCY_PAIR`` if unknown or not yet listed."""
        return dataclasses.replace(self._pair(pair))

    def order_book(
        self, pair: str, limit: int = 10
    ) -> tuple[int, list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]:
        """``(update_id, asks low→high, bids high→low)``; the id matches ``BookChanged``."""
        self._pair(pair)
        book = self._books[pair]
        asks, bids = book.depth(limit)
        return book.update_id, asks, bids

    def ticker(self, pair: str) -> dict[str, str]:
        """One ``/spot/tickers`` row (Gate field names, decimal strings; ``""`` when empty)."""
        self._pair(pair)
        return self._ticker_row(pair, with_sizes=True)

    def tickers(self) -> list[dict[str, str]]:
        """``/spot/tickers`` for every listed pair (sizes only for a single pair, like Gate)."""
        return [
            self._ticker_row(p.pair, with_sizes=False) for p in self._pairs.values() if p.visible
        ]

    def recent_trades(self, pair: str, limit: int = 100) -> list[SimTrade]:
        """Public trades (taker records), newest first."""
        self._pair(pair)
        trades = self._clearing.public_trades.get(pair, deque())
        return list(reversed(trades))[:limit]

    # ---- accounts ----------------------------------------------------------------------

    def balances(self, uid: int) -> dict[str, tuple[Decimal, Decimal]]:
        """``{currency: (available, locked)}``."""
        return self._accounts.balances(uid)

    def withdraw(self, uid: int, currency: str, amount: Decimal, now_ms: int) -> list[SimEvent]:
        """Take ``amount`` of ``currency`` out of the user's available balance (a withdrawal
        or transfer behind the trading client's back; at most what is available)."""
        amount = min(amount, self._accounts.available(uid, currency))
        if amount <= 0:
            return []
        return [self._accounts.withdraw(uid, currency, amount, "withdraw", now_ms)]

    # ---- orders ------------------------------------------------------------------------

    def place_order(
        self, uid: int, params: dict[str, str], now_ms: int, *, default_text: str = "apiv4"
    ) -> tuple[SimOrder, list[SimEvent]]:
        """Validate and execute a ``POST /spot/orders`` body (fields as strings).

        Returns the order as it stands after matching (a copy) and everything that happened.
        ``default_text`` is what ``text`` becomes when omitted (``apiv4-ws`` over the WS API).
        """
        pair_name = params.get("currency_pair")
        if not pair_name:
            raise reject("MISSING_REQUIRED_PARAM", "Missing required parameter: currency_pair")
        pair = self._pair(pair_name)
        spec = parse_order(params, pair, default_text=default_text)
        book = self._books[pair.pair]
        need = lock_needed(spec)
        lock_currency = pair.quote if spec.side == "buy" else pair.base
        if self._accounts.available(uid, lock_currency) < need:
            raise reject("BALANCE_NOT_ENOUGH", "Not enough balance")
        if spec.type == "market":
            best = book.best_ask() if spec.side == "buy" else book.best_bid()
            if best is None:
                raise reject("ORDER_BOOK_NOT_FOUND", "Insufficient liquidity")
        if self.scenario.reject_unfillable:
            self._clearing.refuse_unfillable(spec, pair, book)
        events: list[SimEvent] = []
        order = self._clearing.execute(uid, spec, now_ms, events)
        self._flush(pair.pair, now_ms, events)
        return dataclasses.replace(order), events

    def cancel_order(
        self, uid: int, pair: str, order_id_or_text: str, now_ms: int
    ) -> tuple[SimOrder, list[SimEvent]]:
        """Cancel one open order by id or ``text``; ``ORDER_NOT_FOUND`` (404) otherwise."""
        self._pair(pair)
        order = self._find_open(uid, pair, order_id_or_text)
        events: list[SimEvent] = []
        self._clearing.cancel(order, now_ms, events)
        self._flush(pair, now_ms, events)
        return dataclasses.replace(order), events

    def cancel_all(
        self, uid: int, pair: str | None, side: str | None, now_ms: int
    ) -> tuple[list[SimOrder], list[SimEvent]]:
        """Cancel every open order of ``uid`` (optionally one pair / one side)."""
        if pair is not None:
            self._pair(pair)
        if side is not None and side not in ("buy", "sell"):
            raise reject("INVALID_PARAM_VALUE", f"Invalid parameter `side` with value: {side}")
        events: list[SimEvent] = []
        cancelled: list[SimOrder] = []
        touched: set[str] = set()
        for order in list(self._clearing.open_by_user.get(uid, {}).values()):
            if (pair is None or order.pair == pair) and (side is None or order.side == side):
                self._clearing.cancel(order, now_ms, events)
                cancelled.append(dataclasses.replace(order))
                touched.add(order.pair)
        for name in sorted(touched):
            self._flush(name, now_ms, events)
        return cancelled, events

    def get_order(self, uid: int, pair: str, order_id_or_text: str) -> SimOrder:
        """One order (a copy): by id at any time, by ``text`` only while open."""
        self._pair(pair)
        order = self._clearing.orders.get(order_id_or_text)
        if order is None or order.user_id != uid or order.pair != pair:
            order = self._clearing.open_by_text.get((uid, order_id_or_text))
            if order is None or order.pair != pair:
                raise reject("ORDER_NOT_FOUND", "Order not found", 404)
        return dataclasses.replace(order)

    def list_orders(self, uid: int, pair: str | None, status: str) -> list[SimOrder]:
        """``status="open"``: resting orders, oldest first; ``"finished"``: newest first."""
        if pair is not None:
            self._pair(pair)
        found: Iterable[SimOrder]
        if status == "open":
            found = self._clearing.open_by_user.get(uid, {}).values()
        elif status == "finished":
            found = reversed(self._clearing.finished_by_user.get(uid, deque()))
        else:
            raise reject("INVALID_PARAM_VALUE", f"Invalid parameter `status` with value: {status}")
        return [dataclasses.replace(o) for o in found if pair is None or o.pair == pair]

    def my_trades(
        self, uid: int, pair: str | None = None, order_id: str | None = None, limit: int = 100
    ) -> list[SimTrade]:
        """The user's fills, newest first."""
        found = [
            t
            for t in reversed(self._clearing.user_trades.get(uid, deque()))
            if (pair is None or t.pair == pair) and (order_id is None or t.order_id == order_id)
        ]
        return found[:limit]

    # ---- used by the scenario script ---------------------------------------------------

    def register_pair(self, pair: SimPair) -> None:
        """Add a pair (visible or not yet) and its empty book."""
        self._pairs[pair.pair] = pair
        self._books.setdefault(pair.pair, OrderBook(pair.pair))

    def list_pair(self, pair: str) -> list[SimEvent]:
        """Make a registered pair visible."""
        record = self._pairs[pair]
        record.visible = True
        return [PairListed(dataclasses.replace(record))]

    def set_trade_status(self, pair: str, status: str) -> list[SimEvent]:
        """Change a pair's ``trade_status``."""
        record = self._pairs[pair]
        if record.trade_status == status:
            return []
        record.trade_status = status
        return [PairStatusChanged(dataclasses.replace(record))]

    def book(self, pair: str) -> OrderBook:
        """The live book of a registered pair (read-only use)."""
        return self._books[pair]

    def pair_record(self, pair: str) -> SimPair:
        """The live record of a registered pair, visible or not."""
        return self._pairs[pair]

    def submit(self, uid: int, spec: OrderSpec, now_ms: int, events: list[SimEvent]) -> None:
        """Execute a robot's order without a flush (the caller flushes once per batch).

        Skipped silently when the robot cannot afford it or a market order finds no book.
        """
        pair = self._pairs[spec.pair]
        lock_currency = pair.quote if spec.side == "buy" else pair.base
        if self._accounts.available(uid, lock_currency) < lock_needed(spec):
            return
        book = self._books[spec.pair]
        if (
            spec.type == "market"
            and (book.best_ask() if spec.side == "buy" else book.best_bid()) is None
        ):
            return
        self._clearing.execute(uid, spec, now_ms, events)

    def cancel_user_orders(self, uid: int, pair: str, now_ms: int, events: list[SimEvent]) -> None:
        """Cancel all of a robot's orders on ``pair`` without a flush."""
        for order in list(self._clearing.open_by_user.get(uid, {}).values()):
            if order.pair == pair:
                self._clearing.cancel(order, now_ms, events)

    def flush(self, pair: str, now_ms: int, events: list[SimEvent]) -> None:
        """Report the book changes of ``pair`` since the last flush."""
        self._flush(pair, now_ms, events)

    # ---- internals -----------------------------------------------------------------------

    def _pair(self, pair: str) -> SimPair:
        record = self._pairs.get(pair)
        if record is None or not record.visible:
            raise SimReject("INVALID_CURRENCY_PAIR", f"Invalid currency pair {pair}", 400)
        return record

    def _flush(self, pair: str, now_ms: int, events: list[SimEvent]) -> None:
        change = self._books[pair].flush(now_ms)
        if change is not None:
            events.append(change)

    def _find_open(self, uid: int, pair: str, order_id_or_text: str) -> SimOrder:
        order = self._clearing.open_by_user.get(uid, {}).get(order_id_or_text)
        if order is None:
            order = self._clearing.open_by_text.get((uid, order_id_or_text))
        if order is None or order.pair != pair:
            raise reject("ORDER_NOT_FOUND", "Order not found", 404)
        return order

    def _ticker_row(self, pair: str, *, with_sizes: bool) -> dict[str, str]:
        book = self._books[pair]
        asks, bids = book.depth(1)
        trades = self._clearing.public_trades.get(pair, deque())
        day_ago = self.now_ms - 86_400_000
        recent = [t for t in trades if t.time_ms >= day_ago]
        last = self._clearing.last_price.get(pair)
        first = recent[0].price if recent else None
        change = ""
        if last is not None and first:
            change = _fmt(((last - first) / first * 100).quantize(Decimal("0.01")))
        row = {
            "currency_pair": pair,
            "last": _fmt(last),
            "lowest_ask": _fmt(asks[0][0] if asks else None),
            "highest_bid": _fmt(bids[0][0] if bids else None),
            "change_percentage": change,
            "base_volume": _fmt(sum((t.amount for t in recent), ZERO)),
            "quote_volume": _fmt(sum((t.amount * t.price for t in recent), ZERO)),
            "high_24h": _fmt(max((t.price for t in recent), default=None)),
            "low_24h": _fmt(min((t.price for t in recent), default=None)),
        }
        if with_sizes:
            row["lowest_size"] = _fmt(asks[0][1] if asks else None)
            row["highest_size"] = _fmt(bids[0][1] if bids else None)
        return row


def _fmt(value: Decimal | None) -> str:
    if value is None:
        return ""
    return f"{value.normalize():f}" if value else "0"
