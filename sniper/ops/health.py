"""Health and metrics over HTTP (aiohttp), bound to loopback unless configured otherwise.

``GET /healthz``: runs every injected check and answers ``200`` with
``{"ok": true, "checks": {"feeds_fresh": {"ok": true, "detail": "..."}, ...}}``, or ``503`` with
the same body when any check fails (or raises, or is slower than ``check_timeout_s``).
``GET /metrics``: :meth:`Metrics.render` with the Prometheus content type (404 without metrics).

A check is any callable returning ``bool`` or :class:`CheckResult`, or an awaitable of one:
the daemon passes closures over its own state ("feeds fresh", "journal writable", "clock skew
ok"); the helpers at the end build the common ones. With ``port=None`` the server is off and
:meth:`HealthServer.start` does nothing.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Final, TypeAlias

import orjson

from sniper.log import get_logger
from sniper.ops.metrics import CONTENT_TYPE, Metrics

if TYPE_CHECKING:  # aiohttp (~9 MiB) is imported only when the endpoint is enabled
    from aiohttp import web

_log = get_logger("sniper.ops.health")

DEFAULT_HOST: Final = "127.0.0.1"


@dataclass(frozen=True, slots=True)
class CheckResult:
    """The outcome of one health check; ``detail`` is shown in the JSON answer."""

    ok: bool
    detail: str = ""


CheckValue: TypeAlias = bool | CheckResult
Check: TypeAlias = Callable[[], CheckValue | Awaitable[CheckValue]]


@dataclass(frozen=True, slots=True)
class HealthReport:
    """All checks at one moment."""

    ok: bool
    checks: Mapping[str, CheckResult]

    def to_json(self) -> bytes:
        """The ``/healthz`` body."""
        return orjson.dumps(
            {
                "ok": self.ok,
                "checks": {
                    name: {"ok": r.ok, "detail": r.detail} for name, r in self.checks.items()
                },
            }
        )


class HealthServer:
    """The ``/healthz`` + ``/metrics`` endpoint. Use ``async with`` or start()/stop()."""

    def __init__(
        self,
        *,
        host: str = DEFAULT_HOST,
        port: int | None,
        checks: Mapping[str, Check] | None = None,
        metrics: Metrics | None = None,
        check_timeout_s: float = 1.0,
    ) -> None:
        self.host = host
        self.requested_port = port
        self._checks: dict[str, Check] = dict(checks or {})
        self._metrics = metrics
        self._check_timeout_s = check_timeout_s
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    def add_check(self, name: str, check: Check) -> None:
        """Add (or replace) a named check; may be called while serving."""
        self._checks[name] = check

    @property
    def port(self) -> int | None:
        """The bound port once started (useful with ``port=0``), else ``None``."""
        return self._port

    @property
    def url(self) -> str | None:
        """``http://host:port`` once started."""
        if self._port is None:
            return None
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self._port}"

    async def _run_one(self, name: str, check: Check) -> CheckResult:
        try:
            value = check()
            if inspect.isawaitable(value):
                value = await asyncio.wait_for(value, timeout=self._check_timeout_s)
        except TimeoutError:
            return CheckResult(False, f"timed out after {self._check_timeout_s}s")
        except Exception as exc:  # noqa: BLE001 - a failing check is a 503, not a 500
            _log.warning("health_check_raised", check=name, error=repr(exc))
            return CheckResult(False, f"check raised {type(exc).__name__}")
        if isinstance(value, CheckResult):
            return value
        return CheckResult(bool(value))

    async def report(self) -> HealthReport:
        """Run every check (concurrently) and combine them."""
        names = list(self._checks)
        results = await asyncio.gather(*(self._run_one(n, self._checks[n]) for n in names))
        checks = dict(zip(names, results, strict=True))
        return HealthReport(all(r.ok for r in results), checks)

    async def _healthz(self, request: web.Request) -> web.Response:
        from aiohttp import web

        del request
        report = await self.report()
        return web.Response(
            body=report.to_json(),
            status=200 if report.ok else 503,
            content_type="application/json",
            headers={"Cache-Control": "no-store"},
        )

    async def _metrics_handler(self, request: web.Request) -> web.Response:
        from aiohttp import web

        del request
        if self._metrics is None:
            raise web.HTTPNotFound(text="metrics are not enabled")
        return web.Response(body=self._metrics.render(), headers={"Content-Type": CONTENT_TYPE})

    def build_app(self) -> web.Application:
        """The aiohttp application (exposed for in-process tests)."""
        from aiohttp import web

        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/metrics", self._metrics_handler)
        return app

    async def start(self) -> None:
        """Bind and serve; does nothing when ``port`` is ``None`` or already started."""
        if self.requested_port is None or self._runner is not None:
            return
        from aiohttp import web

        # No access log (it would go through stdlib logging, per scrape) and no signal handling
        # (the daemon owns SIGTERM).
        runner = web.AppRunner(self.build_app(), access_log=None, handle_signals=False)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.host, self.requested_port, reuse_address=True)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        address = runner.addresses[0]
        self._port = int(address[1])
        _log.info("health_listening", url=self.url)

    async def stop(self) -> None:
        """Stop serving (idempotent)."""
        runner, self._runner = self._runner, None
        self._port = None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> HealthServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


# -- ready-made checks --------------------------------------------------------------------------


def fresh_within(
    last_seen_s: Callable[[], float | None],
    max_age_s: float,
    *,
    clock: Callable[[], float] = time.monotonic,
) -> Callable[[], CheckResult]:
    """OK while ``last_seen_s()`` (a ``clock`` reading, e.g. of the last market frame) is at
    most ``max_age_s`` old. ``None`` (nothing seen yet) fails."""

    def check() -> CheckResult:
        seen = last_seen_s()
        if seen is None:
            return CheckResult(False, "nothing received yet")
        age_s = clock() - seen
        return CheckResult(age_s <= max_age_s, f"age {age_s:.3f}s (max {max_age_s}s)")

    return check


def within_limit(
    value: Callable[[], float | None], limit: float, *, unit: str = "ms"
) -> Callable[[], CheckResult]:
    """OK while ``abs(value())`` is at most ``limit`` (clock skew to Gate, for instance).
    ``None`` (not measured yet) fails."""

    def check() -> CheckResult:
        v = value()
        if v is None:
            return CheckResult(False, "not measured yet")
        return CheckResult(abs(v) <= limit, f"{v:g}{unit} (max ±{limit:g}{unit})")

    return check


def directory_writable(path: Path) -> Callable[[], CheckResult]:
    """OK while ``path`` is a directory this process may write to (the journal's home)."""

    def check() -> CheckResult:
        if not path.is_dir():
            return CheckResult(False, f"{path} is not a directory")
        if not os.access(path, os.W_OK | os.X_OK):
            return CheckResult(False, f"{path} is not writable")
        return CheckResult(True, str(path))

    return check
