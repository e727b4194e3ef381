"""Benchmark 1: decision -> order inside the exchange (DESIGN.md section 5, first target).

For every order: ``t0 = time.monotonic_ns()`` when the decision is taken, ``t1`` = the
simulator's event-log timestamp of the order's arrival (``order_in``, matched by the order's
unique ``text``). Latency = t1 - t0. Both are ``CLOCK_MONOTONIC`` readings, which Linux shares
across processes, so the simulator can run in a child process pinned to another CPU.

Each round places one order per contender, one after the other (never overlapping), in an
order rotated every round so no contender always goes first; the first ``warmup`` rounds are
discarded. Orders are IOC limit buys on BTC_USDT priced ~23% under the ask, so nothing fills
and the balance lasts for any number of rounds.
"""

from __future__ import annotations

import asyncio
import gc
import math
import secrets
import time
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from bench.common import BenchResult, LatencyStats, TargetCheck, VariantResult, ratio
from bench.contenders import (
    CcxtGate,
    Contender,
    GateSdk,
    RawHttpFloor,
    RawWsFloor,
    SniperHttp,
    SniperRest,
    SniperWs,
    load_optional,
)
from bench.simproc import ChildProcessSim, InProcessSim, SimPeer
from sniper.sim.server import generate_credentials

NAME = "decision_to_exchange"
NAME_IDLE_SIM = "decision_to_exchange_idle_sim"
TITLE = "Decision -> order inside the exchange (t0 at decision, t1 = simulator has the order)"
TITLE_IDLE_SIM = "Same, simulator idle between orders (its epoll wake-up is inside every figure)"
SCENARIO = "quiet"
PRICE = Decimal("50000")  # BTC_USDT asks start near 65,000: the IOC never fills
AMOUNT = Decimal("0.0001")  # 5 USDT: above the pair's minimums

WS_VARIANTS = frozenset({"raw_ws_floor", "sniper_ws"})
"""Contenders that send over the WebSocket; every other one is an HTTP request."""

# DESIGN.md section 5
FLOOR_RATIO_MAX = 1.3
CCXT_SPEEDUP_MIN = 3.0
SDK_SPEEDUP_MIN = 4.0


@dataclass(frozen=True, slots=True)
class Settings:
    """How one invocation measures (see :mod:`bench.run` for the CLI)."""

    rounds: int
    warmup: int
    runs: int = 1
    separate_process: bool = True
    client_cpu: int | None = 0
    server_cpu: int | None = 1
    uvloop: bool = True
    hot_server: bool = True
    """Keep the simulator's event loop spinning (no epoll sleep between orders)."""
    only: tuple[str, ...] = ()
    """Contender names to run (empty: all)."""
    gap_us: int = 0
    """Pause between orders, spent polling the event loop (never sleeping in epoll), so the
    simulator has finished its after-reply work (event log, pushes) before the next decision
    and the client stays hot. 0 (default) fires back to back; on the shared 2-CPU machine a
    gap made every figure noisier, not lower."""


@dataclass(slots=True)
class _Sent:
    name: str
    text: str
    t0_ns: int
    measured: bool
    ok: bool
    written_ns: int


def _contenders(sim: SimPeer, credentials: Any, settings: Settings) -> list[Contender]:
    found: list[Contender] = [
        RawWsFloor(sim.ws_url, credentials),
        RawHttpFloor(sim.rest_url, credentials),
        SniperWs(sim.ws_url, credentials),
    ]
    rawhttp = load_optional("sniper.gate.rawhttp")
    if rawhttp is not None and hasattr(rawhttp, "RawHttpOrderSender"):
        found.append(SniperHttp(rawhttp, sim.rest_url, credentials))
        found.append(SniperHttp(rawhttp, sim.rest_url, credentials, precompute=True))
    rest = load_optional("sniper.gate.rest")
    if rest is not None and hasattr(rest, "GateRest"):
        found.append(SniperRest(rest, sim.rest_url, credentials))
    found.append(CcxtGate(sim.rest_url, credentials))
    if settings.separate_process:
        # Blocking the loop is only possible when the simulator is not on it.
        found.append(GateSdk(sim.rest_url, credentials, threaded=False))
    found.append(GateSdk(sim.rest_url, credentials, threaded=True))
    if settings.only:
        found = [c for c in found if c.name in settings.only]
    return found


