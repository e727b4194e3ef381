"""Scenarios are data: which pairs trade, which listings come, and how their price moves.

Built-ins live in ``sniper/sim/scenarios/*.yaml``; :func:`load_scenario` also takes a path.
All times are seconds relative to the simulation start (listings: ``appear_at_s``) or to the
listing's open (``price_path``, ``announce_lead_s`` counts back from the open), and
:meth:`Scenario.scaled` multiplies every one of them, so a test can run a listing in a second.

As on Gate, a listing's announcement comes before its pair appears in ``currency_pairs``:
``announce_lead_s`` must be at least ``opens_after_s + 1`` (the open is rounded up to a whole
second, so it can come up to 1 s after ``appear_at_s + opens_after_s``). Users the servers
add start with ``balances``, 10,000 USDT when a scenario does not say.

YAML shape (money as strings; unknown keys are an error)::

    name: new_listing
    seed: 7
    fees: {taker: "0.002", maker: "0.002"}     # fractions, like /wallet/fee
    balances: {USDT: "10000"}                  # for users the servers add (this is the default)
    established:
      - {pair: BTC_USDT, mid: "65000", amount_precision: 6, precision: 1, ...,
         ladder: {levels: 10, spread_pct: "0.02", step_pct: "0.01", amount: "0.5"}}
    listings:
      - {pair: NEWCOIN_USDT, appear_at_s: 2, opens_after_s: 4, announce_lead_s: 5,
         initial_status: sellable, open_price: "0.05",
         price_path: [{at_s: 0, mid: "1"}, {at_s: 5, mid: "3"}], ...}
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from sniper.errors import ConfigError

_BUILTIN_PACKAGE = "sniper.sim"
_BUILTIN_DIR = "scenarios"
ANNOUNCE_MARGIN_S = 1.0
"""How much longer than ``opens_after_s`` an announcement lead must be (whole-second open)."""


def default_balances() -> dict[str, Decimal]:
    """What a user starts with when the scenario names no ``balances``: 10,000 USDT."""
    return {"USDT": Decimal("10000")}


@dataclass(frozen=True, slots=True)
class LadderSpec:
    """A market maker's ladder: ``levels`` per side around a mid price.

    The best ask is ``mid × (1 + spread_pct/200)``, each next level ``step_pct`` % further out;
    bids mirror it. ``amount`` is base per level.
    """

    levels: int = 10
    spread_pct: Decimal = Decimal("1")
    step_pct: Decimal = Decimal("1")
    amount: Decimal = Decimal("100")


@dataclass(frozen=True, slots=True)
class PricePoint:
    """The mid is ``mid`` × the listing's ``open_price`` at ``at_s`` seconds after the open."""

    at_s: float
    mid: Decimal


@dataclass(frozen=True, slots=True)
class TradeFlow:
    """Background takers: one market order every ``every_s`` of ``quote_min..quote_max`` quote."""

    every_s: float = 1.0
    quote_min: Decimal = Decimal("5")
    quote_max: Decimal = Decimal("50")


@dataclass(frozen=True, slots=True)
class PairRules:
    """The ``currency_pairs`` fields a scenario chooses for a pair."""

    pair: str
    amount_precision: int
    precision: int
    min_base_amount: Decimal | None = None
    min_quote_amount: Decimal | None = None
    max_base_amount: Decimal | None = None
    max_quote_amount: Decimal | None = None

    @property
    def base(self) -> str:
        """Base currency (``ABC`` of ``ABC_USDT``)."""
        return self.pair.split("_", 1)[0]

    @property
    def quote(self) -> str:
        """Quote currency (``USDT`` of ``ABC_USDT``)."""
        return self.pair.split("_", 1)[1]


@dataclass(frozen=True, slots=True)
class EstablishedPair:
    """A pair trading from the start, with a ladder re-quoted every ``requote_every_s``.

    ``requote_every_s: 0`` posts the ladder once and never refreshes it (``levels: 0`` posts
    none: an empty book for tests that rest their own orders).
    """

    rules: PairRules
    mid: Decimal
    ladder: LadderSpec = LadderSpec()
    requote_every_s: float = 5.0
    flow: TradeFlow | None = None


