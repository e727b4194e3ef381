"""TokenBucket: refill, waits, backwards clocks, and Gate's rate-limit headers."""

from __future__ import annotations

import pytest

from sniper.core.models import RateLimit
from sniper.core.ratelimit import MAX_HEADER_BLOCK_S, TokenBucket


def test_starts_full_and_spends_the_burst() -> None:
    bucket = TokenBucket(rate_per_s=10, burst=3, now_s=100.0)
    assert [bucket.try_acquire(100.0) for _ in range(4)] == [True, True, True, False]
    assert bucket.tokens(100.0) == 0.0


def test_refills_at_the_rate_and_caps_at_the_burst() -> None:
    bucket = TokenBucket(rate_per_s=10, burst=2, now_s=0.0)
    assert bucket.try_acquire(0.0, 2)
    assert not bucket.try_acquire(0.05)
    assert bucket.try_acquire(0.1)
    assert bucket.tokens(100.0) == 2.0


@pytest.mark.parametrize(
    ("spend", "now_s", "n", "wait_s"),
    [
        (0, 0.0, 1, 0.0),
        (5, 0.0, 1, 0.2),
        (5, 0.1, 1, 0.1),
        (5, 0.0, 3, 0.6),
        (4, 0.0, 1, 0.0),
    ],
)
def test_wait_time(spend: int, now_s: float, n: int, wait_s: float) -> None:
    bucket = TokenBucket(rate_per_s=5, burst=5, now_s=0.0)
    if spend:
        assert bucket.try_acquire(0.0, spend)
    assert bucket.wait_time_s(now_s, n) == pytest.approx(wait_s)


def test_waiting_the_wait_time_is_enough() -> None:
    bucket = TokenBucket(rate_per_s=20, burst=1, now_s=0.0)
    now = 0.0
    for _ in range(50):
        now += bucket.wait_time_s(now)
        assert bucket.try_acquire(now)
    assert now == pytest.approx(49 / 20)


def test_failed_acquire_takes_nothing() -> None:
    bucket = TokenBucket(rate_per_s=1, burst=3, now_s=0.0)
    bucket.try_acquire(0.0, 2)
    assert not bucket.try_acquire(0.0, 2)
    assert bucket.try_acquire(0.0, 1)


def test_clock_stepping_back_refills_nothing() -> None:
    bucket = TokenBucket(rate_per_s=10, burst=1, now_s=10.0)
    assert bucket.try_acquire(10.0)
    assert not bucket.try_acquire(9.0)
    assert not bucket.try_acquire(10.05)
    assert bucket.try_acquire(10.1)


@pytest.mark.parametrize("n", [0, -1, 4])
def test_impossible_requests_are_refused(n: int) -> None:
    bucket = TokenBucket(rate_per_s=1, burst=3)
    with pytest.raises(ValueError, match="tokens"):
        bucket.try_acquire(0.0, n)
    with pytest.raises(ValueError, match="tokens"):
        bucket.wait_time_s(0.0, n)


@pytest.mark.parametrize(("rate", "burst"), [(0, 1), (-1, 1), (1, 0.5)])
def test_bad_parameters_are_refused(rate: float, burst: float) -> None:
    with pytest.raises(ValueError, match="rate_per_s"):
        TokenBucket(rate, burst)


@pytest.mark.parametrize(
    ("remaining", "tokens_after"),
    [
        (None, 10.0),
        (15, 10.0),  # Gate thinks we have more: keep our conservative count
        (4, 4.0),
        (-3, 0.0),
    ],
)
def test_remaining_header_only_lowers(remaining: int | None, tokens_after: float) -> None:
    bucket = TokenBucket(rate_per_s=20, burst=10, now_s=0.0)
    bucket.observe_headers(RateLimit(remaining=remaining, limit=200, reset_ms=None), 0.0)
    assert bucket.tokens(0.0) == tokens_after


def test_exhausted_budget_blocks_until_gates_reset() -> None:
    bucket = TokenBucket(rate_per_s=20, burst=10, now_s=50.0)
    wall_ms = 1_700_000_000_000
    header = RateLimit(remaining=0, limit=200, reset_ms=wall_ms + 2_000)
    bucket.observe_headers(header, 50.0, wall_now_ms=wall_ms)
    assert bucket.wait_time_s(50.0) == pytest.approx(2.0 + 1 / 20)
    assert not bucket.try_acquire(51.9)
    assert bucket.tokens(51.9) == 0.0
    assert not bucket.try_acquire(52.0)  # reset reached, refill starts from zero
    assert bucket.try_acquire(52.05)


@pytest.mark.parametrize(
    ("reset_offset_ms", "wall_known", "blocked_s"),
    [
        (-500, True, 0.0),  # reset already passed
        (3_000, False, 0.0),  # no wall clock given: cannot convert
        (3_600_000, True, MAX_HEADER_BLOCK_S),  # a unit mix-up is capped
    ],
)
def test_reset_header_edge_cases(reset_offset_ms: int, wall_known: bool, blocked_s: float) -> None:
    bucket = TokenBucket(rate_per_s=10, burst=5, now_s=0.0)
    wall_ms = 1_700_000_000_000
    header = RateLimit(remaining=0, limit=200, reset_ms=wall_ms + reset_offset_ms)
    bucket.observe_headers(header, 0.0, wall_now_ms=wall_ms if wall_known else None)
    assert bucket.wait_time_s(0.0) == pytest.approx(blocked_s + 0.1)
