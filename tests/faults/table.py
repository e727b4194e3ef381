"""``python -m tests.faults.table FILE``: the README "Reliability" table from a tally file.

The tally (``SNIPER_RELIABILITY_OUT``, see ``tests/faults/tally.py``) has one row per fault
test as it ran; the rendered markdown is that table with a totals line, followed by the
guarantees proven by tests outside ``tests/faults`` (referenced, not re-run here).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

COUNTS = ("injected", "orders", "duplicates", "oversells", "secrets_leaked")

REFERENCES: tuple[tuple[str, str, str], ...] = (
    ("dry-run never loads the secret, never signs, never calls an order endpoint",
     "credential loader replaced by one that fails the test; the simulator sees no private "
     "call", "tests/replay/test_dryrun.py::test_dry_run_trades_on_paper_and_never_orders"),
    ("malformed / hostile payloads in the codec (property-based)",
     "every decoder raises only ProtocolError, for arbitrary bytes, envelopes and one bad "
     "field in a valid payload", "tests/core/test_codec_fuzz.py"),
    ("secrets in logs, reprs and error texts",
     "the log redactor masks registered secrets and sensitive keys, nested and in reprs",
     "tests/ops/test_log.py"),
    ("a wrong API secret",
     "INVALID_SIGNATURE logged, exit 78, neither credential in the output",
     "tests/ops/test_daemon_ops.py::"
     "test_wrong_secret_logs_invalid_signature_but_never_the_credentials"),
    ("health/metrics binding", "127.0.0.1 by default; off unless `health.port` is set",
     "tests/ops/test_daemon_ops.py::test_health_and_metrics_endpoint, "
     "tests/ops/test_health.py::test_port_none_means_off"),
    ("systemd unit hardening",
     "DynamicUser, ProtectSystem=strict, empty CapabilityBoundingSet, syscall filter, "
     "RestartPreventExitStatus=78; `systemd-analyze security` score checked",
     "tests/ops/test_systemd_unit.py, tests/ops/test_install.py"),
)


SECTIONS = ("test_network", "test_exchange_answers", "test_exchange_state", "test_process",
            "test_disk_clock", "test_bad_input", "test_security")
"""Row order in the table: by fault family (tests/faults modules), then as the tests ran."""


def _count(row: dict[str, object], key: str) -> int:
    return int(str(row.get(key, 0)))


def qualified_test(test: str) -> str:
    """``test_x::name`` or ``test_x.py::name`` -> ``tests/faults/test_x.py::name``."""
    module, sep, name = test.partition("::")
    if not module.endswith(".py"):
        module += ".py"
    if "/" not in module:
        module = f"tests/faults/{module}"
    return module + sep + name


def _section(row: dict[str, object]) -> int:
    module = qualified_test(str(row["test"])).partition("::")[0].rsplit("/", 1)[-1][:-3]
    return SECTIONS.index(module) if module in SECTIONS else len(SECTIONS)


def render(rows: list[dict[str, object]]) -> str:
    """The markdown: one line per fault test, a totals line, then the references."""
    lines = [
        "| fault | what the daemon does | test | faults injected | orders placed | duplicates "
        "| oversells | secrets leaked |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    rows = sorted(rows, key=_section)
    for r in rows:
        lines.append(
            f"| {r['fault']} | {r['behaviour']} | `{qualified_test(str(r['test']))}` | "
            + " | ".join(str(_count(r, k)) for k in COUNTS) + " |"
        )
    totals = {k: sum(_count(r, k) for r in rows) for k in COUNTS}
    lines.append(
        f"| **total ({len(rows)} tests)** | | | "
        + " | ".join(f"**{totals[k]}**" for k in COUNTS) + " |"
    )
    lines += [
        "",
        "Proven by tests outside the fault suite (referenced, not counted above):",
        "",
        "| guarantee | what is checked | test |",
        "|---|---|---|",
    ]
    lines += [f"| {what} | {how} | `{test}` |" for what, how, test in REFERENCES]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m tests.faults.table TALLY.json", file=sys.stderr)
        return 2
    rows = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    print(render(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
