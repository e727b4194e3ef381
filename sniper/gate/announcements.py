"""Gate's announcement WebSocket: listing announcements, often before the pair appears.

A reconnecting connection (:class:`~sniper.gate.wsconn.WsConnection`) that subscribes
``announcement.summary_listing`` on every (re)connect and hands each parsed listing
``(symbol, start_s)`` to a callback. Titles that are not spot listings are ignored.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import structlog

from sniper.core.codec import WsFrame, decode_ws_message
from sniper.core.codec_ann import (
    CH_ANN_LISTING,
    decode_announcement,
    encode_ann_ping,
    encode_ann_subscribe,
)
from sniper.core.listing import parse_announcement
from sniper.errors import ProtocolError
from sniper.gate.wsconn import WsConnection

log = structlog.get_logger(__name__)

AnnouncementHandler = Callable[[str, "int | None", str], None]
"""``on_listing(symbol, start_s, title)``."""


class AnnouncementFeed:
    """Listens to ``announcement.summary_listing`` and reports parsed spot listings."""

    def __init__(
        self,
        url: str,
        on_listing: AnnouncementHandler,
        *,
        clock: Callable[[], float] = time.time,
        langs: tuple[str, ...] = ("en",),
    ) -> None:
        self._on_listing = on_listing
        self._clock = clock
        self._langs = langs
        self.seen = 0
        self.parsed = 0
        self._conn = WsConnection(
            url,
            on_message=self._on_message,
            on_open=self._subscribe,
            make_ping=lambda: encode_ann_ping(int(self._clock())),
            name="announcements",
            ping_interval_s=10.0,
            stall_timeout_s=90.0,
        )

    def start(self) -> None:
        self._conn.start()

    async def wait_connected(self, timeout_s: float | None = None) -> None:
        await self._conn.wait_connected(timeout_s)

    async def close(self) -> None:
        await self._conn.close()

    async def _subscribe(self) -> None:
        await self._conn.send(encode_ann_subscribe(int(self._clock()), self._langs))

    def _on_message(self, data: bytes, recv_ns: int) -> None:  # noqa: ARG002 - handler signature
        try:
            frame = decode_ws_message(data)
        except ProtocolError:
            return
        if not isinstance(frame, WsFrame) or frame.channel != CH_ANN_LISTING:
            return
        if frame.event != "update":
            return
        try:
            ann = decode_announcement(frame.result)
        except ProtocolError as exc:
            log.warning("announcement_undecodable", error=str(exc))
            return
        self.seen += 1
        parsed = parse_announcement(ann.title, ann.brief)
        if parsed is None:
            return
        self.parsed += 1
        symbol, start_s = parsed
        self._on_listing(symbol, start_s, ann.title)
