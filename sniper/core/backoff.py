"""Jittered exponential backoff and the "may I retry this?" classifier. Pure: no clock, no sleep.

A reconnect or retry loop at the edge is three lines around these two pieces::

    try:
        ...; backoff.reset()
    except SniperError as exc:
        if not is_retryable(exc, idempotent=True):
            raise
        await asyncio.sleep(backoff.next_delay(rng.random(), at_least_s=retry_after_s(exc)))

Randomness is injected (a float in ``[0, 1)``), so tests and replays are deterministic.
"""

from __future__ import annotations

from sniper.errors import (
    OutcomeUnknownError,
    ProtocolError,
    RateLimitedError,
    TransientError,
)


class Backoff:
    """Exponential delays ``base_s * factor**attempt`` capped at ``max_s``, with jitter.

    ``jitter`` is the fraction of each delay that is randomised: 0 gives exact delays, 1 gives
    "full jitter" (uniform in ``[0, delay]``), 0.5 gives ``[delay/2, delay]``. Jitter only
    ever shortens a delay, so ``max_s`` is a true upper bound.
    """

    __slots__ = ("_attempts", "base_s", "factor", "jitter", "max_s")

    def __init__(
        self, base_s: float = 0.1, max_s: float = 30.0, factor: float = 2.0, jitter: float = 0.5
    ) -> None:
        if base_s <= 0 or max_s < base_s:
            raise ValueError("need 0 < base_s <= max_s")
        if factor < 1:
            raise ValueError("factor must be >= 1")
        if not 0 <= jitter <= 1:
            raise ValueError("jitter must be within [0, 1]")
        self.base_s = base_s
        self.max_s = max_s
        self.factor = factor
        self.jitter = jitter
        self._attempts = 0

    @property
    def attempts(self) -> int:
        """Delays handed out since the last :meth:`reset` (failures in a row)."""
        return self._attempts

    def peek_s(self) -> float:
        """The un-jittered delay the next :meth:`next_delay` call is based on."""
        # Exponent capped so factor**attempt cannot overflow after a very long outage.
        exponent = min(self._attempts, 64)
        return float(min(self.max_s, self.base_s * self.factor**exponent))

    def next_delay(self, rand: float, *, at_least_s: float = 0.0) -> float:
        """Seconds to wait before the next attempt; counts the attempt.

        ``rand`` is a uniform draw in ``[0, 1)`` (e.g. ``random.Random.random()``).
        ``at_least_s`` is a floor the server asked for (a rate limit's reset); it may exceed
        ``max_s``, because retrying before the server's reset only earns another refusal.
        """
        if not 0 <= rand <= 1:
            raise ValueError("rand must be within [0, 1]")
        delay = self.peek_s()
        delay -= delay * self.jitter * rand
        self._attempts += 1
        return max(delay, at_least_s)

    def reset(self) -> None:
        """Call after a success: the next failure starts again from ``base_s``."""
        self._attempts = 0


def is_retryable(exc: BaseException, *, idempotent: bool = False) -> bool:
    """May the request that raised ``exc`` be sent again (after a backoff)?

    - :class:`~sniper.errors.RateLimitedError`, :class:`~sniper.errors.TransientError`: yes;
      both are known not to have taken effect.
    - :class:`~sniper.errors.OutcomeUnknownError`, :class:`~sniper.errors.ProtocolError`: only
      when ``idempotent`` (a GET, a subscription, a lookup). For an order they mean "it may
      exist": reconcile by client id, never re-send.
    - Everything else, no: auth and config need a human, a rejection would be rejected again,
      journal errors stop trading. Foreign exceptions (``OSError``, httpx, websockets) must be
      translated at the edge first; untranslated they are not retried, so a bug shows up.
      ``BaseException`` outside ``Exception`` (cancellation, ``KeyboardInterrupt``) never is.

    A trigger may deliberately retry :class:`~sniper.errors.PairNotTradableError` for a short
    grace window around a listing's start (gate-v4.md §5); that is its policy, not this rule.
    """
    if isinstance(exc, RateLimitedError | TransientError):
        return True
    if isinstance(exc, OutcomeUnknownError | ProtocolError):
        return idempotent
    return False


def retry_after_s(exc: BaseException) -> float:
    """The wait the server asked for (a rate limit's ``retry_after_s``), else 0."""
    if isinstance(exc, RateLimitedError) and exc.retry_after_s is not None:
        return max(0.0, exc.retry_after_s)
    return 0.0
