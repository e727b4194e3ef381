"""The simulator's event log: every request and frame it receives or sends, with a timestamp.

This is how end-to-end latency is measured: a benchmark reads when the simulator *sent* the
first ask frame and when it *received* the order, both on the same ``time.monotonic_ns()``
clock. Records live in an in-memory ring (newest ``capacity`` kept) and, optionally, are
appended to a JSONL file (buffered; flushed on :meth:`EventLog.close`).

Kinds used by the servers:

=================  =========================================================================
``http_in``        a REST request arrived (``name`` = path, ``conn_id`` = peer port)
``http_out``       its response left (``status`` set)
``order_in``       an order (REST, batch item or WS ``spot.order_place``) was fully received;
                   ``text`` is the client id, ``order_id`` set once the engine accepted it
``ws_open``        a WebSocket connection was accepted (``name`` = route)
``ws_close``       it closed
``ws_in``          a frame arrived (``name`` = channel)
``ws_out``         a frame was written (``name`` = channel, ``event`` = event)
``ws_drop``        a frame was dropped by fault injection
``fault``          a fault fired (``name`` says which)
=================  =========================================================================
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO

import orjson


@dataclass(frozen=True, slots=True)
class LoggedEvent:
    """One record of the event log. ``t_ns`` is ``time.monotonic_ns()`` when it happened."""

    t_ns: int
    kind: str
    name: str
    conn_id: int | None = None
    event: str | None = None
    status: int | None = None
    text: str | None = None
    order_id: str | None = None
    detail: str | None = None


Predicate = Callable[[LoggedEvent], bool]


class EventLog:
    """An in-memory ring of :class:`LoggedEvent` plus an optional JSONL file.

    ``wait_for`` lets tests await a record instead of sleeping.
    """

    def __init__(self, capacity: int = 200_000, jsonl_path: Path | str | None = None) -> None:
        self._ring: collections.deque[LoggedEvent] = collections.deque(maxlen=capacity)
        self._file: IO[bytes] | None = None
        if jsonl_path is not None:
            self._file = Path(jsonl_path).open("ab")  # noqa: SIM115 - closed in close()
        self._waiters: list[tuple[Predicate, asyncio.Future[LoggedEvent]]] = []
        self.recorded = 0

    def record(
        self,
        kind: str,
        name: str,
        *,
        t_ns: int | None = None,
        conn_id: int | None = None,
        event: str | None = None,
        status: int | None = None,
        text: str | None = None,
        order_id: str | None = None,
        detail: str | None = None,
    ) -> LoggedEvent:
        """Append a record (``t_ns`` defaults to now) and wake matching waiters."""
        item = LoggedEvent(
            time.monotonic_ns() if t_ns is None else t_ns,
            kind,
            name,
            conn_id,
            event,
            status,
            text,
            order_id,
            detail,
        )
        self._ring.append(item)
        self.recorded += 1
        if self._file is not None:
            self._file.write(orjson.dumps(asdict(item), option=orjson.OPT_APPEND_NEWLINE))
        if self._waiters:
            self._wake(item)
        return item

    def _wake(self, item: LoggedEvent) -> None:
        keep: list[tuple[Predicate, asyncio.Future[LoggedEvent]]] = []
        for predicate, future in self._waiters:
            if future.done():
                continue
            if predicate(item):
                future.set_result(item)
            else:
                keep.append((predicate, future))
        self._waiters = keep

    def __iter__(self) -> Iterator[LoggedEvent]:
        return iter(list(self._ring))

    def __len__(self) -> int:
        return len(self._ring)

    def snapshot(self) -> list[LoggedEvent]:
        """A copy of the ring, oldest first."""
        return list(self._ring)

    def find(
        self,
        kind: str | None = None,
        name: str | None = None,
        *,
        text: str | None = None,
        event: str | None = None,
    ) -> list[LoggedEvent]:
        """Records matching every given field, oldest first."""
        return [
            e
            for e in self._ring
            if (kind is None or e.kind == kind)
            and (name is None or e.name == name)
            and (text is None or e.text == text)
            and (event is None or e.event == event)
        ]

    async def wait_for(self, predicate: Predicate, timeout_s: float = 5.0) -> LoggedEvent:
        """Wait for the first *future* record that matches ``predicate``."""
        future: asyncio.Future[LoggedEvent] = asyncio.get_running_loop().create_future()
        self._waiters.append((predicate, future))
        try:
            return await asyncio.wait_for(future, timeout_s)
        finally:
            if not future.done():
                future.cancel()

    def clear(self) -> None:
        """Forget the in-memory records (the JSONL file is kept)."""
        self._ring.clear()

    def flush(self) -> None:
        """Flush the JSONL file, if any."""
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        """Flush and close the JSONL file, if any."""
        if self._file is not None:
            self._file.close()
            self._file = None
