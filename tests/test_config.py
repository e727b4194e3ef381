"""Config loading: every error names the key; secrets only from the environment."""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path

import pytest

from sniper.config import effective_config_text, load_config, load_credentials, parse_config
from sniper.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def test_example_config_is_valid() -> None:
    config = load_config(ROOT / "config.example.yaml")
    assert config.entry.quote_amount == Decimal("20")
    assert config.listing.quote_currencies == ("USDT",)
    assert config.risk.max_open_positions == 2
    assert config.exit.trailing_stop_pct is None


@pytest.mark.parametrize(
    ("data", "path", "words"),
    [
        ({"entry": {"quote_amount": "-5"}}, "entry.quote_amount", "greater than 0"),
        ({"entry": {"quote_amount": 20.5}}, "entry.quote_amount", "quoted string"),
        ({"entry": {"quote_amount": "abc"}}, "entry.quote_amount", "not a decimal"),
        ({"entry": {"quote_amount": "NaN"}}, "entry.quote_amount", "finite"),
        ({"entry": {"quote_amount": "1e30"}}, "entry.quote_amount", "less than or equal"),
        ({"entry": {"quote_ammount": "5"}}, "entry.quote_ammount", "unknown key"),
        ({"bogus": 1}, "bogus", "unknown key"),
        ({"listing": {"poll_interval_s": 0}}, "listing.poll_interval_s", "greater than or equal"),
        ({"listing": {"quote_currencies": []}}, "listing.quote_currencies", "at least 1"),
        ({"risk": {"max_open_positions": "two"}}, "risk.max_open_positions", "integer"),
        ({"exit": {"stop_loss_pct": "150"}}, "exit.stop_loss_pct", "less than 100"),
        ({"exchange": {"rest_url": "ftp://x/api/v4"}}, "exchange", "http"),
        ({"exchange": {"rest_url": "https://api.gateio.ws"}}, "exchange", "/api/v4"),
        ({"entry": {"fire_policy": "yolo"}}, "entry.fire_policy", "first_ask"),
    ],
)
def test_bad_config_names_the_key(data: dict[str, object], path: str, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    assert info.value.path == path
    assert words in str(info.value)


def test_buy_start_policy_needs_a_price_cap() -> None:
    with pytest.raises(ConfigError, match="max_price"):
        parse_config({"entry": {"fire_policy": "buy_start"}})
    config = parse_config({"entry": {"fire_policy": "buy_start", "max_price": "0.5"}})
    assert config.entry.max_price == Decimal("0.5")


def test_daily_cap_below_entry_is_rejected() -> None:
    with pytest.raises(ConfigError, match="max_quote_per_day"):
        parse_config({"entry": {"quote_amount": "50"}, "risk": {"max_quote_per_day": "10"}})


def test_unreadable_and_non_mapping_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "list.yaml"
    bad.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(bad)
    broken = tmp_path / "broken.yaml"
    broken.write_text("entry: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(broken)


def test_credentials_from_env_then_files_then_credentials_directory(tmp_path: Path) -> None:
    creds = load_credentials({"GATE_API_KEY": "k1234567890", "GATE_API_SECRET": "s3cr3t-value"})
    assert (creds.key, creds.secret) == ("k1234567890", "s3cr3t-value")

    key_file = tmp_path / "key"
    key_file.write_text("filekey0001\n")
    secret_file = tmp_path / "secret"
    secret_file.write_text("filesecret\n")
    os.chmod(key_file, 0o600)
    os.chmod(secret_file, 0o644)
    warnings: list[str] = []
    creds = load_credentials(
        {"GATE_API_KEY_FILE": str(key_file), "GATE_API_SECRET_FILE": str(secret_file)},
        warnings,
    )
    assert (creds.key, creds.secret) == ("filekey0001", "filesecret")
    assert len(warnings) == 1
    assert "GATE_API_SECRET_FILE" in warnings[0]
    assert "filesecret" not in warnings[0]

    cred_dir = tmp_path / "creds"
    cred_dir.mkdir()
    (cred_dir / "gate_api_key").write_text("dirkey00001")
    (cred_dir / "gate_api_secret").write_text("dirsecret")
    creds = load_credentials({"CREDENTIALS_DIRECTORY": str(cred_dir)})
    assert (creds.key, creds.secret) == ("dirkey00001", "dirsecret")


def test_missing_secret_names_the_variable() -> None:
    with pytest.raises(ConfigError) as info:
        load_credentials({})
    assert info.value.path == "GATE_API_KEY"
    with pytest.raises(ConfigError) as info:
        load_credentials({"GATE_API_KEY": "k"})
    assert info.value.path == "GATE_API_SECRET"


def test_effective_config_masks_credentials() -> None:
    config = parse_config({})
    creds = load_credentials({"GATE_API_KEY": "abcdefghijkl", "GATE_API_SECRET": "topsecret99"})
    text = effective_config_text(config, creds)
    assert "topsecret99" not in text
    assert "abcdefghijkl" not in text
    assert "abcd***" in text
