"""``python -m sniper demo``: exits 0 within 30 s and tells the story."""

from __future__ import annotations

import asyncio
import sys

from tests.e2e.conftest import REPO

STORY = (
    "simulator up at http://127.0.0.1:",
    "baseline: 2 pairs already listed (never bought)",
    "new pair seen: NEWCOIN_USDT",
    "armed NEWCOIN_USDT: book subscribed",
    "BUY NEWCOIN_USDT: IOC",
    "filled buy",
    "SELL placed (take_profit)",
    "position closed: take_profit",
    "summary:",
    "book frame received -> order at exchange",
)


async def test_demo_exits_0_within_30_s_and_prints_the_story() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sniper", "demo",
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, cwd=REPO,
    )
    try:
        async with asyncio.timeout(30):
            out, err = await proc.communicate()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    text = out.decode()
    assert proc.returncode == 0, text + err.decode()
    positions = [text.find(line) for line in STORY]
    assert all(p >= 0 for p in positions), [s for s, p in zip(STORY, positions, strict=True)
                                           if p < 0]
    # the story is told in order (buy fills may be reported before the send is acknowledged)
    assert positions[2] < positions[3] < positions[6] < positions[7] < positions[8]
