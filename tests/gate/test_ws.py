"""GateFeed against the scripted local Gate WS server (tests/gate/wsserver.py)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import socket
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from sniper.core.backoff import Backoff
from sniper.core.codec_ws import WsFrame
from sniper.core.signing import Credentials, Signer
from sniper.errors import AuthError, ExchangeError, PairNotTradableError, TransientError
from sniper.gate.ws import GateFeed, SubscriptionState
from tests.gate.wsserver import KEY, SECRET, GateWsServer


def fast_backoff() -> Backoff:
    return Backoff(base_s=0.01, max_s=0.05)


class Frames:
    """Collects pushes; ``wait(n)`` resolves once ``n`` have arrived."""

    def __init__(self) -> None:
        self.items: list[tuple[WsFrame, int]] = []
        self._changed = asyncio.Event()

    def __call__(self, frame: WsFrame, recv_ns: int) -> None:
        self.items.append((frame, recv_ns))
        self._changed.set()

    async def wait(self, count: int, timeout_s: float = 5.0) -> list[tuple[WsFrame, int]]:
        async with asyncio.timeout(timeout_s):
            while len(self.items) < count:
                self._changed.clear()
                await self._changed.wait()
        return self.items


@pytest.fixture
async def server() -> AsyncIterator[GateWsServer]:
    async with GateWsServer(unknown_pairs={"NOPE_USDT"}) as srv:
        yield srv


@pytest.fixture
async def make_feed(server: GateWsServer) -> AsyncIterator[Callable[..., GateFeed]]:
    feeds: list[GateFeed] = []

    def make(on_frame: Callable[[WsFrame, int], None] | None = None, **kwargs: Any) -> GateFeed:
        kwargs.setdefault("signer", Signer(Credentials(KEY, SECRET)))
        kwargs.setdefault("backoff", fast_backoff())
        feed = GateFeed(server.url, on_frame or Frames(), **kwargs)
        feeds.append(feed)
        feed.start()
        return feed

    yield make
    for feed in feeds:
        await feed.close()


async def test_subscribe_waits_for_ack_and_dispatches_pushes(
    server: GateWsServer, make_feed: Callable[..., GateFeed]
) -> None:
    frames = Frames()
    feed = make_feed(frames)
    await feed.subscribe("spot.book_ticker", ["ABC_USDT"])

    sent = server.requests("spot.book_ticker", "subscribe")
    assert [r.msg["payload"] for r in sent] == [["ABC_USDT"]]
    assert isinstance(sent[0].msg["id"], int)
    assert "auth" not in sent[0].msg
    assert [(s.channel, s.payload, s.state) for s in feed.subscriptions()] == [
        ("spot.book_ticker", ("ABC_USDT",), SubscriptionState.CONFIRMED)
    ]

    before_ns = time.monotonic_ns()
    await server.push("spot.book_ticker", {"t": 1, "u": 7, "s": "ABC_USDT", "b": "1", "B": "2"})
    [(frame, recv_ns)] = await frames.wait(1)
    assert frame.channel == "spot.book_ticker"
    assert frame.result["u"] == 7
    assert before_ns <= recv_ns <= time.monotonic_ns()
    stats = feed.statistics()
    assert stats.last_frame_ns == recv_ns
    assert stats.frames == 2  # the ack and the push
    assert stats.reconnects == 0


async def test_subscribing_again_to_a_confirmed_stream_sends_nothing(
    server: GateWsServer, make_feed: Callable[..., GateFeed]
) -> None:
    feed = make_feed()
    await feed.subscribe("spot.trades", ["ABC_USDT"])
    await feed.subscribe("spot.trades", ["ABC_USDT"])
    assert len(server.requests("spot.trades", "subscribe")) == 1


async def test_request_time_comes_from_injected_clock_plus_offset(
    server: GateWsServer, make_feed: Callable[..., GateFeed]
) -> None:
    feed = make_feed(clock=lambda: 1_000.75, clock_offset_s=-2.5)
    await feed.subscribe("spot.trades", ["ABC_USDT"])
    assert server.requests("spot.trades")[0].msg["time"] == 998
    feed.clock_offset_s = 10.0
    await feed.subscribe("spot.trades", ["XYZ_USDT"])
    assert server.requests("spot.trades")[1].msg["time"] == 1_010


async def test_private_subscription_is_signed_over_its_own_time(
    server: GateWsServer, make_feed: Callable[..., GateFeed]
) -> None:
    feed = make_feed()
    await feed.subscribe("spot.orders", ["!all"], private=True)
    msg = server.requests("spot.orders")[0].msg
    expected = hmac.new(
        SECRET.encode(),
        f"channel=spot.orders&event=subscribe&time={msg['time']}".encode(),
        hashlib.sha512,
    ).hexdigest()
    assert msg["auth"] == {"method": "api_key", "KEY": KEY, "SIGN": expected}


async def test_bad_signature_raises_auth_error_and_is_forgotten(
    server: GateWsServer, make_feed: Callable[..., GateFeed]
) -> None:
    feed = make_feed(signer=Signer(Credentials(KEY, "wrong-secret")))
    with pytest.raises(AuthError):
        await feed.subscribe("spot.usertrades", ["!all"], private=True)
    assert feed.subscriptions() == ()


async def test_private_channel_without_signer_is_a_usage_error(
    make_feed: Callable[..., GateFeed],
) -> None:
    feed = make_feed(signer=None)
    with pytest.raises(ValueError, match="signer"):
        await feed.subscribe("spot.orders", ["!all"], private=True)


async def test_unknown_pair_fails_only_its_own_request_and_can_be_retried(
    server: GateWsServer, make_feed: Callable[..., GateFeed]
) -> None:
    feed = make_feed()
    await feed.subscribe("spot.order_book_update", ["ABC_USDT", "100ms"])
    with pytest.raises(PairNotTradableError, match="NOPE_USDT"):
        await feed.subscribe("spot.order_book_update", ["NOPE_USDT", "100ms"])
    assert [s.payload for s in feed.subscriptions()] == [("ABC_USDT", "100ms")]

    server.unknown_pairs.clear()  # the pair got listed
    await feed.subscribe("spot.order_book_update", ["NOPE_USDT", "100ms"])
    assert {s.payload for s in feed.subscriptions()} == {
        ("ABC_USDT", "100ms"),
        ("NOPE_USDT", "100ms"),
    }


async def test_reconnect_replays_every_subscription_and_resigns_private_ones(
    server: GateWsServer, make_feed: Callable[..., GateFeed]
) -> None:
    clock_s = [time.time()]
    frames = Frames()
    feed = make_feed(frames, clock=lambda: clock_s[0])
    await feed.subscribe("spot.book_ticker", ["ABC_USDT"])
    await feed.subscribe("spot.orders", ["!all"], private=True)
    first_time = server.requests("spot.orders")[0].msg["time"]

    clock_s[0] += 7  # the replay must carry (and sign) a fresh time
    start = len(server.received)
    server.drop()
    await server.wait_connections(2)
    replay_ticker = await server.wait_request("spot.book_ticker", "subscribe", conn_no=2)
    replay_orders = await server.wait_request("spot.orders", "subscribe", conn_no=2, start=start)
    assert replay_ticker.msg["payload"] == ["ABC_USDT"]
    assert replay_orders.msg["time"] == first_time + 7
    expected = hmac.new(
        SECRET.encode(),
        f"channel=spot.orders&event=subscribe&time={first_time + 7}".encode(),
        hashlib.sha512,
    ).hexdigest()
    assert replay_orders.msg["auth"]["SIGN"] == expected

    # Both are confirmed again once the new connection acked them.
    await feed.subscribe("spot.book_ticker", ["ABC_USDT"])
    await feed.subscribe("spot.orders", ["!all"], private=True)
    assert {s.state for s in feed.subscriptions()} == {SubscriptionState.CONFIRMED}
    assert feed.statistics().reconnects == 1
    assert len(server.requests("spot.book_ticker", "subscribe")) == 2

    await server.push("spot.book_ticker", {"u": 9})
    [(frame, _)] = await frames.wait(1)
    assert frame.result == {"u": 9}


async def test_replay_refused_is_reported_and_forgotten(
    server: GateWsServer, make_feed: Callable[..., GateFeed]
) -> None:
    failed: list[tuple[str, tuple[str, ...], ExchangeError]] = []
    reported = asyncio.Event()

    def on_failed(channel: str, payload: tuple[str, ...], error: ExchangeError) -> None:
        failed.append((channel, payload, error))
        reported.set()

    feed = make_feed(on_subscription_failed=on_failed)
    await feed.subscribe("spot.trades", ["GONE_USDT"])
    server.unknown_pairs.add("GONE_USDT")  # delisted while we were away
    server.drop()
    async with asyncio.timeout(5):
        await reported.wait()
    [(channel, payload, error)] = failed
    assert (channel, payload) == ("spot.trades", ("GONE_USDT",))
    assert isinstance(error, PairNotTradableError)
    assert feed.subscriptions() == ()


async def test_subscribe_before_connect_is_sent_once_connected(server: GateWsServer) -> None:
    feed = GateFeed(server.url, Frames(), backoff=fast_backoff())
    try:
        task = asyncio.create_task(feed.subscribe("spot.trades", ["ABC_USDT"]))
        await asyncio.sleep(0)  # let subscribe register while there is no connection
        assert feed.subscriptions()[0].state is SubscriptionState.PENDING
        feed.start()
        await task
        assert feed.subscriptions()[0].state is SubscriptionState.CONFIRMED
        assert len(server.requests("spot.trades", "subscribe")) == 1
    finally:
        await feed.close()


async def test_ack_timeout_raises_but_keeps_subscription_pending(
    server: GateWsServer, make_feed: Callable[..., GateFeed]
) -> None:
    feed = make_feed(stall_timeout_s=60)
    await feed.wait_connected(5)
    server.stalled = True
    with pytest.raises(TransientError, match="no ack"):
        await feed.subscribe("spot.trades", ["ABC_USDT"], timeout_s=0.1)
    assert feed.subscriptions()[0].state is SubscriptionState.PENDING
    server.stalled = False
    server.drop()  # the replay on the next connection sends and confirms it
    await server.wait_request("spot.trades", "subscribe", conn_no=2)
    await feed.subscribe("spot.trades", ["ABC_USDT"])
    assert feed.subscriptions()[0].state is SubscriptionState.CONFIRMED


async def test_unsubscribe_is_acked_and_not_replayed(
    server: GateWsServer, make_feed: Callable[..., GateFeed]
) -> None:
    feed = make_feed()
    await feed.subscribe("spot.trades", ["ABC_USDT"])
    await feed.subscribe("spot.trades", ["XYZ_USDT"])
    await feed.unsubscribe("spot.trades", ["ABC_USDT"])
    assert server.requests("spot.trades", "unsubscribe")[0].msg["payload"] == ["ABC_USDT"]
    assert server.states[0].subscriptions == {("spot.trades", ("XYZ_USDT",))}

    server.drop()
    await server.wait_request("spot.trades", "subscribe", conn_no=2)
    await feed.subscribe("spot.trades", ["XYZ_USDT"])
    replayed = [r.msg["payload"] for r in server.requests("spot.trades") if r.conn_no == 2]
    assert replayed == [["XYZ_USDT"]]


async def test_app_ping_is_sent_and_pong_counted(
    server: GateWsServer, make_feed: Callable[..., GateFeed]
) -> None:
    feed = make_feed(ping_interval_s=0.02)
    ping = await server.wait_request("spot.ping")
    assert set(ping.msg) == {"time", "channel"}
    async with asyncio.timeout(5):
        while feed.statistics().pongs == 0:
            # each new ping comes a ping interval later: the previous pong had time to land
            await server.wait_request("spot.ping", start=len(server.received))
    assert feed.statistics().pongs >= 1


async def test_silent_connection_is_dropped_and_reconnected(
    server: GateWsServer, make_feed: Callable[..., GateFeed]
) -> None:
    feed = make_feed(ping_interval_s=0.05, stall_timeout_s=0.3)
    await feed.subscribe("spot.trades", ["ABC_USDT"])
    server.stalled = True  # reads, never answers: not even pongs
    await server.wait_connections(2)
    server.stalled = False
    stats = feed.statistics()
    assert stats.stalls == 1
    await server.wait_request("spot.trades", "subscribe", conn_no=2)


async def test_server_upgrade_event_triggers_reconnect(
    server: GateWsServer, make_feed: Callable[..., GateFeed]
) -> None:
    feed = make_feed()
    await feed.subscribe("spot.trades", ["ABC_USDT"])
    await server.send_raw({"time": 1, "channel": "", "event": "upgrade"})
    await server.wait_connections(2)
    await server.wait_request("spot.trades", "subscribe", conn_no=2)
    assert feed.statistics().upgrades == 1


async def test_undecodable_frame_is_counted_and_the_feed_goes_on(
    server: GateWsServer, make_feed: Callable[..., GateFeed]
) -> None:
    frames = Frames()
    feed = make_feed(frames)
    await feed.subscribe("spot.trades", ["ABC_USDT"])
    await server.send_raw("this is not json")
    await server.push("spot.trades", [{"id": 1}])
    await frames.wait(1)
    assert feed.statistics().decode_errors == 1
    assert feed.statistics().reconnects == 0


async def test_handler_exception_does_not_kill_the_feed(
    server: GateWsServer, make_feed: Callable[..., GateFeed]
) -> None:
    frames = Frames()

    def flaky(frame: WsFrame, recv_ns: int) -> None:
        if frame.result == "boom":
            raise RuntimeError("handler bug")
        frames(frame, recv_ns)

    feed = make_feed(flaky)
    await feed.subscribe("spot.trades", ["ABC_USDT"])
    await server.push("spot.trades", "boom")
    await server.push("spot.trades", "fine")
    [(frame, _)] = await frames.wait(1)
    assert frame.result == "fine"
    assert feed.statistics().handler_errors == 1


async def test_connection_has_no_compression_and_nodelay(
    server: GateWsServer, make_feed: Callable[..., GateFeed]
) -> None:
    feed = make_feed()
    await feed.wait_connected(5)
    conn = await server.wait_connections(1)
    assert conn.request is not None
    assert "Sec-WebSocket-Extensions" not in conn.request.headers
    ws = feed._conn._ws  # the socket option is only observable on the socket itself
    assert ws is not None
    sock = ws.transport.get_extra_info("socket")
    assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


async def test_close_ends_the_connection_and_fails_waiters(server: GateWsServer) -> None:
    feed = GateFeed(server.url, Frames(), backoff=fast_backoff())
    waiter = asyncio.create_task(feed.subscribe("spot.trades", ["ABC_USDT"]))
    await asyncio.sleep(0)
    await feed.close()
    with pytest.raises(TransientError):
        await waiter
    assert not feed.connected