@dataclass(frozen=True, slots=True)
class Listing:
    """An upcoming listing and its script.

    The pair appears at ``appear_at_s`` with ``initial_status``; it opens (``tradable``) at
    ``buy_start``, the first whole second at or after ``appear_at_s + opens_after_s`` (Gate's
    ``buy_start`` is in whole seconds, and the simulator flips the status exactly then). The
    market maker posts its ladder ``mm_delay_s`` after the open and re-quotes along
    ``price_path`` every ``requote_every_s`` until the path ends. The announcement (if
    ``announce_lead_s`` is set) is published that long before the open, but never before the
    simulation start; with a lead of at least ``opens_after_s + 1`` it precedes the pair.
    """

    rules: PairRules
    appear_at_s: float
    opens_after_s: float
    open_price: Decimal
    initial_status: str = "sellable"
    announce_lead_s: float | None = None
    ladder: LadderSpec = LadderSpec()
    mm_delay_s: float = 0.0
    requote_every_s: float = 0.5
    price_path: tuple[PricePoint, ...] = (PricePoint(0.0, Decimal(1)),)
    flow: TradeFlow | None = None


@dataclass(frozen=True, slots=True)
class Scenario:
    """A whole simulated market: pairs, listings, fees and default balances."""

    name: str
    description: str = ""
    seed: int = 0
    taker_fee: Decimal = Decimal("0.002")
    maker_fee: Decimal = Decimal("0.002")
    balances: dict[str, Decimal] = field(default_factory=default_balances)
    established: tuple[EstablishedPair, ...] = ()
    listings: tuple[Listing, ...] = ()
    reject_unfillable: bool = False
    """If true, a post-only that would take and an unfillable FOK are refused with
    ``POC_FILL_IMMEDIATELY``/``FOK_NOT_FILL``; otherwise (default) they are accepted and end
    ``cancelled`` with ``finish_as`` ``poc``/``fok``. Gate documents both forms."""

    def scaled(self, factor: float) -> Scenario:
        """The same scenario with every time multiplied by ``factor`` (``0.1`` = 10× faster).

        One exception keeps the announcement ahead of the pair: the open is rounded up to a
        whole second, which does not scale, so an announcement lead never shrinks below
        ``opens_after_s + 1``.
        """
        if factor <= 0:
            raise ValueError("time scale must be positive")

        def flow(f: TradeFlow | None) -> TradeFlow | None:
            return None if f is None else dataclasses.replace(f, every_s=f.every_s * factor)

        established = tuple(
            dataclasses.replace(e, requote_every_s=e.requote_every_s * factor, flow=flow(e.flow))
            for e in self.established
        )
        listings = tuple(
            dataclasses.replace(
                li,
                appear_at_s=li.appear_at_s * factor,
                opens_after_s=li.opens_after_s * factor,
                announce_lead_s=_scaled_lead(li, factor),
                mm_delay_s=li.mm_delay_s * factor,
                requote_every_s=li.requote_every_s * factor,
                price_path=tuple(PricePoint(p.at_s * factor, p.mid) for p in li.price_path),
                flow=flow(li.flow),
            )
            for li in self.listings
        )
        return dataclasses.replace(self, established=established, listings=listings)


def _scaled_lead(listing: Listing, factor: float) -> float | None:
    if listing.announce_lead_s is None:
        return None
    return max(listing.announce_lead_s * factor, listing.opens_after_s * factor + ANNOUNCE_MARGIN_S)


def list_scenarios() -> list[str]:
    """Names of the built-in scenarios, sorted."""
    folder = resources.files(_BUILTIN_PACKAGE).joinpath(_BUILTIN_DIR)
    return sorted(
        entry.name.removesuffix(".yaml")
        for entry in folder.iterdir()
        if entry.name.endswith(".yaml")
    )


def load_scenario(name_or_path: str | Path, *, time_scale: float = 1.0) -> Scenario:
    """A built-in scenario by name (``"new_listing"``) or one from a YAML file path.

    Raises :class:`~sniper.errors.ConfigError` naming the offending key.
    """
    text = _read_source(str(name_or_path))
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError("scenario", f"not valid YAML: {exc}") from exc
    scenario = scenario_from_dict(raw)
    return scenario if time_scale == 1.0 else scenario.scaled(time_scale)


