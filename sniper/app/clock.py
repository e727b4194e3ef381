"""Clocks: local monotonic time for latency, exchange wall time for deadlines and signatures.

The two never mix: ``mono_ns`` measures intervals; ``wall_ms`` is our estimate of Gate's clock
(local wall clock plus the offset measured with ``/spot/time``).
"""

from __future__ import annotations

import time


class Clock:
    """Live clock with a measured offset to the exchange (``offset_ms`` = server - local)."""

    __slots__ = ("offset_ms",)

    def __init__(self, offset_ms: int = 0) -> None:
        self.offset_ms = offset_ms

    def wall_ms(self) -> int:
        return time.time_ns() // 1_000_000 + self.offset_ms

    def wall_s(self) -> int:
        return self.wall_ms() // 1000

    def mono_ns(self) -> int:
        return time.monotonic_ns()

    def observe_server_time(self, server_ms: int, sent_ns: int, received_ns: int) -> int:
        """Adopt the offset from one ``/spot/time`` round trip (midpoint estimate)."""
        local_mid_ms = (time.time_ns() - (received_ns - sent_ns) // 2) // 1_000_000
        self.offset_ms = server_ms - local_mid_ms
        return self.offset_ms
