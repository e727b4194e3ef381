"""The virtual-time loop: sleeps cost no real time, timers run in order, stalls are reported."""

from __future__ import annotations

import asyncio
import time

import pytest

from sniper.replay.vloop import ReplayStalledError, VirtualTimeLoop


def run(coro_factory):  # type: ignore[no-untyped-def]
    loop = VirtualTimeLoop()
    try:
        return loop, loop.run_until_complete(coro_factory(loop))
    finally:
        loop.close()


def test_an_hour_of_sleeps_takes_no_real_time_and_keeps_order() -> None:
    order: list[tuple[str, int]] = []

    async def sleeper(loop: VirtualTimeLoop, name: str, every_s: float, n: int) -> None:
        for _ in range(n):
            await asyncio.sleep(every_s)
            order.append((name, loop.now_ns))

    async def main(loop: VirtualTimeLoop) -> int:
        await asyncio.gather(sleeper(loop, "a", 600, 6), sleeper(loop, "b", 900, 4))
        return loop.now_ns

    started = time.monotonic()
    _, end_ns = run(main)
    assert time.monotonic() - started < 1.0
    assert end_ns == 3600 * 10**9
    assert [t for _, t in order] == sorted(t for _, t in order)
    assert order[:3] == [("a", 600 * 10**9), ("b", 900 * 10**9), ("a", 1200 * 10**9)]


def test_idle_until_and_sleep_until() -> None:
    async def main(loop: VirtualTimeLoop) -> list[bool]:
        seen = []
        loop.call_later(5, lambda: None)
        seen.append(loop.idle_until(4_000_000_000))
        seen.append(loop.idle_until(5_000_000_000))
        loop.advance_to(4_000_000_000)
        await loop.sleep_until(7_000_000_000)
        seen.append(loop.now_ns == 7_000_000_000)
        return seen

    _, seen = run(main)
    assert seen == [True, False, True]


def test_waiting_forever_is_reported_not_hung() -> None:
    async def main(loop: VirtualTimeLoop) -> None:
        await loop.create_future()

    with pytest.raises(ReplayStalledError):
        run(main)
