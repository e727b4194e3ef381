"""Make a synthetic recording: the bundled simulator's listing scenario, recorded by the same
code as ``sniper record``. This is how ``sniper/data/sample_listing.synthetic.rec.gz`` is made::

    python -m sniper.replay.sample sniper/data/sample_listing.synthetic.rec.gz

The header says ``synthetic: true`` and names the scenario, so a report can never pass it off
as real market data.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Final, TextIO

from sniper.config import Config, parse_config
from sniper.replay.format import DEFAULT_MAX_PART_BYTES
from sniper.replay.recorder import RecordStatistics, record
from sniper.sim.server import SimServer

SAMPLE_SCENARIO: Final = "new_listing_fast"
SAMPLE_DURATION_S: Final = 6.0


def sim_config(rest_url: str, ws_url: str, state_dir: Path, *,
               poll_interval_s: float = 0.1) -> Config:
    """A config pointing at a simulator (the settings ``sniper demo`` uses)."""
    return parse_config({
        "exchange": {"rest_url": rest_url, "ws_url": ws_url, "order_path": "ws"},
        "state_dir": str(state_dir),
        "listing": {"quote_currencies": ["USDT"], "poll_interval_s": poll_interval_s},
        "entry": {"quote_amount": "50", "max_slippage_pct": "10", "deadline_s": 5},
        "exit": {"take_profit_pct": "30", "stop_loss_pct": "20", "max_hold_s": 15},
        "risk": {"max_open_positions": 2},
        "log": {"level": "warning"},
    })


async def record_simulator(out: Path | str, *, scenario: str = SAMPLE_SCENARIO,
                           duration_s: float = SAMPLE_DURATION_S,
                           progress: TextIO | None = None,
                           max_part_bytes: int | None = None) -> RecordStatistics:
    """Start the simulator on loopback, record it for ``duration_s``, stop it."""
    server = SimServer(scenario, host="127.0.0.1", port=0)
    urls = await server.start()
    try:
        config = sim_config(urls.rest, urls.ws, Path("/nonexistent-state-dir"))
        header = {"synthetic": True, "note": f"synthetic: the bundled simulator's {scenario} "
                  "scenario, recorded on loopback (not real market data)",
                  "scenario": scenario}
        return await record(config, out, duration_s=duration_s, progress=progress,
                            header=header,
                            max_part_bytes=max_part_bytes or DEFAULT_MAX_PART_BYTES)
    finally:
        await server.stop()


def main(argv: list[str] | None = None) -> int:
    """``python -m sniper.replay.sample OUT [DURATION_S]``."""
    args = sys.argv[1:] if argv is None else argv
    if not args:
        print("usage: python -m sniper.replay.sample OUT [DURATION_S]", file=sys.stderr)
        return 2
    duration = float(args[1]) if len(args) > 1 else SAMPLE_DURATION_S
    stats = asyncio.run(record_simulator(args[0], duration_s=duration, progress=sys.stderr))
    print(f"{stats.path}: {stats.frames} frames, {stats.bytes_written} bytes", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
