"""sniper.ops.health: a real aiohttp server on 127.0.0.1 (ephemeral port), queried with httpx."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from sniper.ops.health import (
    CheckResult,
    HealthServer,
    directory_writable,
    fresh_within,
    within_limit,
)
from sniper.ops.metrics import CONTENT_TYPE, Metrics, OrderOutcome


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(trust_env=False, timeout=5.0) as c:
        yield c


async def test_all_checks_ok_is_200(client: httpx.AsyncClient) -> None:
    async def journal_writable() -> CheckResult:
        return CheckResult(True, "/var/lib/sniper")

    checks = {"feeds_fresh": lambda: True, "journal_writable": journal_writable}
    async with HealthServer(port=0, checks=checks) as server:
        assert server.host == "127.0.0.1"
        assert server.port
        assert server.url == f"http://127.0.0.1:{server.port}"
        r = await client.get(f"{server.url}/healthz")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    assert r.json() == {
        "ok": True,
        "checks": {
            "feeds_fresh": {"ok": True, "detail": ""},
            "journal_writable": {"ok": True, "detail": "/var/lib/sniper"},
        },
    }


async def test_no_checks_is_healthy(client: httpx.AsyncClient) -> None:
    async with HealthServer(port=0) as server:
        r = await client.get(f"{server.url}/healthz")
    assert (r.status_code, r.json()) == (200, {"ok": True, "checks": {}})


async def test_a_failing_check_is_503(client: httpx.AsyncClient) -> None:
    state = {"skew_ok": True}
    checks = {
        "feeds_fresh": lambda: True,
        "clock_skew": lambda: CheckResult(state["skew_ok"], "skew 12ms"),
    }
    async with HealthServer(port=0, checks=checks) as server:
        assert (await client.get(f"{server.url}/healthz")).status_code == 200
        state["skew_ok"] = False
        r = await client.get(f"{server.url}/healthz")
        assert r.status_code == 503
        body = r.json()
        assert body["ok"] is False
        assert body["checks"]["clock_skew"] == {"ok": False, "detail": "skew 12ms"}
        assert body["checks"]["feeds_fresh"]["ok"] is True
        # Checks added later are run too.
        state["skew_ok"] = True
        server.add_check("late", lambda: False)
        assert (await client.get(f"{server.url}/healthz")).status_code == 503


async def test_raising_and_hanging_checks_fail_without_leaking(client: httpx.AsyncClient) -> None:
    never = asyncio.Event()

    def raising() -> bool:
        raise RuntimeError("secret-ish internal detail")

    async def hanging() -> bool:
        await never.wait()
        return True

    checks = {"raising": raising, "hanging": hanging}
    async with HealthServer(port=0, checks=checks, check_timeout_s=0.05) as server:
        r = await client.get(f"{server.url}/healthz")
    assert r.status_code == 503
    body = r.json()
    assert body["checks"]["raising"] == {"ok": False, "detail": "check raised RuntimeError"}
    assert body["checks"]["hanging"]["ok"] is False
    assert "timed out" in body["checks"]["hanging"]["detail"]
    assert "secret-ish" not in r.text


async def test_metrics_endpoint(client: httpx.AsyncClient) -> None:
    metrics = Metrics()
    metrics.order(OrderOutcome.FILLED)
    async with HealthServer(port=0, metrics=metrics) as server:
        r = await client.get(f"{server.url}/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"] == CONTENT_TYPE
    assert 'sniper_orders_total{outcome="filled"} 1.0' in r.text


async def test_metrics_endpoint_without_metrics_is_404(client: httpx.AsyncClient) -> None:
    async with HealthServer(port=0) as server:
        r = await client.get(f"{server.url}/metrics")
    assert r.status_code == 404


async def test_port_none_means_off() -> None:
    server = HealthServer(port=None, checks={"x": lambda: True})
    await server.start()
    assert server.port is None
    assert server.url is None
    await server.stop()


async def test_stop_closes_the_port(client: httpx.AsyncClient) -> None:
    server = HealthServer(port=0)
    await server.start()
    await server.start()  # idempotent
    url = server.url
    assert (await client.get(f"{url}/healthz")).status_code == 200
    await server.stop()
    await server.stop()
    with pytest.raises(httpx.ConnectError):
        await client.get(f"{url}/healthz")


def test_fresh_within() -> None:
    now = {"t": 100.0}
    last: dict[str, float | None] = {"seen": None}
    check = fresh_within(lambda: last["seen"], 2.0, clock=lambda: now["t"])
    assert check() == CheckResult(False, "nothing received yet")
    for seen, ok in [(99.0, True), (98.0, True), (97.9, False)]:
        last["seen"] = seen
        assert check().ok is ok, seen


@pytest.mark.parametrize(
    ("value", "ok"), [(None, False), (0.0, True), (250.0, True), (-250.0, True), (-251.0, False)]
)
def test_within_limit(value: float | None, ok: bool) -> None:
    assert within_limit(lambda: value, 250.0)().ok is ok


def test_directory_writable(tmp_path: Path) -> None:
    assert directory_writable(tmp_path)().ok
    assert not directory_writable(tmp_path / "missing")().ok
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        # root can write anywhere; the check then rightly says OK.
        assert directory_writable(locked)().ok is (os.geteuid() == 0)
    finally:
        locked.chmod(0o700)
