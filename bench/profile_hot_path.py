"""Where our order path spends its time: ``python -m bench.profile_hot_path [--orders N]``.

Two views of ``GateWsTrader.fire`` against the simulator (child process, spinning loop):

1. A split of decision -> exchange into *client* (t0 -> the bytes handed to the socket's
   ``transport.write``) and *wire + simulator* (that write -> the simulator's ``order_in``),
   next to the raw WS floor, whose client part is a single ``transport.write``. The write is
   observed by wrapping the connection's transport (benchmark-only introspection).
2. A cProfile of the same region (decision -> write) over thousands of orders, written with
   the split to ``bench/results/profile_sniper_ws.txt``.

Two more rows price the alternatives ``GateWsTrader.fire`` chose between: ``render+write``
(``PreparedWsOrder.render``, framed and masked by ``websockets.frames.Frame.serialize``,
written straight to the transport) and ``lib-framed`` (``render``, then the library's own
``protocol.send_text`` + ``ClientConnection.send_data``, i.e. ``send`` without its async
context). ``sniper_ws`` itself now writes a frame whose header and mask were fixed at prepare
(``PreparedWsOrder.frame`` + ``WsConnection.write_frame_nowait``).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import secrets
import time
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

import structlog
from websockets.frames import Frame, Opcode

from bench.common import RESULTS_DIR, LatencyStats
from bench.contenders import TTL_MS, RawWsFloor, SniperWs, order_request
from bench.decision_to_exchange import AMOUNT, PRICE, SCENARIO
from bench.simproc import ChildProcessSim, pin_to_cpu
from sniper.core.signing import Credentials, Signer
from sniper.gate.trading import GateWsTrader, PreparedWsOrder
from sniper.sim.server import generate_credentials


class _WriteClock:
    """Stands in for a websocket's transport and notes when ``write`` is called (monotonic ns).

    uvloop transports cannot be patched, so the connection's ``transport`` attribute is
    replaced by this proxy; everything but ``write`` is forwarded.
    """

    def __init__(self, ws: Any, on_write: Callable[[], None] | None = None) -> None:
        self.last_ns = 0
        self._transport = ws.transport
        self._on_write = on_write
        ws.transport = self

    def write(self, data: bytes) -> None:
        self.last_ns = time.monotonic_ns()
        if self._on_write is not None:
            self._on_write()
        self._transport.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class _RenderWrite(RawWsFloor):
    """``PreparedWsOrder.render`` + websockets framing + ``transport.write``, nothing else."""

    def __init__(self, ws_url: str, credentials: Credentials) -> None:
        super().__init__(ws_url, credentials)
        # Only its prepare() is used (pure encoding); it never connects.
        self._encoder = GateWsTrader(ws_url, Signer(credentials), action_mode="ACK", ttl_ms=TTL_MS)
        self._prepared: PreparedWsOrder | None = None
        self._values = (PRICE, AMOUNT)

    def arm(self, text: str, price: Decimal, amount: Decimal) -> None:
        self._prepared = self._encoder.prepare(order_request(text, price, amount))
        self._req_id = self._prepared.req_id
        self._values = (price, amount)

    async def fire(self, _t0_ns: int) -> None:
        assert self._prepared is not None
        assert self._ws is not None
        data = self._prepared.render(time.time(), *self._values)
        self._ws.transport.write(Frame(Opcode.TEXT, data).serialize(mask=True))
        await self._final(self._req_id)


class _LibraryFramed(_RenderWrite):
    """``render`` + the library's sans-I/O framing: ``protocol.send_text`` + ``send_data``.

    What ``WsConnection.send_nowait`` does: websockets builds and masks the frame (fresh
    ``os.urandom`` mask, ``Frame.serialize``), we skip only its ``send_context``/drain.
    """

    async def fire(self, _t0_ns: int) -> None:
        assert self._prepared is not None
        assert self._ws is not None
        self._ws.protocol.send_text(self._prepared.render(time.time(), *self._values))
        self._ws.send_data()
        await self._final(self._req_id)


async def _split(orders: int) -> str:
    credentials = generate_credentials()
    sim = await ChildProcessSim.start(SCENARIO, credentials, 1, True, spin=True)
    ours = SniperWs(sim.ws_url, credentials)
    floor = RawWsFloor(sim.ws_url, credentials)
    direct = _RenderWrite(sim.ws_url, credentials)
    framed = _LibraryFramed(sim.ws_url, credentials)
    await ours.open()
    await floor.open()
    await direct.open()
    await framed.open()
    ours_clock = _WriteClock(ours._trader._conn._ws)
    floor_clock = _WriteClock(floor._ws)
    direct_clock = _WriteClock(direct._ws)
    framed_clock = _WriteClock(framed._ws)
    tag = secrets.token_hex(2)
    rows: list[tuple[str, str, int, int]] = []
    for i in range(orders + 50):
        for name, contender, clock in (
            ("sniper_ws", ours, ours_clock),
            ("raw", floor, floor_clock),
            ("render+write", direct, direct_clock),
            ("lib-framed", framed, framed_clock),
        ):
            text = f"t-p{tag}-{len(name)}-{i}"
            contender.arm(text, PRICE, AMOUNT)
            t0 = time.monotonic_ns()
            await contender.fire(t0)
            if i >= 50:
                rows.append((name, text, t0, clock.last_ns))
    arrivals = (await sim.arrivals()).t_ns_by_text
    await ours.close()
    await floor.close()
    await direct.close()
    await framed.close()
    await sim.stop()
    out = ["| contender | part | p50 µs | p90 µs | p99 µs |", "|---|---|---:|---:|---:|"]
    for name in ("raw", "render+write", "lib-framed", "sniper_ws"):
        mine = [r for r in rows if r[0] == name and r[1] in arrivals]
        parts = {
            "client: t0 -> transport.write": [w - t0 for _, _, t0, w in mine],
            "wire + simulator: write -> order_in": [arrivals[t] - w for _, t, _, w in mine],
            "total: t0 -> order_in": [arrivals[t] - t0 for _, t, t0, _ in mine],
        }
        for part, samples in parts.items():
            s = LatencyStats.from_ns(samples)
            out.append(f"| {name} | {part} | {s.p50_us:.1f} | {s.p90_us:.1f} | {s.p99_us:.1f} |")
    return "\n".join(out)


async def _profile(orders: int) -> str:
    """cProfile of fire() from the decision up to the write, over ``orders`` orders.

    A sampling profiler (pyinstrument at 100 µs) catches a dozen samples of a 15 µs region in
    thousands of orders; deterministic profiling inflates every call, but its split between
    callees is what we want here.
    """
    credentials = generate_credentials()
    sim = await ChildProcessSim.start(SCENARIO, credentials, 1, True, spin=True)
    ours = SniperWs(sim.ws_url, credentials)
    await ours.open()
    tag = secrets.token_hex(2)
    profiler = cProfile.Profile()
    trader = ours._trader
    # Profile only decision -> write: arm outside, and stop the moment bytes reach the socket.
    _WriteClock(trader._conn._ws, profiler.disable)
    for i in range(orders):
        ours.arm(f"t-q{tag}-{i}", PRICE, AMOUNT)
        prepared = ours._prepared
        assert prepared is not None
        profiler.enable()
        await trader.fire(prepared, PRICE, AMOUNT, decision_ns=time.monotonic_ns())
    await ours.close()
    await sim.stop()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(30)
    return out.getvalue()


def main(argv: Sequence[str] | None = None) -> int:
    """Print the split and write the profile."""
    parser = argparse.ArgumentParser(prog="python -m bench.profile_hot_path")
    parser.add_argument("--orders", type=int, default=2000)
    args = parser.parse_args(argv)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(30))
    pin_to_cpu(0)
    import uvloop

    split = uvloop.run(_split(args.orders))
    print(split)
    profile = uvloop.run(_profile(args.orders))
    path = RESULTS_DIR / "profile_sniper_ws.txt"
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path.write_text(split + "\n\n" + profile)
    print(profile)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
