"""Bad input: a corrupt journal, broken configs and secrets, hostile frames and REST bodies.

* A corrupt journal (not a database, a damaged page, a truncated file, an undecodable event):
  ``sniper run`` refuses to start, names the file, exits 1, and leaves the file as it was.
* Configs with wrong types, negative or absurd amounts, unknown keys, missing or unreadable
  secrets: ``sniper check-config`` and ``sniper run`` exit 78 naming the key; a secret file
  readable by group/others is a warning (exit 0), and the secret itself is never printed.
* Hostile peers: garbage WS frames on every connection (market, private, trading API) and
  garbage ``200`` REST bodies (pair list, book snapshot, the take-profit's placement) while a
  listing is bought: the daemon logs protocol errors, keeps going, buys once, sells once.
  (The codec itself is fuzzed with hypothesis in ``tests/core/test_codec_fuzz.py``.)
"""

from __future__ import annotations

import hashlib
import stat
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from sniper.app.journal import Journal
from sniper.sim.faults import Faults
from tests.e2e.conftest import E2E, builtin_scenario, our_orders
from tests.faults.conftest import json_logs, run_sniper
from tests.faults.tally import exposure, record

PAIR = "NEWCOIN_USDT"
QUOTE_AMOUNT = Decimal("50")
KEY = "k" * 32
SECRET = "s3cr3t-" * 8
CREDS = {"GATE_API_KEY": KEY, "GATE_API_SECRET": SECRET}
CONFIG_ERROR = 78


def offline_config(tmp: Path, **sections: Any) -> dict[str, Any]:
    """A valid config whose exchange is a closed local port (nothing may be contacted)."""
    config: dict[str, Any] = {
        "exchange": {"rest_url": "http://127.0.0.1:9/api/v4", "ws_url": "ws://127.0.0.1:9/ws/v4/"},
        "state_dir": str(tmp / "state"),
        "entry": {"quote_amount": "20"},
        "log": {"format": "json"},
    }
    for name, values in sections.items():
        config.setdefault(name, {}).update(values)
    return config


def write_yaml(path: Path, data: Any) -> Path:
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


# -- a corrupt journal -----------------------------------------------------------------------


def a_journal(path: Path) -> None:
    """A real journal with a listing's worth of events (and the run id already set)."""
    journal = Journal(path)
    for i in range(300):
        journal.append("armed", f"C{i}_USDT", {"texts": [f"t-x-b{n}" for n in range(20)]},
                       ts_ms=1_700_000_000_000 + i)
    journal.set_flag("run_id", "0123456789ab")
    journal.close()


