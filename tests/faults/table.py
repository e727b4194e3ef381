"""``python -m tests.faults.table FILE``: the README "Reliability" table from a tally file."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def render(rows: list[dict[str, object]]) -> str:
    lines = [
        "| fault | what the daemon does | test | faults injected | orders placed | duplicates "
        "| oversells | secrets leaked |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['fault']} | {r['behaviour']} | `{r['test']}` | {r['injected']} | {r['orders']} "
            f"| {r['duplicates']} | {r['oversells']} | {r['secrets_leaked']} |"
        )
    totals = {
        k: sum(int(r[k]) for r in rows)
        for k in ("injected", "orders", "duplicates", "oversells", "secrets_leaked")  # type: ignore[call-overload]
    }
    lines.append(
        f"| **total** | | | **{totals['injected']}** | **{totals['orders']}** | "
        f"**{totals['duplicates']}** | **{totals['oversells']}** | **{totals['secrets_leaked']}** |"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    print(render(json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))))
