"""sniper.log: structlog configuration and secret redaction in every rendering path."""

from __future__ import annotations

import io
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import orjson
import pytest
import structlog
from structlog.testing import capture_logs

from sniper.errors import ConfigError
from sniper.log import (
    MASK,
    configure_logging,
    get_logger,
    is_sensitive_key,
    redactor,
    register_secret,
)

SECRET = "5f2c1e9a7b3d4c6e8f0a1b2c3d4e5f60718293a4b5c6d7e8f9a0b1c2d3e4f5a6"
API_KEY = "a1b2c3d4e5f60718293a4b5c6d7e8f90"


@pytest.fixture(autouse=True)
def _isolated_logging() -> Iterator[None]:
    saved = structlog.get_config()
    saved_processors = list(saved["processors"])
    yield
    redactor().clear()
    structlog.reset_defaults()
    structlog.configure(
        processors=saved_processors,
        wrapper_class=saved["wrapper_class"],
        context_class=saved["context_class"],
        logger_factory=saved["logger_factory"],
        cache_logger_on_first_use=saved["cache_logger_on_first_use"],
    )


class Leaky:
    """An object that puts the secret in its repr, as a careless dataclass would."""

    def __repr__(self) -> str:
        return f"Leaky(secret={SECRET})"


def _log_everything(name: str = "t") -> None:
    log = get_logger(name)
    log.info("plain", value=SECRET, inside=f"prefix-{SECRET}-suffix")
    log.info(f"in the message {SECRET}")
    log.info("positional %s", SECRET)
    log.info("nested", payload={"a": [SECRET, {"b": (SECRET,)}]}, raw=SECRET.encode())
    log.info("repr path", obj=Leaky(), objs=[Leaky()])
    try:
        raise ValueError(f"signature mismatch for {SECRET}")
    except ValueError:
        log.exception("failed")
    log.error("with exc_info", exc_info=RuntimeError(f"boom {SECRET}"))


def test_capture_logs_masks_values_messages_and_nested() -> None:
    register_secret(SECRET)
    with capture_logs(processors=[redactor()]) as entries:
        log = get_logger("t")
        log.info("plain", value=SECRET, inside=f"x{SECRET}y", n=3, f=1.5, flag=True, none=None)
        log.info(f"message {SECRET}")
        log.info("nested", payload={"a": [SECRET, {"b": (SECRET,)}]}, raw=SECRET.encode())
        log.info("repr", obj=Leaky())
    assert SECRET not in repr(entries)
    assert entries[0]["value"] == MASK
    assert entries[0]["inside"] == f"x{MASK}y"
    assert (entries[0]["n"], entries[0]["f"], entries[0]["flag"], entries[0]["none"]) == (
        3,
        1.5,
        True,
        None,
    )
    assert entries[1]["event"] == f"message {MASK}"
    assert entries[2]["payload"] == {"a": [MASK, {"b": [MASK]}]}
    assert entries[2]["raw"] == MASK.encode()
    assert entries[3]["obj"] == f"Leaky(secret={MASK})"


@pytest.mark.parametrize(
    ("key", "sensitive"),
    [
        ("KEY", True),
        ("SIGN", True),
        ("signature", True),
        ("api_secret", True),
        ("GATE_API_SECRET", True),
        ("api-key", True),
        ("bot_token", True),
        ("Authorization", True),
        ("password", True),
        ("pair", False),
        ("keys_seen", False),
        ("tokens", False),
        ("Timestamp", False),
        ("text", False),
    ],
)
def test_sensitive_key_names(key: str, sensitive: bool) -> None:
    assert is_sensitive_key(key) is sensitive


def test_sensitive_keys_are_masked_even_when_not_registered() -> None:
    with capture_logs(processors=[redactor()]) as entries:
        get_logger("t").info(
            "request",
            headers={"KEY": API_KEY, "SIGN": "deadbeef", "Timestamp": "1700000000"},
            api_secret="unregistered-secret",
            pair="BTC_USDT",
        )
    (entry,) = entries
    assert entry["headers"] == {"KEY": MASK, "SIGN": MASK, "Timestamp": "1700000000"}
    assert entry["api_secret"] == MASK
    assert entry["pair"] == "BTC_USDT"


