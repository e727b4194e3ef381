"""The Gate v4 REST endpoints the daemon calls, as one table (gate-v4.md §2, §4).

Each :class:`Endpoint` says how to call it (method, path template relative to ``/api/v4``),
whether it is signed, whether it may be retried blindly (idempotent), which rate-limit budget
it spends and whether Gate honours ``x-gate-exptime`` on it. Query parameters are listed in
the fixed order they are sent *and signed* in (Gate signs the raw query in wire order, §1.2).

Query and path values are restricted to URL-unreserved characters, so the encoded and the
decoded forms of the query are the same string and the signature cannot depend on which one
Gate checks (§1.2 "Query string details"). Anything else is refused before it is sent.

Like :mod:`sniper.core.codec`, this module is allowed to spell Gate's wire names (query
parameters and header names); the rest of the edge uses our names (``pair``, ``order_id``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Final, Literal, TypeAlias

from sniper.errors import RejectedError

Method: TypeAlias = Literal["GET", "POST", "DELETE"]

API_PREFIX: Final = "/api/v4"
"""Gate signs the full path, prefix included (§1.2); base URLs end with it."""

# Header names (§1.2, §1.3).
H_KEY: Final = "KEY"
H_TIMESTAMP: Final = "Timestamp"
H_SIGN: Final = "SIGN"
H_EXPTIME: Final = "x-gate-exptime"
H_IN_TIME: Final = "x-in-time"
H_OUT_TIME: Final = "x-out-time"

_SAFE_VALUE: Final = re.compile(r"[0-9A-Za-z_.\-~]+")
_PATH_PARAM: Final = re.compile(r"\{([a-z_]+)\}")


class RateGroup(Enum):
    """Gate's request budgets (§4): ``limit`` requests per ``window_s``, counted per ``keyed_by``.

    ``PUBLIC`` and ``PRIVATE`` budgets are per endpoint; ``ORDER`` (placement + amend) is per
    UID *and* currency pair; ``CANCEL`` is one budget per UID for all cancels.
    """

    PUBLIC = ("public", 200, 10.0, "ip+endpoint")
    PRIVATE = ("private", 200, 10.0, "uid+endpoint")
    ORDER = ("order", 10, 1.0, "uid+pair")
    CANCEL = ("cancel", 200, 1.0, "uid")

    def __init__(self, label: str, limit: int, window_s: float, keyed_by: str) -> None:
        self.label = label
        self.limit = limit
        self.window_s = window_s
        self.keyed_by = keyed_by

    @property
    def rate_per_s(self) -> float:
        """The sustained rate this budget allows."""
        return self.limit / self.window_s


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One REST endpoint.

    ``query`` maps our argument names to Gate's query names, in wire order; ``fixed`` are
    query pairs always sent (appended after ``query``, e.g. ``with_id=true``).
    """

    name: str
    method: Method
    path: str
    signed: bool
    idempotent: bool
    rate_group: RateGroup
    query: tuple[tuple[str, str], ...] = ()
    fixed: tuple[tuple[str, str], ...] = ()
    exptime: bool = False
    """Gate honours ``x-gate-exptime`` here (order create / cancel, §1.3)."""

    @property
    def path_params(self) -> tuple[str, ...]:
        """Names of the ``{placeholders}`` in :attr:`path`."""
        return tuple(_PATH_PARAM.findall(self.path))

    def build(self, params: Mapping[str, object] | None = None) -> tuple[str, str]:
        """``(path relative to /api/v4, raw query)`` for these arguments.

        ``None`` values are left out of the query; path parameters are required. Values must
        be URL-unreserved text (``int`` and ``bool`` are rendered as Gate expects), otherwise
        :class:`~sniper.errors.RejectedError` is raised and nothing is sent.
        """
        given = dict(params or {})
        path = self.path
        for name in self.path_params:
            value = given.pop(name, None)
            if value is None:
                raise RejectedError(f"{self.name}: path parameter {name!r} is required")
            path = path.replace("{" + name + "}", _safe(self.name, name, value))
        parts: list[str] = []
        for ours, wire in self.query:
            value = given.pop(ours, None)
            if value is not None:
                parts.append(f"{wire}={_safe(self.name, ours, value)}")
        if given:
            raise RejectedError(f"{self.name}: unknown parameter(s) {sorted(given)}")
        parts.extend(f"{wire}={value}" for wire, value in self.fixed)
        return path, "&".join(parts)


