"""One WebSocket to Gate that stays connected (gate-v4.md §6.3, §10).

:class:`WsConnection` owns the socket and nothing of Gate's protocol: it connects (no
compression, no proxy, ``TCP_NODELAY``), hands every received message to a callback with a
monotonic receive time taken right after ``recv`` returns, sends the caller's keep-alive ping
every ``ping_interval_s``, closes a connection that has been silent for ``stall_timeout_s``
(Gate has been seen to stall connections silently, gatews#13/#40), and reconnects with jittered
exponential backoff that resets after every successful connect. Protocol layers
(:class:`~sniper.gate.ws.GateFeed`, :class:`~sniper.gate.trading.GateWsTrader`) put their
resubscribe/login logic in ``on_open`` and their failure handling in ``on_close``, and describe
how their connection is kept with one :class:`WsTuning` (:meth:`WsConnection.tuned`).

Foreign exceptions (``websockets``, ``OSError``) stop here: :meth:`WsConnection.send` raises
:class:`~sniper.errors.TransientError` when nothing was written and
:class:`~sniper.errors.OutcomeUnknownError` when the write may have happened.

Hot path: :meth:`WsConnection.write_frame_nowait` writes a complete client frame built by
:func:`client_text_frame` straight to the transport, synchronously, bypassing
``ClientConnection.send`` (its ``send_context`` async context manager, drain and per-call
framing cost about half of an order's client-side time). That is safe with websockets 17
because the library writes whole frames with one ``transport.write`` each, only ever from the
event loop's thread, and never fragments our messages; the frame is a legal client frame
(FIN, text opcode, masked: RFC 6455 §5.1-5.3); and it is only written while the connection is
``OPEN``, no fragmented send is in progress and the transport is not closing. The protocol
object keeps no per-frame state for sent data frames, so its state is not affected.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import secrets
import socket
import struct
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final, Protocol

import structlog
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI
from websockets.protocol import State

try:  # websockets' C masking, as its own framing uses; pure Python when not built
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover - depends on the wheel
    from websockets.utils import apply_mask

from sniper.core.backoff import Backoff
from sniper.errors import OutcomeUnknownError, TransientError

MessageHandler = Callable[[bytes, int], None]
"""``(raw message, receive monotonic ns)``; called inline from the receive loop."""

DEFAULT_MAX_SIZE: Final = 4 * 1024 * 1024
"""Largest message accepted. A 100-level book or an ``!all`` orders push is far below this."""

_log = structlog.get_logger(__name__)


class BackoffPolicy(Protocol):
    """What the reconnect loop needs from a backoff (``sniper.core.backoff.Backoff`` fits)."""

    def next_delay(self, rand: float) -> float: ...

    def reset(self) -> None: ...


@dataclass(frozen=True, slots=True)
class WsTuning:
    """How a :class:`WsConnection` is kept alive, shared by the protocol layers over it.

    ``name`` labels logs and tasks; an application ping every ``ping_interval_s``; a
    connection silent for ``stall_timeout_s`` is closed and reconnected; ``open_timeout_s``
    bounds one connect; messages larger than ``max_size`` are refused; ``backoff`` paces
    reconnects (``None``: a fresh default per connection). A backoff keeps state, so give each
    connection its own rather than sharing one tuning that holds a backoff.
    """

    name: str = "ws"
    ping_interval_s: float = 5.0
    stall_timeout_s: float = 30.0
    open_timeout_s: float = 10.0
    max_size: int = DEFAULT_MAX_SIZE
    backoff: BackoffPolicy | None = None


@dataclass(frozen=True, slots=True)
class WsConnectionStatistics:
    """A snapshot of one connection's counters."""

    connected: bool
    connects: int
    reconnects: int
    connect_failures: int
    frames: int
    last_frame_ns: int
    stalls: int
    handler_errors: int


