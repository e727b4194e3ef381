"""The append-only journal: every intent, send, answer, fill and exit, in SQLite (WAL, fsync).

Write discipline (what makes ``kill -9`` at any point safe):

* A listing's client ids (``text``, one per allowed attempt) are journaled when it is *armed*,
  before any order can exist. After a restart every such id is looked up on the exchange, so an
  order whose send was never journaled is still found.
* ``buy_sent`` / ``sell_sent`` are written right after the bytes leave (never before: the hot
  path does no disk I/O before the send).
* Fills, order answers and exits are written as they arrive; replaying the journal rebuilds the
  ledger (fills are deduplicated by trade id).
* ``PRAGMA synchronous=FULL`` in WAL mode: a committed row survives power loss.

A journal that cannot be opened, fails ``quick_check`` or cannot be written raises
:class:`~sniper.errors.JournalError` naming the file; the daemon never silently starts afresh.

Test hook (crash injection for the end-to-end tests): with ``SNIPER_CRASH_AFTER="<kind>[:N]"``
in the environment, :meth:`Journal.append` SIGKILLs its own process right after the ``N``-th
(default first) event of ``kind`` is committed, so a test can kill the daemon at an exact point
(``fill``: a buy filled, its take-profit not placed yet). Read once at construction; when unset
it costs one ``is None`` test per append. Never set it in production.
"""

from __future__ import annotations

import os
import signal
import sqlite3
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

from sniper.errors import ConfigError, JournalError

CRASH_ENV = "SNIPER_CRASH_AFTER"
"""Environment variable of the crash-injection test hook (see the module docstring)."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    ts_ms   INTEGER NOT NULL,
    kind    TEXT    NOT NULL,
    pair    TEXT    NOT NULL,
    data    BLOB    NOT NULL
);
CREATE INDEX IF NOT EXISTS events_pair ON events(pair, seq);
CREATE TABLE IF NOT EXISTS flags (
    name    TEXT PRIMARY KEY,
    value   TEXT NOT NULL
);
"""


def parse_crash_spec(spec: str | None) -> tuple[str, int] | None:
    """``"fill:2"`` -> ``("fill", 2)``; ``"fill"`` -> ``("fill", 1)``; unset/empty -> ``None``."""
    if not spec:
        return None
    kind, sep, count = spec.strip().partition(":")
    try:
        n = int(count) if sep else 1
    except ValueError:
        n = 0
    if not kind or n < 1:
        raise ConfigError(CRASH_ENV, f"expected <kind>[:N] with N >= 1, got {spec!r}")
    return kind, n


def _default(obj: object) -> object:
    if isinstance(obj, Decimal):
        return str(obj)
    raise TypeError(f"not journalable: {type(obj).__name__}")


@dataclass(frozen=True, slots=True)
class JournalEvent:
    seq: int
    ts_ms: int
    kind: str
    pair: str
    data: dict[str, Any]


class Journal:
    """SQLite journal under ``state_dir`` (one file, ``journal.sqlite3``)."""

    FILENAME = "journal.sqlite3"

    def __init__(self, path: Path) -> None:
        self.path = path
        self._crash = parse_crash_spec(os.environ.get(CRASH_ENV))
        self._crash_seen = 0
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA busy_timeout=2000")
            row = self._db.execute("PRAGMA quick_check").fetchone()
            if row is None or row[0] != "ok":
                raise JournalError(f"journal {path} failed its integrity check: {row}")
            self._db.executescript(SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise JournalError(
                f"journal {path} cannot be opened ({exc}); it is kept as it is: "
                "move it aside only after checking the positions on the exchange"
            ) from exc
        except OSError as exc:
            raise JournalError(f"journal {path} cannot be created: {exc}") from exc

    @classmethod
    def in_dir(cls, state_dir: Path) -> Journal:
        return cls(state_dir / cls.FILENAME)

    def append(self, kind: str, pair: str, data: Mapping[str, Any], *, ts_ms: int) -> int:
        """Write one event durably; returns its sequence number."""
        blob = orjson.dumps(dict(data), default=_default)
        try:
            cur = self._db.execute(
                "INSERT INTO events(ts_ms, kind, pair, data) VALUES (?, ?, ?, ?)",
                (ts_ms, kind, pair, blob),
            )
        except sqlite3.Error as exc:
            raise JournalError(f"journal {self.path} is not writable: {exc}") from exc
        if self._crash is not None and kind == self._crash[0]:
            self._crash_now()
        return int(cur.lastrowid or 0)

    def _crash_now(self) -> None:
        # Test hook: the row above is committed (autocommit, synchronous=FULL); die as hard
        # as a power cut would, with no cleanup, no flush, no finally blocks.
        assert self._crash is not None
        self._crash_seen += 1
        if self._crash_seen >= self._crash[1]:
            os.kill(os.getpid(), signal.SIGKILL)

    def events(self, pair: str | None = None) -> Iterator[JournalEvent]:
        """All events in order (optionally of one pair)."""
        try:
            if pair is None:
                rows = self._db.execute(
                    "SELECT seq, ts_ms, kind, pair, data FROM events ORDER BY seq"
                )
            else:
                rows = self._db.execute(
                    "SELECT seq, ts_ms, kind, pair, data FROM events WHERE pair = ? ORDER BY seq",
                    (pair,),
                )
            for seq, ts_ms, kind, p, blob in rows:
                try:
                    data = orjson.loads(blob)
                except orjson.JSONDecodeError as exc:
                    raise JournalError(f"journal {self.path}: event {seq} is corrupt") from exc
                yield JournalEvent(seq, ts_ms, kind, p, data)
        except sqlite3.DatabaseError as exc:
            raise JournalError(f"journal {self.path} cannot be read: {exc}") from exc

    def set_flag(self, name: str, value: str) -> None:
        try:
            self._db.execute(
                "INSERT INTO flags(name, value) VALUES (?, ?) "
                "ON CONFLICT(name) DO UPDATE SET value = excluded.value",
                (name, value),
            )
        except sqlite3.Error as exc:
            raise JournalError(f"journal {self.path} is not writable: {exc}") from exc

    def get_flag(self, name: str) -> str | None:
        row = self._db.execute("SELECT value FROM flags WHERE name = ?", (name,)).fetchone()
        return None if row is None else str(row[0])

    def writable(self) -> bool:
        """Health check: can a row be written right now?"""
        try:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute("ROLLBACK")
        except sqlite3.Error:
            return False
        return True

    def close(self) -> None:
        self._db.close()