def _safe(endpoint: str, name: str, value: object) -> str:
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, int | str):
        text = str(value)
    else:
        raise RejectedError(f"{endpoint}: {name} must be str or int, got {type(value).__name__}")
    if _SAFE_VALUE.fullmatch(text) is None:
        raise RejectedError(f"{endpoint}: {name}={text!r} is not URL-safe")
    return text


_PAIR: Final = ("pair", "currency_pair")

SERVER_TIME: Final = Endpoint("server_time", "GET", "/spot/time", False, True, RateGroup.PUBLIC)
CURRENCY_PAIRS: Final = Endpoint(
    "currency_pairs", "GET", "/spot/currency_pairs", False, True, RateGroup.PUBLIC
)
CURRENCY_PAIR: Final = Endpoint(
    "currency_pair", "GET", "/spot/currency_pairs/{pair}", False, True, RateGroup.PUBLIC
)
ORDER_BOOK: Final = Endpoint(
    "order_book",
    "GET",
    "/spot/order_book",
    False,
    True,
    RateGroup.PUBLIC,
    query=(_PAIR, ("limit", "limit")),
    fixed=(("with_id", "true"),),  # without it Gate leaves out the id BookSync needs (§2.2)
)
TICKERS: Final = Endpoint(
    "tickers", "GET", "/spot/tickers", False, True, RateGroup.PUBLIC, query=(_PAIR,)
)
ACCOUNTS: Final = Endpoint(
    "accounts",
    "GET",
    "/spot/accounts",
    True,
    True,
    RateGroup.PRIVATE,
    query=(("currency", "currency"),),
)
CREATE_ORDER: Final = Endpoint(
    "create_order", "POST", "/spot/orders", True, False, RateGroup.ORDER, exptime=True
)
GET_ORDER: Final = Endpoint(
    "get_order",
    "GET",
    "/spot/orders/{order_id}",
    True,
    True,
    RateGroup.PRIVATE,
    query=(_PAIR,),
)
CANCEL_ORDER: Final = Endpoint(
    "cancel_order",
    "DELETE",
    "/spot/orders/{order_id}",
    True,
    False,
    RateGroup.CANCEL,
    query=(_PAIR,),
    exptime=True,
)
LIST_ORDERS: Final = Endpoint(
    "list_orders",
    "GET",
    "/spot/orders",
    True,
    True,
    RateGroup.PRIVATE,
    query=(_PAIR, ("status", "status"), ("limit", "limit"), ("page", "page")),
)
CANCEL_ALL: Final = Endpoint(
    "cancel_all",
    "DELETE",
    "/spot/orders",
    True,
    False,
    RateGroup.CANCEL,
    query=(_PAIR, ("side", "side")),
    exptime=True,
)
MY_TRADES: Final = Endpoint(
    "my_trades",
    "GET",
    "/spot/my_trades",
    True,
    True,
    RateGroup.PRIVATE,
    query=(_PAIR, ("order_id", "order_id"), ("limit", "limit")),
)

ENDPOINTS: Final[tuple[Endpoint, ...]] = (
    SERVER_TIME,
    CURRENCY_PAIRS,
    CURRENCY_PAIR,
    ORDER_BOOK,
    TICKERS,
    ACCOUNTS,
    CREATE_ORDER,
    GET_ORDER,
    CANCEL_ORDER,
    LIST_ORDERS,
    CANCEL_ALL,
    MY_TRADES,
)
"""Every endpoint the daemon calls; names are unique (a test checks)."""
