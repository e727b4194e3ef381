"""``sniper doctor`` against the bundled simulator."""

from __future__ import annotations

import io
from pathlib import Path

from sniper.app.doctor import Verdict, render, run_checks
from sniper.config import Config, parse_config
from sniper.core.signing import Credentials
from sniper.sim.server import SimServer


def _config(server: SimServer, state: Path) -> Config:
    assert server.urls is not None
    return parse_config(
        {
            "exchange": {"rest_url": server.urls.rest, "ws_url": server.urls.ws},
            "state_dir": str(state),
        }
    )


async def test_doctor_passes_against_simulator(tmp_path: Path) -> None:
    async with SimServer("quiet", port=0) as server:
        config = _config(server, tmp_path)
        checks = await run_checks(config, server.credentials)
    by_name = {c.name: c for c in checks}
    for name in ("rest", "clock", "pairs", "credentials", "websocket", "trading-api", "state_dir"):
        assert by_name[name].verdict is Verdict.OK, by_name[name]
    out = io.StringIO()
    assert render(checks, out) is Verdict.WARN  # the withdrawal-permission reminder
    assert "verdict: WARN" in out.getvalue()


async def test_doctor_fails_on_wrong_secret_and_skew(tmp_path: Path) -> None:
    async with SimServer("quiet", port=0) as server:
        server.faults.set_clock_skew(5_000)
        config = _config(server, tmp_path)
        bad = Credentials(server.credentials.key, "wrong-secret")
        checks = await run_checks(config, bad)
    by_name = {c.name: c for c in checks}
    assert by_name["clock"].verdict is Verdict.WARN
    assert by_name["credentials"].verdict is Verdict.FAIL
    assert "INVALID_SIGNATURE" in by_name["credentials"].detail
    assert by_name["websocket"].verdict is Verdict.FAIL
    assert "wrong-secret" not in repr(checks)
    assert render(checks, io.StringIO()) is Verdict.FAIL


async def test_doctor_reports_unreachable_exchange(tmp_path: Path) -> None:
    config = parse_config(
        {
            "exchange": {
                "rest_url": "http://127.0.0.1:9/api/v4",
                "ws_url": "ws://127.0.0.1:9/ws/v4/",
            },
            "state_dir": str(tmp_path),
        }
    )
    checks = await run_checks(config, None)
    assert checks[0].name == "rest"
    assert checks[0].verdict is Verdict.FAIL
