"""What the simulator's REST gateway puts around every route (gate-v4.md §3, §4).

The request context a handler gets (:class:`Call`), Gate's JSON and error shapes, and the
fixed-window rate limits with their ``X-Gate-RateLimit-*`` headers. The routes themselves are
in :mod:`sniper.sim.rest`; the WebSocket trading API shares the rate limits and rejections.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from sniper.sim.entities import SimReject

__all__ = [
    "JSON_HEADERS",
    "Call",
    "Handler",
    "RateLimitedReject",
    "RateLimiter",
    "RateVerdict",
    "error_response",
    "json_response",
    "order_params",
    "reject",
    "set_rate_headers",
]

JSON_HEADERS = {"Content-Type": "application/json"}


@dataclass(slots=True)
class _Window:
    start_ms: int
    count: int


@dataclass(frozen=True, slots=True)
class RateVerdict:
    """The outcome of one rate-limit check."""

    allowed: bool
    limit: int
    remaining: int
    reset_ms: int


class RateLimiter:
    """Fixed-window counters keyed by (scope, who, what), as Gate describes its limits (§4)."""

    def __init__(self, enforce: bool = True) -> None:
        self.enforce = enforce
        self._windows: dict[tuple[str, str, str], _Window] = {}

    def check(
        self, key: tuple[str, str, str], limit: int, window_ms: int, now_ms: int
    ) -> RateVerdict:
        """Count one request under ``key`` and say whether it is within ``limit``."""
        win = self._windows.get(key)
        if win is None or now_ms - win.start_ms >= window_ms:
            win = _Window(now_ms, 0)
            self._windows[key] = win
        win.count += 1
        allowed = win.count <= limit or not self.enforce
        reset_ms = win.start_ms + window_ms if win.count > limit else now_ms
        return RateVerdict(allowed, limit, max(limit - win.count, 0), reset_ms)


class RateLimitedReject(SimReject):
    """``TOO_MANY_REQUESTS`` (429) carrying the verdict, so the answer has the rate headers."""

    def __init__(self, verdict: RateVerdict, message: str = "Request Rate limit Exceeded") -> None:
        super().__init__("TOO_MANY_REQUESTS", message, 429)
        self.verdict = verdict


def json_response(data: Any, status: int = 200) -> web.Response:
    """A JSON response serialised with orjson."""
    return web.Response(body=orjson.dumps(data), status=status, headers=JSON_HEADERS)


def error_response(label: str, message: str, status: int) -> web.Response:
    """Gate's error shape: HTTP status plus ``{"label", "message"}``."""
    return json_response({"label": label, "message": message}, status)


def reject(label: str, message: str, status: int = 400) -> SimReject:
    """Shorthand for a :class:`SimReject` raised by a route."""
    return SimReject(label, message, status)


@dataclass(slots=True)
class Call:
    """What a route handler gets: the request, its body, the user (if signed), the time."""

    request: web.Request
    body: bytes
    uid: int
    now_ms: int
    t_in_ns: int
    t_body_ns: int

    def q(self, name: str, default: str | None = None) -> str | None:
        """A query parameter."""
        return self.request.query.get(name, default)

    def need(self, name: str) -> str:
        """A required query parameter (``MISSING_REQUIRED_PARAM`` when absent)."""
        value = self.request.query.get(name)
        if not value:
            raise reject("MISSING_REQUIRED_PARAM", f"Missing required parameter: {name}")
        return value

    def json(self) -> Any:
        """The JSON body (``INVALID_REQUEST_BODY`` when it is not JSON)."""
        try:
            return orjson.loads(self.body)
        except orjson.JSONDecodeError:
            raise reject("INVALID_REQUEST_BODY", "Invalid request body") from None


Handler = Callable[[Call], Awaitable[web.StreamResponse]]


def order_params(item: Any) -> dict[str, str]:
    """A JSON order body -> Gate body fields as strings (``None`` values dropped)."""
    if not isinstance(item, dict):
        raise reject("INVALID_REQUEST_BODY", "order must be a JSON object")
    out: dict[str, str] = {}
    for key, value in item.items():
        if value is None:
            continue
        if isinstance(value, bool):
            out[key] = "true" if value else "false"
        elif isinstance(value, dict | list):
            out[key] = orjson.dumps(value).decode()
        else:
            out[key] = str(value)
    return out


def set_rate_headers(response: web.StreamResponse, verdict: RateVerdict) -> None:
    """Gate's ``X-Gate-RateLimit-*`` headers for ``verdict`` (the reset time in ms)."""
    response.headers["X-Gate-RateLimit-Requests-Remain"] = str(verdict.remaining)
    response.headers["X-Gate-RateLimit-Limit"] = str(verdict.limit)
    response.headers["X-Gate-RateLimit-Reset-Timestamp"] = str(verdict.reset_ms)
