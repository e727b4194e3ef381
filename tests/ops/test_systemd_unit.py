"""systemd/sniper.service: parsed and checked for the settings operations rely on, and verified
with ``systemd-analyze verify`` where it is available."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parents[2] / "systemd" / "sniper.service"

Unit = dict[str, dict[str, list[str]]]


def parse_unit(text: str) -> Unit:
    """Sections -> key -> every value in order (systemd keys may repeat, unlike configparser)."""
    unit: Unit = {}
    section: dict[str, list[str]] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = unit.setdefault(line[1:-1], {})
            continue
        assert section is not None, f"setting outside a section: {line!r}"
        assert "=" in line, f"not a key=value line: {line!r}"
        key, _, value = line.partition("=")
        section.setdefault(key.strip(), []).append(value.strip())
    return unit


@pytest.fixture(scope="module")
def unit() -> Unit:
    return parse_unit(UNIT.read_text(encoding="utf-8"))


def one(unit: Unit, section: str, key: str) -> str:
    values = unit[section].get(key)
    assert values, f"[{section}] {key}= is missing"
    assert len(values) == 1, f"[{section}] {key}= is set {len(values)} times"
    return values[0]


def test_parser_keeps_repeated_keys() -> None:
    parsed = parse_unit("[S]\n# c\nA=1\nA=2\nB = x y\n")
    assert parsed == {"S": {"A": ["1", "2"], "B": ["x y"]}}


def test_sections(unit: Unit) -> None:
    assert set(unit) == {"Unit", "Service", "Install"}
    assert one(unit, "Install", "WantedBy") == "multi-user.target"


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("Type", "notify"),
        ("NotifyAccess", "main"),
        ("Restart", "on-failure"),
        ("RestartPreventExitStatus", "78"),
        ("ExecStart", "/usr/local/bin/sniper run --config /etc/sniper/config.yaml"),
        ("KillSignal", "SIGTERM"),
        ("DynamicUser", "yes"),
        ("StateDirectory", "sniper"),
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("ProtectKernelTunables", "yes"),
        ("ProtectKernelModules", "yes"),
        ("ProtectKernelLogs", "yes"),
        ("ProtectControlGroups", "yes"),
        ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"),
        ("RestrictNamespaces", "yes"),
        ("LockPersonality", "yes"),
        ("MemoryDenyWriteExecute", "yes"),
        ("SystemCallArchitectures", "native"),
        ("CapabilityBoundingSet", ""),
    ],
)
def test_service_settings(unit: Unit, key: str, expected: str) -> None:
    assert one(unit, "Service", key) == expected


@pytest.mark.parametrize("key", ["WatchdogSec", "RestartSec", "TimeoutStopSec"])
def test_timers_are_positive_seconds(unit: Unit, key: str) -> None:
    assert int(one(unit, "Service", key)) > 0


def test_watchdog_leaves_room_to_pet(unit: Unit) -> None:
    # The daemon pets at half the timeout; a timeout under 10 s would restart on a GC pause.
    assert int(one(unit, "Service", "WatchdogSec")) >= 10


def test_start_limits(unit: Unit) -> None:
    assert int(one(unit, "Unit", "StartLimitIntervalSec")) > 0
    assert int(one(unit, "Unit", "StartLimitBurst")) > 0


def test_credentials_are_loaded_from_root_owned_files(unit: Unit) -> None:
    creds = unit["Service"]["LoadCredential"]
    assert "gate_api_key:/etc/sniper/gate_api_key" in creds
    assert "gate_api_secret:/etc/sniper/gate_api_secret" in creds
    # ...and never passed as plain environment.
    for env in unit["Service"].get("Environment", []):
        assert "GATE_API" not in env
        assert "TOKEN" not in env


def test_environment(unit: Unit) -> None:
    assert "PYTHONUNBUFFERED=1" in unit["Service"]["Environment"]


def test_syscall_filter(unit: Unit) -> None:
    assert "@system-service" in unit["Service"]["SystemCallFilter"]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not found")
def test_systemd_analyze_verify(tmp_path: Path) -> None:
    text = UNIT.read_text(encoding="utf-8")
    binary = shutil.which("true") or "/bin/true"
    patched = "\n".join(
        f"ExecStart={binary} run --config /etc/sniper/config.yaml"
        if line.startswith("ExecStart=")
        else line
        for line in text.splitlines()
    )
    copy = tmp_path / "sniper.service"
    copy.write_text(patched + "\n", encoding="utf-8")
    result = subprocess.run(  # noqa: S603 - fixed argv, a file we just wrote
        ["systemd-analyze", "verify", str(copy)],  # noqa: S607 - found on PATH above
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    output = result.stdout + result.stderr
    # verify only warns (exit 0) on unknown keys; any line about our file is a finding.
    findings = [line for line in output.splitlines() if str(copy) in line]
    assert result.returncode == 0, output
    assert findings == [], output
