"""Disk full or a locked journal mid-run, and an exchange clock far from ours.

**Disk full / journal unwritable.** A tiny tmpfs needs mount privileges and
``chmod``/``chattr`` do not stop root, so the test uses the kernel's per-process file-size
limit instead: ``prlimit(RLIMIT_FSIZE)`` on the running daemon (its own child, no privilege
needed). Every ``write()`` that would end past the limit then fails with ``EFBIG`` (Python
ignores ``SIGXFSZ``), exactly where a full disk fails with ``ENOSPC``: SQLite reports
``SQLITE_IOERR_WRITE`` on the next commit. The daemon's output goes to a pipe (not a file)
so the limit does not silence its log. No test hook, no ``LD_PRELOAD``: the daemon's real
write path fails. The second case holds the
journal's write lock from another process (an operator's ``sqlite3`` shell left in a
transaction): the daemon's next write times out (``database is locked``).

**Clock skew.** The simulator's clock runs 90 s ahead: beyond Gate's 60 s signature window
for anyone who does not correct it. The daemon measures the offset at start-up and, past
30 s, refuses to arm or fire (a host clock that wrong is broken), says why in its log, keeps
polling, fails ``/healthz`` and ``sniper doctor`` says FAIL.
"""

from __future__ import annotations

import asyncio
import os
import resource
import sqlite3
import sys
from decimal import Decimal
from typing import Any

import httpx
import pytest

from sniper.sim.server import SimServer
from tests.e2e.conftest import (
    E2E,
    PAIRS_PATH,
    REPO,
    START_TIMEOUT_S,
    DaemonProcess,
    builtin_scenario,
    our_orders,
)
from tests.faults.conftest import free_port, json_logs, run_sniper, wait_until
from tests.faults.tally import exposure, record

PAIR = "NEWCOIN_USDT"
LATE = "LATECOIN_USDT"
QUOTE_AMOUNT = Decimal("50")
SKEW_MS = 90_000


def with_late_listing() -> dict[str, Any]:
    """``new_listing_fast`` plus LATECOIN_USDT, scripted far in the future: the test lists it
    on demand (``engine.list_pair``) once the disk is full."""
    raw = builtin_scenario("new_listing_fast")
    raw["listings"].append({**raw["listings"][0], "pair": LATE, "appear_at_s": 600,
                            "announce_lead_s": None})
    return raw


async def start_daemon_piped(e2e: E2E, config: os.PathLike[str]) -> tuple[DaemonProcess,
                                                                         asyncio.Task[None]]:
    """Like ``E2E.start_daemon`` but with the output on a pipe copied to the log file by the
    test process (a file-size limit on the daemon must not stop its log)."""
    sim = e2e.sim
    assert sim is not None
    env = dict(os.environ)
    env.pop("SNIPER_CRASH_AFTER", None)
    env.update(GATE_API_KEY=sim.credentials.key, GATE_API_SECRET=sim.credentials.secret,
               PYTHONUNBUFFERED="1")
    baseline = asyncio.ensure_future(sim.events.wait_for(
        lambda e: e.kind == "http_out" and e.name == PAIRS_PATH, timeout_s=START_TIMEOUT_S))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sniper", "run", "--config", str(config),
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT, env=env, cwd=REPO,
    )
    log_path = e2e.tmp / f"daemon-{len(e2e.daemons)}.log"

    async def pump() -> None:
        assert proc.stdout is not None
        with log_path.open("ab") as log:
            while chunk := await proc.stdout.read(65536):
                log.write(chunk)
                log.flush()

    pumping = asyncio.get_running_loop().create_task(pump())
    daemon = DaemonProcess(proc, log_path)
    e2e.daemons.append(daemon)
    exited = asyncio.ensure_future(proc.wait())
    await asyncio.wait({baseline, exited}, return_when=asyncio.FIRST_COMPLETED)
    exited.cancel()
    if not baseline.done():
        baseline.cancel()
        pytest.fail(f"daemon exited before its baseline\n{daemon.describe()}")
    baseline.result()
    e2e.release_clock()
    return daemon, pumping


def resting_tp(sim: SimServer) -> list[Any]:
    return [o for o in sim.engine.list_orders(sim.uid, PAIR, "open")
            if (o.side, o.time_in_force) == ("sell", "gtc")]


