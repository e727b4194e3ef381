"""Configuration: YAML file -> validated, frozen :class:`Config`; secrets from the environment.

The YAML holds no secret. Money is written as quoted decimal strings (``"20"``) and becomes
:class:`~decimal.Decimal`; a bare YAML float for money is refused (``20.1`` in YAML is a float and
could already have lost precision). Unknown keys are errors. Every error names the key path
(``entry.quote_amount``) and says what is expected; the CLI maps :class:`ConfigError` to exit 78.

Secrets, first found wins:

1. ``GATE_API_KEY`` / ``GATE_API_SECRET`` environment variables;
2. ``GATE_API_KEY_FILE`` / ``GATE_API_SECRET_FILE`` (paths to files holding the value);
3. ``$CREDENTIALS_DIRECTORY/gate_api_key`` and ``gate_api_secret`` (systemd ``LoadCredential=``).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from sniper.core.signing import Credentials, mask
from sniper.errors import ConfigError

ENV_KEY = "GATE_API_KEY"
ENV_SECRET = "GATE_API_SECRET"  # noqa: S105 - the name of a variable, not a secret


def _money(value: object) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError("expected a decimal number written as a quoted string, e.g. \"20\"")
    try:
        result = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError(f"{value!r} is not a decimal number") from None
    if not result.is_finite():
        raise ValueError("must be a finite number")
    return result


Money = Annotated[Decimal, BeforeValidator(_money)]
PositiveMoney = Annotated[Money, Field(gt=0, le=10_000_000)]  # above 10M is a typo, not a plan
Pct = Annotated[Money, Field(ge=0, le=1000)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)


class ExchangeConfig(_Section):
    """Where Gate (or the simulator / testnet) is."""

    rest_url: str = "https://api.gateio.ws/api/v4"
    ws_url: str = "wss://api.gateio.ws/ws/v4/"
    ann_ws_url: str = "wss://api.gateio.ws/ws/v4/ann"
    order_path: Literal["ws", "rest"] = "ws"
    order_ttl_ms: Annotated[int, Field(ge=100, le=60_000)] = 1500
    request_timeout_s: Annotated[float, Field(gt=0, le=60)] = 5.0

    @model_validator(mode="after")
    def _urls(self) -> ExchangeConfig:
        if not self.rest_url.startswith(("http://", "https://")):
            raise ValueError("rest_url must start with http:// or https://")
        if not self.ws_url.startswith(("ws://", "wss://")):
            raise ValueError("ws_url must start with ws:// or wss://")
        if not self.rest_url.rstrip("/").endswith("/api/v4"):
            raise ValueError("rest_url must end with /api/v4 (Gate signs the full /api/v4 path)")
        return self


class ListingConfig(_Section):
    """How new listings are discovered."""

    quote_currencies: Annotated[tuple[str, ...], Field(min_length=1)] = ("USDT",)
    poll_interval_s: Annotated[float, Field(ge=0.05, le=60)] = 0.2
    announcements: bool = False
    include_premarket: bool = False


class EntryConfig(_Section):
    """How much to buy, at what price cap, and when."""

    quote_amount: PositiveMoney = Decimal("20")
    max_slippage_pct: Pct = Decimal("10")
    max_price: PositiveMoney | None = None
    fire_policy: Literal["first_ask", "buy_start"] = "first_ask"
    deadline_s: Annotated[float, Field(gt=0, le=600)] = 10.0
    max_attempts: Annotated[int, Field(ge=1, le=50)] = 5
    busy_window_s: Annotated[float, Field(ge=0, le=30)] = 1.0
    """Keep the event loop spinning (and the order path rehearsed) from this long before
    ``buy_start`` until the first buy or a few seconds after; 0 turns it off."""


class ExitConfig(_Section):
    """Take-profit, stop-loss, trailing stop, time limit."""

    take_profit_pct: Annotated[Money, Field(gt=0, le=100_000)] = Decimal("30")
    stop_loss_pct: Annotated[Money, Field(gt=0, lt=100)] | None = Decimal("20")
    trailing_stop_pct: Annotated[Money, Field(gt=0, lt=100)] | None = None
    max_hold_s: Annotated[int, Field(gt=0)] | None = 3600
    stop_slippage_pct: Annotated[Money, Field(ge=0, lt=100)] = Decimal("5")


class RiskConfig(_Section):
    """Hard limits across listings."""

    max_open_positions: Annotated[int, Field(ge=1, le=100)] = 2
    max_quote_per_day: PositiveMoney | None = None


class LogConfig(_Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "pretty"] = "auto"


class HealthConfig(_Section):
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] | None = None


class NotifyConfig(_Section):
    telegram_chat_id: str | None = None
    webhook_url: str | None = None


class Config(_Section):
    """The whole validated configuration (see DESIGN.md section 3)."""

    exchange: ExchangeConfig = ExchangeConfig()
    state_dir: Path = Path("/var/lib/sniper")
    listing: ListingConfig = ListingConfig()
    entry: EntryConfig = EntryConfig()
    exit: ExitConfig = ExitConfig()
    risk: RiskConfig = RiskConfig()
    log: LogConfig = LogConfig()
    health: HealthConfig = HealthConfig()
    notify: NotifyConfig = NotifyConfig()

    @model_validator(mode="after")
    def _cross_checks(self) -> Config:
        if self.entry.fire_policy == "buy_start" and self.entry.max_price is None:
            raise ValueError(
                "entry.max_price is required with entry.fire_policy: buy_start (the first buy "
                "is sent before any ask is seen, so its price must be given)"
            )
        cap = self.risk.max_quote_per_day
        if cap is not None and cap < self.entry.quote_amount:
            raise ValueError("risk.max_quote_per_day is smaller than entry.quote_amount")
        return self


def _error_from_validation(exc: ValidationError) -> ConfigError:
    first = exc.errors()[0]
    path = ".".join(str(p) for p in first["loc"])
    msg = first["msg"]
    if first["type"] == "extra_forbidden":
        msg = "unknown key (not part of the configuration schema)"
    msg = msg.removeprefix("Value error, ")
    extra = len(exc.errors()) - 1
    if extra:
        msg += f" (and {extra} more problem{'s' if extra > 1 else ''})"
    return ConfigError(path or "<root>", msg)


def parse_config(data: Mapping[str, Any] | None) -> Config:
    """Validate a parsed YAML mapping."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError("<root>", "the config file must be a YAML mapping")
    try:
        return Config.model_validate(dict(data))
    except ValidationError as exc:
        raise _error_from_validation(exc) from None