async def _one_run(
    settings: Settings, run_index: int, descriptions: dict[str, str]
) -> tuple[list[_Sent], dict[str, int], str]:
    """Start a simulator, race every contender for ``warmup + rounds`` rounds."""
    credentials = generate_credentials()
    sim: SimPeer
    if settings.separate_process:
        sim = await ChildProcessSim.start(
            SCENARIO, credentials, settings.server_cpu, settings.uvloop, spin=settings.hot_server
        )
    else:
        sim = await InProcessSim.start(SCENARIO, credentials)
    contenders = _contenders(sim, credentials, settings)
    descriptions.update({c.name: c.description for c in contenders})
    sent: list[_Sent] = []
    try:
        for contender in contenders:
            await contender.open()
        tag = secrets.token_hex(2)
        count = len(contenders)
        gc.collect()
        monotonic_ns = time.monotonic_ns
        for round_index in range(settings.warmup + settings.rounds):
            measured = round_index >= settings.warmup
            for position in range(count):
                slot = (round_index + position) % count
                contender = contenders[slot]
                text = f"t-{tag}-{run_index}-{slot}-{round_index}"
                contender.arm(text, PRICE, AMOUNT)
                contender.written_ns = 0
                t0_ns = monotonic_ns()
                ok = True
                try:
                    await contender.fire(t0_ns)
                except Exception:  # noqa: BLE001 - counted per contender, reported as errors
                    ok = False
                written_ns = contender.written_ns
                sent.append(_Sent(contender.name, text, t0_ns, measured, ok, written_ns))
                if settings.gap_us:
                    await _hot_pause(settings.gap_us * 1000)
        arrivals = (await sim.arrivals()).t_ns_by_text
    finally:
        for contender in contenders:
            try:
                await contender.close()
            except Exception as exc:  # noqa: BLE001 - closing is best effort
                print(f"warning: closing {contender.name}: {exc!r}")
        await sim.stop()
    return sent, arrivals, sim.where


async def _hot_pause(ns: int) -> None:
    """Let ``ns`` pass while the loop keeps polling (no epoll sleep, no cold wake-up)."""
    deadline = time.monotonic_ns() + ns
    while time.monotonic_ns() < deadline:  # noqa: ASYNC110 - polling is the point
        await asyncio.sleep(0)


def _summarise(
    sent: list[_Sent], arrivals: dict[str, int], order: list[str]
) -> tuple[dict[str, LatencyStats], dict[str, int], dict[str, LatencyStats]]:
    """Per contender: latency stats, error count, and client-side (t0 -> written) stats."""
    samples: dict[str, list[int]] = defaultdict(list)
    client: dict[str, list[int]] = defaultdict(list)
    errors: dict[str, int] = defaultdict(int)
    for item in sent:
        if not item.measured:
            continue
        t1 = arrivals.get(item.text)
        if not item.ok or t1 is None:
            errors[item.name] += 1
            continue
        samples[item.name].append(t1 - item.t0_ns)
        if item.written_ns:
            client[item.name].append(item.written_ns - item.t0_ns)
    stats = {name: LatencyStats.from_ns(samples.get(name, [])) for name in order}
    client_stats = {name: LatencyStats.from_ns(client.get(name, [])) for name in order}
    return stats, dict(errors), client_stats


def _targets(stats: dict[str, LatencyStats]) -> tuple[TargetCheck, ...]:
    def p50(name: str) -> float:
        s = stats.get(name)
        return s.p50_us if s is not None else math.nan

    ours = p50("sniper_ws")
    checks: list[TargetCheck] = []
    r = ratio(ours, p50("raw_ws_floor"))
    checks.append(
        TargetCheck(
            "sniper_ws p50 vs raw WS floor",
            f"<= {FLOOR_RATIO_MAX}x",
            "n/a" if math.isnan(r) else f"{r:.2f}x",
            None if math.isnan(r) else r <= FLOOR_RATIO_MAX,
        )
    )
    if "sniper_http" in stats:
        r = ratio(p50("sniper_http"), p50("raw_http_floor"))
        checks.append(
            TargetCheck(
                "sniper_http p50 vs raw HTTP floor",
                f"<= {FLOOR_RATIO_MAX}x",
                "n/a" if math.isnan(r) else f"{r:.2f}x",
                None if math.isnan(r) else r <= FLOOR_RATIO_MAX,
            )
        )
    for base, wanted in (("ccxt", CCXT_SPEEDUP_MIN), ("sdk", SDK_SPEEDUP_MIN)):
        if base == "sdk" and base not in stats:
            base = "sdk_thread"
        speedup = ratio(p50(base), ours)
        checks.append(
            TargetCheck(
                f"{base} p50 / sniper_ws p50",
                f">= {wanted}x",
                "n/a" if math.isnan(speedup) else f"{speedup:.2f}x",
                None if math.isnan(speedup) else speedup >= wanted,
            )
        )
    return tuple(checks)


