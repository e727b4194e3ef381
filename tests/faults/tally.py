"""Counts for the README "Reliability" table, collected while the fault tests run.

Each fault test calls :func:`record` once with what it injected and what it observed. At the end
of the session (see ``tests/faults/conftest.py``) the rows are written to
``$SNIPER_RELIABILITY_OUT`` when that variable is set (``python -m tests.faults.table`` turns the
file into the markdown table that README carries).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass
class Row:
    fault: str
    behaviour: str
    test: str
    injected: int = 0
    orders: int = 0
    duplicates: int = 0
    oversells: int = 0
    secrets_leaked: int = 0


@dataclass
class Tally:
    rows: list[Row] = field(default_factory=list)

    def dump(self, path: Path) -> None:
        path.write_text(json.dumps([asdict(r) for r in self.rows], indent=1), encoding="utf-8")


TALLY = Tally()


def record(
    fault: str,
    behaviour: str,
    test: str,
    *,
    injected: int,
    orders: int,
    duplicates: int = 0,
    oversells: int = 0,
    secrets_leaked: int = 0,
) -> None:
    """Add one row. Callers assert ``duplicates == oversells == secrets_leaked == 0`` themselves."""
    TALLY.rows.append(
        Row(fault, behaviour, test, injected, orders, duplicates, oversells, secrets_leaked)
    )


def dump_if_requested() -> None:
    out = os.environ.get("SNIPER_RELIABILITY_OUT")
    if out:
        TALLY.dump(Path(out))
