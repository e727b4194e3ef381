"""sniper.ops.notify with respx (no internet): delivery, failures, drops, shutdown."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import orjson
import pytest
import respx
from structlog.testing import capture_logs

from sniper.config import NotifyConfig
from sniper.errors import ConfigError
from sniper.log import redactor, register_secret
from sniper.ops.metrics import Metrics
from sniper.ops.notify import (
    TELEGRAM_TEXT_LIMIT,
    Notifier,
    TelegramSink,
    WebhookSink,
    build_notifier,
    format_text,
    telegram_token_from_env,
)

TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
CHAT = "-1001234567890"
TG_URL = f"https://api.telegram.org/bot{TOKEN}/sendMessage"
HOOK_URL = "https://hooks.example.test/sniper"


@pytest.fixture(autouse=True)
def _forget_secrets() -> Iterator[None]:
    yield
    redactor().clear()


async def test_webhook_and_telegram_delivery() -> None:
    async with respx.mock(assert_all_called=True) as router:
        hook = router.post(HOOK_URL).respond(204)
        tg = router.post(TG_URL).respond(200, json={"ok": True, "result": {}})
        notifier = Notifier([TelegramSink(TOKEN, CHAT), WebhookSink(HOOK_URL)])
        notifier.start()
        event = {"event": "order_filled", "pair": "NEW_USDT", "price": Decimal("0.0123")}
        assert notifier.notify_nowait(event) is True
        event["pair"] = "MUTATED"  # the notifier took a copy
        await notifier.aclose(timeout_s=5.0)

    assert orjson.loads(hook.calls.last.request.content) == {
        "event": "order_filled",
        "pair": "NEW_USDT",
        "price": "0.0123",
    }
    sent = orjson.loads(tg.calls.last.request.content)
    assert sent["chat_id"] == CHAT
    assert sent["text"] == "order_filled\npair: NEW_USDT\nprice: 0.0123"
    stats = notifier.statistics()
    assert (stats.queued, stats.delivered, stats.failed, stats.pending) == (1, 2, 0, 0)


async def test_events_are_scrubbed_before_they_leave() -> None:
    secret = "s3cr3t-value-that-must-not-leave"
    register_secret(secret)
    async with respx.mock() as router:
        hook = router.post(HOOK_URL).respond(200)
        notifier = Notifier([WebhookSink(HOOK_URL)])
        notifier.start()
        notifier.notify_nowait({"event": "oops", "detail": f"x {secret}", "api_secret": "zzzz"})
        await notifier.aclose(timeout_s=5.0)
    body = hook.calls.last.request.content
    assert secret.encode() not in body
    assert orjson.loads(body) == {"event": "oops", "detail": "x ***", "api_secret": "***"}


async def test_failures_are_logged_and_dropped_without_leaking_the_token() -> None:
    metrics = Metrics()
    async with respx.mock() as router:
        router.post(HOOK_URL).respond(500)
        router.post(TG_URL).mock(side_effect=httpx.ConnectError("boom"))
        notifier = Notifier([TelegramSink(TOKEN, CHAT), WebhookSink(HOOK_URL)], metrics=metrics)
        notifier.start()
        with capture_logs(processors=[redactor()]) as logs:
            notifier.notify_nowait({"event": "a"})
            notifier.notify_nowait({"event": "b"})
            await notifier.aclose(timeout_s=5.0)
    stats = notifier.statistics()
    assert (stats.delivered, stats.failed) == (0, 4)
    failures = [e for e in logs if e["event"] == "notify_failed"]
    assert {(e["sink"], e["error"], e["status"]) for e in failures} == {
        ("telegram", "ConnectError", None),
        ("webhook", "HTTPStatusError", 500),
    }
    assert TOKEN not in repr(logs)
    assert b"sniper_notifications_dropped_total 4.0" in metrics.render()


async def test_telegram_ok_false_is_a_failure() -> None:
    async with respx.mock() as router:
        router.post(TG_URL).respond(200, json={"ok": False, "description": "chat not found"})
        notifier = Notifier([TelegramSink(TOKEN, CHAT)])
        notifier.start()
        notifier.notify_nowait({"event": "x"})
        await notifier.aclose(timeout_s=5.0)
    assert notifier.statistics().failed == 1


async def test_queue_full_drops_and_counts() -> None:
    metrics = Metrics()
    notifier = Notifier([WebhookSink(HOOK_URL)], queue_size=2, metrics=metrics)
    # Not started: nothing drains the queue.
    assert notifier.notify_nowait({"event": 1}) is True
    assert notifier.notify_nowait({"event": 2}) is True
    assert notifier.notify_nowait({"event": 3}) is False
    stats = notifier.statistics()
    assert (stats.queued, stats.dropped_queue_full, stats.pending) == (2, 1, 2)
    await notifier.aclose(timeout_s=0.1)
    assert notifier.statistics().dropped_at_shutdown == 2
    assert b"sniper_notifications_dropped_total 3.0" in metrics.render()


async def test_notify_nowait_never_raises() -> None:
    notifier = Notifier([WebhookSink(HOOK_URL)])
    assert notifier.notify_nowait(42) is False  # type: ignore[arg-type]
    await notifier.aclose()
    assert notifier.notify_nowait({"event": "late"}) is False  # after close: dropped
    assert notifier.statistics().dropped_at_shutdown == 1


async def test_shutdown_with_a_hanging_sink_is_bounded() -> None:
    release = asyncio.Event()
    arrived = asyncio.Event()

    async def hang(request: httpx.Request) -> httpx.Response:
        arrived.set()
        await release.wait()
        return httpx.Response(200)

    # The hanging call never completes, so respx does not record it as called.
    async with respx.mock(assert_all_called=False) as router:
        router.post(HOOK_URL).mock(side_effect=hang)
        notifier = Notifier([WebhookSink(HOOK_URL)])
        notifier.start()
        for i in range(3):
            notifier.notify_nowait({"event": i})
        await asyncio.wait_for(arrived.wait(), timeout=5.0)
        started = time.monotonic()
        await notifier.aclose(timeout_s=0.05)
        elapsed = time.monotonic() - started
    assert elapsed < 1.5  # 0.05 s grace + at most 0.5 s for cancellation + slack
    stats = notifier.statistics()
    assert stats.delivered == 0
    assert stats.dropped_at_shutdown == 3  # the in-flight one was cancelled, two never left
    assert stats.pending == 0


async def test_rate_limit_holds_back_events_beyond_the_burst() -> None:
    async with respx.mock() as router:
        hook = router.post(HOOK_URL).respond(200)
        # One token, refilled once a day: the second event must wait, and is dropped at close.
        notifier = Notifier([WebhookSink(HOOK_URL)], rate_per_s=1 / 86400, burst=1)
        notifier.start()
        notifier.notify_nowait({"event": "first"})
        notifier.notify_nowait({"event": "second"})
        await notifier.aclose(timeout_s=0.2)
    assert [orjson.loads(c.request.content)["event"] for c in hook.calls] == ["first"]
    stats = notifier.statistics()
    assert (stats.delivered, stats.dropped_at_shutdown) == (1, 1)


async def test_without_sinks_everything_is_a_noop() -> None:
    notifier = Notifier([])
    notifier.start()
    assert notifier.notify_nowait({"event": "x"}) is False
    await notifier.aclose()
    await notifier.aclose()  # idempotent
    assert notifier.statistics().queued == 0


async def test_injected_client_is_not_closed() -> None:
    async with respx.mock() as router, httpx.AsyncClient() as client:
        router.post(HOOK_URL).respond(200)
        notifier = Notifier([WebhookSink(HOOK_URL)], client=client)
        notifier.start()
        notifier.notify_nowait({"event": "x"})
        await notifier.aclose(timeout_s=5.0)
        assert not client.is_closed
        assert notifier.statistics().delivered == 1


def test_bad_rate_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="rate_per_s"):
        Notifier([], rate_per_s=0)


def test_format_text() -> None:
    assert format_text({"kind": "listing", "pair": "X_USDT"}) == "listing\npair: X_USDT"
    assert format_text({}) == "sniper"
    long = format_text({"event": "x", "blob": "y" * 10_000})
    assert len(long) == TELEGRAM_TEXT_LIMIT
    assert long.endswith("…")


def test_reprs_hide_tokens() -> None:
    assert TOKEN not in repr(TelegramSink(TOKEN, CHAT))
    assert "secret-path" not in repr(WebhookSink("https://hooks.example.test/secret-path"))


def test_sink_validation() -> None:
    with pytest.raises(ConfigError):
        TelegramSink("  ", CHAT)
    with pytest.raises(ConfigError) as info:
        WebhookSink("ftp://example.test/")
    assert info.value.path == "notify.webhook_url"


def test_token_sources(tmp_path: Path) -> None:
    token_file = tmp_path / "tok"
    token_file.write_text(TOKEN + "\n")
    cred_dir = tmp_path / "creds"
    cred_dir.mkdir()
    (cred_dir / "telegram_bot_token").write_text("from-credentials-dir")
    assert telegram_token_from_env({}) is None
    assert telegram_token_from_env({"TELEGRAM_BOT_TOKEN": f" {TOKEN} "}) == TOKEN
    assert telegram_token_from_env({"TELEGRAM_BOT_TOKEN_FILE": str(token_file)}) == TOKEN
    assert (
        telegram_token_from_env({"CREDENTIALS_DIRECTORY": str(cred_dir)}) == "from-credentials-dir"
    )
    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(ConfigError):
        telegram_token_from_env({"TELEGRAM_BOT_TOKEN_FILE": str(empty)})
    with pytest.raises(ConfigError):
        telegram_token_from_env({"TELEGRAM_BOT_TOKEN_FILE": str(tmp_path / "missing")})


def test_build_notifier() -> None:
    assert build_notifier(NotifyConfig(), {}).sinks == ()
    with pytest.raises(ConfigError) as info:
        build_notifier(NotifyConfig(telegram_chat_id=CHAT), {})
    assert info.value.path == "notify.telegram_chat_id"
    notifier = build_notifier(
        NotifyConfig(telegram_chat_id=CHAT, webhook_url=HOOK_URL), {"TELEGRAM_BOT_TOKEN": TOKEN}
    )
    assert [s.name for s in notifier.sinks] == ["telegram", "webhook"]
    # The token is now masked in logs.
    assert redactor().scrub(f"url {TG_URL}") == "url https://api.telegram.org/bot***/sendMessage"
