"""Rebuild listing sessions from the journal after a restart (before talking to Gate).

Which listings to rebuild is decided here; how one listing replays its journal and then
reconciles with the exchange is :mod:`sniper.app.restart`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from sniper.app.journal import Journal, JournalEvent
from sniper.app.ports import Edges
from sniper.app.records import pair_from_json
from sniper.app.session import Emit, ListingSession, SessionSettings


def recover_sessions(
    journal: Journal,
    settings: SessionSettings,
    edges: Edges,
    *,
    wall_ms: Callable[[], int],
    mono_ns: Callable[[], int],
    emit: Emit,
    on_fatal: Callable[[BaseException], None],
) -> Iterator[ListingSession]:
    """Every armed, not yet closed listing, with its machines replayed from the journal.

    The caller must still ``await session.reconcile()`` (exchange state) before trading.
    """
    by_pair: dict[str, list[JournalEvent]] = {}
    for event in journal.events():
        by_pair.setdefault(event.pair, []).append(event)
    for events in by_pair.values():
        armed = next((e for e in events if e.kind == "armed"), None)
        if armed is None or any(e.kind == "closed" for e in events):
            continue
        data: dict[str, Any] = armed.data
        session = ListingSession(
            pair_from_json(data["info"]),
            settings,
            edges,
            journal,
            tuple(data["texts"]),
            wall_ms=wall_ms,
            mono_ns=mono_ns,
            emit=emit,
            on_fatal=on_fatal,
            armed_ms=armed.ts_ms,
            replaying=True,
        )
        session.replay([e for e in events if e.seq > armed.seq])
        yield session