@pytest.mark.parametrize("how", ["disk_full", "locked"])
async def test_journal_unwritable_mid_run_stops_trading_with_a_clear_error(
    e2e: E2E, how: str
) -> None:
    sim = await e2e.start_sim(with_late_listing())
    config = e2e.write_config(exit_={"take_profit_pct": "900"})
    daemon, pumping = await start_daemon_piped(e2e, config)
    placed = await e2e.wait_journal("sell_result", PAIR, daemon=daemon, timeout_s=20,
                                    where=lambda r: r.data.get("outcome") == "ok")
    tp_id = placed.data["id"]
    assert [o.id for o in resting_tp(sim)] == [tp_id]
    journal_path = e2e.state_dir / "journal.sqlite3"

    locker: sqlite3.Connection | None = None
    if how == "disk_full":
        # the disk is full from now on (for the daemon): every file write past byte 1 fails
        _, hard = resource.prlimit(daemon.pid, resource.RLIMIT_FSIZE)
        resource.prlimit(daemon.pid, resource.RLIMIT_FSIZE, (1, hard))
    else:
        # another process (an operator's sqlite3 shell) holds the journal's write lock
        locker = sqlite3.connect(journal_path, timeout=0, isolation_level=None)
        locker.execute("BEGIN IMMEDIATE")
    sim.dispatch(sim.engine.list_pair(LATE))  # a new listing: arming it must be journaled

    code = await daemon.wait_exit(20)
    await pumping
    if locker is not None:
        locker.execute("ROLLBACK")
        locker.close()
    assert code == 1, daemon.describe()
    fatal = [e for e in json_logs(daemon.log_text()) if e.get("event") == "fatal"]
    assert fatal, daemon.describe()
    assert fatal[0]["kind"] == "JournalError"
    assert str(journal_path) in fatal[0]["error"], fatal[0]
    assert "not writable" in fatal[0]["error"], fatal[0]
    assert ("disk I/O error" if how == "disk_full" else "locked") in fatal[0]["error"]
    # it stopped buying (the new listing was never armed, nothing ordered on it) and left
    # the take-profit resting on the exchange
    assert not e2e.journal.rows("armed", LATE)
    assert not our_orders(sim, LATE)
    assert [o.id for o in resting_tp(sim)] == [tp_id]

    # Space is back: the journal is intact, the restarted daemon adopts the take-profit (no
    # second sell) and, LATECOIN now being part of its baseline, never buys it.
    second = await e2e.start_daemon(config, release=False)
    for _ in range(3):
        await e2e.wait_sim(lambda e: e.kind == "ws_out" and e.name == "spot.order_book_update")
    assert [o.id for o in our_orders(sim, PAIR) if o.side == "sell"] == [tp_id]
    assert [o.id for o in resting_tp(sim)] == [tp_id]
    assert not our_orders(sim, LATE)
    assert second.running, second.describe()

    counts = exposure(sim, e2e.journal, QUOTE_AMOUNT)
    record(
        "disk full mid-run (`RLIMIT_FSIZE` on the daemon: writes fail with EFBIG)"
        if how == "disk_full" else "journal write-locked by another process mid-run",
        "JournalError naming the file; stops buying, exits 1, take-profit left resting; "
        "journal intact on restart",
        f"test_disk_clock.py::test_journal_unwritable_mid_run_stops_trading_with_a_clear_error"
        f"[{how}]",
        injected=1, orders=counts.orders, duplicates=counts.duplicates,
        oversells=counts.oversells,
    )
    assert counts.duplicates == 0, counts.detail
    assert counts.oversells == 0, counts.detail


async def test_clock_skew_beyond_gates_window_refuses_to_arm_and_says_why(e2e: E2E) -> None:
    # The simulator's script follows its own (skewed) clock: script the listing that much
    # later so that it still appears after the daemon's baseline.
    raw = builtin_scenario("new_listing_fast")
    raw["listings"][0]["appear_at_s"] += SKEW_MS / 1000
    sim = await e2e.start_sim(raw)
    sim.faults.set_clock_skew(SKEW_MS)
    port = free_port()
    path = e2e.write_config()
    config = path.read_text("utf-8") + f"health: {{port: {port}}}\n"
    path.write_text(config, encoding="utf-8")
    daemon = await e2e.start_daemon(path)

    skipped = await e2e.wait_journal("skipped", PAIR, daemon=daemon)
    assert skipped.data["reason"] == "clock_skew"
    # it keeps polling (and would still manage exits), but arms and fires nothing
    for _ in range(3):
        await e2e.wait_sim(lambda e: e.kind == "http_out" and e.name == PAIRS_PATH)
    await wait_until(lambda: sim.engine.pair_record(PAIR).trade_status == "tradable",
                     "the listing opened", daemon=daemon)
    assert not e2e.journal.rows("armed")
    assert not our_orders(sim)
    assert not sim.events.find("order_in")
    said = [e for e in json_logs(daemon.log_text()) if e.get("event") == "clock_skew"]
    assert said, daemon.describe()
    assert said[0]["level"] == "error"
    assert abs(said[0]["offset_ms"] - SKEW_MS) < 5_000
    assert "not arming or firing" in said[0]["detail"]

    async with httpx.AsyncClient(timeout=5.0) as client:
        health = await client.get(f"http://127.0.0.1:{port}/healthz")
    assert health.status_code == 503
    assert health.json()["checks"]["clock_skew"]["ok"] is False
    doctor = await run_sniper("doctor", "--config", str(path), env={
        "GATE_API_KEY": sim.credentials.key, "GATE_API_SECRET": sim.credentials.secret})
    assert doctor.code == 1, doctor
    clock_line = next(line for line in doctor.stdout.splitlines() if " clock " in line)
    assert "[FAIL]" in clock_line, doctor.stdout
    assert daemon.running

    counts = exposure(sim, e2e.journal, QUOTE_AMOUNT)
    record(
        f"exchange clock {SKEW_MS // 1000} s ahead (beyond Gate's 60 s window)",
        "refuses to arm or fire (journal `skipped: clock_skew`), logs why, keeps polling; "
        "/healthz 503, doctor FAIL",
        "test_disk_clock.py::test_clock_skew_beyond_gates_window_refuses_to_arm_and_says_why",
        injected=1, orders=counts.orders, duplicates=counts.duplicates,
        oversells=counts.oversells,
    )
    assert counts.orders == 0
    assert counts.duplicates == counts.oversells == 0, counts.detail
