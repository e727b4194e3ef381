"""Gate's announcement WebSocket (``/ws/v4/ann``) wire format; doc: D-ANN in gate-v4.md §5.

Pushes look like ``{"channel": "announcement.summary_listing", "event": "update",
"result": {"lang", "origin_url", "title", "brief", "published_at"}}``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import orjson

from sniper.errors import ProtocolError

CH_ANN_LISTING: Final = "announcement.summary_listing"
CH_ANN_PING: Final = "announcement.ping"
CH_ANN_PONG: Final = "announcement.pong"


@dataclass(frozen=True, slots=True)
class Announcement:
    """One announcement push."""

    title: str
    brief: str
    lang: str
    published_s: int
    url: str


def decode_announcement(result: Any) -> Announcement:
    """Decode the ``result`` of an ``announcement.summary_*`` push."""
    if not isinstance(result, dict):
        raise ProtocolError("announcement: result is not an object", raw=result)
    title = result.get("title")
    if not isinstance(title, str) or not title:
        raise ProtocolError("announcement: missing title", raw=result)
    brief = result.get("brief") or ""
    published = result.get("published_at") or 0
    try:
        published_s = int(float(published))
    except (TypeError, ValueError):
        raise ProtocolError("announcement: bad published_at", raw=result) from None
    return Announcement(
        title=title,
        brief=brief if isinstance(brief, str) else "",
        lang=str(result.get("lang") or ""),
        published_s=published_s,
        url=str(result.get("origin_url") or ""),
    )


def encode_ann_subscribe(time_s: int, langs: tuple[str, ...] = ("en",)) -> bytes:
    """Subscribe to listing announcements in ``langs``."""
    return orjson.dumps(
        {"time": time_s, "channel": CH_ANN_LISTING, "event": "subscribe", "payload": list(langs)}
    )


def encode_ann_ping(time_s: int) -> bytes:
    return orjson.dumps({"time": time_s, "channel": CH_ANN_PING})