def load_config(path: str | os.PathLike[str]) -> Config:
    """Read and validate a YAML config file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError("--config", f"cannot read {p}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError("--config", f"{p} is not valid YAML: {exc}") from None
    return parse_config(data)


def _read_secret_file(path: Path, name: str, warnings: list[str]) -> str:
    try:
        mode = path.stat().st_mode
        value = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(name, f"cannot read {path}: {exc.strerror}") from None
    if mode & (stat.S_IRGRP | stat.S_IROTH):
        warnings.append(f"{name}: {path} is readable by group/others; chmod 600 it")
    if not value:
        raise ConfigError(name, f"{path} is empty")
    return value


def _find_secret(
    var: str, cred_name: str, env: Mapping[str, str], warnings: list[str]
) -> str | None:
    if env.get(var):
        return env[var]
    file_var = f"{var}_FILE"
    if env.get(file_var):
        return _read_secret_file(Path(env[file_var]), file_var, warnings)
    cred_dir = env.get("CREDENTIALS_DIRECTORY")
    if cred_dir:
        candidate = Path(cred_dir) / cred_name
        if candidate.exists():
            return _read_secret_file(candidate, f"$CREDENTIALS_DIRECTORY/{cred_name}", warnings)
    return None


def load_credentials(
    env: Mapping[str, str] | None = None, warnings: list[str] | None = None
) -> Credentials:
    """Load the API key pair; :class:`ConfigError` naming the variable when missing."""
    env = os.environ if env is None else env
    sink: list[str] = [] if warnings is None else warnings
    key = _find_secret(ENV_KEY, "gate_api_key", env, sink)
    if key is None:
        raise ConfigError(
            ENV_KEY, "missing: set GATE_API_KEY, GATE_API_KEY_FILE or LoadCredential=gate_api_key"
        )
    secret = _find_secret(ENV_SECRET, "gate_api_secret", env, sink)
    if secret is None:
        raise ConfigError(
            ENV_SECRET,
            "missing: set GATE_API_SECRET, GATE_API_SECRET_FILE or LoadCredential=gate_api_secret",
        )
    return Credentials(key, secret)


def effective_config_text(config: Config, credentials: Credentials | None) -> str:
    """The effective config as YAML, with the credentials masked, for ``check-config``."""
    data = config.model_dump(mode="json")
    data["credentials"] = (
        {"api_key": mask(credentials.key), "api_secret": "***"}
        if credentials
        else "not loaded (dry-run)"
    )
    return yaml.safe_dump(data, sort_keys=False)
