"""``sniper record``: raw market data of new listings, with receive timestamps, to a file.

What is recorded (format: :mod:`sniper.replay.format`)::

    poll /spot/currency_pairs ──raw answer, when it differs from the last one──▶ R currency_pairs
        └─ ListingTracker (the daemon's own) ──PairListed──▶ subscribe the pair's
           spot.order_book_update (20ms), spot.book_ticker, spot.trades ──raw frames──▶ W market
           BookFeed snapshot fetches ──raw answers──▶ R order_book:<PAIR>

The first pair list is the baseline (as in the daemon): its pairs are not recorded unless they
later become listings. The recorder never signs anything and needs no key.
Stops on SIGINT/SIGTERM, after ``duration_s`` (or ``$SNIPER_RECORD_DURATION_S``), or when
``stop`` is set. A progress line (frames, bytes, pairs) goes to stderr.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TextIO

import httpx
import orjson
import structlog

from sniper.app.clock import Clock
from sniper.config import Config, load_config
from sniper.core.codec import CH_TRADES
from sniper.core.listing import ListingTracker, PairListed
from sniper.core.models import PairInfo
from sniper.errors import ConfigError, ExchangeError
from sniper.gate.bookfeed import BookFeed, BookRouter
from sniper.gate.rest import GateRest
from sniper.gate.ws import GateFeed
from sniper.replay.format import (
    DEFAULT_MAX_PART_BYTES,
    KIND_EVENT,
    KIND_REST,
    KIND_WS,
    META_BOOK_PREFIX,
    META_PAIRS,
    RecordingWriter,
)

log = structlog.get_logger("sniper.record")

DURATION_ENV: Final = "SNIPER_RECORD_DURATION_S"
_PROGRESS_EVERY_S: Final = 0.5
_PROGRESS_LINE_EVERY_S: Final = 10.0


@dataclass(frozen=True, slots=True)
class RecordStatistics:
    """What a recording run wrote."""

    path: str
    parts: int
    records: int
    frames: int
    rest_answers: int
    bytes_written: int
    pairs: tuple[str, ...]
    duration_s: float


class RecordingTransport(httpx.AsyncBaseTransport):
    """Wraps the real transport; writes the raw body of pair-list and order-book answers."""

    def __init__(self, writer: RecordingWriter, clock: Clock,
                 inner: httpx.AsyncBaseTransport | None = None) -> None:
        self.writer = writer
        self.clock = clock
        self.inner = inner or httpx.AsyncHTTPTransport(http1=True, http2=False)
        self.answers = 0
        self._last_pairs: bytes | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        path = request.url.path
        if not path.endswith(("/spot/currency_pairs", "/spot/order_book")):
            return response
        body = await response.aread()
        recv_ns = time.monotonic_ns()
        if 200 <= response.status_code < 300:
            if path.endswith("/spot/currency_pairs"):
                if body != self._last_pairs:  # an unchanged list says nothing new
                    self._last_pairs = body
                    self._write(recv_ns, META_PAIRS, body)
            else:
                pair = request.url.params.get("currency_pair", "")
                self._write(recv_ns, META_BOOK_PREFIX + pair, body)
        return httpx.Response(response.status_code, headers=response.headers, content=body,
                              request=request, extensions=response.extensions)

    def _write(self, recv_ns: int, meta: str, body: bytes) -> None:
        self.answers += 1
        self.writer.write(KIND_REST, recv_ns, self.clock.wall_ms(), meta, body)

    async def aclose(self) -> None:
        await self.inner.aclose()


class RecordingFeed(GateFeed):
    """A market ``GateFeed`` that writes every raw frame before handling it."""

    def __init__(self, url: str, on_frame: Callable[..., None], *, writer: RecordingWriter,
                 wall_ms: Callable[[], int], **kwargs: Any) -> None:
        super().__init__(url, on_frame, **kwargs)
        self._writer = writer
        self._wall_ms = wall_ms

    def _on_message(self, data: bytes, recv_ns: int) -> None:
        self._writer.write(KIND_WS, recv_ns, self._wall_ms(), "market", bytes(data))
        super()._on_message(data, recv_ns)


class Progress:
    """The live progress line: rewritten in place on a TTY, a line every 10 s otherwise."""

    def __init__(self, stream: TextIO | None) -> None:
        self.stream = stream
        self.tty = bool(stream is not None and stream.isatty())
        self._last_line_s = 0.0

    def show(self, text: str, *, final: bool = False) -> None:
        stream = self.stream
        if stream is None:
            return
        now = time.monotonic()
        if self.tty:
            stream.write("\r\x1b[K" + text + ("\n" if final else ""))
        elif final or now - self._last_line_s >= _PROGRESS_LINE_EVERY_S:
            self._last_line_s = now
            stream.write(text + "\n")
        stream.flush()


class Recorder:
    """One recording run against ``config.exchange`` (see module docstring)."""

    def __init__(self, config: Config, out: Path, *, header: dict[str, Any] | None = None,
                 max_part_bytes: int = DEFAULT_MAX_PART_BYTES,
                 progress: TextIO | None = None) -> None:
        ex = config.exchange
        self.config = config
        self.clock = Clock()
        self.writer = RecordingWriter(out, {
            "series": secrets.token_hex(8),
            "created_wall_ms": self.clock.wall_ms(),
            "source": {"rest_url": ex.rest_url, "ws_url": ex.ws_url},
            "quote_currencies": list(config.listing.quote_currencies),
            "poll_interval_s": config.listing.poll_interval_s,
            **(header or {}),
        }, max_part_bytes=max_part_bytes)
        self.transport = RecordingTransport(self.writer, self.clock)
        self.rest = GateRest(ex.rest_url, None, timeout_s=ex.request_timeout_s,
                             transport=self.transport, keep_warm_s=None)
        self.router = BookRouter()
        self.feed = RecordingFeed(ex.ws_url, self.router.on_frame, writer=self.writer,
                                  wall_ms=self.clock.wall_ms, name="market", clock=time.time)
        self.tracker = ListingTracker(config.listing.quote_currencies,
                                      include_premarket=config.listing.include_premarket)
        self.books: dict[str, BookFeed] = {}
        self.progress = Progress(progress)
        self.started_ns = time.monotonic_ns()

    def statistics(self) -> RecordStatistics:
        """Counters so far."""
        w = self.writer
        return RecordStatistics(
            path=str(w.first), parts=w.part + 1, records=w.records, frames=w.frames,
            rest_answers=self.transport.answers, bytes_written=w.bytes_written,
            pairs=tuple(sorted(self.books)),
            duration_s=(time.monotonic_ns() - self.started_ns) / 1e9,
        )

    def _event(self, name: str, data: dict[str, Any]) -> None:
        self.writer.write(KIND_EVENT, time.monotonic_ns(), self.clock.wall_ms(), name,
                          orjson.dumps(data))

    async def run(self, stop: asyncio.Event) -> RecordStatistics:
        """Record until ``stop`` is set; always closes the file."""
        try:
            await self.rest.start()
            offset_ms = await self.rest.sync_clock()
            self.clock.offset_ms = offset_ms
            self.feed.clock_offset_s = offset_ms / 1000
            self.feed.start()
            await self.feed.wait_connected(10)
            ticker = asyncio.get_running_loop().create_task(self._progress_loop(stop))
            try:
                await self._poll_loop(stop)
            finally:
                ticker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await ticker
        finally:
            await self._close()
        stats = self.statistics()
        self.progress.show(self._progress_text(stats), final=True)
        return stats

    async def _poll_loop(self, stop: asyncio.Event) -> None:
        interval = self.config.listing.poll_interval_s
        while not stop.is_set():
            started = time.monotonic()
            try:
                pairs = await self.rest.currency_pairs()
            except ExchangeError as exc:
                log.warning("poll failed", error=str(exc))
            else:
                for event in self.tracker.observe(pairs, self.clock.wall_ms() // 1000):
                    if isinstance(event, PairListed):
                        await self._watch(event.pair)
            wait = max(0.0, interval - (time.monotonic() - started))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), wait)

    async def _watch(self, info: PairInfo) -> None:
        pair = info.pair
        if pair in self.books:
            return
        book = BookFeed(pair, self.feed, self.rest.order_book, updates=True, ticker=True,
                        interval="20ms")
        self.books[pair] = book
        self.router.add(book)
        self._event("subscribe", {"pair": pair, "buy_start_s": info.buy_start_s})
        try:
            await book.start()
            await self.feed.subscribe(CH_TRADES, [pair])
        except ExchangeError as exc:
            log.warning("subscribe failed", pair=pair, error=str(exc))

    async def _progress_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.progress.show(self._progress_text(self.statistics()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), _PROGRESS_EVERY_S)

    @staticmethod
    def _progress_text(s: RecordStatistics) -> str:
        return (f"recording {s.path}: {s.frames} frames, {s.rest_answers} REST answers, "
                f"{s.bytes_written / 1024:.1f} KiB, {len(s.pairs)} pairs "
                f"({', '.join(s.pairs) or 'none yet'}), {s.duration_s:.1f} s")

    async def _close(self) -> None:
        for book in self.books.values():
            with contextlib.suppress(Exception):
                await book.close()
        with contextlib.suppress(Exception):
            await self.feed.close()
        with contextlib.suppress(Exception):
            self._event("stop", {"frames": self.writer.frames})
        await self.rest.aclose()
        self.writer.close()


async def record(config: Config, out: Path | str, *, duration_s: float | None = None,
                 stop: asyncio.Event | None = None, progress: TextIO | None = None,
                 header: dict[str, Any] | None = None,
                 max_part_bytes: int = DEFAULT_MAX_PART_BYTES) -> RecordStatistics:
    """Record until ``stop`` is set or ``duration_s`` has passed."""
    stop = stop or asyncio.Event()
    recorder = Recorder(config, Path(out), header=header, max_part_bytes=max_part_bytes,
                        progress=progress)
    timer = None
    if duration_s is not None:
        timer = asyncio.get_running_loop().call_later(duration_s, stop.set)
    try:
        return await recorder.run(stop)
    finally:
        if timer is not None:
            timer.cancel()


def _duration_from_env() -> float | None:
    raw = os.environ.get(DURATION_ENV)
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(DURATION_ENV, f"not a number: {raw!r}") from None
    if value <= 0:
        raise ConfigError(DURATION_ENV, "must be positive")
    return value


def main_record(config_path: str, out: str, *, duration_s: float | None = None,
                max_part_bytes: int = DEFAULT_MAX_PART_BYTES) -> int:
    """``sniper record``: returns the exit code."""
    from sniper.log import configure_logging

    config = load_config(config_path)
    configure_logging(config.log.level, config.log.format)
    if duration_s is None:
        duration_s = _duration_from_env()
    out_path = Path(out)
    if not out_path.parent.is_dir():
        raise ConfigError("--out", f"directory {out_path.parent} does not exist")

    async def main() -> RecordStatistics:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        return await record(config, out_path, duration_s=duration_s, stop=stop,
                            progress=sys.stderr, max_part_bytes=max_part_bytes)

    stats = asyncio.run(main())
    print(f"recorded {stats.frames} frames and {stats.rest_answers} REST answers of "
          f"{len(stats.pairs)} pair(s) in {stats.parts} file(s), {stats.bytes_written} bytes",
          file=sys.stderr)
    return 0
