"""docs/simulator.md: every ``--fault`` item its table documents is one Faults.from_spec takes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sniper.sim.faults import Faults

DOC = Path(__file__).resolve().parents[2] / "docs" / "simulator.md"

# placeholder in the table -> a value of its kind
EXAMPLES = {"NNN": "503", "COUNT": "2", "PREFIX": "/spot/orders", "MS": "150", "N": "3",
            "P": "0.25", "S": "30"}


def documented_items() -> list[str]:
    """The CLI forms in the first column of the fault table, placeholders filled in."""
    text = DOC.read_text(encoding="utf-8")
    table = text[text.index("| item | effect |"):text.index("\n\n", text.index("| item |"))]
    items = []
    for row in table.splitlines()[2:]:
        first_cell = row.split("|")[1]
        for form in re.findall(r"`([^`]+)`", first_cell):
            items.append(re.sub(r"[A-Z]+", lambda m: EXAMPLES.get(m[0], m[0]), form))
    return items


def test_the_table_documents_every_cli_fault() -> None:
    names = {item.partition("=")[0] for item in documented_items()}
    assert names >= {"skew_ms", "http503", "reset_http", "delay_http_ms", "hostile_http",
                     "drop_frames", "drop_prob", "delay_ms", "hostile_frames", "skip_book",
                     "reorder_book", "order_hang", "order_close", "drop_ws_every_s", "seed"}


@pytest.mark.parametrize("item", documented_items())
def test_documented_item_parses(item: str) -> None:
    faults = Faults.from_spec(item)
    name = item.partition("=")[0]
    if name.startswith("http") and "@spot." in item:
        fault = faults.take_ws_api_fault("spot.order_place")
        assert fault is not None
        assert fault.status == 503
        assert faults.take_http_fault("/spot/orders") is None  # REST unaffected
    elif name.startswith(("http", "reset_http", "delay_http", "hostile_http")):
        assert faults.take_http_fault("/spot/orders") is not None
