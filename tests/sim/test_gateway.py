"""The simulator gateway's fixed-window rate limits and Gate's rate-limit headers."""

from __future__ import annotations

import pytest
from aiohttp import web

from sniper.sim.entities import SimReject
from sniper.sim.gateway import RateLimiter, RateVerdict, order_params, set_rate_headers

KEY = ("order", "1", "NEW_USDT")


@pytest.mark.parametrize(
    ("times_ms", "expected"),
    [
        # limit 2 per 1000 ms: the third in the window is refused until the window resets
        ([0, 10, 20], [(True, 1, 0), (True, 0, 10), (False, 0, 1000)]),
        ([0, 10, 1000], [(True, 1, 0), (True, 0, 10), (True, 1, 1000)]),
    ],
)
def test_fixed_window(times_ms: list[int], expected: list[tuple[bool, int, int]]) -> None:
    limiter = RateLimiter()
    got = [limiter.check(KEY, 2, 1000, now) for now in times_ms]
    assert [(v.allowed, v.remaining, v.reset_ms) for v in got] == expected


def test_not_enforcing_still_counts() -> None:
    limiter = RateLimiter(enforce=False)
    verdicts = [limiter.check(KEY, 1, 1000, 5) for _ in range(3)]
    assert [(v.allowed, v.remaining) for v in verdicts] == [(True, 0), (True, 0), (True, 0)]


def test_set_rate_headers() -> None:
    response = web.Response()
    set_rate_headers(response, RateVerdict(False, 10, 0, 1_700_000_001_000))
    assert {k: v for k, v in response.headers.items() if k.startswith("X-Gate")} == {
        "X-Gate-RateLimit-Requests-Remain": "0",
        "X-Gate-RateLimit-Limit": "10",
        "X-Gate-RateLimit-Reset-Timestamp": "1700000001000",
    }


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        ({"amount": 1.5, "iceberg": None, "auto": True}, {"amount": "1.5", "auto": "true"}),
        ({"x": [1]}, {"x": "[1]"}),
    ],
)
def test_order_params(item: object, expected: dict[str, str]) -> None:
    assert order_params(item) == expected


def test_order_params_refuses_a_non_object() -> None:
    with pytest.raises(SimReject):
        order_params([1])
