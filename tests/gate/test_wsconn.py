"""WsTuning: one description of how a connection is kept, shared by the feed and the trader."""

from __future__ import annotations

import dataclasses

import pytest

from sniper.core.backoff import Backoff
from sniper.core.signing import Credentials, Signer
from sniper.gate.trading import GateWsTrader
from sniper.gate.ws import GateFeed
from sniper.gate.wsconn import DEFAULT_MAX_SIZE, WsConnection, WsTuning

URL = "ws://127.0.0.1:1/"


def ignore(raw: bytes, recv_ns: int) -> None:
    """A message handler that is never called here."""


def kept_as(conn: WsConnection) -> tuple[object, ...]:
    """What the connection does with its tuning (name, ping, stall, open, size, backoff)."""
    return (conn.name, conn._ping_interval_s, conn._stall_timeout_ns, conn._open_timeout_s,
            conn._max_size, conn._backoff)


def test_tuning_is_frozen_and_defaults_to_the_connection_defaults() -> None:
    tuning = WsTuning()
    with pytest.raises(dataclasses.FrozenInstanceError):
        tuning.name = "other"  # type: ignore[misc]
    plain = WsConnection(URL, on_message=ignore)
    tuned = WsConnection.tuned(URL, tuning, on_message=ignore)
    assert kept_as(tuned)[:5] == kept_as(plain)[:5]
    assert tuning.max_size == DEFAULT_MAX_SIZE


def test_tuned_connection_keeps_every_field() -> None:
    backoff = Backoff(0.01, 0.05)
    tuning = WsTuning(name="x", ping_interval_s=1.5, stall_timeout_s=2.5, open_timeout_s=3.5,
                      max_size=1234, backoff=backoff)
    conn = WsConnection.tuned(URL, tuning, on_message=ignore)
    assert kept_as(conn) == ("x", 1.5, 2_500_000_000, 3.5, 1234, backoff)


def signer() -> Signer:
    return Signer(Credentials("k" * 32, "s" * 64))


@pytest.mark.parametrize(
    ("make", "name"),
    [
        (lambda **kw: GateFeed(URL, lambda frame: None, **kw), "feed"),
        (lambda **kw: GateWsTrader(URL, signer(), **kw), "trader"),
    ],
    ids=["feed", "trader"],
)
def test_protocol_layers_keep_their_keyword_arguments_as_tuning(make: object, name: str) -> None:
    default = make()  # type: ignore[operator]
    assert default.tuning == WsTuning(name=name, stall_timeout_s=20.0)
    assert kept_as(default._conn)[:5] == (name, 5.0, 20_000_000_000, 10.0, DEFAULT_MAX_SIZE)

    backoff = Backoff(0.01, 0.05)
    given = make(name="n", ping_interval_s=1.0, stall_timeout_s=2.0,  # type: ignore[operator]
                 open_timeout_s=3.0, max_size=99, backoff=backoff)
    assert given.tuning == WsTuning("n", 1.0, 2.0, 3.0, 99, backoff)
    assert kept_as(given._conn) == ("n", 1.0, 2_000_000_000, 3.0, 99, backoff)
