"""Notifications (Telegram, generic webhook) that can never slow down or break the daemon.

The trading code calls :meth:`Notifier.notify_nowait` with a small event dict; it returns at
once and never raises. A background task drains a bounded queue, spends one token of a token
bucket per event (a burst of listings must not get the bot banned), and posts the event to
every sink. A full queue drops the new event; a failing sink is logged and the event dropped
for that sink (no retries: a late notification is worth little and retries would pile up).
:meth:`Notifier.aclose` gives pending events ``timeout_s`` to go out, then drops the rest.

Secrets: the Telegram bot token comes from the environment or a credential file, never the
YAML, and is registered with the log redactor (it is part of the request URL, which appears in
HTTP errors). Events are scrubbed by the same redactor before they leave the process.

Telegram: ``POST https://api.telegram.org/bot<token>/sendMessage`` with ``chat_id`` and
``text`` (https://core.telegram.org/bots/api#sendmessage). Webhook: ``POST <url>`` with the
event as a JSON object.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol

import httpx
import orjson

from sniper.config import NotifyConfig
from sniper.core.ratelimit import TokenBucket
from sniper.errors import ConfigError
from sniper.log import get_logger, redactor, register_secret
from sniper.ops.metrics import Metrics

_log = get_logger("sniper.ops.notify")

TELEGRAM_API_URL: Final = "https://api.telegram.org"
TELEGRAM_TEXT_LIMIT: Final = 4096
ENV_TELEGRAM_TOKEN: Final = "TELEGRAM_BOT_TOKEN"  # noqa: S105 - a variable name
CREDENTIAL_TELEGRAM_TOKEN: Final = "telegram_bot_token"  # noqa: S105 - a file name


class NotificationSink(Protocol):
    """Somewhere an event can be delivered. ``send`` raises on failure."""

    name: str

    async def send(self, client: httpx.AsyncClient, event: Mapping[str, Any]) -> None:
        """Deliver one (already scrubbed) event."""
        ...


def _json(event: Mapping[str, Any]) -> bytes:
    # Decimal and friends become their string form (money stays exact in the text).
    return orjson.dumps(event, default=str)


def format_text(event: Mapping[str, Any]) -> str:
    """A short human-readable rendering: the ``event`` (or ``kind``) first, then key: value."""
    title = str(event.get("event") or event.get("kind") or "sniper")
    lines = [title] + [
        f"{key}: {value}" for key, value in event.items() if key not in ("event", "kind")
    ]
    text = "\n".join(lines)
    return text if len(text) <= TELEGRAM_TEXT_LIMIT else text[: TELEGRAM_TEXT_LIMIT - 1] + "…"


class TelegramSink:
    """A Telegram bot writing to one chat."""

    name = "telegram"

    def __init__(self, bot_token: str, chat_id: str, *, api_url: str = TELEGRAM_API_URL) -> None:
        token = bot_token.strip()
        if not token:
            raise ConfigError(ENV_TELEGRAM_TOKEN, "empty Telegram bot token")
        register_secret(token)  # it is in the URL, hence in any HTTP error message
        self._url = f"{api_url.rstrip('/')}/bot{token}/sendMessage"
        self.chat_id = chat_id

    def __repr__(self) -> str:
        return f"TelegramSink(chat_id={self.chat_id!r}, token='***')"

    async def send(self, client: httpx.AsyncClient, event: Mapping[str, Any]) -> None:
        """``sendMessage``; a non-2xx answer or ``"ok": false`` raises."""
        body = {
            "chat_id": self.chat_id,
            "text": format_text(event),
            "disable_web_page_preview": True,
        }
        response = await client.post(
            self._url, content=_json(body), headers={"Content-Type": "application/json"}
        )
        response.raise_for_status()
        if response.content and orjson.loads(response.content).get("ok") is False:
            raise RuntimeError("telegram answered ok=false")


class WebhookSink:
    """A generic webhook: the event as a JSON object, POSTed to ``url``."""

    name = "webhook"

    def __init__(self, url: str) -> None:
        if not url.startswith(("http://", "https://")):
            raise ConfigError("notify.webhook_url", "must start with http:// or https://")
        self.url = url

    def __repr__(self) -> str:
        # The URL may embed a token (Slack/Discord style); never print it whole.
        return f"WebhookSink(url={httpx.URL(self.url).host!r})"

    async def send(self, client: httpx.AsyncClient, event: Mapping[str, Any]) -> None:
        """POST the event; a non-2xx answer raises."""
        response = await client.post(
            self.url, content=_json(event), headers={"Content-Type": "application/json"}
        )
        response.raise_for_status()


@dataclass(frozen=True, slots=True)
class NotifierStats:
    """Counters of a :class:`Notifier` (events, except ``delivered``/``failed``: per sink)."""

    queued: int
    delivered: int
    failed: int
    dropped_queue_full: int
    dropped_at_shutdown: int
    pending: int


class Notifier:
    """Fans events out to ``sinks`` from a background task, rate-limited, never blocking.

    Call :meth:`start` from the running loop, :meth:`notify_nowait` from anywhere on it, and
    :meth:`aclose` at shutdown. Without sinks everything is a cheap no-op.
    """

    def __init__(
        self,
        sinks: Sequence[NotificationSink],
        *,
        queue_size: int = 256,
        rate_per_s: float = 1.0,
        burst: int = 5,
        request_timeout_s: float = 5.0,
        client: httpx.AsyncClient | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.sinks = tuple(sinks)
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=queue_size)
        if rate_per_s <= 0 or burst < 1:
            raise ValueError("need rate_per_s > 0 and burst >= 1")
        self._rate_per_s = rate_per_s
        self._burst = burst
        self._bucket: TokenBucket | None = None  # on the loop's clock, made by start()
        self._client = client
        self._owns_client = client is None
        self._timeout_s = request_timeout_s
        self._metrics = metrics
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._queued = self._delivered = self._failed = 0
        self._dropped_full = self._dropped_shutdown = 0

    def start(self) -> None:
        """Start the background sender (idempotent; a no-op without sinks or after close)."""
        if self._task is not None or self._closed or not self.sinks:
            return
        loop = asyncio.get_running_loop()
        self._bucket = TokenBucket(self._rate_per_s, self._burst, now_s=loop.time())
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self._timeout_s)
        self._task = loop.create_task(self._run(), name="notifier")

    def notify_nowait(self, event: Mapping[str, Any]) -> bool:
        """Queue ``event``; ``True`` if queued. Never blocks, never raises."""
        try:
            if not self.sinks:
                return False
            if self._closed:
                self._drop_at_shutdown(1)
                return False
            self._queue.put_nowait(dict(event))  # a copy: the caller may reuse its dict
        except asyncio.QueueFull:
            self._dropped_full += 1
            if self._metrics is not None:
                self._metrics.notification_dropped()
            return False
        except Exception:  # noqa: BLE001 - a notification must never break the caller
            return False
        self._queued += 1
        return True

    def _drop_at_shutdown(self, n: int) -> None:
        self._dropped_shutdown += n
        if self._metrics is not None and n:
            self._metrics.notification_dropped(n)

    async def _wait_for_token(self) -> None:
        loop = asyncio.get_running_loop()
        bucket = self._bucket
        assert bucket is not None  # set by start() before the task exists
        # A time-based budget: there is no event to wait on, only the refill time.
        while not bucket.try_acquire(loop.time()):  # noqa: ASYNC110
            await asyncio.sleep(bucket.wait_time_s(loop.time()))

    async def _deliver(self, event: Mapping[str, Any]) -> None:
        client = self._client
        assert client is not None  # set by start() before the task exists
        scrubbed = redactor().scrub(event)
        payload: Mapping[str, Any] = scrubbed if isinstance(scrubbed, Mapping) else {}
        for sink in self.sinks:
            try:
                await sink.send(client, payload)
            except Exception as exc:  # noqa: BLE001 - failures are logged and dropped
                self._failed += 1
                status = (
                    exc.response.status_code if isinstance(exc, httpx.HTTPStatusError) else None
                )
                _log.warning(
                    "notify_failed", sink=sink.name, error=type(exc).__name__, status=status
                )
                if self._metrics is not None:
                    self._metrics.notification_dropped()
            else:
                self._delivered += 1

    async def _run(self) -> None:
        while True:
            event = await self._queue.get()
            try:
                await self._wait_for_token()
                await self._deliver(event)
            except asyncio.CancelledError:
                self._drop_at_shutdown(1)  # waiting for a token, or in flight at close
                raise
            finally:
                self._queue.task_done()

    async def aclose(self, timeout_s: float = 2.0) -> None:
        """Give pending events up to ``timeout_s`` to go out, then drop the rest and stop.

        Never raises and never takes much longer than ``timeout_s``; idempotent.
        """
        if self._closed:
            return
        self._closed = True
        task, self._task = self._task, None
        try:
            if task is not None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._queue.join(), timeout=max(0.0, timeout_s))
                task.cancel()
                # Cancellation of an in-flight request is prompt; do not wait on it forever.
                await asyncio.wait({task}, timeout=0.5)
            pending = 0
            while not self._queue.empty():
                self._queue.get_nowait()
                self._queue.task_done()
                pending += 1
            if pending:
                _log.warning("notify_dropped_at_shutdown", count=pending)
                self._drop_at_shutdown(pending)
            if self._owns_client and self._client is not None:
                await asyncio.wait_for(self._client.aclose(), timeout=0.5)
        except Exception:  # noqa: BLE001 - shutdown must go on whatever happens here
            _log.exception("notify_close_failed")

    def statistics(self) -> NotifierStats:
        """A snapshot of the counters."""
        return NotifierStats(
            queued=self._queued,
            delivered=self._delivered,
            failed=self._failed,
            dropped_queue_full=self._dropped_full,
            dropped_at_shutdown=self._dropped_shutdown,
            pending=self._queue.qsize(),
        )


def telegram_token_from_env(env: Mapping[str, str] | None = None) -> str | None:
    """``TELEGRAM_BOT_TOKEN``, ``TELEGRAM_BOT_TOKEN_FILE``, or
    ``$CREDENTIALS_DIRECTORY/telegram_bot_token`` (systemd ``LoadCredential=``), first wins."""
    env = os.environ if env is None else env
    if env.get(ENV_TELEGRAM_TOKEN):
        return env[ENV_TELEGRAM_TOKEN].strip()
    candidates: list[tuple[str, Path]] = []
    if env.get(f"{ENV_TELEGRAM_TOKEN}_FILE"):
        candidates.append((f"{ENV_TELEGRAM_TOKEN}_FILE", Path(env[f"{ENV_TELEGRAM_TOKEN}_FILE"])))
    if env.get("CREDENTIALS_DIRECTORY"):
        path = Path(env["CREDENTIALS_DIRECTORY"]) / CREDENTIAL_TELEGRAM_TOKEN
        if path.exists():
            candidates.append((f"$CREDENTIALS_DIRECTORY/{CREDENTIAL_TELEGRAM_TOKEN}", path))
    for name, path in candidates:
        try:
            value = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(name, f"cannot read {path}: {exc.strerror}") from None
        if not value:
            raise ConfigError(name, f"{path} is empty")
        return value
    return None


def build_notifier(
    config: NotifyConfig,
    env: Mapping[str, str] | None = None,
    *,
    metrics: Metrics | None = None,
    client: httpx.AsyncClient | None = None,
) -> Notifier:
    """The notifier the config asks for (no sinks when nothing is configured).

    A Telegram chat id without a bot token is a :class:`ConfigError` (exit 78), not a silent
    loss of every notification.
    """
    sinks: list[NotificationSink] = []
    if config.telegram_chat_id:
        token = telegram_token_from_env(env)
        if token is None:
            raise ConfigError(
                "notify.telegram_chat_id",
                f"set {ENV_TELEGRAM_TOKEN}, {ENV_TELEGRAM_TOKEN}_FILE or "
                f"LoadCredential={CREDENTIAL_TELEGRAM_TOKEN}",
            )
        sinks.append(TelegramSink(token, config.telegram_chat_id))
    if config.webhook_url:
        sinks.append(WebhookSink(config.webhook_url))
    return Notifier(sinks, metrics=metrics, client=client)