def test_register_ignores_empty_and_tiny_values_and_adds_stripped_form() -> None:
    register_secret(None)
    register_secret("")
    register_secret("ab")
    register_secret(f"  {SECRET}\n")
    assert redactor().scrub("ab cd") == "ab cd"
    assert redactor().scrub(f"x{SECRET}y") == f"x{MASK}y"


def test_decimal_is_logged_exactly() -> None:
    assert redactor().scrub({"price": Decimal("0.00012300")}) == {"price": "0.00012300"}


def test_keys_and_deep_or_cyclic_structures_are_scrubbed() -> None:
    register_secret(SECRET)
    assert redactor().scrub({SECRET: 1, 7: "x"}) == {MASK: 1, "7": "x"}
    deep: list[object] = [SECRET]
    for _ in range(20):
        deep = [deep]
    assert SECRET not in repr(redactor().scrub(deep))
    cyclic: list[object] = [SECRET]
    cyclic.append(cyclic)
    assert SECRET not in repr(redactor().scrub(cyclic))


def test_longest_secret_masked_whole() -> None:
    register_secret("abcd")
    register_secret("abcdefgh")
    assert redactor().scrub("-abcdefgh-") == f"-{MASK}-"


def test_json_rendering_never_contains_the_secret() -> None:
    register_secret(SECRET)
    out = io.BytesIO()
    configure_logging("debug", "json", stream=out)
    _log_everything()
    raw = out.getvalue()
    assert SECRET.encode() not in raw
    lines = [orjson.loads(line) for line in raw.splitlines()]
    assert len(lines) == 7
    events = {line["event"] for line in lines}
    assert "failed" in events
    failed = next(line for line in lines if line["event"] == "failed")
    assert failed["level"] == "error"
    assert "ValueError: signature mismatch for ***" in failed["exception"]
    assert "Traceback" in failed["exception"]
    with_exc = next(line for line in lines if line["event"] == "with exc_info")
    assert f"boom {MASK}" in with_exc["exception"]
    assert next(line for line in lines if line["event"] == "repr path")["obj"] == (
        f"Leaky(secret={MASK})"
    )
    assert all("timestamp" in line for line in lines)


def test_pretty_rendering_never_contains_the_secret() -> None:
    register_secret(SECRET)
    out = io.StringIO()
    configure_logging("info", "pretty", stream=out)
    _log_everything()
    text = out.getvalue()
    assert SECRET not in text
    assert "signature mismatch for ***" in text
    assert "Leaky(secret=***)" in text


def test_level_filtering() -> None:
    out = io.BytesIO()
    configure_logging("warning", "json", stream=out)
    log = get_logger("t")
    log.debug("d")
    log.info("i")
    log.warning("w")
    log.error("e")
    assert [orjson.loads(line)["event"] for line in out.getvalue().splitlines()] == ["w", "e"]


class _FakeTty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_auto_format_follows_the_terminal() -> None:
    tty = _FakeTty()
    configure_logging("info", "auto", stream=tty)
    get_logger("t").info("hello", a=1)
    assert "hello" in tty.getvalue()
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(tty.getvalue())

    pipe = io.BytesIO()
    configure_logging("info", "auto", stream=pipe)
    get_logger("t").info("hello", a=1)
    assert orjson.loads(pipe.getvalue())["a"] == 1


def test_default_stream_is_the_current_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    register_secret(SECRET)
    configure_logging("info", "json")
    get_logger("sniper.test").info("started", secret_ish=SECRET, note=SECRET)
    captured = capsys.readouterr()
    assert captured.out == ""
    line: dict[str, Any] = orjson.loads(captured.err)
    assert line["event"] == "started"
    assert line["logger"] == "sniper.test"
    assert line["note"] == MASK
    assert line["secret_ish"] == MASK


def test_loggers_created_by_name_positionally_work_too(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("info", "json")
    structlog.get_logger("positional.name").info("ok")
    line = orjson.loads(capsys.readouterr().err)
    assert (line["event"], line["logger"]) == ("ok", "positional.name")


@pytest.mark.parametrize(
    ("level", "fmt", "path"),
    [("verbose", "json", "log.level"), ("info", "xml", "log.format")],
)
def test_bad_settings_are_config_errors(level: str, fmt: str, path: str) -> None:
    with pytest.raises(ConfigError) as info:
        configure_logging(level, fmt)
    assert info.value.path == path


def test_pretty_needs_a_text_stream() -> None:
    with pytest.raises(ConfigError):
        configure_logging("info", "pretty", stream=io.BytesIO())
