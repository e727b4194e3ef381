"""The codec's private side as split out of :mod:`sniper.core.codec` (the wider decoder and
encoder behaviour is covered through the facade in ``test_codec.py``)."""

from __future__ import annotations

import pytest

from sniper.core import codec, codec_orders, codec_ws


@pytest.mark.parametrize(
    ("order_id", "pair", "expected"),
    [
        ("123", "BTC_USDT", {"order_id": "123", "currency_pair": "BTC_USDT"}),
        ("t-abc", "NEW_USDT", {"order_id": "t-abc", "currency_pair": "NEW_USDT"}),
    ],
)
def test_encode_order_ref(order_id: str, pair: str, expected: dict[str, str]) -> None:
    assert codec.encode_order_ref(order_id, pair) == expected


def test_exptime_header_is_gates_spelling() -> None:
    assert codec.EXPTIME_HEADER == "x-gate-exptime"


@pytest.mark.parametrize("module", [codec_orders, codec_ws], ids=lambda m: m.__name__)
def test_the_codec_facade_re_exports_every_public_name(module: object) -> None:
    names = module.__all__  # type: ignore[attr-defined]
    assert names
    assert [name for name in names if getattr(codec, name) is not getattr(module, name)] == []
