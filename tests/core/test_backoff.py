"""Backoff delays and the retry classifier."""

from __future__ import annotations

import asyncio
import random

import pytest

from sniper.core.backoff import Backoff, is_retryable, retry_after_s
from sniper.errors import (
    AuthError,
    ConfigError,
    ExchangeError,
    InsufficientFundsError,
    InvalidOrderError,
    JournalError,
    OrderNotFoundError,
    OutcomeUnknownError,
    PairNotTradableError,
    ProtocolError,
    RateLimitedError,
    RejectedError,
    TransientError,
)


def test_delays_grow_exponentially_up_to_the_cap_without_jitter() -> None:
    backoff = Backoff(base_s=0.1, max_s=1.0, factor=2.0, jitter=0.0)
    delays = [backoff.next_delay(0.7) for _ in range(6)]
    assert delays == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0])
    assert backoff.attempts == 6


@pytest.mark.parametrize(
    ("jitter", "rand", "expected"),
    [
        (0.5, 0.0, 0.8),
        (0.5, 0.5, 0.6),
        (0.5, 1.0, 0.4),
        (1.0, 1.0, 0.0),
        (1.0, 0.25, 0.6),
        (0.0, 0.9, 0.8),
    ],
)
def test_jitter_only_shortens(jitter: float, rand: float, expected: float) -> None:
    backoff = Backoff(base_s=0.8, max_s=10.0, jitter=jitter)
    assert backoff.next_delay(rand) == pytest.approx(expected)


def test_reset_starts_over() -> None:
    backoff = Backoff(base_s=1.0, max_s=8.0, jitter=0.0)
    backoff.next_delay(0.0)
    backoff.next_delay(0.0)
    assert backoff.peek_s() == 4.0
    backoff.reset()
    assert backoff.attempts == 0
    assert backoff.next_delay(0.0) == 1.0


def test_server_floor_wins_even_above_the_cap() -> None:
    backoff = Backoff(base_s=0.1, max_s=1.0, jitter=0.0)
    assert backoff.next_delay(0.0, at_least_s=5.0) == 5.0
    assert backoff.next_delay(0.0, at_least_s=0.05) == pytest.approx(0.2)


def test_long_outage_does_not_overflow() -> None:
    backoff = Backoff(base_s=1.0, max_s=60.0, factor=10.0, jitter=0.0)
    for _ in range(500):
        delay = backoff.next_delay(0.0)
    assert delay == 60.0


def test_delays_stay_in_bounds_for_random_draws() -> None:
    rng = random.Random(7)
    backoff = Backoff(base_s=0.05, max_s=2.0, jitter=1.0)
    for _ in range(200):
        assert 0.0 <= backoff.next_delay(rng.random()) <= 2.0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"base_s": 0.0},
        {"base_s": 2.0, "max_s": 1.0},
        {"factor": 0.5},
        {"jitter": -0.1},
        {"jitter": 1.5},
    ],
)
def test_bad_parameters_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
        Backoff(**kwargs)


def test_rand_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError, match="rand"):
        Backoff().next_delay(1.5)


@pytest.mark.parametrize(
    ("exc", "idempotent", "retryable"),
    [
        (RateLimitedError("slow down"), False, True),
        (TransientError("502"), False, True),
        (TransientError("502"), True, True),
        (OutcomeUnknownError("timeout after send", text="t-1"), False, False),
        (OutcomeUnknownError("timeout after send"), True, True),
        (ProtocolError("garbage", raw=b"x"), False, False),
        (ProtocolError("garbage"), True, True),
        (AuthError("bad key", label="INVALID_KEY"), True, False),
        (RejectedError("no", label="NOT_FOUND"), True, False),
        (InvalidOrderError("precision"), True, False),
        (InsufficientFundsError("poor"), True, False),
        (OrderNotFoundError("gone"), True, False),
        (PairNotTradableError("not yet"), True, False),
        (ExchangeError("unknown"), True, False),
        (ConfigError("entry.quote_amount", "missing"), True, False),
        (JournalError("disk"), True, False),
        (OSError("untranslated"), True, False),
        (ValueError("bug"), True, False),
        (asyncio.CancelledError(), True, False),
        (KeyboardInterrupt(), True, False),
    ],
)
def test_is_retryable(exc: BaseException, idempotent: bool, retryable: bool) -> None:
    assert is_retryable(exc, idempotent=idempotent) is retryable


def test_default_is_not_idempotent() -> None:
    assert not is_retryable(OutcomeUnknownError("timeout"))


@pytest.mark.parametrize(
    ("exc", "seconds"),
    [
        (RateLimitedError("x", retry_after_s=2.5), 2.5),
        (RateLimitedError("x", retry_after_s=-1.0), 0.0),
        (RateLimitedError("x"), 0.0),
        (TransientError("x"), 0.0),
    ],
)
def test_retry_after(exc: BaseException, seconds: float) -> None:
    assert retry_after_s(exc) == seconds
