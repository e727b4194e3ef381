"""The report's picture (matplotlib, Agg backend: no display needed). Optional dependency:
importing this module raises ImportError when matplotlib is missing.

Top: best bid/ask and public trades around the listing, buy/sell fills and the take-profit
price marked. Bottom left: per-stage latency on the replay clock (the latency model) and the
host's CPU cost per recorded input. Bottom right: PnL per listing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # a file renderer: no display, no GUI toolkit

# pyplot after use(): the backend must be chosen first
import matplotlib.pyplot as plt


def _secs(t_ms: int, t0_ms: int) -> float:
    return (t_ms - t0_ms) / 1000


def render_png(report: dict[str, Any], frame_cost_ns: list[int], path: Path) -> Path:
    """Draw the chart of ``report`` into ``path`` (PNG); returns ``path``."""
    t0 = report["recording"]["first_wall_ms"]
    fig = plt.figure(figsize=(12, 8), dpi=100)
    grid = fig.add_gridspec(2, 2, height_ratios=[3, 2])
    ax = fig.add_subplot(grid[0, :])
    _price_panel(ax, report, t0)
    _latency_panel(fig.add_subplot(grid[1, 0]), report, frame_cost_ns)
    _pnl_panel(fig.add_subplot(grid[1, 1]), report)
    title = f"replay of {report['recording']['file']}"
    if report["recording"]["synthetic"]:
        title += " (synthetic data)"
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)
    return path


def _price_panel(ax: Any, report: dict[str, Any], t0: int) -> None:
    first_fill_s: float | None = None
    for pair, series in report["series"].items():
        tops = series["tops"]
        if tops:
            xs = [_secs(t, t0) for t, _, _ in tops]
            bids = [float(b) if b is not None else float("nan") for _, b, _ in tops]
            asks = [float(a) if a is not None else float("nan") for _, _, a in tops]
            ax.step(xs, asks, where="post", color="tab:red", lw=1, label=f"{pair} best ask")
            ax.step(xs, bids, where="post", color="tab:green", lw=1, label=f"{pair} best bid")
        trades = series["trades"]
        if trades:
            ax.scatter([_secs(t, t0) for t, *_ in trades], [float(p) for _, p, *_ in trades],
                       s=8, color="grey", alpha=0.6, label=f"{pair} trades")
    for side, color, marker in (("buy", "tab:blue", "^"), ("sell", "tab:purple", "v")):
        fills = [f for f in report["fills"] if f["side"] == side]
        if fills:
            xs = [_secs(f["t_ms"], t0) for f in fills]
            ax.scatter(xs, [float(f["price"]) for f in fills], s=90, color=color,
                       marker=marker, zorder=5, edgecolors="black", label=f"our {side} fills")
            if side == "buy":
                first_fill_s = min(xs)
    for d in report["decisions"]:
        if d["kind"] == "sell_placed":
            ax.axhline(float(d["price"]), color="tab:purple", ls=":", lw=1)
        elif d["kind"] in ("listing", "closed"):
            ax.axvline(_secs(d["t_ms"], t0), color="black", ls="--", lw=0.8)
            ax.annotate(d["kind"], (_secs(d["t_ms"], t0), 1),
                        xycoords=("data", "axes fraction"), rotation=90, va="top", fontsize=8)
    if first_fill_s is not None:
        ax.set_xlim(max(0.0, first_fill_s - 5), None)
    ax.set_xlabel("seconds since the recording's first input")
    ax.set_ylabel("price")
    ax.legend(loc="upper right", fontsize=8)
    ax.grid(alpha=0.3)


def _latency_panel(ax: Any, report: dict[str, Any], frame_cost_ns: list[int]) -> None:
    drawn = False
    for name, samples in report["latency_samples_ns"].items():
        if samples and any(samples):
            ax.hist([s / 1000 for s in samples], bins=20, alpha=0.5,
                    label=f"{name} (replay clock)")
            drawn = True
    if frame_cost_ns:
        costs = sorted(frame_cost_ns)[: max(1, int(len(frame_cost_ns) * 0.99))]
        ax.hist([c / 1000 for c in costs], bins=40, alpha=0.5,
                label="CPU per recorded input (host, p0-p99)")
        drawn = True
    ax.set_xlabel("µs")
    ax.set_ylabel("count")
    ax.set_title("per-stage latency")
    if drawn:
        ax.legend(fontsize=7)


def _pnl_panel(ax: Any, report: dict[str, Any]) -> None:
    names = [item["pair"] for item in report["listings"]]
    realized = [float(item["realized_pnl"]) for item in report["listings"]]
    held = [float(item["held_value_at_last_bid"]) for item in report["listings"]]
    if names:
        ax.bar(names, realized, color=["tab:green" if v >= 0 else "tab:red" for v in realized],
               label="realized")
        ax.bar(names, held, bottom=realized, color="lightgrey", label="held (at last bid)")
        ax.legend(fontsize=8)
    totals = report["totals"]
    ax.set_title(f"PnL (quote): realized {float(totals['realized_pnl']):.4f}")
    ax.axhline(0, color="black", lw=0.8)