async def run(settings: Settings) -> BenchResult:
    """Run the benchmark ``settings.runs`` times (fresh simulator each) and pool the samples."""
    all_sent: list[_Sent] = []
    all_arrivals: dict[str, int] = {}
    order: list[str] = []
    per_run: list[dict[str, float]] = []
    where = ""
    descriptions: dict[str, str] = {}
    for run_index in range(settings.runs):
        sent, arrivals, where = await _one_run(settings, run_index, descriptions)
        for item in sent:
            if item.name not in order:
                order.append(item.name)
        run_stats, _, _ = _summarise(sent, arrivals, order)
        per_run.append({name: s.p50_us for name, s in run_stats.items()})
        all_sent += sent
        all_arrivals.update(arrivals)
    stats, errors, client_stats = _summarise(all_sent, all_arrivals, order)
    floor_ws = stats["raw_ws_floor"].p50_us if "raw_ws_floor" in stats else math.nan
    floor_http = stats["raw_http_floor"].p50_us if "raw_http_floor" in stats else math.nan
    ours = stats["sniper_ws"].p50_us if "sniper_ws" in stats else math.nan
    variants = []
    for name in order:
        s = stats[name]
        same_floor = floor_ws if name in WS_VARIANTS else floor_http
        variants.append(
            VariantResult(
                name=name,
                description=descriptions.get(name, name),
                stats=s,
                errors=errors.get(name, 0),
                extra_us={"client_p50": client_stats[name].p50_us},
                ratios={
                    "vs_ws_floor": ratio(s.p50_us, floor_ws),
                    "vs_transport_floor": ratio(s.p50_us, same_floor),
                    "vs_sniper_ws": ratio(s.p50_us, ours),
                },
            )
        )
    hot = settings.hot_server and settings.separate_process
    setup = {
        "rounds": settings.rounds,
        "warmup_rounds_discarded": settings.warmup,
        "runs": settings.runs,
        "orders_measured": sum(s.n for s in stats.values()),
        "orders_sent": len(all_sent),
        "simulator": where,
        "client": (
            f"pinned to CPU {settings.client_cpu}"
            if settings.client_cpu is not None
            else "not pinned"
        ),
        "event_loop": "uvloop" if settings.uvloop else "asyncio",
        "simulator_loop": "spinning (never sleeps in epoll)" if hot else "idle between orders",
        "scenario": SCENARIO,
        "order": f"IOC limit buy {AMOUNT} BTC_USDT @ {PRICE} (does not fill)",
        "p50_us_per_run": per_run,
    }
    notes = (
        "Ratios are of p50s. `same-transport floor`: HTTP variants against the raw HTTP floor, "
        "WS variants against the raw WS floor.",
        "`client p50`: t0 -> the order's bytes handed to the socket (write returned); n/a "
        "where the library does not expose it. The rest is loopback + the simulator reading "
        "the request.",
        f"Simulator: {where}, loop {setup['simulator_loop']}; client {setup['client']}; "
        f"event loop {setup['event_loop']}; {settings.runs} run(s) x {settings.rounds} rounds "
        f"(+{settings.warmup} warm-up rounds discarded per run).",
    )
    return BenchResult(
        name=NAME if hot else NAME_IDLE_SIM,
        title=TITLE if hot else TITLE_IDLE_SIM,
        variants=tuple(variants),
        extra_columns=(("client_p50", "client p50 µs"),),
        ratio_columns=(
            ("vs_ws_floor", "p50 / raw WS floor"),
            ("vs_transport_floor", "p50 / same-transport floor"),
            ("vs_sniper_ws", "p50 / sniper_ws"),
        ),
        targets=_targets(stats),
        setup=setup,
        notes=notes,
    )


def main_sync(settings: Settings) -> BenchResult:
    """Run on a fresh event loop (uvloop when ``settings.uvloop``)."""
    if settings.uvloop:
        import uvloop

        return uvloop.run(run(settings))
    return asyncio.run(run(settings))
