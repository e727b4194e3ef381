"""The endpoint table: shape, retry safety, and query building in a fixed, signable order."""

from __future__ import annotations

import pytest

from sniper.errors import RejectedError
from sniper.gate import endpoints as ep
from sniper.gate.endpoints import ENDPOINTS, Endpoint, RateGroup

# name -> (method, path, signed, idempotent, rate group, exptime)
EXPECTED = {
    "server_time": ("GET", "/spot/time", False, True, RateGroup.PUBLIC, False),
    "currency_pairs": ("GET", "/spot/currency_pairs", False, True, RateGroup.PUBLIC, False),
    "currency_pair": ("GET", "/spot/currency_pairs/{pair}", False, True, RateGroup.PUBLIC, False),
    "order_book": ("GET", "/spot/order_book", False, True, RateGroup.PUBLIC, False),
    "tickers": ("GET", "/spot/tickers", False, True, RateGroup.PUBLIC, False),
    "accounts": ("GET", "/spot/accounts", True, True, RateGroup.PRIVATE, False),
    "create_order": ("POST", "/spot/orders", True, False, RateGroup.ORDER, True),
    "get_order": ("GET", "/spot/orders/{order_id}", True, True, RateGroup.PRIVATE, False),
    "cancel_order": ("DELETE", "/spot/orders/{order_id}", True, False, RateGroup.CANCEL, True),
    "list_orders": ("GET", "/spot/orders", True, True, RateGroup.PRIVATE, False),
    "cancel_all": ("DELETE", "/spot/orders", True, False, RateGroup.CANCEL, True),
    "my_trades": ("GET", "/spot/my_trades", True, True, RateGroup.PRIVATE, False),
}


def test_table_has_exactly_the_expected_endpoints_with_unique_names() -> None:
    names = [e.name for e in ENDPOINTS]
    assert len(names) == len(set(names))
    assert set(names) == set(EXPECTED)


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.name)
def test_each_endpoint_matches_the_reference(endpoint: Endpoint) -> None:
    method, path, signed, idempotent, group, exptime = EXPECTED[endpoint.name]
    assert (endpoint.method, endpoint.path, endpoint.signed) == (method, path, signed)
    assert (endpoint.idempotent, endpoint.rate_group, endpoint.exptime) == (
        idempotent,
        group,
        exptime,
    )


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.name)
def test_only_gets_are_idempotent(endpoint: Endpoint) -> None:
    # Retrying a POST/DELETE blindly could place or cancel twice: never marked safe.
    assert endpoint.idempotent == (endpoint.method == "GET")
    assert not endpoint.path.startswith(ep.API_PREFIX)  # relative to /api/v4


@pytest.mark.parametrize(
    ("endpoint", "params", "path", "query"),
    [
        (ep.SERVER_TIME, None, "/spot/time", ""),
        (ep.CURRENCY_PAIR, {"pair": "ABC_USDT"}, "/spot/currency_pairs/ABC_USDT", ""),
        (
            ep.ORDER_BOOK,
            {"limit": 50, "pair": "ABC_USDT"},  # argument order never changes wire order
            "/spot/order_book",
            "currency_pair=ABC_USDT&limit=50&with_id=true",
        ),
        (ep.TICKERS, {"pair": None}, "/spot/tickers", ""),
        (ep.TICKERS, {"pair": "ABC_USDT"}, "/spot/tickers", "currency_pair=ABC_USDT"),
        (ep.ACCOUNTS, {"currency": "USDT"}, "/spot/accounts", "currency=USDT"),
        (
            ep.GET_ORDER,
            {"order_id": "t-abc_1.2", "pair": "ABC_USDT"},
            "/spot/orders/t-abc_1.2",
            "currency_pair=ABC_USDT",
        ),
        (
            ep.LIST_ORDERS,
            {"page": 2, "status": "open", "pair": "ABC_USDT", "limit": 100},
            "/spot/orders",
            "currency_pair=ABC_USDT&status=open&limit=100&page=2",
        ),
        (
            ep.CANCEL_ALL,
            {"pair": "ABC_USDT", "side": None},
            "/spot/orders",
            "currency_pair=ABC_USDT",
        ),
        (
            ep.MY_TRADES,
            {"pair": "ABC_USDT", "order_id": "123", "limit": 1000},
            "/spot/my_trades",
            "currency_pair=ABC_USDT&order_id=123&limit=1000",
        ),
    ],
)
def test_build_renders_path_and_query_in_wire_order(
    endpoint: Endpoint, params: dict[str, object] | None, path: str, query: str
) -> None:
    assert endpoint.build(params) == (path, query)


def test_bool_values_render_as_gate_expects() -> None:
    probe = Endpoint("probe", "GET", "/x", False, True, RateGroup.PUBLIC, query=(("f", "flag"),))
    assert probe.build({"f": True}) == ("/x", "flag=true")
    assert probe.build({"f": False}) == ("/x", "flag=false")


@pytest.mark.parametrize(
    ("endpoint", "params", "problem"),
    [
        (ep.GET_ORDER, {"pair": "ABC_USDT"}, "required"),
        (ep.GET_ORDER, {"order_id": "1", "pair": "ABC_USDT", "nope": 1}, "unknown"),
        (ep.GET_ORDER, {"order_id": "1/../2", "pair": "ABC_USDT"}, "URL-safe"),
        (ep.TICKERS, {"pair": "ABC USDT"}, "URL-safe"),
        (ep.TICKERS, {"pair": "ABC&x=1"}, "URL-safe"),
        (ep.TICKERS, {"pair": "ABC%20"}, "URL-safe"),
        (ep.TICKERS, {"pair": "ÄBC_USDT"}, "URL-safe"),
        (ep.TICKERS, {"pair": ""}, "URL-safe"),
        (ep.ORDER_BOOK, {"pair": "ABC_USDT", "limit": 1.5}, "str or int"),
    ],
)
def test_build_refuses_what_could_not_be_signed_unambiguously(
    endpoint: Endpoint, params: dict[str, object], problem: str
) -> None:
    with pytest.raises(RejectedError, match=problem):
        endpoint.build(params)


def test_path_params_are_listed() -> None:
    assert ep.GET_ORDER.path_params == ("order_id",)
    assert ep.SERVER_TIME.path_params == ()


@pytest.mark.parametrize(
    ("group", "rate"),
    [
        (RateGroup.PUBLIC, 20.0),
        (RateGroup.PRIVATE, 20.0),
        (RateGroup.ORDER, 10.0),
        (RateGroup.CANCEL, 200.0),
    ],
)
def test_rate_groups_carry_gates_budgets(group: RateGroup, rate: float) -> None:
    assert group.rate_per_s == rate
