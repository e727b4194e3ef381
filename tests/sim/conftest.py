"""Fixtures: the simulator in-process on 127.0.0.1 (ephemeral port), fast scenario.

``sim`` ticks on its own (real time); ``manual_sim`` only moves when a test calls
``await server.advance(ms)``. ``rest`` is a small signed httpx client for either.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

from sniper.core.signing import Signer
from sniper.sim.server import SimServer

FAST = "new_listing_fast"


class SimRest:
    """Signs requests exactly as Gate wants (full path, raw query, body hash, int timestamp)."""

    def __init__(self, server: SimServer, client: httpx.AsyncClient) -> None:
        self.server = server
        self.client = client
        self.signer = Signer(server.credentials)
        assert server.urls is not None
        self.base = server.urls.rest

    async def get(self, path: str, params: dict[str, str] | None = None) -> httpx.Response:
        """Unsigned GET of ``/api/v4{path}``."""
        return await self.client.get(self.base + path, params=params)

    async def signed(
        self,
        method: str,
        path: str,
        params: dict[str, str] | None = None,
        body: Any = None,
        *,
        headers: dict[str, str] | None = None,
        timestamp: str | None = None,
        signer: Signer | None = None,
    ) -> httpx.Response:
        """A signed request; ``body`` is JSON-encoded once and those exact bytes are signed."""
        query = urlencode(params or {})
        raw = b"" if body is None else json.dumps(body).encode()
        ts = timestamp or str(int(time.time()))
        sign_with = signer or self.signer
        all_headers = sign_with.rest_headers(method, "/api/v4" + path, query, raw, ts)
        if body is not None:
            all_headers["Content-Type"] = "application/json"
        all_headers.update(headers or {})
        url = self.base + path + (f"?{query}" if query else "")
        return await self.client.request(method, url, content=raw or None, headers=all_headers)

    async def order(self, **fields: str) -> httpx.Response:
        """``POST /spot/orders`` with ``fields`` as the body."""
        return await self.signed("POST", "/spot/orders", body=fields)


@pytest.fixture
async def sim() -> AsyncIterator[SimServer]:
    """A running simulator, fast scenario, clock ticking in real time."""
    server = SimServer(FAST, host="127.0.0.1", port=0)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def manual_sim() -> AsyncIterator[SimServer]:
    """A running simulator whose clock moves only through ``await server.advance(ms)``."""
    server = SimServer(FAST, host="127.0.0.1", port=0, manual_clock=True)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def rest(sim: SimServer) -> AsyncIterator[SimRest]:
    """A signed REST client for ``sim``."""
    async with httpx.AsyncClient(timeout=5.0) as client:
        yield SimRest(sim, client)


async def ws_connect(server: SimServer, path: str = "ws") -> ClientConnection:
    """Open a WebSocket to the simulator's spot (``"ws"``) or announcement (``"ann"``) URL."""
    assert server.urls is not None
    url = server.urls.ws if path == "ws" else server.urls.ann
    return await connect(url, compression=None, open_timeout=5)


async def recv_json(ws: ClientConnection, timeout_s: float = 5.0) -> dict[str, Any]:
    """The next frame, decoded."""
    async with asyncio.timeout(timeout_s):
        raw = await ws.recv(decode=True)
    data = json.loads(raw)
    assert isinstance(data, dict)
    return data


async def recv_until(
    ws: ClientConnection, channel: str, event: str | None = None, limit: int = 500
) -> dict[str, Any]:
    """Skip frames until one of ``channel`` (and ``event``) arrives."""
    for _ in range(limit):
        msg = await recv_json(ws)
        if msg.get("channel") == channel and (event is None or msg.get("event") == event):
            return msg
        header = msg.get("header")
        if (
            isinstance(header, dict)
            and header.get("channel") == channel
            and (event is None or (event == "ack") == bool(msg.get("ack")))
        ):
            return msg
    raise AssertionError(f"no {channel} {event} frame in {limit} frames")
