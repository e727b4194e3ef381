"""Order templates: cutting around sentinels, and prepared bodies/frames equal to a fresh encode."""

from __future__ import annotations

from decimal import Decimal

import orjson
import pytest

from sniper.core.codec import CH_ORDER_PLACE, encode_order, encode_order_body
from sniper.core.models import OrderRequest
from sniper.errors import ProtocolError
from sniper.gate.prepared import (
    PreparedOrder,
    PreparedWsOrder,
    cut_template,
    prepare_order,
    prepare_ws_order,
)

D = Decimal
LIMIT = OrderRequest("NEW_USDT", "buy", D("12.5"), D("0.0123"), "t-prep-1")
MARKET = OrderRequest("NEW_USDT", "buy", D("20"), None, "t-prep-2", "market", "ioc")


@pytest.mark.parametrize(
    ("template", "markers", "parts", "slots"),
    [
        (b"a[P]b[A]c", [(b"[A]", 1), (b"[P]", 0)], (b"a", b"b", b"c"), (0, 1)),
        (b"[A]x[P]", [(b"[P]", 0), (b"[A]", 1)], (b"", b"x", b""), (1, 0)),
        (b"no markers", [], (b"no markers",), ()),
    ],
)
def test_cut_template_splits_in_template_order(
    template: bytes,
    markers: list[tuple[bytes, int]],
    parts: tuple[bytes, ...],
    slots: tuple[int, ...],
) -> None:
    assert cut_template(template, markers) == (parts, slots)


@pytest.mark.parametrize("template", [b"a[P]b[P]", b"nothing here"])
def test_cut_template_refuses_a_marker_not_found_exactly_once(template: bytes) -> None:
    with pytest.raises(ProtocolError, match="not unique"):
        cut_template(template, [(b"[P]", 0)])


@pytest.mark.parametrize(
    ("request_", "price", "amount"),
    [(LIMIT, D("0.0125"), D("10")), (LIMIT, D("1E+2"), D("0.50")), (MARKET, None, D("19.9"))],
)
def test_prepared_body_is_a_fresh_encode_of_the_values(
    request_: OrderRequest, price: Decimal | None, amount: Decimal
) -> None:
    prepared = prepare_order(request_, action_mode="ACK", ttl_ms=500)
    assert isinstance(prepared, PreparedOrder)
    real = OrderRequest(
        request_.pair, request_.side, amount, price, request_.text, request_.type, "ioc"
    )
    assert prepared.body(price, amount) == encode_order_body(real, action_mode="ACK")
    assert prepared.ttl_ms == 500


@pytest.mark.parametrize("ttl_ms", [None, 750])
@pytest.mark.parametrize("request_", [LIMIT, MARKET], ids=["limit", "market"])
def test_prepared_ws_request_is_a_fresh_encode_of_the_values(
    request_: OrderRequest, ttl_ms: int | None
) -> None:
    prepared = prepare_ws_order(request_, "s-7", action_mode="RESULT", ttl_ms=ttl_ms)
    assert isinstance(prepared, PreparedWsOrder)
    price = None if request_.price is None else D("0.0124")
    msg = orjson.loads(prepared.render(1_700_000_000.25, price, D("3")))
    real = OrderRequest(request_.pair, request_.side, D("3"), price, request_.text, request_.type)
    payload = {"req_id": "s-7", "req_param": encode_order(real, action_mode="RESULT")}
    if ttl_ms is not None:
        payload = {
            "req_id": "s-7",
            "req_header": {"x-gate-exptime": str(1_700_000_000_250 + ttl_ms)},
            "req_param": payload["req_param"],
        }
    assert msg == {
        "time": 1_700_000_000,
        "channel": CH_ORDER_PLACE,
        "event": "api",
        "payload": payload,
    }
