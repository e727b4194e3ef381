"""The shared field readers: what an absent, empty or bad field reads as."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from sniper.core.codec_fields import _dec, _int, _opt_dec, _str
from sniper.errors import ProtocolError

D = Decimal


@pytest.mark.parametrize(
    ("obj", "default", "expected"),
    [
        ({"x": "1.5"}, None, D("1.5")),
        ({"x": 2}, None, D(2)),
        ({}, D(0), D(0)),
        ({"x": None}, D(7), D(7)),
        ({"x": ""}, D(3), D(3)),
        ({"x": "0"}, D(3), D(0)),
    ],
)
def test_dec_reads_value_or_default(
    obj: dict[str, Any], default: Decimal, expected: Decimal
) -> None:
    assert _dec(obj, "x", "w", default) == expected


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ({}, "w.x: missing"),
        ({"x": ""}, "w.x: missing"),
        ({"x": "NaN"}, "w.x: not a finite decimal: 'NaN'"),
        ({"x": True}, "w.x: not a finite decimal: True"),
    ],
)
def test_dec_errors_name_the_field(obj: dict[str, Any], message: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        _dec(obj, "x", "w")
    assert caught.value.message == message
    assert caught.value.raw is obj


@pytest.mark.parametrize(
    ("obj", "expected"),
    [({}, None), ({"x": ""}, None), ({"x": None}, None), ({"x": "2"}, D(2))],
)
def test_opt_dec(obj: dict[str, Any], expected: Decimal | None) -> None:
    assert _opt_dec(obj, "x", "w") == expected


@pytest.mark.parametrize(
    ("reader", "obj", "default", "expected"),
    [
        (_str, {"x": "a"}, None, "a"),
        (_str, {}, "d", "d"),
        (_str, {"x": ""}, "d", ""),
        (_int, {"x": "12"}, None, 12),
        (_int, {}, 0, 0),
        (_int, {"x": None}, 5, 5),
    ],
)
def test_str_and_int_read_value_or_default(
    reader: Any, obj: dict[str, Any], default: Any, expected: Any
) -> None:
    assert reader(obj, "x", "w", default) == expected


@pytest.mark.parametrize(
    ("reader", "obj", "message"),
    [
        (_str, {}, "w.x: missing"),
        (_str, {"x": 1}, "w.x: not a string: 1"),
        (_int, {}, "w.x: missing"),
        (_int, {"x": "1.5"}, "w.x: not an integer: '1.5'"),
    ],
)
def test_str_and_int_errors_name_the_field(reader: Any, obj: dict[str, Any], message: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        reader(obj, "x", "w")
    assert caught.value.message == message
