"""The simulator's servers assembled: REST + spot WS + announcement WS on one aiohttp port.

::

    server = SimServer("new_listing_fast", host="127.0.0.1", port=0)
    urls = await server.start()        # urls.rest = http://127.0.0.1:PORT/api/v4, urls.ws, ...
    server.credentials                 # the key/secret the simulator accepts
    server.faults.fail_http(2, 503)    # fault injection
    server.events.find("order_in")     # event log (monotonic ns)
    await server.stop()

A clock task calls ``engine.advance(now_ms)`` when the script has a step due (at least every
``tick_ms``) and broadcasts what happened; every request also brings the engine up to date
before it is served.
With ``manual_clock=True`` there is no task: tests move time with :meth:`SimServer.advance`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from aiohttp import web

from sniper.core.signing import Credentials
from sniper.sim.ann import AnnHub, serve_ann
from sniper.sim.auth import Authenticator
from sniper.sim.engine import SimEngine
from sniper.sim.eventlog import EventLog
from sniper.sim.events import SimEvent
from sniper.sim.faults import Faults
from sniper.sim.rest import RateLimiter, RestApi
from sniper.sim.scenarios import Scenario, load_scenario
from sniper.sim.ws import SIM_KEY, SpotHub, WsSession, serve_spot
from sniper.sim.ws_api import WsTradingApi


@dataclass(frozen=True, slots=True)
class SimUrls:
    """Where a running simulator listens."""

    base: str
    rest: str
    ws: str
    ann: str
    host: str
    port: int


_log = logging.getLogger(__name__)


class SimClock:
    """The exchange's wall clock in ms: host time at start, advancing monotonically.

    ``skew_ms`` (from :class:`Faults`) shifts it. In manual mode it only moves through
    :meth:`advance_ms`/:meth:`set_ms`.
    """

    def __init__(self, start_ms: int | None = None, *, manual: bool = False) -> None:
        self.manual = manual
        self._start_ms = int(time.time() * 1000) if start_ms is None else start_ms
        self._t0_ns = time.monotonic_ns()
        self._manual_ms = self._start_ms
        self.offset_ms = 0

    @property
    def start_ms(self) -> int:
        """Exchange time when the clock started."""
        return self._start_ms

    def now_ms(self) -> int:
        """Current exchange time (without fault skew)."""
        if self.manual:
            return self._manual_ms + self.offset_ms
        return self._start_ms + (time.monotonic_ns() - self._t0_ns) // 1_000_000 + self.offset_ms

    def advance_ms(self, ms: int) -> None:
        """Move a manual clock forward (an automatic one gets an extra offset)."""
        if self.manual:
            self._manual_ms += ms
        else:
            self.offset_ms += ms

    def set_ms(self, now_ms: int) -> None:
        """Set a manual clock."""
        self._manual_ms = now_ms - self.offset_ms


class SimServer:
    """The bundled Gate v4 exchange on one port (see module docstring)."""

    def __init__(
        self,
        source: SimEngine | Scenario | str = "new_listing",
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        credentials: Credentials | None = None,
        balances: dict[str, Decimal] | None = None,
        faults: Faults | None = None,
        events: EventLog | None = None,
        event_log_path: Path | str | None = None,
        tick_ms: float = 20.0,
        manual_clock: bool = False,
        start_ms: int | None = None,
        time_scale: float = 1.0,
        enforce_rate_limits: bool = True,
    ) -> None:
        self.host = host
        self.port = port
        self.clock = SimClock(start_ms, manual=manual_clock)
        self.faults = faults or Faults()
        self.events = events or EventLog(jsonl_path=event_log_path)
        if isinstance(source, SimEngine):
            self.engine = source
            self.scenario = source.scenario
        else:
            scenario = (
                load_scenario(source, time_scale=time_scale) if isinstance(source, str) else source
            )
            self.scenario = scenario
            self.engine = SimEngine(scenario, self.clock.start_ms)
        self.credentials = credentials or generate_credentials()
        found = self.engine.user_by_key(self.credentials.key)
        if found is None:
            start = dict(self.scenario.balances) if balances is None else balances
            self.uid = self.engine.add_user(self.credentials.key, self.credentials.secret, start)
        else:
            self.uid = found[0]
        self.tick_ms = tick_ms
        self.auth = Authenticator(self.engine.user_by_key)
        self.limiter = RateLimiter(enforce_rate_limits)
        self.rest = RestApi(self)
        self.hub = SpotHub(self)
        self.ann_hub = AnnHub()
        self.ws_api = WsTradingApi(self)
        self._sessions: set[WsSession] = set()
        self._runner: web.AppRunner | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._closed = asyncio.Event()
        self._engine_ms = self.clock.now_ms()
        self._last_drop_ms = 0
        self.urls: SimUrls | None = None
        self.faults.on_drop_ws(self.drop_connections)
        self.faults.on_stall_ws(self.stall_connections)

    # -- lifecycle ----------------------------------------------------------------------------

    def make_app(self) -> web.Application:
        """The aiohttp application (REST + WS routes)."""
        app = web.Application(client_max_size=1 << 20)
        app[SIM_KEY] = self
        app.add_routes(
            [
                web.get("/ws/v4/", serve_spot),
                web.get("/ws/v4/ann", serve_ann),
                web.get("/ws/v4", serve_spot),
            ]
        )
        app.add_routes(self.rest.routes())
        return app

    async def start(self) -> SimUrls:
        """Bind, start serving and ticking; return the URLs."""
        self._closed = asyncio.Event()
        self.tick()
        runner = web.AppRunner(self.make_app(), access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, reuse_address=True)
        await site.start()
        self._runner = runner
        port = self.port
        server = site._server
        if server is not None:
            sockets = getattr(server, "sockets", None) or ()
            for sock in sockets:
                port = sock.getsockname()[1]
                break
        self.port = port
        base = f"http://{self.host}:{port}"
        ws_base = f"ws://{self.host}:{port}"
        self.urls = SimUrls(
            base, f"{base}/api/v4", f"{ws_base}/ws/v4/", f"{ws_base}/ws/v4/ann", self.host, port
        )
        if not self.clock.manual:
            self._ticker = asyncio.create_task(self._tick_loop())
        return self.urls

    async def stop(self) -> None:
        """Close every connection, stop ticking and serving, flush the event log."""
        self._closed.set()
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None
        closing = [session.ws.close() for session in list(self._sessions)]
        await asyncio.gather(*closing, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self.events.close()

    async def __aenter__(self) -> SimServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def wait_closed(self) -> None:
        """Wait until :meth:`stop` is called."""
        await self._closed.wait()

    # -- clock --------------------------------------------------------------------------------

    def server_now_ms(self) -> int:
        """What the exchange says the time is (``/spot/time``; includes the skew fault)."""
        return self.clock.now_ms() + self.faults.clock_skew_ms

    def catch_up(self) -> list[SimEvent]:
        """Bring the engine up to now and broadcast what happened.

        Called before every request is served, so a scripted step (a pair opening at
        ``buy_start``) is never late for an order that arrives between two clock ticks.
        """
        now_ms = self.server_now_ms()
        if now_ms <= self._engine_ms:
            return []
        self._engine_ms = now_ms
        happened = self.engine.advance(now_ms)
        if happened:
            self.dispatch(happened)
        return happened

    def tick(self) -> list[SimEvent]:
        """:meth:`catch_up`, then the periodic pushes and timed faults."""
        happened = self.catch_up()
        now_ms = self._engine_ms
        self.hub.flush(now_ms)
        every = self.faults.drop_ws_every_s
        if every and now_ms - self._last_drop_ms >= every * 1000:
            if self._last_drop_ms:
                self.faults.drop_ws_connections()
            self._last_drop_ms = now_ms
        return happened

    async def advance(self, ms: int = 0) -> list[SimEvent]:
        """Move the clock by ``ms`` and tick once (for tests; works in both clock modes)."""
        self.clock.advance_ms(ms)
        happened = self.tick()
        await asyncio.sleep(0)  # let the writers pick up the frames
        return happened

    async def _tick_loop(self) -> None:
        # Sleep until the script's next step is due, but never longer than tick_ms (periodic
        # pushes) and never less than 1 ms (an idle loop must stay cheap on a shared host).
        longest_s = self.tick_ms / 1000
        while True:
            try:
                self.tick()
            except Exception as exc:  # noqa: BLE001 - one bad step must not stop the exchange
                _log.exception("simulator tick failed")
                self.events.record("error", "tick", detail=repr(exc))
            due_ms = self.engine.next_event_ms()
            wait_s = longest_s
            if due_ms is not None:
                wait_s = min(longest_s, max(0.001, (due_ms - self.server_now_ms()) / 1000))
            await asyncio.sleep(wait_s)

    # -- plumbing used by the routes ----------------------------------------------------------

    def dispatch(self, happened: Iterable[SimEvent]) -> None:
        """Broadcast engine events to WS subscribers."""
        batch = list(happened)
        if not batch:
            return
        self.hub.publish(batch)
        self.ann_hub.publish(batch)

    def register_session(self, session: WsSession) -> None:
        """Track a WS session (for :meth:`drop_connections` and :meth:`stop`)."""
        self._sessions.add(session)

    def unregister_session(self, session: WsSession) -> None:
        """Forget a closed WS session."""
        self._sessions.discard(session)

    def drop_connections(self) -> None:
        """Abort every WS connection (fault: the network dropped them)."""
        self.events.record("fault", "drop_ws", detail=str(len(self._sessions)))
        for session in list(self._sessions):
            session.abort()

    def stall_connections(self) -> None:
        """Silence every WS connection, leaving it open (fault: a silent stall)."""
        self.events.record("fault", "stall_ws", detail=str(len(self._sessions)))
        for session in list(self._sessions):
            session.stalled = True

    def fee_rates(self, uid: int) -> tuple[Decimal, Decimal]:
        """(taker, maker) fee fractions of user ``uid``."""
        user = self.engine.user(uid)
        return user.taker_fee, user.maker_fee


def generate_credentials() -> Credentials:
    """A fresh random test key pair (hex, like Gate's)."""
    return Credentials(secrets.token_hex(16), secrets.token_hex(32))
