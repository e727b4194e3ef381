"""An asyncio event loop on virtual time: replay runs the real daemon, sleeps and all, fast.

``loop.time()`` is :attr:`VirtualTimeLoop.now_ns`. When the loop would block waiting for its
next timer, the clock jumps to that timer instead (the selector is polled with a zero timeout,
so the loop's self-pipe still works). Everything that sleeps (the daemon's poll and tick
loops, reconcile back-offs, the paper latency model) therefore runs in recorded time, in a
deterministic order, as fast as the CPU allows.

The replay driver advances the clock itself between recorded inputs with :meth:`advance_to`
when :meth:`idle_until` says nothing is due before the next input; otherwise it sleeps until
the input's time and lets the loop run what is due first.
"""

from __future__ import annotations

import asyncio
import math
import selectors
from collections import deque
from typing import Any

_MAX_IDLE_JUMP_S = 86_400.0


class ReplayStalledError(RuntimeError):
    """Every task waits for something and nothing is scheduled: the replay cannot go on."""


class _VirtualSelector(selectors.DefaultSelector):
    """Polls without blocking; a wait becomes a jump of the virtual clock."""

    def __init__(self, loop: VirtualTimeLoop) -> None:
        super().__init__()
        self._vloop = loop

    def select(self, timeout: float | None = None) -> list[tuple[Any, int]]:
        events: list[tuple[Any, int]] = super().select(0)
        if events or timeout == 0:
            return events
        if timeout is None:
            raise ReplayStalledError("replay stalled: every task waits and nothing is scheduled")
        self._vloop.now_ns += max(1, math.ceil(min(timeout, _MAX_IDLE_JUMP_S) * 1e9))
        return events


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """A selector event loop whose clock is ``now_ns`` (integer ns from an arbitrary zero)."""

    def __init__(self, start_ns: int = 0) -> None:
        self.now_ns = start_ns
        super().__init__(selector=_VirtualSelector(self))
        # The loop's own queues; read (never changed) to know whether anything is due.
        self._v_ready: deque[Any] = self.__dict__["_ready"]
        self._v_scheduled: list[asyncio.TimerHandle] = self.__dict__["_scheduled"]

    def time(self) -> float:
        """Virtual seconds."""
        return self.now_ns / 1e9

    def idle_until(self, t_ns: int) -> bool:
        """True when nothing is ready to run and no timer is due at or before ``t_ns``."""
        if self._v_ready:
            return False
        scheduled = self._v_scheduled
        return not scheduled or scheduled[0].when() * 1e9 > t_ns

    def advance_to(self, t_ns: int) -> None:
        """Jump the clock forward to ``t_ns`` (only call when :meth:`idle_until` is true)."""
        if t_ns > self.now_ns:
            self.now_ns = t_ns

    async def sleep_until(self, t_ns: int) -> None:
        """Let everything due before ``t_ns`` run, then return at ``t_ns``."""
        delay_ns = t_ns - self.now_ns
        await asyncio.sleep(delay_ns / 1e9 if delay_ns > 0 else 0)
        self.advance_to(t_ns)  # float rounding of the timer may leave us a few ns short
