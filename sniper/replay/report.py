"""The run report of a replay: text on stdout, ``report.json``, ``report.html`` + ``report.png``.

``report.json`` holds only what the recording and the config determine (decisions, orders,
fills, PnL, per-stage latencies on the replay clock, the chart's series), written with sorted
keys: two replays of the same file with the same config give the same bytes. Host
measurements (replay speed, CPU cost per frame) vary run to run and go to ``timing.json``,
the text summary and the chart only.

The chart (:mod:`sniper.replay.chart`, matplotlib, optional ``report`` extra) shows best bid/ask
and trades around the listing with entry and exit marks, and the latency histograms. Without
matplotlib the HTML page is written without the picture.
"""

from __future__ import annotations

import html
import statistics
import sys
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TextIO

import orjson

if TYPE_CHECKING:
    from sniper.replay.player import ReplayResult

REPORT_FORMAT: Final = "sniper-replay-report"
REPORT_VERSION: Final = 1
MAX_SERIES_POINTS: Final = 2000
_DECISION_KINDS: Final = ("listing", "armed", "opened", "buy_sent", "buy_rejected", "fill",
                          "entry_done", "sell_placed", "exit_triggered", "closed", "skipped",
                          "fatal")


def _plain(value: Any) -> Any:
    """JSON-ready: Decimals as strings, containers recursively."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _thin(points: list[Any], limit: int = MAX_SERIES_POINTS) -> list[Any]:
    """At most ``limit`` points, evenly picked, always keeping the last."""
    if len(points) <= limit:
        return points
    step = len(points) / limit
    picked = [points[int(i * step)] for i in range(limit - 1)]
    picked.append(points[-1])
    return picked


def _stats_ms(values_ns: Iterable[int]) -> dict[str, Any]:
    vals = sorted(values_ns)
    if not vals:
        return {"n": 0}
    def pick(q: float) -> str:
        return f"{vals[min(len(vals) - 1, int(q * len(vals)))] / 1e6:.3f}"
    return {"n": len(vals), "min_ms": f"{vals[0] / 1e6:.3f}", "p50_ms": pick(0.5),
            "p99_ms": pick(0.99), "max_ms": f"{vals[-1] / 1e6:.3f}"}


def build_report(result: ReplayResult) -> dict[str, Any]:
    """The deterministic report (see module docstring)."""
    cfg = result.config
    daemon, paper, market = result.daemon, result.paper, result.market
    listings: list[dict[str, Any]] = []
    stages: dict[str, list[int]] = {"frame_to_decision": [], "decision_to_exchange": [],
                                    "exchange_to_answer": [], "open_to_first_buy": []}
    buys = sells = 0
    spent = received = realized = unrealized_total = Decimal(0)
    fills = [] if paper is None else list(paper.fills())
    for pair, session in (daemon.sessions.items() if daemon else ()):
        snap = session.position.snapshot()
        last_bid = None
        book = market.book(pair) if market else None
        if book is not None and book.best_bid() is not None:
            last_bid = book.best_bid()[0]  # type: ignore[index]
        unrealized = (snap.held * last_bid if last_bid is not None else Decimal(0))
        first_buy_ns = None
        for stamp in session.latencies:
            recv, decision = stamp.get("recv_ns"), stamp.get("decision_ns")
            written, answered = stamp.get("written_ns"), stamp.get("result_ns")
            if recv and decision:
                stages["frame_to_decision"].append(decision - recv)
                first_buy_ns = decision if first_buy_ns is None else first_buy_ns
            if decision and written:
                stages["decision_to_exchange"].append(written - decision)
            if written and answered:
                stages["exchange_to_answer"].append(answered - written)
        if session.opened_ns is not None and first_buy_ns is not None:
            stages["open_to_first_buy"].append(first_buy_ns - session.opened_ns)
        buys += snap.buy_fills
        sells += snap.sell_fills
        spent += snap.quote_spent
        received += snap.quote_received
        realized += snap.realized_pnl
        unrealized_total += unrealized
        listings.append({
            "pair": pair,
            "entry": str(session.entry.state),
            "entry_reason": session.entry.finish_reason,
            "closed": session.closed,
            "close_reason": session.close_reason,
            "held": snap.held,
            "base_bought": snap.base_bought,
            "base_received": snap.base_received,
            "base_sold": snap.base_sold,
            "quote_spent": snap.quote_spent,
            "quote_received": snap.quote_received,
            "avg_entry_price": snap.avg_entry_price,
            "avg_exit_price": snap.avg_exit_price,
            "realized_pnl": snap.realized_pnl,
            "last_bid": last_bid,
            "held_value_at_last_bid": unrealized,
        })
    decisions = [{"t_ms": t, "kind": kind, **data} for t, kind, data in result.events
                 if kind in _DECISION_KINDS]
    series: dict[str, Any] = {}
    for pair, s in sorted((market.series if market else {}).items()):
        tops = _thin(s.tops)
        trades = _thin(s.trades)
        series[pair] = {
            "tops": [[t, b, a] for t, b, a in tops],
            "trades": [[t, p, a, side] for t, p, a, side in trades],
        }
    err = result.error
    report = {
        "format": REPORT_FORMAT,
        "version": REPORT_VERSION,
        "recording": {
            "file": Path(result.path).name,
            "series": result.header.get("series"),
            "synthetic": bool(result.header.get("synthetic", False)),
            "note": result.header.get("note"),
            "records": result.records,
            "frames": result.frames,
            "first_wall_ms": result.first_wall_ms,
            "last_wall_ms": result.last_wall_ms,
            "complete": err is None,
            "error": None if err is None else str(err),
            "error_offset": None if err is None else err.offset,
        },
        "settings": {
            "latency_us": result.latency_us,
            "quote_amount": cfg.entry.quote_amount,
            "max_slippage_pct": cfg.entry.max_slippage_pct,
            "max_price": cfg.entry.max_price,
            "take_profit_pct": cfg.exit.take_profit_pct,
            "stop_loss_pct": cfg.exit.stop_loss_pct,
            "trailing_stop_pct": cfg.exit.trailing_stop_pct,
            "max_hold_s": cfg.exit.max_hold_s,
            "poll_interval_s": cfg.listing.poll_interval_s,
            "quote_currencies": list(cfg.listing.quote_currencies),
        },
        "totals": {"buys": buys, "sells": sells, "quote_spent": spent,
                   "quote_received": received, "realized_pnl": realized,
                   "unrealized_pnl": unrealized_total},
        "listings": listings,
        "decisions": decisions,
        "fills": [{"t_ms": f.time_ms, "pair": f.pair, "side": f.side, "role": f.role,
                   "price": f.price, "amount": f.amount, "fee": f.fee,
                   "fee_currency": f.fee_currency, "text": f.text} for f in fills],
        "latency_replay_clock": {name: _stats_ms(v) for name, v in stages.items()},
        "latency_samples_ns": stages,
        "series": series,
        "daemon": None if daemon is None else {
            "polls": daemon.stats.polls, "listings_seen": daemon.stats.listings_seen,
            "armed": daemon.stats.armed, "skipped": daemon.stats.skipped},
    }
    plain: dict[str, Any] = _plain(report)
    return plain


def timing_of(result: ReplayResult) -> dict[str, Any]:
    """Host measurements of this run (not deterministic)."""
    costs = result.frame_cost_ns
    timing = dict(result.timing)
    if costs:
        timing["record_cost_us"] = {
            "n": len(costs), "p50": statistics.median(costs) / 1000,
            "p99": sorted(costs)[int(0.99 * (len(costs) - 1))] / 1000,
            "mean": sum(costs) / len(costs) / 1000,
        }
    return timing


def text_summary(report: dict[str, Any], timing: dict[str, Any]) -> list[str]:
    """The human summary printed on stdout."""
    rec, totals = report["recording"], report["totals"]
    span_s = (rec["last_wall_ms"] - rec["first_wall_ms"]) / 1000
    lines = [
        f"replay of {rec['file']}" + (" (synthetic)" if rec["synthetic"] else "")
        + f": {rec['records']} records, {rec['frames']} frames, {span_s:.1f} s of market data",
    ]
    if timing:
        lines.append(f"  replayed in {timing.get('wall_s', 0):.3f} s: "
                     f"{timing.get('frames_per_s', 0):,.0f} frames/s, "
                     f"{timing.get('records_per_s', 0):,.0f} records/s")
    lines.append(f"  paper latency model: {report['settings']['latency_us']} us")
    for d in report["decisions"]:
        kind = d["kind"]
        t = (d["t_ms"] - rec["first_wall_ms"]) / 1000
        if kind == "buy_sent":
            what = f"BUY  {d['pair']} IOC {d['amount']} @ {d['price']}"
        elif kind == "fill":
            what = f"fill {d['side']} {d['amount']} {d['pair']} @ {d['price']} (fee {d['fee']})"
        elif kind == "sell_placed":
            what = f"SELL {d['pair']} {d['purpose']} {d['amount']} @ {d['price']}"
        elif kind in ("listing", "armed", "entry_done", "exit_triggered", "closed",
                      "buy_rejected", "skipped", "fatal"):
            detail = d.get("reason") or d.get("label") or d.get("error") or ""
            what = f"{kind} {d.get('pair', '')} {detail}".rstrip()
        else:
            continue
        lines.append(f"  [{t:8.3f}s] {what}")
    lines.append(f"  buys filled: {totals['buys']}, sells filled: {totals['sells']}, "
                 f"quote spent {totals['quote_spent']}, received {totals['quote_received']}")
    lines.append(f"  realized PnL: {totals['realized_pnl']}; still held, valued at the last "
                 f"bid: {totals['unrealized_pnl']}")
    for name, st in report["latency_replay_clock"].items():
        if st.get("n"):
            lines.append(f"  {name}: p50 {st['p50_ms']} ms, max {st['max_ms']} ms "
                         f"(n={st['n']}, replay clock)")
    if not rec["complete"]:
        lines.append(f"  INCOMPLETE: {rec['error']}")
    return lines


def write_report(result: ReplayResult, report_dir: Path | None, *,
                 out: TextIO | None = None) -> dict[str, Any]:
    """Print the summary; with ``report_dir``, write report.json, timing.json, report.html
    and report.png there. Returns the report."""
    report = build_report(result)
    timing = timing_of(result)
    stream = out or sys.stdout
    for line in text_summary(report, timing):
        print(line, file=stream)
    if report_dir is not None:
        report_dir.mkdir(parents=True, exist_ok=True)
        (report_dir / "report.json").write_bytes(dumps(report))
        (report_dir / "timing.json").write_bytes(dumps(timing))
        png = None
        try:
            from sniper.replay.chart import render_png
        except ImportError:  # matplotlib is the optional `report` extra
            print("  (matplotlib not installed: report.html without chart)", file=stream)
        else:
            png = render_png(report, result.frame_cost_ns, report_dir / "report.png")
        (report_dir / "report.html").write_text(render_html(report, timing, png),
                                                encoding="utf-8")
        print(f"  report: {report_dir / 'report.html'}", file=stream)
    return report


def dumps(obj: Any) -> bytes:
    """Stable JSON bytes (sorted keys, indented, trailing newline)."""
    return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2) + b"\n"


def render_html(report: dict[str, Any], timing: dict[str, Any], png: Path | None) -> str:
    """A self-contained page: summary, the chart (referenced PNG), decisions and fills."""
    esc = html.escape
    lines = text_summary(report, timing)
    rows = "".join(
        f"<tr><td>{(d['t_ms'] - report['recording']['first_wall_ms']) / 1000:.3f}</td>"
        f"<td>{esc(d['kind'])}</td><td>{esc(str(d.get('pair', '')))}</td>"
        f"<td>{esc(str(d.get('price', '')))}</td><td>{esc(str(d.get('amount', '')))}</td>"
        f"<td>{esc(str(d.get('reason') or d.get('purpose') or d.get('side') or ''))}</td></tr>"
        for d in report["decisions"])
    chart = (f'<img src="{esc(png.name)}" alt="price, book top, entries and exits" '
             'style="max-width:100%">' if png is not None else "<p>(no chart)</p>")
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>sniper replay: {esc(report['recording']['file'])}</title>
<style>body{{font-family:sans-serif;margin:2em}}pre{{background:#f4f4f4;padding:1em}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:2px 8px;text-align:right}}
</style></head><body>
<h1>Replay of {esc(report['recording']['file'])}</h1>
<pre>{esc(chr(10).join(lines))}</pre>
{chart}
<h2>Decisions</h2>
<table><tr><th>t (s)</th><th>event</th><th>pair</th><th>price</th><th>amount</th><th>why</th></tr>
{rows}</table>
<p>Data: <a href="report.json">report.json</a> (deterministic),
<a href="timing.json">timing.json</a> (host measurements).</p>
</body></html>
"""
