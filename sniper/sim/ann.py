"""The announcement WebSocket of the simulator (``/ws/v4/ann``, gate-v4.md §5, doc D-ANN).

Clients subscribe ``announcement.summary_listing`` (or any other ``announcement.summary_*``
channel) with a language payload (``["en"]``, ``["cn"]`` or both); the scenario's
:class:`~sniper.sim.events.Announced` events are pushed to ``summary_listing`` subscribers, one
push per subscribed language, ahead of the pair appearing. ``announcement.ping`` is answered
with ``announcement.pong`` (Gate documents the ping channel, not the reply: this mirrors
``spot.ping``/``spot.pong``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from sniper.sim.events import Announced, SimEvent
from sniper.sim.ws import SIM_KEY, WsSession, new_ws_response

if TYPE_CHECKING:
    from sniper.sim.server import SimServer

LISTING = "announcement.summary_listing"
LANGS = ("en", "cn")


class AnnSession(WsSession):
    """One ``/ws/v4/ann`` connection and its subscriptions ``{channel: {lang}}``."""

    def __init__(self, server: SimServer, ws: web.WebSocketResponse, request: web.Request) -> None:
        super().__init__(server, ws, request)
        self.subs: dict[str, set[str]] = {}

    def on_text(self, data: str, t_ns: int) -> None:
        """Handle one received frame."""
        try:
            msg = orjson.loads(data)
        except orjson.JSONDecodeError:
            msg = None
        if not isinstance(msg, dict):
            err = {"code": 1, "message": "invalid request body format"}
            self.send("", "", self.envelope("", "", error=err))
            return
        channel = str(msg.get("channel", ""))
        event = str(msg.get("event", ""))
        self.server.events.record("ws_in", channel, t_ns=t_ns, conn_id=self.conn_id, event=event)
        if channel == "announcement.ping":
            self.send("announcement.pong", "", self.envelope("announcement.pong", ""))
            return
        payload = msg.get("payload")
        langs = [str(x) for x in payload] if isinstance(payload, list) else []
        if (
            not channel.startswith("announcement.summary_")
            or event not in ("subscribe", "unsubscribe")
            or not langs
            or any(lang not in LANGS for lang in langs)
        ):
            err = {"code": 2, "message": f"invalid argument: {channel} {event} {payload}"}
            self.send(channel, event, self.envelope(channel, event, error=err))
            return
        current = self.subs.setdefault(channel, set())
        if event == "subscribe":
            current.update(langs)
        else:
            current.difference_update(langs)
        self.send(channel, event, self.envelope(channel, event, result={"status": "success"}))


class AnnHub:
    """Pushes :class:`Announced` events to the announcement sessions."""

    def __init__(self) -> None:
        self.sessions: set[AnnSession] = set()

    def publish(self, events: Iterable[SimEvent]) -> None:
        """Push every announcement among ``events``."""
        for ev in events:
            if isinstance(ev, Announced):
                for s in self.sessions:
                    for lang in sorted(s.subs.get(LISTING, ())):
                        s.push(LISTING, _result(ev, lang))


def _result(ev: Announced, lang: str) -> dict[str, Any]:
    return {
        "lang": lang,
        "origin_url": ev.origin_url,
        "title": ev.title,
        "brief": ev.brief,
        "published_at": ev.published_ms // 1000,
    }


async def serve_ann(request: web.Request) -> web.StreamResponse:
    """aiohttp handler of ``/ws/v4/ann``."""
    server = request.app[SIM_KEY]
    ws = new_ws_response()
    await ws.prepare(request)
    session = AnnSession(server, ws, request)
    server.ann_hub.sessions.add(session)
    try:
        await session.serve()
    finally:
        server.ann_hub.sessions.discard(session)
    return ws
