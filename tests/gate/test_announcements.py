"""The announcement feed against the simulator's /ws/v4/ann."""

from __future__ import annotations

import asyncio
from importlib import resources

import orjson
import yaml

from sniper.core.codec_ann import decode_announcement, encode_ann_subscribe
from sniper.gate.announcements import AnnouncementFeed
from sniper.sim.scenarios import Scenario, scenario_from_dict
from sniper.sim.server import SimServer


def _announced_later() -> Scenario:
    # The built-in fast scenario may announce at its very first tick, before any client could
    # subscribe. Here the announcement lands in [1.5 s, 2.5 s) and the pair appears at 3 s.
    raw = yaml.safe_load(
        resources.files("sniper.sim")
        .joinpath("scenarios/new_listing_fast.yaml")
        .read_text(encoding="utf-8")
    )
    raw["listings"][0].update(appear_at_s=3.0, opens_after_s=1.0, announce_lead_s=2.5)
    return scenario_from_dict(raw)


async def test_listing_announcement_reaches_callback_before_pair_appears() -> None:
    got: asyncio.Future[tuple[str, int | None, str]] = asyncio.get_running_loop().create_future()
    listed_at_announcement: set[str] = set()

    def on_listing(symbol: str, start_s: int | None, title: str) -> None:
        if not got.done():
            listed_at_announcement.update(p.pair for p in server.engine.visible_pairs())
            got.set_result((symbol, start_s, title))

    async with SimServer(_announced_later(), port=0, manual_clock=True) as server:
        assert server.urls is not None
        subscribed = asyncio.ensure_future(
            server.events.wait_for(
                lambda e: e.kind == "ws_in" and e.name == "announcement.summary_listing"
            )
        )
        feed = AnnouncementFeed(server.urls.ann, on_listing)
        feed.start()
        try:
            await subscribed
            for _ in range(60):  # 100 ms steps of simulated time until it is announced
                await server.advance(100)
                if server.events.find("ws_out", "announcement.summary_listing", event="update"):
                    break  # sent: wait for the client before time moves on
            symbol, start_s, title = await asyncio.wait_for(got, 5)
        finally:
            await feed.close()
    assert symbol == "NEWCOIN"
    assert start_s is not None
    assert "NEWCOIN" in title
    assert feed.parsed == 1
    assert listed_at_announcement  # the established pairs were listed
    assert "NEWCOIN_USDT" not in listed_at_announcement  # announced before it appeared


def test_decode_and_encode() -> None:
    ann = decode_announcement(
        {
            "title": "Gate will commence X (X) Trading",
            "brief": "b",
            "lang": "en",
            "published_at": 1700000000,
            "origin_url": "u",
        }
    )
    assert ann.published_s == 1700000000
    assert orjson.loads(encode_ann_subscribe(5)) == {
        "time": 5,
        "channel": "announcement.summary_listing",
        "event": "subscribe",
        "payload": ["en"],
    }
