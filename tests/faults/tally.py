"""Counts for the README "Reliability" table, collected while the fault tests run.

Each fault test calls :func:`record` once with what it injected and what it observed (and
asserts ``duplicates == oversells == secrets_leaked == 0`` itself). :func:`exposure` measures
the order-side counts from the simulator's books and the daemon's journal, so every test counts
the same way. At the end of the session (see ``tests/faults/conftest.py``) the rows are written
to ``$SNIPER_RELIABILITY_OUT`` when that variable is set; ``python -m tests.faults.table FILE``
turns the file into the markdown table that ``docs/reliability.md`` and README carry.

What the counts mean:

* ``orders``: orders of the daemon's account that the exchange accepted (buys and sells).
* ``duplicates``: orders beyond what the journal allows: a client id (``text``) placed more
  than once; a buy whose id the journal never armed; buys that spent more than one entry's
  budget (counted per extra order).
* ``oversells``: sells whose amount exceeded what the account held and had not already
  committed to other sells when the sell was created (from the simulator's trades and orders),
  plus sells the exchange refused for lack of balance.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sniper.sim.server import SimServer
    from tests.e2e.conftest import JournalView


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


# -- measuring -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Exposure:
    """What the daemon did on the exchange, as the simulator and the journal show it."""

    orders: int
    duplicates: int
    oversells: int
    buys: int
    sells: int
    detail: tuple[str, ...] = ()
    """One line per duplicate / oversell found (for assertion messages)."""


def _our_orders(sim: SimServer) -> list[Any]:
    orders = [*sim.engine.list_orders(sim.uid, None, "open"),
              *sim.engine.list_orders(sim.uid, None, "finished")]
    return sorted(orders, key=lambda o: (o.create_time_ms, int(o.id)))


def _our_trades(sim: SimServer) -> list[Any]:
    return sorted(sim.engine.my_trades(sim.uid, None, limit=100_000),
                  key=lambda t: (t.time_ms, t.id))


def exposure(sim: SimServer, journal: JournalView, quote_budget: Decimal) -> Exposure:
    """Count orders, duplicates and oversells of the daemon's account (see module docstring).

    ``quote_budget`` is the config's ``entry.quote_amount``: the most one listing may spend.
    """
    orders = _our_orders(sim)
    trades = _our_trades(sim)
    detail: list[str] = []

    # -- duplicates: an id placed twice, a buy the journal never armed, spend beyond budget
    placed = Counter(o.text for o in orders)
    for text, n in placed.items():
        if n > 1:
            detail.append(f"client id {text} placed {n} times")
    duplicates = sum(n - 1 for n in placed.values() if n > 1)
    armed: dict[str, set[str]] = {}
    for row in journal.rows("armed"):
        armed.setdefault(row.pair, set()).update(row.data.get("texts", ()))
    buys = [o for o in orders if o.side == "buy"]
    for order in buys:
        if order.text not in armed.get(order.pair, set()):
            duplicates += 1
            detail.append(f"buy {order.id} ({order.text}) was never armed in the journal")
    for pair in {o.pair for o in buys}:
        spent = Decimal(0)
        for order in (o for o in buys if o.pair == pair):
            if spent >= quote_budget:
                duplicates += 1
                detail.append(f"buy {order.id} on {pair} after the budget was spent")
            spent += order.filled_total

    # -- oversells: each sell against what was held and not yet committed when it was created
    sells = [o for o in orders if o.side == "sell"]
    start = {c: Decimal(v) for c, v in sim.scenario.balances.items()}
    oversells = 0
    for i, sell in enumerate(sells):
        base = sell.pair.split("_")[0]
        t = sell.create_time_ms
        bought = sum(
            (tr.amount - (tr.fee if tr.fee_currency == base else 0)
             for tr in trades if tr.pair == sell.pair and tr.side == "buy" and tr.time_ms <= t),
            Decimal(0),
        )
        committed = Decimal(0)
        for earlier in sells[:i]:
            if earlier.pair != sell.pair:
                continue
            still_open = earlier.status == "open" or earlier.update_time_ms > t
            committed += earlier.amount if still_open else earlier.filled_amount
        free = start.get(base, Decimal(0)) + bought - committed
        if sell.amount > free:
            oversells += 1
            detail.append(f"sell {sell.id} of {sell.amount} {base} with {free} free")
    refused = [r for r in journal.rows("sell_result")
               if r.data.get("label") == "BALANCE_NOT_ENOUGH"]
    oversells += len(refused)
    detail.extend(f"sell {r.data.get('text')} refused: BALANCE_NOT_ENOUGH" for r in refused)
    return Exposure(len(orders), duplicates, oversells, len(buys), len(sells), tuple(detail))
