"""Secrets: a full listing with a known key pair, then every artifact is scanned for them.

The daemon buys, places its take-profit and closes (``new_listing_fast``, debug-level JSON
logs, health/metrics on). Meanwhile ``sniper record`` records the same market for a few
seconds with the credentials in its environment; afterwards ``sniper replay`` turns the
recording into a report, and ``sniper doctor`` and ``sniper check-config`` run with the same
environment. Every byte they produced is searched for the API secret and the API key (raw,
and hex/base64 encoded): daemon output, the journal (and its WAL), ``/metrics`` and
``/healthz``, the recording, the report directory, and the output of every command.

Also here: the health/metrics endpoint listens on 127.0.0.1 only (read from the kernel's
socket table). Covered elsewhere and referenced in the Reliability table: dry-run never loads
a secret (``tests/replay/test_dryrun.py``), the systemd unit's hardening
(``tests/ops/test_systemd_unit.py``, ``tests/ops/test_install.py``), log redaction
(``tests/ops/test_log.py``) and secrets on an auth-error path (``tests/ops/test_daemon_ops.py``).
"""

from __future__ import annotations

import asyncio
import base64
import signal
from decimal import Decimal
from pathlib import Path

import httpx

from sniper.sim.server import SimServer
from tests.e2e.conftest import E2E, builtin_scenario
from tests.faults.conftest import free_port, json_logs, run_sniper
from tests.faults.tally import exposure, record

PAIR = "NEWCOIN_USDT"
QUOTE_AMOUNT = Decimal("50")
RECORD_S = 4.0


def forms(value: str) -> list[bytes]:
    """The byte forms a leaked credential could take in an artifact."""
    raw = value.encode()
    return [raw, raw.hex().encode(), base64.b64encode(raw), base64.urlsafe_b64encode(raw)]


def credentials_of(sim: SimServer) -> dict[str, str]:
    return {"secret": sim.credentials.secret, "key": sim.credentials.key}


def leaks(blob: bytes, credentials: dict[str, str]) -> list[str]:
    """Which of ``credentials`` (name -> value) appear in ``blob``, in any of their forms."""
    found = []
    for name, value in credentials.items():
        if any(form in blob for form in forms(value)):
            found.append(name)
    return found


def listening_on(port: int) -> set[str]:
    """Local addresses (hex, as in /proc/net/tcp*) with a LISTEN socket on ``port``."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text(encoding="ascii").splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            address, _, hex_port = fields[1].partition(":")
            if int(hex_port, 16) == port and fields[3] == "0A":
                found.add(address)
    return found


async def test_no_secret_in_any_artifact_of_a_full_run(e2e: E2E) -> None:
    sim = await e2e.start_sim(builtin_scenario("new_listing_fast"))
    port = free_port()
    path = e2e.write_config()
    path.write_text(path.read_text("utf-8").replace("level: info", "level: debug")
                    + f"health: {{port: {port}}}\n", encoding="utf-8")
    creds = {"GATE_API_KEY": sim.credentials.key, "GATE_API_SECRET": sim.credentials.secret}
    daemon = await e2e.start_daemon(path)
    recording = e2e.tmp / "market.rec"
    recorder = asyncio.ensure_future(run_sniper(
        "record", "--config", str(path), "--out", str(recording), "--duration-s", str(RECORD_S),
        env=creds, timeout_s=RECORD_S + 20))

    closed = await e2e.wait_journal("closed", PAIR, daemon=daemon, timeout_s=25)
    assert closed.data["reason"] == "take_profit"
    assert listening_on(port) == {"0100007F"}, "health/metrics must listen on 127.0.0.1 only"
    base = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(timeout=5.0) as client:
        metrics = await client.get(f"{base}/metrics")
        health = await client.get(f"{base}/healthz")
    assert metrics.status_code == 200
    assert "sniper_orders_total" in metrics.text
    daemon.send_signal(signal.SIGTERM)
    assert await daemon.wait_exit(15) == 0, daemon.describe()

    recorded = await recorder
    assert recorded.code == 0, recorded
    rec_files = sorted(e2e.tmp.glob("market.rec*"))
    assert rec_files, "the recording exists"
    report_dir = e2e.tmp / "report"
    replayed = await run_sniper("replay", str(recording), "--config", str(path),
                                "--report", str(report_dir), env=creds, timeout_s=60)
    assert replayed.code == 0, replayed
    doctor = await run_sniper("doctor", "--config", str(path), env=creds)
    assert "credentials" in doctor.stdout, doctor  # it used (and checked) the key pair
    checked = await run_sniper("check-config", "--config", str(path), env=creds)
    assert checked.code == 0, checked

    artifacts: dict[str, bytes] = {
        "daemon output (JSON logs)": daemon.log_path.read_bytes(),
        "/metrics": metrics.content,
        "/healthz": health.content,
    }
    for file in sorted(e2e.state_dir.iterdir()):
        artifacts[f"state: {file.name}"] = file.read_bytes()
    for file in rec_files:
        artifacts[f"recording: {file.name}"] = file.read_bytes()
    report_files = [f for f in sorted(report_dir.rglob("*")) if f.is_file()]
    assert report_files, "the replay wrote a report"
    for file in report_files:
        artifacts[f"replay report: {file.name}"] = file.read_bytes()
    for name, done in (("record", recorded), ("replay", replayed), ("doctor", doctor),
                       ("check-config", checked)):
        artifacts[f"{name} stdout+stderr"] = (done.stdout + done.stderr).encode()
    assert len(json_logs(daemon.log_text())) > 10  # the logs are really there, as JSON
    assert any(len(blob) > 1000 for name, blob in artifacts.items() if "journal" in name)

    creds_of_run = credentials_of(sim)
    leaked = {name: found for name, blob in artifacts.items()
              if (found := leaks(blob, creds_of_run))}
    counts = exposure(sim, e2e.journal, QUOTE_AMOUNT)
    record(
        f"secret scan of every artifact of a full run ({len(artifacts)} artifacts)",
        "no API secret or key (raw, hex, base64) in logs, journal, metrics, health, "
        "recording, replay report, doctor / check-config / record / replay output",
        "test_security.py::test_no_secret_in_any_artifact_of_a_full_run",
        injected=0, orders=counts.orders, duplicates=counts.duplicates,
        oversells=counts.oversells, secrets_leaked=sum(len(v) for v in leaked.values()),
    )
    assert not leaked, leaked
    assert counts.duplicates == counts.oversells == 0, counts.detail


def test_the_scan_finds_a_planted_secret() -> None:
    """The scanner itself can fail: a credential planted in any of its forms is found."""
    creds = {"secret": "0123456789abcdef" * 4, "key": "fedcba9876543210" * 2}
    for name, value in creds.items():
        for form in forms(value):
            assert leaks(b"prefix " + form + b" suffix", creds) == [name]
    assert leaks(b"nothing to see", creds) == []