class WsConnection:
    """A WebSocket client that reconnects forever until :meth:`close`.

    ``on_open`` runs as a task once per connection while messages already flow (a login can
    await its reply); ``on_close`` runs synchronously when a connection ends, before any
    reconnect attempt. ``make_ping`` builds the application ping (Gate's ``spot.ping``).
    """

    def __init__(
        self,
        url: str,
        *,
        on_message: MessageHandler,
        on_open: Callable[[], Awaitable[None]] | None = None,
        on_close: Callable[[], None] | None = None,
        make_ping: Callable[[], bytes] | None = None,
        name: str = "ws",
        ping_interval_s: float = 5.0,
        stall_timeout_s: float = 30.0,
        open_timeout_s: float = 10.0,
        close_timeout_s: float = 2.0,
        max_size: int = DEFAULT_MAX_SIZE,
        backoff: BackoffPolicy | None = None,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.url = url
        self.name = name
        self._on_message = on_message
        self._on_open = on_open
        self._on_close = on_close
        self._make_ping = make_ping
        self._ping_interval_s = ping_interval_s
        self._stall_timeout_ns = int(stall_timeout_s * 1e9)
        self._open_timeout_s = open_timeout_s
        self._close_timeout_s = close_timeout_s
        self._max_size = max_size
        self._backoff: BackoffPolicy = backoff if backoff is not None else Backoff(0.1, 10.0)
        self._rand = rand
        self._ws: ClientConnection | None = None
        self._connected = asyncio.Event()
        self._stopping = asyncio.Event()
        self._run_task: asyncio.Task[None] | None = None
        self._side_tasks: set[asyncio.Task[None]] = set()
        self._connects = 0
        self._connect_failures = 0
        self._frames = 0
        self._last_frame_ns = 0
        self._stalls = 0
        self._handler_errors = 0

    @classmethod
    def tuned(
        cls,
        url: str,
        tuning: WsTuning,
        *,
        on_message: MessageHandler,
        on_open: Callable[[], Awaitable[None]] | None = None,
        on_close: Callable[[], None] | None = None,
        make_ping: Callable[[], bytes] | None = None,
    ) -> WsConnection:
        """A connection kept as ``tuning`` says, with a protocol layer's callbacks."""
        return cls(
            url,
            on_message=on_message,
            on_open=on_open,
            on_close=on_close,
            make_ping=make_ping,
            name=tuning.name,
            ping_interval_s=tuning.ping_interval_s,
            stall_timeout_s=tuning.stall_timeout_s,
            open_timeout_s=tuning.open_timeout_s,
            max_size=tuning.max_size,
            backoff=tuning.backoff,
        )

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Start connecting in the background (idempotent)."""
        if self._run_task is None:
            self._stopping.clear()
            self._run_task = asyncio.get_running_loop().create_task(
                self._run(), name=f"{self.name}-run"
            )

    async def close(self) -> None:
        """Close the socket and stop reconnecting; returns when the loop has ended."""
        self._stopping.set()
        ws = self._ws
        if ws is not None:
            with contextlib.suppress(Exception):  # closing is best effort; the loop ends anyway
                await ws.close()
        task, self._run_task = self._run_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    @property
    def connected(self) -> bool:
        """True while a connection is open."""
        return self._connected.is_set()

    async def wait_connected(self, timeout_s: float | None = None) -> None:
        """Wait until a connection is open; ``TimeoutError`` after ``timeout_s``."""
        async with asyncio.timeout(timeout_s):
            await self._connected.wait()

    def request_reconnect(self, reason: str) -> None:
        """Drop the current connection now (stall, server ``upgrade``); the loop reconnects."""
        ws = self._ws
        if ws is not None:
            _log.info("ws_reconnect_requested", conn=self.name, reason=reason)
            # abort, not close: a close handshake on a dead peer would wait close_timeout_s
            ws.transport.abort()

    def statistics(self) -> WsConnectionStatistics:
        """Counters since construction."""
        return WsConnectionStatistics(
            connected=self.connected,
            connects=self._connects,
            reconnects=max(0, self._connects - 1),
            connect_failures=self._connect_failures,
            frames=self._frames,
            last_frame_ns=self._last_frame_ns,
            stalls=self._stalls,
            handler_errors=self._handler_errors,
        )

    # -- sending ---------------------------------------------------------------------------

    async def send(self, data: bytes) -> None:
        """Write one text frame.

        Raises :class:`TransientError` if there is no open connection (nothing was written) and
        :class:`OutcomeUnknownError` if the connection failed during the write.
        """
        ws = self._ws
        if ws is None or ws.state is not State.OPEN:
            raise TransientError(f"{self.name}: not connected")
        try:
            await ws.send(data, text=True)
        except ConnectionClosed as exc:
            raise OutcomeUnknownError(f"{self.name}: connection closed while sending") from exc

    def write_frame_nowait(self, frame: bytes) -> None:
        """Write one complete client frame (from :func:`client_text_frame`) now, synchronously.

        Never waits. Raises :class:`TransientError` if nothing was written (no open connection,
        a library send of a fragmented message in progress, transport closing) and
        :class:`OutcomeUnknownError` if the transport failed during the write.
        """
        ws = self._ws
        if (
            ws is None
            or ws.state is not State.OPEN
            or ws.send_in_progress is not None
            or ws.transport.is_closing()
        ):
            raise TransientError(f"{self.name}: not connected")
        try:
            ws.transport.write(frame)
        except Exception as exc:  # any transport failure: the bytes may be out
            raise OutcomeUnknownError(f"{self.name}: write failed: {exc!r}") from exc

    def send_nowait(self, data: bytes) -> None:
        """Frame ``data`` as one text message with the library's protocol object, write it now.

        The library-framed equivalent of :meth:`write_frame_nowait` (``protocol.send_text``
        then ``send_data``, i.e. ``ClientConnection.send`` without its async context): kept
        for callers without a prepared frame and measured against it in ``bench/``.
        """
        ws = self._ws
        if ws is None or ws.state is not State.OPEN or ws.send_in_progress is not None:
            raise TransientError(f"{self.name}: not connected")
        try:
            ws.protocol.send_text(data)
        except Exception as exc:  # the protocol refused: nothing was queued
            raise TransientError(f"{self.name}: not sendable: {exc!r}") from exc
        try:
            ws.send_data()
        except Exception as exc:  # any transport failure: the bytes may be out
            raise OutcomeUnknownError(f"{self.name}: write failed: {exc!r}") from exc

    # -- the loop --------------------------------------------------------------------------

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                ws = await connect(
                    self.url,
                    compression=None,  # Gate: "compression is not fully supported in server"
                    proxy=None,  # never route the hot connection through an env proxy
                    max_size=self._max_size,
                    open_timeout=self._open_timeout_s,
                    close_timeout=self._close_timeout_s,
                    ping_interval=None,  # liveness is our spot.ping + stall detection
                    ping_timeout=None,
                    user_agent_header=None,
                )
            except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as exc:
                self._connect_failures += 1
                _log.warning("ws_connect_failed", conn=self.name, error=repr(exc))
                await self._sleep_backoff()
                continue
            await self._serve(ws)
            if not self._stopping.is_set():
                await self._sleep_backoff()

    async def _serve(self, ws: ClientConnection) -> None:
        set_nodelay(ws)
        self._backoff.reset()
        self._connects += 1
        self._last_frame_ns = time.monotonic_ns()
        self._ws = ws
        self._connected.set()
        _log.info("ws_connected", conn=self.name, connects=self._connects)
        loop = asyncio.get_running_loop()
        self._spawn(loop.create_task(self._keepalive(ws), name=f"{self.name}-keepalive"))
        if self._on_open is not None:
            self._spawn(loop.create_task(self._open(ws), name=f"{self.name}-open"))
        try:
            await self._receive(ws)
        finally:
            self._ws = None
            self._connected.clear()
            for task in list(self._side_tasks):
                task.cancel()
            ws.transport.abort()
            if self._on_close is not None:
                self._on_close()
            _log.info("ws_disconnected", conn=self.name, code=ws.close_code)

    async def _receive(self, ws: ClientConnection) -> None:
        recv = ws.recv
        on_message = self._on_message
        monotonic_ns = time.monotonic_ns
        try:
            while True:
                data = await recv(decode=False)  # bytes: orjson parses them without a decode
                recv_ns = monotonic_ns()
                self._last_frame_ns = recv_ns
                self._frames += 1
                try:
                    on_message(data, recv_ns)
                except Exception:  # noqa: BLE001 - a handler bug must not kill the feed
                    self._handler_errors += 1
                    _log.exception("ws_handler_failed", conn=self.name)
        except ConnectionClosed:
            return

    async def _open(self, ws: ClientConnection) -> None:
        assert self._on_open is not None
        try:
            await self._on_open()
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - a broken on_open means a fresh connection
            _log.exception("ws_on_open_failed", conn=self.name)
            ws.transport.abort()

    async def _keepalive(self, ws: ClientConnection) -> None:
        loop = asyncio.get_running_loop()
        next_ping = loop.time() + self._ping_interval_s
        while True:
            silent_ns = time.monotonic_ns() - self._last_frame_ns
            if silent_ns >= self._stall_timeout_ns:
                self._stalls += 1
                _log.warning("ws_stalled", conn=self.name, silent_s=silent_ns / 1e9)
                ws.transport.abort()
                return
            now = loop.time()
            if self._make_ping is not None and now >= next_ping:
                next_ping = now + self._ping_interval_s
                try:
                    await ws.send(self._make_ping(), text=True)
                except ConnectionClosed:
                    return
            wake_in = (self._stall_timeout_ns - silent_ns) / 1e9
            if self._make_ping is not None:
                wake_in = min(wake_in, next_ping - now)
            await asyncio.sleep(max(wake_in, 0.001))

    async def _sleep_backoff(self) -> None:
        delay = self._backoff.next_delay(self._rand())
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):
                await self._stopping.wait()

    def _spawn(self, task: asyncio.Task[None]) -> None:
        self._side_tasks.add(task)
        task.add_done_callback(self._side_tasks.discard)


def set_nodelay(ws: ClientConnection) -> None:
    """Turn Nagle off on the connection's socket (asyncio usually does; make it certain)."""
    sock = ws.transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


_FIN_TEXT: Final = 0x81  # FIN bit + opcode 0x1 (text), RFC 6455 §5.2
_MASKED: Final = 0x80


def client_text_frame(payload: bytes, mask: bytes | None = None) -> bytes:
    """One complete masked client text frame carrying ``payload`` (RFC 6455 §5.2, §5.3).

    ``mask`` is the 4-byte masking key; a fresh random one when omitted. A caller that builds
    a frame ahead of time draws the key then (masking is mandatory for clients; the key's
    unpredictability protects browsers' intermediaries, not us).
    """
    if mask is None:
        mask = secrets.token_bytes(4)
    length = len(payload)
    if length < 126:
        header = bytes((_FIN_TEXT, _MASKED | length))
    elif length < 65536:
        header = struct.pack("!BBH", _FIN_TEXT, _MASKED | 126, length)
    else:
        header = struct.pack("!BBQ", _FIN_TEXT, _MASKED | 127, length)
    return header + mask + apply_mask(payload, mask)
