"""Engine objects -> Gate-shaped JSON values (gate-v4.md §2.1, §2.5, §2.7, §6.4, §6.5).

The simulator has its own rendering on purpose: it must not share the daemon's codec, or it
could not catch the daemon's mistakes. Decimals are rendered as plain decimal strings (never
exponent notation); REST and WS differ where Gate differs (``create_time_ms`` is an int in REST
and a string in ``spot.orders``; trade ids are strings in REST and ints on WS).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sniper.sim.entities import SimOrder, SimPair, SimTrade
from sniper.sim.events import BalanceChanged, BookLevel

JsonDict = dict[str, Any]


def dec(value: Decimal | None) -> str | None:
    """A decimal as Gate writes it (``"0.001"``, never ``"1E-3"``); ``None`` stays ``None``."""
    if value is None:
        return None
    return format(value, "f")


def dec0(value: Decimal | None) -> str:
    """Like :func:`dec` but ``None`` becomes ``"0"``."""
    return "0" if value is None else format(value, "f")


def ms_to_s_str(time_ms: int) -> str:
    """Whole seconds as a string (Gate's ``create_time``)."""
    return str(time_ms // 1000)


def ms_frac_str(time_ms: int) -> str:
    """Milliseconds with a fractional part, as Gate writes trade ``create_time_ms``."""
    return f"{time_ms}.000"


def pair_json(pair: SimPair) -> JsonDict:
    """One ``CurrencyPair`` (``/spot/currency_pairs``)."""
    return {
        "id": pair.pair,
        "base": pair.base,
        "base_name": pair.base,
        "quote": pair.quote,
        "quote_name": pair.quote,
        "fee": dec(pair.fee_pct.normalize()),
        "min_base_amount": dec(pair.min_base_amount),
        "min_quote_amount": dec(pair.min_quote_amount),
        "max_base_amount": dec(pair.max_base_amount),
        "max_quote_amount": dec(pair.max_quote_amount),
        "amount_precision": pair.amount_precision,
        "precision": pair.precision,
        "trade_status": pair.trade_status,
        "sell_start": pair.sell_start_s,
        "buy_start": pair.buy_start_s,
        "delisting_time": pair.delisting_time_s,
        "type": pair.type,
        "trade_url": f"https://www.gate.com/trade/{pair.pair}",
        "st_tag": False,
        "up_rate": dec(pair.up_rate),
        "down_rate": dec(pair.down_rate),
        "slippage": dec(pair.slippage),
        "market_order_max_stock": dec(pair.market_order_max_stock),
        "market_order_max_money": dec(pair.market_order_max_money),
    }


def order_json(order: SimOrder, *, mode: str = "FULL", ws: bool = False) -> JsonDict:
    """One ``Order``, shaped by ``action_mode`` (``ACK``/``RESULT``/``FULL``).

    ``ws=True`` renders the ``spot.orders`` flavour (string ms times, ``user`` field).
    """
    if mode == "ACK":
        return {"id": order.id, "text": order.text, "amend_text": order.amend_text}
    out: JsonDict = {
        "id": order.id,
        "text": order.text,
        "amend_text": order.amend_text,
        "create_time": ms_to_s_str(order.create_time_ms),
        "update_time": ms_to_s_str(order.update_time_ms),
        "create_time_ms": str(order.create_time_ms) if ws else order.create_time_ms,
        "update_time_ms": str(order.update_time_ms) if ws else order.update_time_ms,
        "status": order.status,
        "currency_pair": order.pair,
        "type": order.type,
        "account": order.account,
        "side": order.side,
        "amount": dec(order.amount),
        # Gate shows "0" as the price of a market order.
        "price": dec0(order.price),
        "time_in_force": order.time_in_force,
        "iceberg": dec(order.iceberg),
        "left": dec(order.left),
        "filled_amount": dec(order.filled_amount),
        "fill_price": dec(order.filled_total),
        "filled_total": dec(order.filled_total),
        "avg_deal_price": dec0(order.avg_deal_price),
        "finish_as": order.finish_as,
        "stp_id": 0,
        "stp_act": "-",
    }
    if mode == "FULL":
        out.update(
            {
                "fee": dec(order.fee),
                "fee_currency": order.fee_currency,
                "point_fee": "0",
                "gt_fee": "0",
                "gt_maker_fee": "0",
                "gt_taker_fee": "0",
                "gt_discount": False,
                "rebated_fee": "0",
                "rebated_fee_currency": order.pair.partition("_")[2],
            }
        )
    if ws:
        out["user"] = order.user_id
    return out


def public_trade_json(trade: SimTrade) -> JsonDict:
    """One public trade (``GET /spot/trades``); ``side`` is the taker side."""
    return {
        "id": str(trade.id),
        "create_time": ms_to_s_str(trade.time_ms),
        "create_time_ms": ms_frac_str(trade.time_ms),
        "currency_pair": trade.pair,
        "side": trade.side,
        "amount": dec(trade.amount),
        "price": dec(trade.price),
        "sequence_id": str(trade.id_market),
    }


def my_trade_json(trade: SimTrade) -> JsonDict:
    """One own fill (``GET /spot/my_trades``)."""
    out = public_trade_json(trade)
    out.update(
        {
            "role": trade.role,
            "order_id": trade.order_id,
            "fee": dec(trade.fee),
            "fee_currency": trade.fee_currency,
            "point_fee": "0",
            "gt_fee": "0",
            "amend_text": "-",
            "text": trade.text,
            "deal": dec(trade.price * trade.amount),
        }
    )
    return out


def ws_public_trade_json(trade: SimTrade) -> JsonDict:
    """One ``spot.trades`` push result."""
    return {
        "id": trade.id,
        "id_market": trade.id_market,
        "create_time": trade.time_ms // 1000,
        "create_time_ms": ms_frac_str(trade.time_ms),
        "side": trade.side,
        "currency_pair": trade.pair,
        "amount": dec(trade.amount),
        "price": dec(trade.price),
        "range": f"{trade.id_market}-{trade.id_market}",
    }


def ws_user_trade_json(trade: SimTrade) -> JsonDict:
    """One element of a ``spot.usertrades`` push."""
    return {
        "id": trade.id,
        "user_id": trade.user_id,
        "order_id": trade.order_id,
        "currency_pair": trade.pair,
        "create_time": trade.time_ms // 1000,
        "create_time_ms": ms_frac_str(trade.time_ms),
        "side": trade.side,
        "amount": dec(trade.amount),
        "role": trade.role,
        "price": dec(trade.price),
        "fee": dec(trade.fee),
        "fee_currency": trade.fee_currency,
        "point_fee": "0",
        "gt_fee": "0",
        "text": trade.text,
        "id_market": trade.id_market,
    }


def ws_balance_json(change: BalanceChanged) -> JsonDict:
    """One element of a ``spot.balances`` push."""
    return {
        "timestamp": ms_to_s_str(change.time_ms),
        "timestamp_ms": str(change.time_ms),
        "user": str(change.user_id),
        "currency": change.currency,
        "change": dec(change.change),
        "total": dec(change.available + change.locked),
        "available": dec(change.available),
        "freeze": dec(change.locked),
        "freeze_change": dec(change.locked_change),
        "change_type": change.change_type,
    }


def account_json(currency: str, available: Decimal, locked: Decimal, update_id: int) -> JsonDict:
    """One ``GET /spot/accounts`` row."""
    return {
        "currency": currency,
        "available": dec(available),
        "locked": dec(locked),
        "update_id": update_id,
    }


def levels_json(levels: list[BookLevel] | tuple[BookLevel, ...]) -> list[list[str]]:
    """Book levels as ``[["price", "amount"], ...]``."""
    return [[format(price, "f"), format(amount, "f")] for price, amount in levels]


def book_ticker_json(
    pair: str,
    update_id: int,
    time_ms: int,
    best_bid: BookLevel | None,
    best_ask: BookLevel | None,
) -> JsonDict:
    """One ``spot.book_ticker`` push result (empty sides are ``""``)."""
    return {
        "t": time_ms,
        "u": update_id,
        "s": pair,
        "b": format(best_bid[0], "f") if best_bid else "",
        "B": format(best_bid[1], "f") if best_bid else "",
        "a": format(best_ask[0], "f") if best_ask else "",
        "A": format(best_ask[1], "f") if best_ask else "",
    }


def book_update_json(
    pair: str,
    first_id: int,
    last_id: int,
    bids: list[BookLevel] | tuple[BookLevel, ...],
    asks: list[BookLevel] | tuple[BookLevel, ...],
    time_ms: int,
    *,
    full: bool = False,
    levels: int = 100,
) -> JsonDict:
    """One ``spot.order_book_update`` push result (absolute amounts, ``"0"`` deletes)."""
    out: JsonDict = {"t": time_ms}
    if full:
        out["full"] = True
    out.update(
        {
            "l": str(levels),
            "e": "depthUpdate",
            "E": time_ms // 1000,
            "s": pair,
            "U": first_id,
            "u": last_id,
            "b": levels_json(bids),
            "a": levels_json(asks),
        }
    )
    return out


def order_book_json(
    pair: str,
    update_id: int,
    time_ms: int,
    levels: int,
    asks: list[BookLevel] | tuple[BookLevel, ...],
    bids: list[BookLevel] | tuple[BookLevel, ...],
) -> JsonDict:
    """One ``spot.order_book`` push result (a full top-N snapshot)."""
    return {
        "t": time_ms,
        "lastUpdateId": update_id,
        "s": pair,
        "l": str(levels),
        "bids": levels_json(bids),
        "asks": levels_json(asks),
    }


def ws_order_json(order: SimOrder, event: str) -> JsonDict:
    """One element of a ``spot.orders`` push (``event``: ``put``/``update``/``finish``)."""
    row = order_json(order, ws=True)
    row["event"] = event
    return row


_WS_TICKER_FIELDS = (
    "currency_pair",
    "last",
    "lowest_ask",
    "highest_bid",
    "change_percentage",
    "base_volume",
    "quote_volume",
    "high_24h",
    "low_24h",
)


def ws_ticker_json(row: Any) -> JsonDict:
    """One ``spot.tickers`` push result."""
    full = ticker_json(row)
    return {k: full.get(k, "") for k in _WS_TICKER_FIELDS}


def ticker_json(row: Any) -> JsonDict:
    """A ticker row from the engine -> Gate's ``Ticker`` (decimals rendered as strings)."""
    items = row.items() if isinstance(row, dict) else _fields(row).items()
    out: JsonDict = {}
    for key, value in items:
        name = "currency_pair" if key == "pair" else key
        out[name] = dec(value) if isinstance(value, Decimal) else value
    for name in ("last", "lowest_ask", "highest_bid"):
        if out.get(name) is None:
            out[name] = ""
    return out


def _fields(obj: Any) -> dict[str, Any]:
    slots = getattr(type(obj), "__slots__", ())
    if slots:
        return {name: getattr(obj, name) for name in slots}
    return dict(vars(obj))