def _read_source(name_or_path: str) -> str:
    if name_or_path in list_scenarios():
        folder = resources.files(_BUILTIN_PACKAGE).joinpath(_BUILTIN_DIR)
        return folder.joinpath(f"{name_or_path}.yaml").read_text(encoding="utf-8")
    path = Path(name_or_path)
    if not path.is_file():
        known = ", ".join(list_scenarios())
        raise ConfigError("scenario", f"no scenario {name_or_path!r} (built-ins: {known})")
    return path.read_text(encoding="utf-8")


class _Reader:
    """Reads one mapping, remembering its key path for errors and refusing unknown keys."""

    def __init__(self, raw: object, path: str) -> None:
        if not isinstance(raw, dict):
            raise ConfigError(path, "must be a mapping")
        self.raw: dict[str, Any] = raw
        self.path = path
        self.used: set[str] = set()

    def at(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def get(self, key: str, default: Any = None) -> Any:
        self.used.add(key)
        return self.raw.get(key, default)

    def required(self, key: str) -> Any:
        self.used.add(key)
        if key not in self.raw:
            raise ConfigError(self.at(key), "is required")
        return self.raw[key]

    def decimal(self, key: str, default: Decimal | None = None) -> Decimal | None:
        value = self.get(key)
        if value is None:
            return default
        return _to_decimal(value, self.at(key))

    def required_decimal(self, key: str) -> Decimal:
        return _to_decimal(self.required(key), self.at(key))

    def number(self, key: str, default: float) -> float:
        value = self.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise ConfigError(self.at(key), "must be a non-negative number")
        return float(value)

    def integer(self, key: str, default: int | None = None) -> int:
        value = self.get(key, default) if default is not None else self.required(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigError(self.at(key), "must be a non-negative integer")
        return value

    def done(self) -> None:
        unknown = sorted(set(self.raw) - self.used)
        if unknown:
            raise ConfigError(self.at(unknown[0]), "unknown key")


def _to_decimal(value: object, path: str) -> Decimal:
    # Money must be written as a string in YAML; a float would already have lost digits.
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ConfigError(path, "must be a decimal written as a string")
    try:
        result = Decimal(str(value))
    except InvalidOperation as exc:
        raise ConfigError(path, f"not a decimal: {value!r}") from exc
    if not result.is_finite() or result < 0:
        raise ConfigError(path, "must be a finite, non-negative decimal")
    return result


def scenario_from_dict(raw: object) -> Scenario:
    """Build a :class:`Scenario` from parsed YAML, checking every key."""
    top = _Reader(raw, "")
    fees = _Reader(top.get("fees", {}), "fees")
    taker = fees.decimal("taker", Decimal("0.002"))
    maker = fees.decimal("maker", Decimal("0.002"))
    fees.done()
    balances_given = top.get("balances")
    balances = default_balances()
    if balances_given is not None:
        balances_raw = _Reader(balances_given, "balances")
        balances = {
            str(cur): _to_decimal(amount, f"balances.{cur}")
            for cur, amount in balances_raw.raw.items()
        }
    established = tuple(
        _established(item, f"established[{i}]")
        for i, item in enumerate(top.get("established") or [])
    )
    listings = tuple(
        _listing(item, f"listings[{i}]") for i, item in enumerate(top.get("listings") or [])
    )
    name = top.required("name")
    seed = top.integer("seed", 0)
    description = str(top.get("description", ""))
    reject_unfillable = bool(top.get("reject_unfillable", False))
    top.done()
    assert taker is not None
    assert maker is not None
    return Scenario(
        name=str(name),
        description=description,
        seed=seed,
        taker_fee=taker,
        maker_fee=maker,
        balances=balances,
        established=established,
        listings=listings,
        reject_unfillable=reject_unfillable,
    )


def _rules(r: _Reader) -> PairRules:
    pair = str(r.required("pair"))
    if pair.count("_") != 1 or not all(pair.split("_")):
        raise ConfigError(r.at("pair"), "must look like BASE_QUOTE")
    return PairRules(
        pair=pair,
        amount_precision=r.integer("amount_precision"),
        precision=r.integer("precision"),
        min_base_amount=r.decimal("min_base_amount"),
        min_quote_amount=r.decimal("min_quote_amount"),
        max_base_amount=r.decimal("max_base_amount"),
        max_quote_amount=r.decimal("max_quote_amount"),
    )


def _ladder(raw: object, path: str) -> LadderSpec:
    r = _Reader(raw, path)
    default = LadderSpec()
    spec = LadderSpec(
        levels=r.integer("levels", default.levels),
        spread_pct=r.decimal("spread_pct", default.spread_pct) or default.spread_pct,
        step_pct=r.decimal("step_pct", default.step_pct) or default.step_pct,
        amount=r.decimal("amount", default.amount) or default.amount,
    )
    r.done()
    return spec


def _flow(raw: object, path: str) -> TradeFlow | None:
    if raw is None:
        return None
    r = _Reader(raw, path)
    default = TradeFlow()
    flow = TradeFlow(
        every_s=r.number("every_s", default.every_s),
        quote_min=r.decimal("quote_min", default.quote_min) or default.quote_min,
        quote_max=r.decimal("quote_max", default.quote_max) or default.quote_max,
    )
    r.done()
    if flow.every_s <= 0:
        raise ConfigError(f"{path}.every_s", "must be positive")
    if flow.quote_max < flow.quote_min:
        raise ConfigError(f"{path}.quote_max", "must be >= quote_min")
    return flow


def _established(raw: object, path: str) -> EstablishedPair:
    r = _Reader(raw, path)
    item = EstablishedPair(
        rules=_rules(r),
        mid=r.required_decimal("mid"),
        ladder=_ladder(r.get("ladder", {}), r.at("ladder")),
        requote_every_s=r.number("requote_every_s", 5.0),
        flow=_flow(r.get("flow"), r.at("flow")),
    )
    r.done()
    return item


def _listing(raw: object, path: str) -> Listing:
    r = _Reader(raw, path)
    status = str(r.get("initial_status", "sellable"))
    if status not in ("untradable", "sellable", "buyable", "tradable"):
        raise ConfigError(r.at("initial_status"), f"unknown trade_status {status!r}")
    lead = r.get("announce_lead_s")
    path_raw = r.get("price_path") or [{"at_s": 0, "mid": "1"}]
    points = []
    for i, point in enumerate(path_raw):
        pr = _Reader(point, f"{r.at('price_path')}[{i}]")
        points.append(PricePoint(pr.number("at_s", 0.0), pr.required_decimal("mid")))
        pr.done()
    if [p.at_s for p in points] != sorted(p.at_s for p in points):
        raise ConfigError(r.at("price_path"), "points must be in time order")
    item = Listing(
        rules=_rules(r),
        appear_at_s=r.number("appear_at_s", 0.0),
        opens_after_s=r.number("opens_after_s", 0.0),
        open_price=r.required_decimal("open_price"),
        initial_status=status,
        announce_lead_s=None if lead is None else r.number("announce_lead_s", 0.0),
        ladder=_ladder(r.get("ladder", {}), r.at("ladder")),
        mm_delay_s=r.number("mm_delay_s", 0.0),
        requote_every_s=r.number("requote_every_s", 0.5),
        price_path=tuple(points),
        flow=_flow(r.get("flow"), r.at("flow")),
    )
    r.done()
    if item.requote_every_s <= 0:
        raise ConfigError(r.at("requote_every_s"), "must be positive")
    lead_s = item.announce_lead_s
    if lead_s is not None and lead_s < item.opens_after_s + ANNOUNCE_MARGIN_S:
        # Gate announces a listing before the pair shows up in currency_pairs; a scenario
        # whose announcement could land after the pair would teach a client the wrong order.
        raise ConfigError(
            r.at("announce_lead_s"),
            f"must be at least opens_after_s + {ANNOUNCE_MARGIN_S:g} "
            f"({item.opens_after_s + ANNOUNCE_MARGIN_S:g}) so the announcement comes before "
            "the pair appears",
        )
    return item
