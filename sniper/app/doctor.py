"""``sniper doctor``: pre-flight checks against the configured exchange, with a clear verdict.

Checks: REST reachable (round trip), clock offset to Gate (warn > 1 s, fail > 30 s: Gate refuses
requests more than 60 s off), pair list readable, public rate-limit headroom, credentials valid
and able to read spot balances (REST) and to authenticate on the WebSocket (private channel and
trading-API login), and the state directory writable. Gate does not expose whether a key may
withdraw; the report says so rather than guessing.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TextIO

from sniper.app.journal import Journal
from sniper.config import Config, load_config, load_credentials
from sniper.core.codec import CH_BALANCES, WsFrame
from sniper.core.signing import Credentials, Signer
from sniper.errors import ConfigError, ExchangeError, JournalError, SniperError
from sniper.gate.rest import GateRest
from sniper.gate.trading import GateWsTrader
from sniper.gate.ws import GateFeed

WARN_SKEW_MS = 1_000
FAIL_SKEW_MS = 30_000


class Verdict(StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    verdict: Verdict
    detail: str


async def _timed(check: Callable[[], Awaitable[str]], name: str) -> Check:
    try:
        return Check(name, Verdict.OK, await check())
    except (ExchangeError, OSError, TimeoutError) as exc:
        return Check(name, Verdict.FAIL, f"{type(exc).__name__}: {exc}")


async def run_checks(config: Config, credentials: Credentials | None) -> list[Check]:
    """Every check, in order; never raises for an exchange problem (it becomes a FAIL)."""
    checks: list[Check] = []
    rest = GateRest(
        config.exchange.rest_url,
        credentials,
        timeout_s=config.exchange.request_timeout_s,
        keep_warm_s=None,
    )
    try:

        async def ping() -> str:
            t0 = time.perf_counter()
            await rest.server_time_ms()
            return (
                f"{config.exchange.rest_url} answered in {(time.perf_counter() - t0) * 1e3:.1f} ms"
            )

        checks.append(await _timed(ping, "rest"))
        if checks[-1].verdict is Verdict.FAIL:
            return checks

        offset = await rest.sync_clock()
        skew = abs(offset)
        verdict = (
            Verdict.FAIL
            if skew > FAIL_SKEW_MS
            else Verdict.WARN
            if skew > WARN_SKEW_MS
            else Verdict.OK
        )
        checks.append(Check("clock", verdict, f"local clock is {offset:+d} ms from Gate's"))

        async def pairs() -> str:
            found = await rest.currency_pairs()
            limit = rest.last_rate_limit.get("currency_pairs")
            headroom = (
                ""
                if limit is None or limit.remaining is None
                else f"; rate limit {limit.remaining}/{limit.limit} left"
            )
            return f"{len(found)} pairs listed{headroom}"

        checks.append(await _timed(pairs, "pairs"))

        if credentials is None:
            checks.append(Check("credentials", Verdict.WARN, "no credentials (dry-run only)"))
        else:

            async def balances() -> str:
                found = await rest.accounts()
                quotes = {b.currency: b.available for b in found}
                spendable = ", ".join(
                    f"{q} {quotes.get(q, 0)}" for q in config.listing.quote_currencies
                )
                budget = config.entry.quote_amount
                short = [q for q in config.listing.quote_currencies if quotes.get(q, 0) < budget]
                note = f" (below entry.quote_amount {budget}: {', '.join(short)})" if short else ""
                return f"spot balances readable: {spendable}{note}"

            checks.append(await _timed(balances, "credentials"))
            checks.append(await _ws_private(config, credentials, rest.offset_ms))
            checks.append(await _ws_login(config, credentials, rest.offset_ms))
            checks.append(
                Check(
                    "withdrawals",
                    Verdict.WARN,
                    "Gate's API does not show whether this key may withdraw: "
                    "make sure withdrawal permission is disabled on the key",
                )
            )
    finally:
        await rest.aclose()
    checks.append(_state_dir(config))
    return checks


async def _ws_private(config: Config, credentials: Credentials, offset_ms: int) -> Check:
    frames: list[WsFrame] = []
    feed = GateFeed(
        config.exchange.ws_url,
        lambda f, _ns: frames.append(f),
        signer=Signer(credentials),
        clock_offset_s=offset_ms / 1000,
        name="doctor",
    )
    try:
        feed.start()
        await feed.wait_connected(5)
        await feed.subscribe(CH_BALANCES, [], private=True, timeout_s=5)
        return Check("websocket", Verdict.OK, f"{config.exchange.ws_url}: private channel ok")
    except (ExchangeError, TimeoutError, OSError) as exc:
        return Check("websocket", Verdict.FAIL, f"{type(exc).__name__}: {exc}")
    finally:
        await feed.close()


async def _ws_login(config: Config, credentials: Credentials, offset_ms: int) -> Check:
    trader = GateWsTrader(
        config.exchange.ws_url,
        Signer(credentials),
        clock_offset_s=offset_ms / 1000,
        name="doctor-trader",
    )
    try:
        trader.start()
        await trader.wait_ready(5)
        return Check("trading-api", Verdict.OK, "WS trading API login ok")
    except (ExchangeError, TimeoutError, OSError) as exc:
        return Check("trading-api", Verdict.FAIL, f"{type(exc).__name__}: {exc}")
    finally:
        await trader.close()


def _state_dir(config: Config) -> Check:
    try:
        journal = Journal.in_dir(config.state_dir)
    except JournalError as exc:
        return Check("state_dir", Verdict.FAIL, str(exc))
    try:
        ok = journal.writable()
    finally:
        journal.close()
    if not ok:
        return Check("state_dir", Verdict.FAIL, f"{config.state_dir}: journal not writable")
    return Check("state_dir", Verdict.OK, f"{config.state_dir}: journal writable")


def render(checks: list[Check], out: TextIO) -> Verdict:
    worst = Verdict.OK
    for check in checks:
        print(f"  [{check.verdict.value.upper():4}] {check.name:12} {check.detail}", file=out)
        if check.verdict is Verdict.FAIL or (check.verdict is Verdict.WARN and worst is Verdict.OK):
            worst = check.verdict
    words = {
        Verdict.OK: "ready to trade",
        Verdict.WARN: "usable, read the warnings",
        Verdict.FAIL: "NOT ready: fix the failures above",
    }
    print(f"verdict: {worst.value.upper()} ({words[worst]})", file=out)
    return worst


def main_doctor(config_path: str, *, out: TextIO = sys.stdout) -> int:
    config = load_config(config_path)
    try:
        credentials: Credentials | None = load_credentials()
    except ConfigError as exc:
        print(f"note: {exc}", file=out)
        credentials = None
    try:
        checks = asyncio.run(run_checks(config, credentials))
    except SniperError as exc:  # pragma: no cover - run_checks turns these into checks
        print(f"error: {exc}", file=out)
        return 1
    return 1 if render(checks, out) is Verdict.FAIL else 0
