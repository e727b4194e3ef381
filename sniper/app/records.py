"""The journal records of a listing: what each kind holds, and the JSON encoders of its values.

Journal kinds written by :class:`~sniper.app.session.ListingSession` (``pair`` = the listing)::

    armed        pair info + every client id this listing may ever use (before any order)
    buy_sent     text, price, amount, attempt, latency stamps (right after the write)
    buy_result   text, outcome (ok / rejected label / unknown), order state when known
    order        an order update (ours) from the private stream or a lookup
    fill         one of our trades (deduplicated by trade id when replayed)
    entry_done   reason, quote spent, base filled
    sell_sent    text, amount, price, purpose
    sell_result  text, outcome
    closed       reason

The encoders keep ``Decimal`` values as they are (the journal serialises them exactly); the
decoders accept them back as strings.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sniper.core.models import Fill, Order, OrderStatus, PairInfo, TradeStatus


def _dec_or_none(v: Any) -> Decimal | None:
    return None if v is None else Decimal(str(v))


def pair_to_json(info: PairInfo) -> dict[str, Any]:
    """The ``info`` of an ``armed`` record."""
    return {
        "pair": info.pair, "base": info.base, "quote": info.quote,
        "trade_status": str(info.trade_status), "buy_start_s": info.buy_start_s,
        "sell_start_s": info.sell_start_s, "amount_precision": info.amount_precision,
        "price_precision": info.price_precision,
        "min_base_amount": info.min_base_amount, "min_quote_amount": info.min_quote_amount,
        "max_base_amount": info.max_base_amount, "max_quote_amount": info.max_quote_amount,
        "fee_pct": info.fee_pct,
    }


def pair_from_json(d: dict[str, Any]) -> PairInfo:
    """Inverse of :func:`pair_to_json`."""
    return PairInfo(
        pair=d["pair"], base=d["base"], quote=d["quote"],
        trade_status=TradeStatus(d["trade_status"]), buy_start_s=int(d["buy_start_s"]),
        sell_start_s=int(d["sell_start_s"]), amount_precision=int(d["amount_precision"]),
        price_precision=int(d["price_precision"]),
        min_base_amount=_dec_or_none(d["min_base_amount"]),
        min_quote_amount=_dec_or_none(d["min_quote_amount"]),
        max_base_amount=_dec_or_none(d["max_base_amount"]),
        max_quote_amount=_dec_or_none(d["max_quote_amount"]), fee_pct=Decimal(str(d["fee_pct"])),
    )


def fill_to_json(f: Fill) -> dict[str, Any]:
    """The data of a ``fill`` record (the pair is the record's own)."""
    return {
        "trade_id": f.trade_id, "order_id": f.order_id, "text": f.text, "side": f.side,
        "role": f.role, "price": f.price, "amount": f.amount, "fee": f.fee,
        "fee_currency": f.fee_currency, "time_ms": f.time_ms,
    }


def fill_from_json(pair: str, d: dict[str, Any]) -> Fill:
    """Inverse of :func:`fill_to_json`."""
    return Fill(
        trade_id=str(d["trade_id"]), order_id=str(d["order_id"]), text=d["text"], pair=pair,
        side=d["side"], role=d["role"], price=Decimal(d["price"]), amount=Decimal(d["amount"]),
        fee=Decimal(d["fee"]), fee_currency=d["fee_currency"], time_ms=int(d["time_ms"]),
    )


def order_to_json(o: Order) -> dict[str, Any]:
    """The data of an ``order`` record (the pair is the record's own)."""
    return {
        "id": o.id, "text": o.text, "side": o.side, "type": o.type, "tif": o.time_in_force,
        "status": str(o.status), "amount": o.amount, "price": o.price, "left": o.left,
        "filled_amount": o.filled_amount, "filled_total": o.filled_total,
        "avg_deal_price": o.avg_deal_price, "fee": o.fee, "fee_currency": o.fee_currency,
        "finish_as": o.finish_as, "create_time_ms": o.create_time_ms,
        "update_time_ms": o.update_time_ms, "event": o.event,
    }


def order_from_json(pair: str, d: dict[str, Any]) -> Order:
    """Inverse of :func:`order_to_json`."""
    return Order(
        id=str(d["id"]), text=d["text"], pair=pair, side=d["side"], type=d["type"],
        time_in_force=d["tif"], status=OrderStatus(d["status"]), amount=Decimal(d["amount"]),
        price=_dec_or_none(d["price"]), left=Decimal(d["left"]),
        filled_amount=Decimal(d["filled_amount"]), filled_total=Decimal(d["filled_total"]),
        avg_deal_price=_dec_or_none(d["avg_deal_price"]), fee=Decimal(d["fee"]),
        fee_currency=d["fee_currency"], finish_as=d["finish_as"],
        create_time_ms=int(d["create_time_ms"]), update_time_ms=int(d["update_time_ms"]),
        event=d["event"],
    )
