"""Operations of the real daemon process (``python -m sniper run``) against the simulator.

sd_notify over a real AF_UNIX datagram socket (READY, a watchdog fed only while market data is
fresh, STOPPING), the health/metrics endpoint, webhook notifications, and secrets kept out of
logs and payloads, including in an error path (a wrong API secret).

The simulator and daemon harness is the end-to-end one (``tests/e2e/conftest.py``); every wait
is on an event (a datagram, an HTTP request, a journal row) with a deadline, never a fixed sleep.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import yaml
from aiohttp import web

from sniper.sim.server import SimServer
from tests.e2e.conftest import (
    E2E,
    REPO,
    DaemonProcess,
    builtin_scenario,
)
from tests.ops.test_dockerfile import DOCKERFILE, parse_dockerfile, stages

PAIR = "NEWCOIN_USDT"
PAIRS_PREFIX = "/spot/currency_pairs"
WATCHDOG_USEC = 2_000_000
"""The daemon pets every WATCHDOG_USEC / 2 = 1 s while healthy."""
PET_INTERVAL_S = WATCHDOG_USEC / 2 / 1_000_000
STALE_AFTER_S = 5.0
"""Operations.market_fresh: max(5 s, 20 poll intervals); the test config polls every 0.1 s."""


# -- harness -----------------------------------------------------------------------------------


@pytest.fixture
def world(e2e: E2E) -> E2E:
    """The e2e world (simulator + daemon processes); daemon logs are printed on failure."""
    return e2e


def write_config(e2e: E2E, **sections: dict[str, Any]) -> Path:
    """The e2e config (simulator URLs, tmp state dir, json logs) with ``sections`` merged in."""
    path = e2e.write_config()
    config = yaml.safe_load(path.read_text("utf-8"))
    for name, values in sections.items():
        config.setdefault(name, {}).update(values)
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def secrets_of(sim: SimServer) -> list[str]:
    """The values that must never leave the daemon: the API secret and the API key."""
    return [sim.credentials.secret, sim.credentials.key]


def assert_no_secret(text: str | bytes, sim: SimServer, where: str) -> None:
    blob = text.encode() if isinstance(text, str) else text
    for value in secrets_of(sim):
        assert value.encode() not in blob, f"a credential appears in {where}"


def free_port() -> int:
    """A port nothing listens on right now (the daemon binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def json_logs(daemon: DaemonProcess) -> list[dict[str, Any]]:
    """Every JSON log line of the daemon (other output, e.g. warnings, is skipped)."""
    events = []
    for line in daemon.log_text().splitlines():
        if line.startswith("{"):
            with contextlib.suppress(orjson.JSONDecodeError):
                events.append(orjson.loads(line))
    return events


# -- the systemd side of sd_notify -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Notification:
    """One sd_notify datagram as systemd would receive it."""

    at_s: float  # time.monotonic() on arrival
    fields: dict[str, str]


class NotifySocket:
    """A bound AF_UNIX/SOCK_DGRAM socket, read on the event loop, remembering every datagram."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.setblocking(False)
        self.received: list[Notification] = []
        self._changed = asyncio.Condition()
        self._pump: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._pump = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            data = await loop.sock_recv(self.sock, 65536)
            fields = dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
            async with self._changed:
                self.received.append(Notification(time.monotonic(), fields))
                self._changed.notify_all()

    def find(self, what: str | Callable[[dict[str, str]], bool], *, start: int = 0) -> int | None:
        """Index of the first datagram at or after ``start`` that sets ``what=1`` (a field
        name) or whose fields satisfy ``what`` (a predicate)."""
        match = what if callable(what) else (lambda fields: fields.get(what) == "1")
        for index in range(start, len(self.received)):
            if match(self.received[index].fields):
                return index
        return None

    async def wait_for(
        self, what: str | Callable[[dict[str, str]], bool], *, start: int = 0, timeout_s: float
    ) -> int:
        """:meth:`find`, waiting up to ``timeout_s`` for it; ``TimeoutError`` otherwise."""
        async with asyncio.timeout(timeout_s), self._changed:
            await self._changed.wait_for(lambda: self.find(what, start=start) is not None)
        index = self.find(what, start=start)
        assert index is not None
        return index

    async def close(self) -> None:
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump
        self.sock.close()


@pytest.fixture
async def notify_socket() -> AsyncIterator[NotifySocket]:
    # tmp_path can exceed the 108-byte AF_UNIX path limit; a short private dir cannot.
    with tempfile.TemporaryDirectory(prefix="sdn") as directory:
        listener = NotifySocket(str(Path(directory) / "notify"))
        listener.start()
        try:
            yield listener
        finally:
            await listener.close()


@pytest.fixture
def systemd_env(monkeypatch: pytest.MonkeyPatch, notify_socket: NotifySocket) -> NotifySocket:
    """What systemd sets for a Type=notify unit with WatchdogSec=2 (the harness copies
    ``os.environ`` into the daemon's environment)."""
    monkeypatch.setenv("NOTIFY_SOCKET", notify_socket.path)
    monkeypatch.setenv("WATCHDOG_USEC", str(WATCHDOG_USEC))
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    return notify_socket


def status_has(text: str) -> Callable[[dict[str, str]], bool]:
    return lambda fields: text in fields.get("STATUS", "")


async def sniper_cli(command: str, config: Path) -> int:
    """``python -m sniper <command> --config FILE`` (halt, resume) as a separate process."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sniper",
        command,
        "--config",
        str(config),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        cwd=REPO,
    )
    async with asyncio.timeout(20):
        return await proc.wait()


async def wait_watchdog_silence(
    notify: NotifySocket, daemon: DaemonProcess, *, quiet_s: float, timeout_s: float
) -> float:
    """Wait until no ``WATCHDOG=1`` arrived for ``quiet_s`` while the daemon kept running;
    return when the silence began (the arrival of the last pet). Fails after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        assert daemon.running, f"daemon died instead of going stale\n{daemon.describe()}"
        if time.monotonic() > deadline:
            pytest.fail(f"WATCHDOG=1 kept arriving for {timeout_s} s\n{daemon.describe()}")
        start = len(notify.received)
        try:
            await notify.wait_for("WATCHDOG", start=start, timeout_s=quiet_s)
        except TimeoutError:
            assert daemon.running, f"daemon died while stale\n{daemon.describe()}"
            pets = [n.at_s for n in notify.received if n.fields.get("WATCHDOG") == "1"]
            return pets[-1] if pets else 0.0


# -- a. sd_notify and the watchdog -------------------------------------------------------------


async def test_sd_notify_ready_watchdog_only_while_fresh_and_stopping(
    world: E2E, systemd_env: NotifySocket
) -> None:
    notify = systemd_env
    sim = await world.start_sim("quiet")
    daemon = await world.start_daemon(write_config(world))

    ready = await notify.wait_for("READY", timeout_s=15)
    assert notify.received[ready].fields.get("STATUS", "").startswith("watching ")
    # Healthy: pets keep coming, about one per second.
    first = await notify.wait_for("WATCHDOG", start=ready, timeout_s=5)
    await notify.wait_for("WATCHDOG", start=first + 1, timeout_s=5)

    # `sniper halt` shows in `systemctl status` (STATUS=) within a second or two; halted is
    # healthy (exits are still managed), so the watchdog keeps being fed. `resume` clears it.
    config = world.tmp / "config.yaml"
    assert await sniper_cli("halt", config) == 0
    halted = await notify.wait_for(status_has("HALTED"), start=first, timeout_s=5)
    await notify.wait_for("WATCHDOG", start=halted + 1, timeout_s=5)
    assert await sniper_cli("resume", config) == 0
    await notify.wait_for(
        lambda f: "STATUS" in f and "HALTED" not in f["STATUS"], start=halted + 1, timeout_s=5
    )

    # Market data goes stale: every pair-list poll fails from now on. The process stays alive
    # (polls fail, it keeps trying) but systemd must be allowed to restart it.
    sim.faults.fail_http(1_000_000, 503, path_prefix=PAIRS_PREFIX)
    stale_since = time.monotonic()
    last_pet = await wait_watchdog_silence(
        notify, daemon, quiet_s=3 * PET_INTERVAL_S, timeout_s=STALE_AFTER_S + 10
    )
    # The last pet came no earlier than the freshness limit allows (pets went on while the
    # data was still fresh enough), and silence really is because of staleness.
    assert last_pet - stale_since <= STALE_AFTER_S + 2 * PET_INTERVAL_S
    assert daemon.running
    assert notify.find("STOPPING") is None
    assert "poll failed" in daemon.log_text()

    assert notify.find(status_has("MARKET DATA STALE")) is not None

    # Fresh data again: the watchdog is fed again (it is health-driven, not latched).
    sim.faults.clear()
    await notify.wait_for("WATCHDOG", start=len(notify.received), timeout_s=5)

    mark = len(notify.received)
    daemon.send_signal(signal.SIGTERM)
    await notify.wait_for("STOPPING", start=mark, timeout_s=10)
    assert await daemon.wait_exit(10) == 0, daemon.describe()
    assert notify.find("READY", start=ready + 1) is None  # READY once per run
    assert_no_secret(daemon.log_text(), sim, "the daemon's output")


# -- b. health and metrics ---------------------------------------------------------------------


def metric_values(text: str, name: str) -> dict[str, float]:
    """``{label-string: value}`` of every sample of ``name`` in a Prometheus text exposition."""
    pattern = re.compile(rf"^{re.escape(name)}(\{{[^}}]*\}})?\s+(\S+)$", re.MULTILINE)
    return {labels or "": float(value) for labels, value in pattern.findall(text)}


async def wait_http(
    client: httpx.AsyncClient,
    url: str,
    accept: Callable[[httpx.Response], bool],
    daemon: DaemonProcess,
    *,
    timeout_s: float,
) -> httpx.Response:
    """GET ``url`` every 50 ms until ``accept(response)``; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    last: httpx.Response | str = "no answer"
    while time.monotonic() < deadline:
        assert daemon.running, f"daemon exited\n{daemon.describe()}"
        try:
            response = await client.get(url)
        except httpx.TransportError as exc:
            last = repr(exc)
        else:
            if accept(response):
                return response
            last = response
        await asyncio.sleep(0.05)  # polling an endpoint: there is no event to wait on
    detail = last if isinstance(last, str) else f"{last.status_code} {last.text[:2000]}"
    pytest.fail(f"{url}: not accepted within {timeout_s} s; last: {detail}\n{daemon.describe()}")


async def test_health_and_metrics_endpoint(world: E2E) -> None:
    sim = await world.start_sim(builtin_scenario("new_listing_fast"))
    port = free_port()
    config = write_config(world, health={"port": port})
    assert "host" not in yaml.safe_load(config.read_text("utf-8"))["health"]  # the default
    daemon = await world.start_daemon(config)
    base = f"http://127.0.0.1:{port}"

    async with httpx.AsyncClient(timeout=5.0) as client:
        healthy = await wait_http(
            client, f"{base}/healthz", lambda r: r.status_code == 200, daemon, timeout_s=15
        )
        body = healthy.json()
        assert body["ok"] is True
        assert set(body["checks"]) == {
            "market_data",
            "journal",
            "clock_skew",
            "state_dir",
            "kill_switch",
        }
        assert body["checks"]["kill_switch"]["detail"] == "not halted"
        assert all(check["ok"] for check in body["checks"].values())

        await world.wait_journal("entry_done", PAIR, daemon=daemon, timeout_s=20)
        bought = await wait_http(
            client,
            f"{base}/metrics",
            lambda r: sum(metric_values(r.text, "sniper_orders_total").values()) >= 1,
            daemon,
            timeout_s=5,
        )
        assert bought.headers["content-type"].startswith("text/plain")
        text = bought.text

        orders = metric_values(text, "sniper_orders_total")
        assert orders['{outcome="filled"}'] >= 1
        assert orders['{outcome="rejected"}'] == 0
        assert metric_values(text, "sniper_listings_seen_total") == {"": 1.0}
        # One latency histogram per stage, each with the buy's samples in its buckets.
        buckets = metric_values(text, "sniper_latency_seconds_bucket")
        counts = metric_values(text, "sniper_latency_seconds_count")
        for stage in ("frame_to_decision", "decision_to_written", "written_to_ack"):
            assert counts[f'{{stage="{stage}"}}'] >= 1, stage
            assert buckets[f'{{le="+Inf",stage="{stage}"}}'] == counts[f'{{stage="{stage}"}}']
            finite = [v for k, v in buckets.items() if f'stage="{stage}"' in k and "+Inf" not in k]
            assert len(finite) >= 10
            assert finite == sorted(finite)
        assert "sniper_open_positions" in text
        assert "sniper_pnl_quote" in text
        # Rate-limit headroom as Gate's headers reported it (the simulator sends them).
        headroom = metric_values(text, "sniper_rate_limit_remaining")
        assert headroom, "no rate-limit headroom exported"
        assert all(0 <= v <= 200 for v in headroom.values()), headroom

        # Reconnects: the exchange drops every WebSocket; the three connections (book
        # stream, private channels, orders) come back and the counter says so.
        assert metric_values(text, "sniper_ws_reconnects_total") == {"": 0.0}
        sim.faults.drop_ws_connections()
        await wait_http(
            client,
            f"{base}/metrics",
            lambda r: metric_values(r.text, "sniper_ws_reconnects_total").get("", 0) >= 3,
            daemon,
            timeout_s=15,
        )

        # Bound to 127.0.0.1 only: another loopback address of this host gets no answer.
        with pytest.raises(httpx.ConnectError):
            await client.get(f"http://127.0.0.2:{port}/healthz")

    listening = [e for e in json_logs(daemon) if e.get("event") == "health_listening"]
    assert [e["url"] for e in listening] == [base]
    assert_no_secret(daemon.log_text(), sim, "the daemon's output")


def docker_healthcheck() -> list[str]:
    """The Dockerfile's ``HEALTHCHECK ... CMD [...]`` argv."""
    (health,) = [
        i.args
        for i in stages(parse_dockerfile(DOCKERFILE.read_text("utf-8")))[-1]
        if i.op == "HEALTHCHECK"
    ]
    argv = orjson.loads(health[health.index("CMD") + 3 :].strip())
    assert isinstance(argv, list)
    return [str(a) for a in argv]


async def run_docker_healthcheck(port: int) -> int:
    """Run the image's health check command against ``port``; its exit code."""
    argv = docker_healthcheck()
    assert argv[0] == "python"
    env = {**os.environ, "SNIPER_HEALTH_PORT": str(port)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        *argv[1:],
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    async with asyncio.timeout(20):
        return await proc.wait()


async def test_healthz_is_503_while_market_data_is_stale(world: E2E) -> None:
    sim = await world.start_sim("quiet")
    port = free_port()
    daemon = await world.start_daemon(write_config(world, health={"port": port}))
    url = f"http://127.0.0.1:{port}/healthz"
    async with httpx.AsyncClient(timeout=5.0) as client:
        await wait_http(client, url, lambda r: r.status_code == 200, daemon, timeout_s=15)
        assert await run_docker_healthcheck(port) == 0  # the image's HEALTHCHECK passes
        sim.faults.fail_http(1_000_000, 503, path_prefix=PAIRS_PREFIX)
        stale = await wait_http(
            client, url, lambda r: r.status_code == 503, daemon, timeout_s=STALE_AFTER_S + 10
        )
        checks = stale.json()["checks"]
        assert checks["market_data"]["ok"] is False
        assert checks["journal"]["ok"] is True
        assert await run_docker_healthcheck(port) != 0  # ...and fails on a 503
        sim.faults.clear()
        await wait_http(client, url, lambda r: r.status_code == 200, daemon, timeout_s=10)
    daemon.send_signal(signal.SIGTERM)
    assert await daemon.wait_exit(10) == 0


# -- c. notifications --------------------------------------------------------------------------


class WebhookRecorder:
    """A local webhook endpoint on 127.0.0.1 that records every POST body; with ``hang`` it
    never answers (until closed), like a webhook service that stopped responding."""

    def __init__(self, *, hang: bool = False) -> None:
        self.hang = hang
        self._release = asyncio.Event()
        self.bodies: list[bytes] = []
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def _post(self, request: web.Request) -> web.Response:
        body = await request.read()
        async with self._changed:
            self.bodies.append(body)
            self._changed.notify_all()
        if self.hang:
            await self._release.wait()
        return web.json_response({"ok": True})

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self._post)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self._runner = runner
        port = runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}/hook"

    def events(self) -> list[str]:
        return [orjson.loads(body).get("event") for body in self.bodies]

    async def wait_event(self, event: str, *, timeout_s: float) -> None:
        async with asyncio.timeout(timeout_s), self._changed:
            await self._changed.wait_for(lambda: event in self.events())

    async def close(self) -> None:
        self._release.set()
        if self._runner is not None:
            await self._runner.cleanup()


@pytest.fixture
async def webhook(request: pytest.FixtureRequest) -> AsyncIterator[WebhookRecorder]:
    """A recording webhook; ``@pytest.mark.parametrize("webhook", ["hang"], indirect=True)``
    makes it one that never answers."""
    recorder = WebhookRecorder(hang=getattr(request, "param", None) == "hang")
    await recorder.start()
    try:
        yield recorder
    finally:
        await recorder.close()


async def test_webhook_receives_the_listing_story_without_secrets(
    world: E2E, webhook: WebhookRecorder
) -> None:
    sim = await world.start_sim(builtin_scenario("new_listing_fast"))
    daemon = await world.start_daemon(write_config(world, notify={"webhook_url": webhook.url}))

    await world.wait_journal("closed", PAIR, daemon=daemon, timeout_s=25)
    try:
        # Sent from a rate-limited background queue: the last events may come a while later.
        await webhook.wait_event("closed", timeout_s=20)
    except TimeoutError:
        pytest.fail(f"no 'closed' notification; got {webhook.events()}\n{daemon.describe()}")

    events = webhook.events()
    for expected in ("listing", "buy_sent", "entry_done", "sell_placed", "closed"):
        assert expected in events, (expected, events)
    assert events.index("listing") < events.index("buy_sent") < events.index("closed")
    payloads = [orjson.loads(body) for body in webhook.bodies]
    assert all(p["pair"] == PAIR for p in payloads if p["event"] != "fatal")
    closed = next(p for p in payloads if p["event"] == "closed")
    assert closed["reason"] == "take_profit"
    for body in webhook.bodies:
        assert_no_secret(body, sim, "a webhook payload")

    daemon.send_signal(signal.SIGTERM)
    assert await daemon.wait_exit(10) == 0, daemon.describe()
    assert_no_secret(daemon.log_text(), sim, "the daemon's output")


@pytest.mark.parametrize("webhook", ["hang"], indirect=True)
async def test_a_webhook_never_delays_trading_or_shutdown(
    world: E2E, webhook: WebhookRecorder
) -> None:
    await world.start_sim(builtin_scenario("new_listing_fast"))
    config = write_config(world, notify={"webhook_url": webhook.url})
    daemon = await world.start_daemon(config)
    # The first notification hangs (the daemon's request timeout is 5 s per event) while the
    # listing is bought and closed on time: notifications are off the trading path.
    await webhook.wait_event("listing", timeout_s=15)
    await world.wait_journal("closed", PAIR, daemon=daemon, timeout_s=25)
    assert "closed" not in webhook.events()  # still queued behind the hanging request

    started = time.monotonic()
    daemon.send_signal(signal.SIGTERM)
    assert await daemon.wait_exit(15) == 0, daemon.describe()
    # Several events were pending at 5 s each; shutdown gives them 2 s in all, then drops them.
    assert time.monotonic() - started < 10, daemon.describe()
    dropped = [e for e in json_logs(daemon) if e.get("event") == "notify_dropped_at_shutdown"]
    assert dropped, daemon.describe()
    assert dropped[0]["count"] >= 2


# -- d. no secret in logs, also on error paths -------------------------------------------------


async def test_debug_json_logs_of_a_full_listing_hold_no_secret(world: E2E) -> None:
    sim = await world.start_sim(builtin_scenario("new_listing_fast"))
    config = write_config(world, log={"level": "debug", "format": "json"})
    daemon = await world.start_daemon(config)
    await world.wait_journal("closed", PAIR, daemon=daemon, timeout_s=25)
    daemon.send_signal(signal.SIGTERM)
    assert await daemon.wait_exit(10) == 0, daemon.describe()

    logs = json_logs(daemon)
    kinds = {e.get("event") for e in logs}
    assert {"listing", "buy_sent", "closed", "stopped"} <= kinds, kinds
    assert len(logs) > 10  # a real log, not an empty one
    assert_no_secret(daemon.log_text(), sim, "the daemon's output")


async def run_with_env(
    world: E2E, config: Path, env_update: dict[str, str], *, timeout_s: float
) -> tuple[int | None, str]:
    """Run the daemon with ``env_update``; its exit code (``None``: still running after
    ``timeout_s``, then killed) and its whole output."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GATE_API", "NOTIFY_", "WATCHDOG_", "TELEGRAM_", "CREDENTIALS_"))
    }
    env.update(PYTHONUNBUFFERED="1", **env_update)
    log_path = world.tmp / "daemon-env.log"
    with log_path.open("wb") as log:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "sniper",
            "run",
            "--config",
            str(config),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
            env=env,
            cwd=REPO,
        )
    daemon = DaemonProcess(proc, log_path)
    world.daemons.append(daemon)
    code: int | None
    try:
        async with asyncio.timeout(timeout_s):
            code = await proc.wait()
    except TimeoutError:
        code = None
        await daemon.kill()
    return code, daemon.log_text()


@pytest.mark.parametrize("source", ["env", "files"])
async def test_wrong_secret_logs_invalid_signature_but_never_the_credentials(
    world: E2E, source: str
) -> None:
    # A wrong secret, given as variables or (the Docker way) as GATE_API_*_FILE files.
    sim = await world.start_sim("quiet")
    world.release_clock()
    wrong_secret = "0123456789abcdef" * 4
    env = {"GATE_API_KEY": sim.credentials.key, "GATE_API_SECRET": wrong_secret}
    if source == "files":
        secrets_dir = world.tmp / "secrets"
        secrets_dir.mkdir(mode=0o700)
        for name, value in list(env.items()):
            path = secrets_dir / name.lower()
            path.write_text(value + "\n", encoding="utf-8")
            path.chmod(0o600)
            env[f"{name}_FILE"] = str(path)
            del env[name]
    config = write_config(world, log={"level": "debug", "format": "json"})
    code, output = await run_with_env(world, config, env, timeout_s=20)
    assert "INVALID_SIGNATURE" in output, output[-4000:]
    assert code == 78, output[-4000:]  # an auth error: exit 78, systemd must not restart-loop
    assert_no_secret(output, sim, "the daemon's output")
    assert wrong_secret not in output


# -- configuration errors of the operational side: exit 78, no restart loop ---------------------


async def test_health_port_in_use_is_a_config_error(world: E2E) -> None:
    sim = await world.start_sim("quiet")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = int(taken.getsockname()[1])
        config = write_config(world, health={"port": port})
        code, output = await run_with_env(
            world,
            config,
            {"GATE_API_KEY": sim.credentials.key, "GATE_API_SECRET": sim.credentials.secret},
            timeout_s=20,
        )
    assert code == 78, output[-4000:]
    assert f"config error: health.port: cannot listen on 127.0.0.1:{port}" in output
    assert "Traceback" not in output
    assert_no_secret(output, sim, "the daemon's output")


async def test_telegram_without_a_token_is_a_config_error(world: E2E) -> None:
    sim = await world.start_sim("quiet")
    config = write_config(world, notify={"telegram_chat_id": "12345"})
    code, output = await run_with_env(
        world,
        config,
        {"GATE_API_KEY": sim.credentials.key, "GATE_API_SECRET": sim.credentials.secret},
        timeout_s=20,
    )
    assert code == 78, output[-4000:]
    assert "config error: notify.telegram_chat_id" in output
    assert "Traceback" not in output


def test_helpers_parse_prometheus_text() -> None:
    text = (
        '# HELP x_total help\nx_total{outcome="filled"} 2.0\nx_total{outcome="rejected"} 0.0\n'
        "y_total 1.0\n"
    )
    assert metric_values(text, "x_total") == {
        '{outcome="filled"}': 2.0,
        '{outcome="rejected"}': 0.0,
    }
    assert metric_values(text, "y_total") == {"": 1.0}
    assert metric_values(text, "z") == {}
