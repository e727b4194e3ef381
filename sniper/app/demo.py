"""``sniper demo``: the bundled simulator and the real daemon on loopback, told as a story.

No keys (the simulator makes a throw-away pair), no network beyond 127.0.0.1, a temporary
state directory. Finishes when the listing's position is closed (or after a time limit).
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

from sniper.app.clock import Clock
from sniper.app.daemon import Daemon
from sniper.app.journal import Journal
from sniper.app.live import build_live_edges
from sniper.app.run import journal_run_id
from sniper.config import Config, parse_config
from sniper.sim.server import SimServer

DEMO_SCENARIO = "new_listing_fast"
DEMO_TIME_LIMIT_S = 25.0


def demo_config(rest_url: str, ws_url: str, state_dir: Path) -> Config:
    return parse_config(
        {
            "exchange": {"rest_url": rest_url, "ws_url": ws_url, "order_path": "ws"},
            "state_dir": str(state_dir),
            "listing": {"quote_currencies": ["USDT"], "poll_interval_s": 0.1},
            "entry": {"quote_amount": "50", "max_slippage_pct": "10", "deadline_s": 5},
            "exit": {"take_profit_pct": "30", "stop_loss_pct": "20", "max_hold_s": 15},
            "risk": {"max_open_positions": 2},
            "log": {"level": "warning"},
        }
    )


class Story:
    """Prints the daemon's observations as readable lines with a relative time."""

    def __init__(self, out: TextIO, t0_ns: int) -> None:
        self.out = out
        self.t0_ns = t0_ns
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.closed = asyncio.Event()

    def __call__(self, kind: str, data: dict[str, Any]) -> None:
        self.events.append((kind, data))
        line = self._describe(kind, data)
        if line:
            elapsed = (time.monotonic_ns() - self.t0_ns) / 1e9
            print(f"[{elapsed:6.2f}s] {line}", file=self.out, flush=True)
        if kind in ("closed", "fatal"):
            self.closed.set()

    @staticmethod
    def _describe(kind: str, d: dict[str, Any]) -> str | None:
        pair = d.get("pair", "")
        match kind:
            case "baseline":
                return f"baseline: {d['pairs']} pairs already listed (never bought)"
            case "listing":
                return (f"new pair seen: {pair} (scheduled={d['scheduled']}, "
                        f"buy_start={d['buy_start_s']})")
            case "armed":
                return f"armed {pair}: book subscribed, {len(d['texts'])} buy ids journaled"
            case "opened":
                return f"{pair} reports trade_status open"
            case "buy_sent":
                return f"BUY {pair}: IOC {d['amount']} @ {d['price']} ({d['text']})"
            case "buy_rejected":
                return f"buy rejected by exchange: {d['label']}"
            case "fill":
                return (f"filled {d['side']} {d['amount']} {pair} @ {d['price']} "
                        f"(fee {d['fee']} {d['fee_currency']})")
            case "entry_done":
                return f"entry finished ({d['reason']}), spent {d['quote_spent']} quote"
            case "sell_placed":
                return f"SELL placed ({d['purpose']}): {d['amount']} @ {d['price']}"
            case "closed":
                pnl = Decimal(str(d["pnl_quote"])).quantize(Decimal("0.0001"))
                return f"position closed: {d['reason']}, realized PnL {pnl} quote"
            case "skipped":
                return f"skipped {pair}: {d['reason']}"
            case "fatal":
                return f"FATAL: {d['error']}"
        return None


def _latency_summary(server: SimServer, daemon: Daemon) -> list[str]:
    lines: list[str] = []
    arrivals = {e.text: e.t_ns for e in server.events.find("order_in") if e.text}
    for session in daemon.sessions.values():
        buy_times = []
        for stamp in session.latencies:
            text = stamp.get("text")
            arrived = arrivals.get(text) if isinstance(text, str) else None
            if arrived and stamp.get("recv_ns"):
                buy_times.append((arrived - stamp["recv_ns"]) / 1000)
        if session.opened_ns is not None and buy_times:
            lines.append(
                f"{session.pair.pair}: book frame received -> order at exchange: "
                f"first {buy_times[0]:.0f} us, median {statistics.median(buy_times):.0f} us "
                f"over {len(buy_times)} order(s)"
            )
    armed = daemon.stats.armed_at_ns
    if armed:
        lines.append(f"listings armed: {len(armed)}; polls: {daemon.stats.polls}")
    return lines


async def run_demo(out: TextIO = sys.stdout, *, time_limit_s: float = DEMO_TIME_LIMIT_S) -> int:
    t0 = time.monotonic_ns()
    server = SimServer(DEMO_SCENARIO, host="127.0.0.1", port=0)
    urls = await server.start()
    print(f"simulator up at {urls.rest} (scenario {DEMO_SCENARIO})", file=out, flush=True)
    with tempfile.TemporaryDirectory(prefix="sniper-demo-") as tmp:
        config = demo_config(urls.rest, urls.ws, Path(tmp))
        clock = Clock()
        edges = build_live_edges(config, server.credentials, clock)
        journal = Journal.in_dir(config.state_dir)
        story = Story(out, t0)
        daemon = Daemon(config, edges, journal, run_id=journal_run_id(journal),
                        wall_ms=clock.wall_ms, mono_ns=clock.mono_ns, observer=story)
        task = asyncio.get_running_loop().create_task(daemon.run())
        try:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(time_limit_s):
                    await story.closed.wait()
            daemon.request_stop()
            code = await task
        finally:
            journal.close()
            await server.stop()
    summary = _summary(story, server, daemon)
    for line in summary:
        print(line, file=out, flush=True)
    bought = any(kind == "fill" and d.get("side") == "buy" for kind, d in story.events)
    return code if bought else 1


def _summary(story: Story, server: SimServer, daemon: Daemon) -> list[str]:
    lines = ["", "summary:"]
    buys = [d for k, d in story.events if k == "fill" and d.get("side") == "buy"]
    sells = [d for k, d in story.events if k == "fill" and d.get("side") == "sell"]
    spent = sum((Decimal(str(d["price"])) * Decimal(str(d["amount"])) for d in buys), Decimal(0))
    lines.append(f"  buys filled: {len(buys)} (quote spent {spent}); sells filled: {len(sells)}")
    lines.extend("  " + line for line in _latency_summary(server, daemon))
    return lines


def main_demo(*, verbose: bool = False, runner: Callable[..., Any] = asyncio.run) -> int:
    from sniper.log import configure_logging

    configure_logging("info" if verbose else "error", "pretty")
    return int(runner(run_demo()))
