"""Token bucket for Gate's request budgets (gate-v4.md §4). Pure: time is an argument.

Typical budgets: public endpoints 200 / 10 s per endpoint per IP (so 20/s for the listing
poller), spot placement + amend 10/s per UID and pair. ``now_s`` is local monotonic seconds;
Gate's reset header is exchange wall time and is converted with a wall-clock reading that the
caller passes alongside, so the two clocks never mix inside the bucket.
"""

from __future__ import annotations

from typing import Final

from sniper.core.models import RateLimit

MAX_HEADER_BLOCK_S: Final = 10.0
"""Longest pause a reset header may impose. Gate's windows are at most 10 s, so a longer one is
a unit mix-up (seconds read as ms or the reverse) and must not stall the daemon."""


_EPSILON: Final = 1e-9
"""Tokens short that still count as there: float sums of elapsed time drift by ulps, and a
caller that waited exactly :meth:`TokenBucket.wait_time_s` must get its token."""


class TokenBucket:
    """``burst`` tokens, refilled at ``rate_per_s``; one token per request (``n`` for more).

    The bucket starts full. A clock that steps backwards refills nothing (and is not an error).
    """

    __slots__ = ("_blocked_until_s", "_last_s", "_tokens", "burst", "rate_per_s")

    def __init__(self, rate_per_s: float, burst: float, *, now_s: float = 0.0) -> None:
        if rate_per_s <= 0 or burst < 1:
            raise ValueError("need rate_per_s > 0 and burst >= 1")
        self.rate_per_s = rate_per_s
        self.burst = burst
        self._tokens = float(burst)
        self._last_s = now_s
        self._blocked_until_s = now_s

    def _refill(self, now_s: float) -> None:
        if now_s > self._last_s:
            # While blocked by the server, time before the reset earns nothing.
            start_s = max(self._last_s, self._blocked_until_s)
            if now_s > start_s:
                self._tokens = min(self.burst, self._tokens + (now_s - start_s) * self.rate_per_s)
            self._last_s = now_s

    def _check(self, n: float) -> None:
        if not 0 < n <= self.burst:
            raise ValueError(f"cannot take {n} tokens from a bucket of {self.burst}")

    def tokens(self, now_s: float) -> float:
        """Tokens available at ``now_s``."""
        self._refill(now_s)
        return self._tokens if now_s >= self._blocked_until_s else 0.0

    def try_acquire(self, now_s: float, n: float = 1) -> bool:
        """Take ``n`` tokens if they are there now; ``False`` (and take nothing) otherwise."""
        self._check(n)
        self._refill(now_s)
        if now_s < self._blocked_until_s or self._tokens + _EPSILON < n:
            return False
        self._tokens = max(0.0, self._tokens - n)
        return True

    def wait_time_s(self, now_s: float, n: float = 1) -> float:
        """Seconds from ``now_s`` until ``n`` tokens will be available (0 if they are now)."""
        self._check(n)
        self._refill(now_s)
        start_s = max(now_s, self._blocked_until_s)
        missing = n - self._tokens
        return (start_s - now_s) + (missing / self.rate_per_s if missing > _EPSILON else 0.0)

    def observe_headers(
        self, limit: RateLimit, now_s: float, *, wall_now_ms: int | None = None
    ) -> None:
        """Adopt Gate's view of this budget when it is tighter than ours.

        ``remaining`` below our token count lowers it (never raises it: other processes or
        keys may share the budget, and our bucket is the conservative one). With nothing left
        and a reset time in the future (``reset_ms`` against ``wall_now_ms``, both exchange
        wall clock), the bucket is blocked until then, at most :data:`MAX_HEADER_BLOCK_S`.
        """
        self._refill(now_s)
        remaining = limit.remaining
        if remaining is None:
            return
        self._tokens = min(self._tokens, float(max(remaining, 0)))
        if remaining <= 0 and limit.reset_ms is not None and wall_now_ms is not None:
            wait_s = min((limit.reset_ms - wall_now_ms) / 1000.0, MAX_HEADER_BLOCK_S)
            if wait_s > 0:
                self._blocked_until_s = max(self._blocked_until_s, now_s + wait_s)
