"""Order lifecycle: lock funds, match, settle fills with fees, finish, cancel.

Gate semantics (shared/gate-v4.md §2.4, §2.5, §11.4):

- Placing locks quote for a buy (``price × amount``, or a market buy's quote ``amount``) and
  base for a sell. A buy filled below its limit gets the difference back at once.
- Fees come out of what is received, at the taker or maker rate of each side: a buyer is
  charged in base, a seller in quote.
- Fully filled → ``closed``/``filled``; an IOC remainder → ``cancelled``/``ioc`` even when
  partly filled; a market order that runs out of book → ``cancelled``/``depth_not_enough``; a
  market buy whose remaining quote cannot buy one more unit at the next price →
  ``closed``/``filled`` with that quote as ``left``; post-only that would take →
  ``cancelled``/``poc``; FOK that cannot fill completely → ``cancelled``/``fok``.
- Both sides of a fill share the trade ``id`` and ``id_market``; the public trade is the taker's.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from decimal import Decimal

from sniper.sim.accounts import Accounts
from sniper.sim.entities import ZERO, SimOrder, SimPair, SimTrade
from sniper.sim.events import (
    BalanceChanged,
    OrderChanged,
    PublicTradeHappened,
    SimEvent,
    UserTradeHappened,
)
from sniper.sim.matching import (
    OrderBook,
    PlannedFill,
    plan_fills,
    quote_left_to_base,
    would_cross,
)
from sniper.sim.validation import OrderSpec, reject

_PUBLIC_TRADES_KEPT = 1000
_FINISHED_ORDERS_KEPT = 1000
_USER_TRADES_KEPT = 5000


class Clearing:
    """Executes validated orders against the books and keeps every order and trade record.

    The engine reads the records directly (``orders``, ``open_by_user``, ...); only this
    class changes them.
    """

    def __init__(
        self, accounts: Accounts, pairs: dict[str, SimPair], books: dict[str, OrderBook]
    ) -> None:
        self._accounts = accounts
        self._pairs = pairs
        self._books = books
        self.orders: dict[str, SimOrder] = {}
        self.locked: dict[str, Decimal] = {}
        self.open_by_user: dict[int, dict[str, SimOrder]] = {}
        self.open_by_text: dict[tuple[int, str], SimOrder] = {}
        self.finished_by_user: dict[int, deque[SimOrder]] = {}
        self.user_trades: dict[int, deque[SimTrade]] = {}
        self.public_trades: dict[str, deque[SimTrade]] = {}
        self.last_price: dict[str, Decimal] = {}
        self._next_order_id = 700_000_000_001
        self._next_trade_id = 9_000_000_001
        self._next_market_trade_id: dict[str, int] = {}

    def refuse_unfillable(self, spec: OrderSpec, pair: SimPair, book: OrderBook) -> None:
        """Raise ``POC_FILL_IMMEDIATELY``/``FOK_NOT_FILL`` (the scenario's refusal mode)."""
        if (
            spec.time_in_force == "poc"
            and spec.price is not None
            and would_cross(book, spec.side, spec.price)
        ):
            raise reject("POC_FILL_IMMEDIATELY", "Order would be filled immediately")
        if spec.time_in_force == "fok" and not self.fok_fills(spec, pair, book):
            raise reject("FOK_NOT_FILL", "Order cannot be filled completely")

    def _plan(
        self, spec: OrderSpec, pair: SimPair, book: OrderBook, left: Decimal
    ) -> list[PlannedFill]:
        market_buy = spec.type == "market" and spec.side == "buy"
        return plan_fills(
            book,
            spec.side,
            spec.price,
            None if market_buy else left,
            left if market_buy else None,
            pair.amount_precision,
        )

    def fok_fills(self, spec: OrderSpec, pair: SimPair, book: OrderBook) -> bool:
        """``spec`` would fill completely right now.

        A market buy counts as complete when what it cannot spend would not buy one more unit
        at the last price it reaches.
        """
        fills = self._plan(spec, pair, book, spec.amount)
        if spec.type == "market" and spec.side == "buy":
            if not fills:
                return False
            rest = spec.amount - sum((f.amount * f.price for f in fills), ZERO)
            return quote_left_to_base(rest, fills[-1].price, pair.amount_precision) <= 0
        return sum((f.amount for f in fills), ZERO) == spec.amount

    def execute(self, uid: int, spec: OrderSpec, now_ms: int, events: list[SimEvent]) -> SimOrder:
        """Create, lock, match and settle ``spec``; the caller has checked the balance.

        Appends what happened to ``events`` (book changes excepted: the caller flushes).
        """
        pair = self._pairs[spec.pair]
        book = self._books[spec.pair]
        order = SimOrder(
            id=str(self._next_order_id),
            text=spec.text,
            user_id=uid,
            pair=spec.pair,
            side=spec.side,
            type=spec.type,
            time_in_force=spec.time_in_force,
            price=spec.price,
            amount=spec.amount,
            left=spec.amount,
            filled_amount=ZERO,
            filled_total=ZERO,
            fee=ZERO,
            fee_currency=pair.base if spec.side == "buy" else pair.quote,
            status="open",
            finish_as="open",
            create_time_ms=now_ms,
            update_time_ms=now_ms,
            account=spec.account,
            iceberg=spec.iceberg,
        )
        self._next_order_id += 1
        self.orders[order.id] = order
        self.open_by_user.setdefault(uid, {})[order.id] = order
        self.open_by_text[(uid, order.text)] = order
        need = lock_needed(spec)
        lock_currency = pair.quote if spec.side == "buy" else pair.base
        self._private(events, self._accounts.lock(uid, lock_currency, need, "order-create", now_ms))
        self.locked[order.id] = need
        self._private(events, OrderChanged(uid, dataclasses.replace(order), "put"))

        if (
            spec.time_in_force == "poc"
            and spec.price is not None
            and would_cross(book, spec.side, spec.price)
        ):
            self._finish(order, "cancelled", "poc", now_ms, events)
            return order
        if spec.time_in_force == "fok" and not self.fok_fills(spec, pair, book):
            self._finish(order, "cancelled", "fok", now_ms, events)
            return order

        fills = self._plan(spec, pair, book, order.left)
        for fill in fills:
            self._settle(order, fill, pair, now_ms, events)
        self._conclude(order, pair, book, bool(fills), now_ms, events)
        return order

    def _conclude(
        self,
        order: SimOrder,
        pair: SimPair,
        book: OrderBook,
        traded: bool,
        now_ms: int,
        events: list[SimEvent],
    ) -> None:
        """Decide how a taker order stands after matching: rest, or finish and how."""
        if order.type == "market":
            if order.left <= 0:
                self._finish(order, "closed", "filled", now_ms, events)
                return
            best = book.best_ask() if order.side == "buy" else book.best_bid()
            dust = (
                order.side == "buy"
                and best is not None
                and quote_left_to_base(order.left, best, pair.amount_precision) <= 0
            )
            if dust:
                self._finish(order, "closed", "filled", now_ms, events)
            else:
                self._finish(order, "cancelled", "depth_not_enough", now_ms, events)
            return
        if order.left <= 0:
            self._finish(order, "closed", "filled", now_ms, events)
        elif order.time_in_force in ("ioc", "fok"):
            self._finish(order, "cancelled", "ioc", now_ms, events)
        else:
            book.add(order)
            if traded:
                self._private(
                    events, OrderChanged(order.user_id, dataclasses.replace(order), "update")
                )

    def _settle(
        self,
        taker: SimOrder,
        fill: PlannedFill,
        pair: SimPair,
        now_ms: int,
        events: list[SimEvent],
    ) -> None:
        """Trade ``fill.amount`` base at ``fill.price``: move money, charge fees, report."""
        maker, price, amount = fill.maker, fill.price, fill.amount
        total = amount * price
        trade_id = self._next_trade_id
        self._next_trade_id += 1
        id_market = self._next_market_trade_id.get(pair.pair, 1)
        self._next_market_trade_id[pair.pair] = id_market + 1

        records: list[SimTrade] = []
        for order, role in ((taker, "taker"), (maker, "maker")):
            account = self._accounts.get(order.user_id)
            rate = account.taker_fee if role == "taker" else account.maker_fee
            if order.side == "buy":
                fee = amount * rate
                # A limit buy locked price × amount; a cheaper fill frees the difference.
                cost = (
                    total if order.type == "market" or order.price is None else amount * order.price
                )
                self._pay(order, pair.quote, total, cost, now_ms, events)
                self._private(
                    events,
                    self._accounts.credit(
                        order.user_id, pair.base, amount - fee, "order-match", now_ms
                    ),
                )
            else:
                fee = total * rate
                self._pay(order, pair.base, amount, amount, now_ms, events)
                self._private(
                    events,
                    self._accounts.credit(
                        order.user_id, pair.quote, total - fee, "order-match", now_ms
                    ),
                )
            order.filled_amount += amount
            order.filled_total += total
            order.fee += fee
            order.left -= total if (order.type == "market" and order.side == "buy") else amount
            order.update_time_ms = now_ms
            records.append(
                SimTrade(
                    id=trade_id,
                    pair=pair.pair,
                    order_id=order.id,
                    user_id=order.user_id,
                    side=order.side,
                    role=role,
                    price=price,
                    amount=amount,
                    fee=fee,
                    fee_currency=order.fee_currency,
                    text=order.text,
                    time_ms=now_ms,
                    id_market=id_market,
                )
            )
        taker_trade, maker_trade = records
        self._record_trade(taker_trade)
        self._record_trade(maker_trade)
        public = self.public_trades.setdefault(pair.pair, deque(maxlen=_PUBLIC_TRADES_KEPT))
        public.append(taker_trade)
        self.last_price[pair.pair] = price
        self._private(events, UserTradeHappened(taker.user_id, taker_trade))
        self._private(events, UserTradeHappened(maker.user_id, maker_trade))
        events.append(PublicTradeHappened(pair.pair, taker_trade))
        book = self._books[pair.pair]
        if maker.left <= 0:
            book.remove(maker)
            self._finish(maker, "closed", "filled", now_ms, events)
        else:
            book.touch(maker)
            self._private(events, OrderChanged(maker.user_id, dataclasses.replace(maker), "update"))

    def _pay(
        self,
        order: SimOrder,
        currency: str,
        spent: Decimal,
        released: Decimal,
        now_ms: int,
        events: list[SimEvent],
    ) -> None:
        """Take ``spent`` out of the order's lock, and return ``released - spent`` to available."""
        locked = self.locked[order.id]
        # Never more than what this order locked: guards against rounding in the 28th digit.
        released = min(released, locked)
        spent = min(spent, released)
        self._private(
            events,
            self._accounts.spend_locked(order.user_id, currency, spent, "order-match", now_ms),
        )
        if released > spent:
            self._private(
                events,
                self._accounts.unlock(
                    order.user_id, currency, released - spent, "order-update", now_ms
                ),
            )
        self.locked[order.id] = locked - released

    def _private(
        self, events: list[SimEvent], event: BalanceChanged | OrderChanged | UserTradeHappened
    ) -> None:
        """Report a private event; for robots, only fills (see :class:`UserAccount`)."""
        if (
            not self._accounts.get(event.user_id).robot
            or isinstance(event, UserTradeHappened)
            or (
                isinstance(event, OrderChanged)
                and event.event != "put"
                and event.order.filled_amount > 0
            )
        ):
            events.append(event)

    def _record_trade(self, trade: SimTrade) -> None:
        if self._accounts.get(trade.user_id).robot:
            return
        self.user_trades.setdefault(trade.user_id, deque(maxlen=_USER_TRADES_KEPT)).append(trade)

    def _finish(
        self, order: SimOrder, status: str, finish_as: str, now_ms: int, events: list[SimEvent]
    ) -> None:
        order.status = status
        order.finish_as = finish_as
        order.update_time_ms = now_ms
        locked = self.locked.pop(order.id, ZERO)
        if locked > 0:
            pair = self._pairs[order.pair]
            currency = pair.quote if order.side == "buy" else pair.base
            self._private(
                events,
                self._accounts.unlock(order.user_id, currency, locked, "order-update", now_ms),
            )
        self.open_by_user.get(order.user_id, {}).pop(order.id, None)
        if self.open_by_text.get((order.user_id, order.text)) is order:
            del self.open_by_text[(order.user_id, order.text)]
        if not self._accounts.get(order.user_id).robot:
            finished = self.finished_by_user.setdefault(
                order.user_id, deque(maxlen=_FINISHED_ORDERS_KEPT)
            )
            finished.append(order)
        else:
            del self.orders[order.id]
        self._private(events, OrderChanged(order.user_id, dataclasses.replace(order), "finish"))

    def cancel(self, order: SimOrder, now_ms: int, events: list[SimEvent]) -> None:
        """Take an open order off the book and release what it still locks."""
        self._books[order.pair].remove(order)
        self._finish(order, "cancelled", "cancelled", now_ms, events)


def lock_needed(spec: OrderSpec) -> Decimal:
    """What placing ``spec`` locks: quote for buys (price × amount, or the market buy's quote)."""
    if spec.side == "buy" and spec.type == "limit":
        assert spec.price is not None
        return spec.price * spec.amount
    return spec.amount