def corrupt(path: Path, how: str) -> None:
    if how == "not_a_database":
        path.write_bytes(b"this is not an SQLite file\n" * 100)
        return
    a_journal(path)
    data = bytearray(path.read_bytes())
    if how == "damaged_page":
        data[4096 * 4:4096 * 4 + 200] = b"\xff" * 200
    elif how == "truncated":
        del data[len(data) // 2 + 100:]
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("how", ["not_a_database", "damaged_page", "truncated"])
async def test_corrupt_journal_refuses_to_start_names_the_file_and_keeps_it(
    tmp_path: Path, how: str
) -> None:
    config = offline_config(tmp_path)
    journal = Path(config["state_dir"]) / "journal.sqlite3"
    journal.parent.mkdir()
    corrupt(journal, how)
    before = hashlib.sha256(journal.read_bytes()).hexdigest()

    done = await run_sniper("run", "--config", str(write_yaml(tmp_path / "c.yaml", config)),
                            env=CREDS)

    assert done.code == 1, done
    assert f"journal {journal}" in done.stderr, done.stderr
    assert "cannot be opened" in done.stderr or "integrity" in done.stderr, done.stderr
    assert hashlib.sha256(journal.read_bytes()).hexdigest() == before, "journal was modified"
    record(
        f"corrupt journal ({how.replace('_', ' ')})",
        "refuses to start, names the file, exit 1, file left byte for byte as it was",
        f"test_bad_input.py::test_corrupt_journal_refuses_to_start_names_the_file_and_keeps_it"
        f"[{how}]",
        injected=1, orders=0,
    )


async def test_journal_with_an_undecodable_event_refuses_to_start(e2e: E2E) -> None:
    sim = await e2e.start_sim("quiet")
    e2e.release_clock()
    config = e2e.write_config()
    journal = e2e.state_dir / "journal.sqlite3"
    e2e.state_dir.mkdir()
    a_journal(journal)
    import sqlite3  # the test damages one row the way a bad write or a bad sector would

    db = sqlite3.connect(journal)
    db.execute("UPDATE events SET data = x'7b22ff' WHERE seq = 7")
    db.commit()
    db.close()
    rows_before = sqlite3.connect(journal).execute("SELECT * FROM events").fetchall()

    done = await run_sniper("run", "--config", str(config), env={
        "GATE_API_KEY": sim.credentials.key, "GATE_API_SECRET": sim.credentials.secret})

    assert done.code == 1, done
    assert f"journal {journal}: event 7 is corrupt" in done.stderr, done.stderr[-3000:]
    assert sqlite3.connect(journal).execute("SELECT * FROM events").fetchall() == rows_before
    assert not our_orders(sim)
    record(
        "journal with an undecodable event",
        "refuses to start (before trading), names the file and the event, exit 1, rows kept",
        "test_bad_input.py::test_journal_with_an_undecodable_event_refuses_to_start",
        injected=1, orders=len(our_orders(sim)),
    )


# -- configs and secrets ------------------------------------------------------------------------

BAD_CONFIGS: list[tuple[str, Any, str]] = [
    # (dotted key, value, what the error must name)
    ("entry.quote_amount", [1, 2], "entry.quote_amount"),
    ("entry.quote_amount", 20.5, "entry.quote_amount"),          # a bare float for money
    ("entry.quote_amount", "-5", "entry.quote_amount"),
    ("entry.quote_amount", "0", "entry.quote_amount"),
    ("entry.quote_amount", "NaN", "entry.quote_amount"),
    ("entry.quote_amount", "twenty", "entry.quote_amount"),
    ("entry.max_slippage_pct", "5000", "entry.max_slippage_pct"),
    ("entry.max_price", "-1", "entry.max_price"),
    ("exit.take_profit_pct", "1e9", "exit.take_profit_pct"),
    ("exit.stop_loss_pct", "150", "exit.stop_loss_pct"),
    ("exit.max_hold_s", "one hour", "exit.max_hold_s"),
    ("risk.max_open_positions", 10_000, "risk.max_open_positions"),
    ("risk.max_quote_per_day", "5", "risk.max_quote_per_day"),    # below one entry
    ("listing.poll_interval_s", 0.001, "listing.poll_interval_s"),
    ("listing.quote_currencies", [], "listing.quote_currencies"),
    ("exchange.order_ttl_ms", 10**9, "exchange.order_ttl_ms"),
    ("exchange.order_path", "pigeon", "exchange.order_path"),
    ("exchange.rest_url", "ftp://example.invalid/api/v4", "exchange"),
    ("entry.quote_amout", "20", "entry.quote_amout"),              # a typo: unknown key
    ("api_secret", "x" * 32, "api_secret"),                        # secrets never from YAML
]


def with_value(config: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(yaml.safe_dump(config))
    *parents, leaf = dotted.split(".")
    node = data
    for name in parents:
        node = node.setdefault(name, {})
    node[leaf] = value
    return data


async def test_bad_configs_exit_78_naming_the_key(tmp_path: Path) -> None:
    base = offline_config(tmp_path)
    problems: list[str] = []
    checked = 0
    for i, (dotted, value, named) in enumerate(BAD_CONFIGS):
        path = write_yaml(tmp_path / f"bad-{i}.yaml", with_value(base, dotted, value))
        commands = [("check-config",)]
        if i % 4 == 0:  # the daemon itself too, for a spread of cases (exit before any I/O)
            commands.append(("run",))
        for command in commands:
            done = await run_sniper(*command, "--config", str(path), env=CREDS)
            checked += 1
            if done.code != CONFIG_ERROR or named not in done.stderr:
                problems.append(f"{command[0]} {dotted}={value!r}: exit {done.code}, "
                                f"stderr {done.stderr.strip()[-300:]!r}")
            if SECRET in done.stdout + done.stderr or KEY in done.stdout + done.stderr:
                problems.append(f"{command[0]} {dotted}: printed a credential")
    assert not (tmp_path / "state").exists(), "a bad config must not touch the state dir"
    record(
        f"bad configs ({len(BAD_CONFIGS)}: wrong types, negative/absurd amounts, unknown keys)",
        "`check-config` and `run` exit 78 naming the key; nothing started",
        "test_bad_input.py::test_bad_configs_exit_78_naming_the_key",
        injected=checked, orders=0,
    )
    assert not problems, "\n".join(problems)


async def test_missing_unreadable_and_exposed_secrets(tmp_path: Path) -> None:
    config = write_yaml(tmp_path / "c.yaml", offline_config(tmp_path))
    secrets = tmp_path / "secrets"
    secrets.mkdir(mode=0o700)
    key_file, secret_file = secrets / "key", secrets / "secret"
    key_file.write_text(KEY + "\n", encoding="utf-8")
    key_file.chmod(0o600)
    empty = secrets / "empty"
    empty.write_text("\n", encoding="utf-8")
    empty.chmod(0o600)
    cases: list[tuple[dict[str, str], str]] = [
        ({}, "GATE_API_KEY"),
        ({"GATE_API_KEY": KEY}, "GATE_API_SECRET"),
        ({"GATE_API_KEY": KEY, "GATE_API_SECRET_FILE": str(secrets / "missing")},
         "GATE_API_SECRET_FILE"),
        ({"GATE_API_KEY_FILE": str(key_file), "GATE_API_SECRET_FILE": str(empty)},
         "GATE_API_SECRET_FILE"),
    ]
    problems: list[str] = []
    for env, named in cases:
        for command in ("check-config", "run"):
            done = await run_sniper(command, "--config", str(config), env=env)
            if done.code != CONFIG_ERROR or named not in done.stderr:
                problems.append(f"{command} {sorted(env)}: exit {done.code}, {done.stderr!r}")

    # a secret file others can read: a warning naming it, the run goes on, nothing printed
    secret_file.write_text(SECRET + "\n", encoding="utf-8")
    secret_file.chmod(0o644)
    assert secret_file.stat().st_mode & stat.S_IROTH
    done = await run_sniper("check-config", "--config", str(config), env={
        "GATE_API_KEY_FILE": str(key_file), "GATE_API_SECRET_FILE": str(secret_file)})
    assert done.code == 0, done
    warning = [line for line in done.stderr.splitlines() if line.startswith("warning:")]
    assert warning, done.stderr
    assert "GATE_API_SECRET_FILE" in warning[0]
    assert "chmod 600" in warning[0]
    assert SECRET not in done.stdout + done.stderr
    assert KEY not in done.stdout + done.stderr
    record(
        "missing / empty / unreadable secrets; secret file readable by others",
        "exit 78 naming the variable; world-readable file: warning, secret never printed",
        "test_bad_input.py::test_missing_unreadable_and_exposed_secrets",
        injected=2 * len(cases) + 1, orders=0,
    )
    assert not problems, "\n".join(problems)


def test_hostile_fault_specs_parse() -> None:
    faults = Faults.from_spec("hostile_frames=3,hostile_http=2@/spot/currency_pairs")
    assert [faults.take_hostile_frame("spot.orders") is not None for _ in range(4)] == [
        True, True, True, False]
    assert faults.take_http_fault("/spot/tickers") is None
    first = faults.take_http_fault("/spot/currency_pairs")
    assert first is not None
    assert (first.mode, first.status) == ("hostile", 200)
    assert faults.take_http_fault("/spot/currency_pairs") is not None
    assert faults.take_http_fault("/spot/currency_pairs") is None


# -- hostile peers --------------------------------------------------------------------------

PROTOCOL_WARNINGS = {"ws_undecodable", "book_push_undecodable", "private_push_undecodable",
                     "poll failed"}


async def test_hostile_frames_and_bodies_are_logged_and_survived(e2e: E2E) -> None:
    sim = await e2e.start_sim(builtin_scenario("new_listing_fast"))
    config = e2e.write_config(exit_={"take_profit_pct": "900"})
    daemon = await e2e.start_daemon(config)
    # after the baseline: garbage ahead of the next 400 frames on every connection, garbage
    # pair lists, and a garbage answer to the take-profit's POST
    sim.faults.hostile_frames(400)
    sim.faults.garble_http(6, path_prefix="/spot/currency_pairs")
    sim.faults.garble_http(1, path_prefix="/spot/orders")

    placed = await e2e.wait_journal("sell_result", PAIR, daemon=daemon, timeout_s=20,
                                    where=lambda r: r.data.get("outcome") == "ok")
    for _ in range(3):
        await e2e.wait_sim(lambda e: e.kind == "http_out" and e.name.endswith("/currency_pairs")
                           and e.status == 200)
    fired = sim.faults.statistics()
    garbage = sim.events.find("ws_out", "hostile")
    assert len({e.conn_id for e in garbage}) >= 3, "market, private and trading connections"
    assert fired.get("http_hostile", 0) >= 6

    warned = {e.get("event") for e in json_logs(daemon.log_text())} & PROTOCOL_WARNINGS
    assert {"ws_undecodable", "poll failed"} <= warned, warned
    assert daemon.running, daemon.describe()
    assert {r.pair for r in e2e.journal.rows("armed")} == {PAIR}, "only the real listing"
    unknown = [r for r in e2e.journal.rows("sell_result") if r.data["outcome"] == "unknown"]
    assert len(unknown) == 1, "the garbled answer to the take-profit is an unknown outcome"
    buys = [o for o in our_orders(sim, PAIR) if o.side == "buy"]
    assert buys
    assert sum((o.filled_total for o in buys), Decimal(0)) <= QUOTE_AMOUNT
    open_sells = [o for o in sim.engine.list_orders(sim.uid, PAIR, "open") if o.side == "sell"]
    assert [o.id for o in open_sells] == [placed.data["id"]]
    counts = exposure(sim, e2e.journal, QUOTE_AMOUNT)
    record(
        "hostile WS frames (every connection) and garbage 200 REST bodies (pair list, order)",
        "logs a protocol error and keeps going; a garbled order answer is reconciled by "
        "client id; one buy set, one take-profit",
        "test_bad_input.py::test_hostile_frames_and_bodies_are_logged_and_survived",
        injected=sum(fired.values()), orders=counts.orders,
        duplicates=counts.duplicates, oversells=counts.oversells,
    )
    assert counts.duplicates == 0, counts.detail
    assert counts.oversells == 0, counts.detail
