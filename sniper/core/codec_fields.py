"""The codec's field readers: one JSON value in, one checked Python value out.

Shared by :mod:`sniper.core.codec`, :mod:`sniper.core.codec_orders` and
:mod:`sniper.core.codec_ws` and private to them (hence the underscore names): nothing outside
the codec should read Gate's wire shapes. Every reader raises
:class:`~sniper.errors.ProtocolError` naming ``where.key`` with ``raw`` = the object read;
the ``_to_*`` converters return ``None`` instead and let their caller name the field.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, Final, TypeVar

from sniper.core.models import Level, Side
from sniper.errors import ProtocolError

_T = TypeVar("_T")
_MISSING: Final = object()
# A reset timestamp below this is in seconds (REST leaves the unit unstated, §4).
_SECONDS_LIMIT: Final = 100_000_000_000

_ZERO: Final = Decimal(0)
_SIDES: Final[dict[str, Side]] = {"buy": "buy", "sell": "sell"}


def _lenient_int(value: object) -> int | None:
    """An optional advisory integer (rate-limit headers, gateway times): garbage reads as absent.

    These numbers only steer pacing and latency statistics; rejecting a whole order reply
    because one of them is odd would turn a placed order into an "unknown outcome".
    """
    if type(value) is int:
        return value
    if type(value) is str and value.isascii() and value.isdigit() and len(value) < 20:
        return int(value)
    if type(value) is float and value.is_integer() and abs(value) < 1e19:
        return int(value)
    return None


def reset_to_ms(value: object) -> int | None:
    """A rate-limit reset timestamp in ms; values that look like seconds are scaled."""
    reset = _lenient_int(value)
    if reset is not None and 0 < reset < _SECONDS_LIMIT:
        return reset * 1000
    return reset


# ---------------------------------------------------------------------------------------------
# value converters: return None when the value is not acceptable (callers name the field)


def _to_decimal(value: object) -> Decimal | None:
    """A finite Decimal from a JSON string or number; ``None`` when not acceptable."""
    if isinstance(value, str):
        try:
            number = Decimal(value)
        except (ArithmeticError, ValueError):
            return None
        return number if number.is_finite() else None
    if isinstance(value, bool):  # bool is an int subclass; true is not a price
        return None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, Decimal):
        return value if value.is_finite() else None
    if isinstance(value, float):
        # repr() is the shortest text that round-trips, i.e. what the JSON said.
        return Decimal(repr(value)) if math.isfinite(value) else None
    return None


def _to_int(value: object) -> int | None:
    if type(value) is int:
        return value
    if type(value) is str:
        digits = value[1:] if value[:1] == "-" else value
        if digits.isascii() and digits.isdigit() and len(digits) <= 19:
            return int(value)
        return None
    if type(value) is float and value.is_integer() and abs(value) < 1e19:
        return int(value)
    return None


def _to_millis(value: object) -> int | None:
    """Milliseconds, truncating fractional ms (``"1605176741123.456"``)."""
    whole = _to_int(value)
    if whole is not None:
        return whole
    number = _to_decimal(value)
    if number is None or number.adjusted() > 18:  # bound int() on absurd exponents
        return None
    return int(number)


def _short(value: object) -> str:
    try:
        text = repr(value)
    except ValueError:  # ints past sys.get_int_max_str_digits()
        return f"<{type(value).__name__}>"
    return text if len(text) <= 80 else text[:77] + "..."


# ---------------------------------------------------------------------------------------------
# field readers: raise ProtocolError naming ``where.key`` with ``raw`` = the object read


def _object(obj: object, where: str) -> dict[str, Any]:
    if type(obj) is not dict:
        raise ProtocolError(f"{where}: expected an object, got {type(obj).__name__}", raw=obj)
    return obj


def _list(obj: object, where: str) -> list[Any]:
    if type(obj) is not list:
        raise ProtocolError(f"{where}: expected an array, got {type(obj).__name__}", raw=obj)
    return obj


def _bad(
    obj: object, where: str, key: str, problem: str, value: object = _MISSING
) -> ProtocolError:
    detail = problem if value is _MISSING else f"{problem}: {_short(value)}"
    return ProtocolError(f"{where}.{key}: {detail}", raw=obj)


def _required(obj: dict[str, Any], key: str, where: str) -> Any:
    value = obj.get(key)
    if value is None:
        raise _bad(obj, where, key, "missing")
    return value


def _absent(obj: dict[str, Any], key: str, where: str, default: _T | None) -> _T:
    """What an absent field reads as: ``default``, or a "missing" error when there is none."""
    if default is None:
        raise _bad(obj, where, key, "missing")
    return default


def _str(obj: dict[str, Any], key: str, where: str, default: str | None = None) -> str:
    value = obj.get(key)
    if value is None:
        return _absent(obj, key, where, default)
    if type(value) is not str:
        raise _bad(obj, where, key, "not a string", value)
    return value


def _name(obj: dict[str, Any], key: str, where: str) -> str:
    """A required, non-empty identifier such as a pair or a currency."""
    value = _str(obj, key, where)
    if not value:
        raise _bad(obj, where, key, "empty")
    return value


def _id(obj: dict[str, Any], key: str, where: str) -> str:
    """An id Gate sends as a string or as an integer (trade ids); always returned as str."""
    value = _required(obj, key, where)
    if type(value) is int:
        return str(value)
    if type(value) is not str or not value:
        raise _bad(obj, where, key, "not an id", value)
    return value


def _opt_dec(obj: dict[str, Any], key: str, where: str) -> Decimal | None:
    """A decimal that may be absent, null or ``""`` (all read as ``None``)."""
    value = obj.get(key)
    if value is None or value == "":
        return None
    number = _to_decimal(value)
    if number is None:
        raise _bad(obj, where, key, "not a finite decimal", value)
    return number


def _dec(obj: dict[str, Any], key: str, where: str, default: Decimal | None = None) -> Decimal:
    """A decimal; absent, null or ``""`` reads as ``default`` (an error when there is none)."""
    number = _opt_dec(obj, key, where)
    if number is None:
        return _absent(obj, key, where, default)
    return number


def _amount(obj: dict[str, Any], key: str, where: str, default: Decimal | None = None) -> Decimal:
    """A price or quantity: a finite decimal that is not negative."""
    number = _dec(obj, key, where, default)
    if number.is_signed() and number:
        raise _bad(obj, where, key, "negative", number)
    return number


def _int(obj: dict[str, Any], key: str, where: str, default: int | None = None) -> int:
    value = obj.get(key)
    if value is None:
        return _absent(obj, key, where, default)
    number = _to_int(value)
    if number is None:
        raise _bad(obj, where, key, "not an integer", value)
    return number


def _ms(obj: dict[str, Any], key: str, where: str, seconds_key: str | None = None) -> int:
    """A millisecond time, falling back on ``seconds_key`` x 1000, then 0 when both are absent."""
    value = obj.get(key)
    if value is not None:
        millis = _to_millis(value)
        if millis is None:
            raise _bad(obj, where, key, "not a time in ms", value)
        return millis
    if seconds_key is not None and obj.get(seconds_key) is not None:
        seconds = _to_decimal(obj[seconds_key])
        if seconds is None or seconds.adjusted() > 15:
            raise _bad(obj, where, seconds_key, "not a time in s", obj[seconds_key])
        return int(seconds * 1000)
    return 0


def _choice(
    obj: dict[str, Any], key: str, where: str, table: Mapping[str, _T], default: _T | None = None
) -> _T:
    value = obj.get(key)
    if value is None and default is not None:
        return default
    choice = table.get(value) if type(value) is str else None
    if choice is None:
        raise _bad(obj, where, key, f"not one of {sorted(table)}", value)
    return choice


def _levels_general(obj: dict[str, Any], key: str, where: str) -> tuple[Level, ...]:
    value = obj.get(key)
    if value is None:
        raise _bad(obj, where, key, "missing")
    if type(value) is not list:
        raise _bad(obj, where, key, "not an array", value)
    levels: list[Level] = []
    for index, level in enumerate(value):
        if type(level) is not list or len(level) != 2:
            raise _bad(obj, where, f"{key}[{index}]", "not a [price, amount] pair", level)
        price = _to_decimal(level[0])
        amount = _to_decimal(level[1])
        if price is None or price.is_signed():
            raise _bad(obj, where, f"{key}[{index}]", "bad price", level[0])
        if amount is None or amount.is_signed():
            raise _bad(obj, where, f"{key}[{index}]", "bad amount", level[1])
        levels.append((price, amount))
    return tuple(levels)


def _each(obj: object, where: str, decode: Callable[[Any], _T]) -> list[_T]:
    """Decode every element of an array; an error names the element's index."""
    items = _list(obj, where)
    out: list[_T] = []
    for index, item in enumerate(items):
        try:
            out.append(decode(item))
        except ProtocolError as exc:
            raise ProtocolError(f"{where}[{index}] {exc.message}", raw=obj) from None
    return out


def _label_and_message(errs: dict[str, Any]) -> tuple[str | None, str]:
    """Gate's error body (REST, WS API ``data.errs``): ``label`` and ``message`` or ``detail``."""
    label = errs.get("label")
    message = errs.get("message")
    if message is None:
        message = errs.get("detail")
    return (
        label if type(label) is str and label else None,
        message if type(message) is str else "",
    )
