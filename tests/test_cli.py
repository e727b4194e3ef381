"""The CLI contract: exit codes and check-config."""

from __future__ import annotations

from pathlib import Path

import pytest

from sniper import __version__
from sniper.cli import EXIT_CONFIG, EXIT_OK, EXIT_USAGE, main

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = str(ROOT / "config.example.yaml")


@pytest.fixture
def no_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("GATE_API_KEY", "GATE_API_SECRET", "GATE_API_KEY_FILE", "GATE_API_SECRET_FILE",
                "CREDENTIALS_DIRECTORY"):
        monkeypatch.delenv(var, raising=False)


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == EXIT_OK
    assert __version__ in capsys.readouterr().out


def test_usage_error_is_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["no-such-command"]) == EXIT_USAGE
    assert main(["check-config"]) == EXIT_USAGE


def test_check_config_example_passes_with_secrets(
    monkeypatch: pytest.MonkeyPatch, no_secrets: None, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GATE_API_KEY", "key-0123456789")
    monkeypatch.setenv("GATE_API_SECRET", "very-secret-value")
    assert main(["check-config", "--config", EXAMPLE]) == EXIT_OK
    out = capsys.readouterr()
    assert "quote_amount" in out.out
    assert "very-secret-value" not in out.out + out.err
    assert "key-0123456789" not in out.out + out.err


def test_check_config_dry_run_needs_no_secret(no_secrets: None) -> None:
    assert main(["check-config", "--config", EXAMPLE, "--dry-run"]) == EXIT_OK


def test_missing_secret_exits_78(no_secrets: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", "--config", EXAMPLE]) == EXIT_CONFIG
    assert "GATE_API_KEY" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("yaml_text", "key"),
    [
        ("entry:\n  quote_amount: \"-1\"\n", "entry.quote_amount"),
        ("entry:\n  quote_amount: \"5\"\n  surprise: 1\n", "entry.surprise"),
    ],
)
def test_bad_config_exits_78_naming_key(
    tmp_path: Path, no_secrets: None, capsys: pytest.CaptureFixture[str], yaml_text: str, key: str
) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml_text)
    assert main(["check-config", "--config", str(cfg), "--dry-run"]) == EXIT_CONFIG
    assert key in capsys.readouterr().err
