"""The book-open baseline: raw WS receive + a pre-built raw send, in its own process.

``python -m bench.rawclient`` reads one JSON line of settings on stdin (``ws_url``, ``key``,
``secret``, ``orders``: pair -> client id, ``price``, ``amount``, ``cpu``, ``uvloop``),
connects two websockets to the simulator as the daemon does (one for the book stream, one
logged in for orders), subscribes ``spot.order_book_update`` (20 ms) of every pair, builds
every pair's complete masked ``spot.order_place`` frame, prints one JSON line ``{"ready":
true}``, then serves until stdin closes:

    recv() -> orjson.loads -> first update of a pair with asks -> transport.write(frame)

That is the least any client must do to react to a book opening: no book sync, no sizing, no
journal. Run in a separate process so the daemon's own background work (polling, timers)
never delays it, and vice versa.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from decimal import Decimal
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame, Opcode

from bench.simproc import pin_to_cpu
from sniper.core.codec import (
    CH_BOOK_UPDATE,
    CH_LOGIN,
    CH_ORDER_PLACE,
    book_update_payload,
    encode_order,
    encode_ws_api_request,
    encode_ws_login,
    encode_ws_request,
)
from sniper.core.models import OrderRequest
from sniper.core.signing import Credentials, Signer

ORDER_TTL_MS = 600_000  # the frames are built at start-up and fired up to minutes later


async def _connect(url: str) -> ClientConnection:
    return await connect(url, compression=None, proxy=None, ping_interval=None, max_size=None)


async def _final(ws: ClientConnection, req_id: str) -> dict[str, Any]:
    async with asyncio.timeout(10):
        while True:
            msg = orjson.loads(await ws.recv(decode=False))
            if msg.get("request_id") == req_id and not msg.get("ack"):
                return dict(msg)


def build_frames(settings: dict[str, Any], signer_time_s: float) -> dict[str, bytes]:
    """Every pair's masked ``spot.order_place`` frame (IOC limit buy), built ahead of time."""
    frames: dict[str, bytes] = {}
    price = Decimal(settings["price"])
    amount = Decimal(settings["amount"])
    for index, (pair, text) in enumerate(sorted(settings["orders"].items())):
        request = OrderRequest(pair, "buy", amount, price, text, "limit", "ioc")
        data = encode_ws_api_request(
            CH_ORDER_PLACE,
            f"raw-{index}",
            encode_order(request, action_mode="ACK"),
            time_s=int(signer_time_s),
            req_header={"x-gate-exptime": str(int(signer_time_s * 1000) + ORDER_TTL_MS)},
        )
        frames[pair] = Frame(Opcode.TEXT, data).serialize(mask=True)
    return frames


async def _drain(ws: ClientConnection) -> None:
    with contextlib.suppress(ConnectionClosed):
        async for _ in ws:
            pass


async def _react(book: ClientConnection, trade: ClientConnection, frames: dict[str, bytes]) -> None:
    recv = book.recv
    write = trade.transport.write
    loads = orjson.loads
    with contextlib.suppress(ConnectionClosed):
        while frames:
            msg = loads(await recv(decode=False))
            if msg.get("channel") != CH_BOOK_UPDATE or msg.get("event") != "update":
                continue
            result = msg["result"]
            if result.get("a") and not result.get("full"):
                frame = frames.pop(result["s"], None)
                if frame is not None:
                    write(frame)
        await _drain(book)


async def _main(settings: dict[str, Any]) -> None:
    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    signer = Signer(Credentials(settings["key"], settings["secret"]))
    book = await _connect(settings["ws_url"])
    trade = await _connect(settings["ws_url"])
    ts = str(int(time.time()))
    await trade.send(
        encode_ws_login(signer.key, signer.ws_api(CH_LOGIN, "", ts), ts, "login", time_s=int(ts)),
        text=True,
    )
    reply = await _final(trade, "login")
    if reply.get("header", {}).get("status") != "200":
        raise RuntimeError(f"baseline login refused: {reply}")
    for index, pair in enumerate(sorted(settings["orders"])):
        request = encode_ws_request(
            CH_BOOK_UPDATE,
            "subscribe",
            book_update_payload(pair),
            time_s=int(time.time()),
            id=index,
        )
        await book.send(request, text=True)
    frames = build_frames(settings, time.time())
    tasks = [
        loop.create_task(_react(book, trade, frames)),
        loop.create_task(_drain(trade)),
    ]
    sys.stdout.write('{"ready": true}\n')
    sys.stdout.flush()
    await stdin.read()  # until the parent closes our stdin
    for task in tasks:
        task.cancel()
    await book.close()
    await trade.close()


def child_entry() -> None:
    """``python -m bench.rawclient``: read settings, pin, pick the loop, serve."""
    settings = orjson.loads(sys.stdin.buffer.readline())
    pin_to_cpu(settings.get("cpu"))
    if settings.get("uvloop", True):
        import uvloop

        uvloop.run(_main(settings))
    else:
        asyncio.run(_main(settings))


if __name__ == "__main__":
    child_entry()
