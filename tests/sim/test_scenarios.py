"""Scenarios: the built-ins load and play as documented, files are checked key by key, times
scale."""

from __future__ import annotations

from decimal import ROUND_CEILING, Decimal
from pathlib import Path

import pytest

from sniper.errors import ConfigError
from sniper.sim.engine import Announced, PairListed, SimEngine, SimEvent
from sniper.sim.matching import quantize_down
from sniper.sim.scenarios import (
    LadderSpec,
    Listing,
    PricePoint,
    Scenario,
    list_scenarios,
    load_scenario,
    scenario_from_dict,
)
from sniper.sim.script import ladder_prices, mid_at

D = Decimal
START_MS = 1_767_261_600_000  # a whole second
# Where in its second the simulation starts moves buy_start (whole seconds) against appear_at_s.
START_PHASES_MS = (0, 1, 299, 300, 500, 701, 999)

MINIMAL = """
name: tiny
listings:
  - pair: ABC_USDT
    amount_precision: 2
    precision: 4
    open_price: "0.5"
    appear_at_s: 2
    opens_after_s: 3
"""


def test_builtins_are_listed_and_load() -> None:
    names = list_scenarios()
    assert {"new_listing", "new_listing_fast", "listing_dump", "quiet"} <= set(names)
    for name in names:
        scenario = load_scenario(name)
        assert scenario.name == name
        assert scenario.taker_fee == D("0.002")
        assert scenario.balances == {"USDT": D("10000")}


def test_new_listing_shapes() -> None:
    default = load_scenario("new_listing")
    assert [e.rules.pair for e in default.established] == ["BTC_USDT", "ETH_USDT"]
    (listing,) = default.listings
    assert (listing.rules.pair, listing.initial_status) == ("NEWCOIN_USDT", "sellable")
    assert listing.appear_at_s == 2.0
    assert listing.rules.min_quote_amount == D("3")
    peak = max(p.mid for p in listing.price_path)
    assert peak > listing.price_path[0].mid > 0
    assert listing.price_path[-1].mid < peak  # spike, then fade
    fast = load_scenario("new_listing_fast").listings[0]
    assert (fast.appear_at_s, fast.appear_at_s + fast.opens_after_s) == (0.3, 1.5)
    (dump,) = load_scenario("listing_dump").listings
    assert (dump.appear_at_s, dump.appear_at_s + dump.opens_after_s) == (0.3, 1.5)
    assert dump.price_path[-1].mid < dump.price_path[0].mid
    assert load_scenario("quiet").listings == ()


def test_scaling_multiplies_every_time() -> None:
    base = load_scenario("new_listing")
    fast = load_scenario("new_listing", time_scale=0.1)
    a, b = base.listings[0], fast.listings[0]
    assert b.appear_at_s == pytest.approx(a.appear_at_s * 0.1)
    assert b.opens_after_s == pytest.approx(a.opens_after_s * 0.1)
    # 0.5 s would let the announcement fall after the pair (the open rounds to whole seconds).
    assert a.announce_lead_s == 5.0
    assert b.announce_lead_s == pytest.approx(0.4 + 1.0)
    slow = load_scenario("new_listing", time_scale=2).listings[0]
    assert slow.announce_lead_s == pytest.approx(10.0)
    assert b.requote_every_s == pytest.approx(a.requote_every_s * 0.1)
    assert [p.at_s for p in b.price_path] == pytest.approx([p.at_s * 0.1 for p in a.price_path])
    assert b.flow is not None
    assert a.flow is not None
    assert b.flow.every_s == pytest.approx(a.flow.every_s * 0.1)
    assert fast.established[0].requote_every_s == pytest.approx(0.5)
    assert b.open_price == a.open_price  # prices do not scale
    with pytest.raises(ValueError, match="positive"):
        base.scaled(0)


def test_load_from_path_with_defaults(tmp_path: Path) -> None:
    path = tmp_path / "tiny.yaml"
    path.write_text(MINIMAL, encoding="utf-8")
    scenario = load_scenario(path)
    (listing,) = scenario.listings
    assert listing.rules.base == "ABC"
    assert listing.rules.quote == "USDT"
    assert listing.rules.min_base_amount is None
    assert listing.initial_status == "sellable"
    assert listing.announce_lead_s is None
    assert listing.price_path == (PricePoint(0.0, D(1)),)
    assert scenario.established == ()
    assert scenario.balances == {"USDT": D("10000")}  # the default when a scenario names none


@pytest.mark.parametrize(
    ("balances", "expected"),
    [
        ({"USDT": "250", "BTC": "1"}, {"USDT": D("250"), "BTC": D("1")}),
        ({}, {}),  # explicitly nothing
    ],
)
def test_balances_as_written(balances: dict[str, str], expected: dict[str, Decimal]) -> None:
    assert scenario_from_dict({"name": "b", "balances": balances}).balances == expected


@pytest.mark.parametrize(
    ("patch", "path"),
    [
        ({"surprise": 1}, "surprise"),
        ({"fees": {"taker": 0.002}}, "fees.taker"),
        ({"fees": {"taker": "abc"}}, "fees.taker"),
        ({"fees": {"maker": "-1"}}, "fees.maker"),
        ({"balances": {"USDT": 10.5}}, "balances.USDT"),
        ({"seed": -1}, "seed"),
        ({"listings": [{"pair": "ABCUSDT", "amount_precision": 2, "precision": 4,
                        "open_price": "1"}]}, "listings[0].pair"),
        ({"listings": [{"pair": "A_B", "precision": 4, "open_price": "1"}]},
         "listings[0].amount_precision"),
        ({"listings": [{"pair": "A_B", "amount_precision": 2, "precision": 4}]},
         "listings[0].open_price"),
        ({"listings": [{"pair": "A_B", "amount_precision": 2, "precision": 4, "open_price": "1",
                        "initial_status": "halted"}]}, "listings[0].initial_status"),
        ({"listings": [{"pair": "A_B", "amount_precision": 2, "precision": 4, "open_price": "1",
                        "ladder": {"levels": 3, "depth": 2}}]}, "listings[0].ladder.depth"),
        ({"listings": [{"pair": "A_B", "amount_precision": 2, "precision": 4, "open_price": "1",
                        "price_path": [{"at_s": 5, "mid": "2"}, {"at_s": 1, "mid": "1"}]}]},
         "listings[0].price_path"),
        ({"listings": [{"pair": "A_B", "amount_precision": 2, "precision": 4, "open_price": "1",
                        "flow": {"every_s": 0}}]}, "listings[0].flow.every_s"),
        ({"balances": ["USDT"]}, "balances"),
        ({"listings": [{"pair": "A_B", "amount_precision": 2, "precision": 4, "open_price": "1",
                        "opens_after_s": 4, "announce_lead_s": 4.9}]},
         "listings[0].announce_lead_s"),
        ({"established": [{"pair": "A_B", "amount_precision": 2, "precision": 4}]},
         "established[0].mid"),
        ({"established": [{"pair": "A_B", "amount_precision": 2, "precision": 4, "mid": "1",
                           "requote_every_s": "often"}]}, "established[0].requote_every_s"),
    ],
)  # fmt: skip
def test_bad_scenarios_name_the_key(patch: dict[str, object], path: str) -> None:
    raw: dict[str, object] = {"name": "bad", **patch}
    with pytest.raises(ConfigError) as caught:
        scenario_from_dict(raw)
    assert caught.value.path == path


def test_unknown_name_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="new_listing"):
        load_scenario("no_such_scenario")
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: [unclosed", encoding="utf-8")
    with pytest.raises(ConfigError, match="YAML"):
        load_scenario(broken)
    not_mapping = tmp_path / "list.yaml"
    not_mapping.write_text("- 1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="mapping"):
        load_scenario(not_mapping)
    with pytest.raises(ConfigError) as caught:
        scenario_from_dict({})
    assert caught.value.path == "name"


@pytest.mark.parametrize(
    ("mid", "precision", "asks", "bids"),
    [
        ("1", 2, ["1.01", "1.03"], ["0.99", "0.97"]),
        # Rounded outwards: asks up, bids down.
        ("0.333", 3, ["0.337", "0.343"], ["0.329", "0.323"]),
        # Coarse precision merges levels that round together.
        ("1", 0, ["2"], []),
    ],
)
def test_ladder_prices(mid: str, precision: int, asks: list[str], bids: list[str]) -> None:
    spec = LadderSpec(levels=2, spread_pct=D("2"), step_pct=D("2"), amount=D("1"))
    got_asks, got_bids = ladder_prices(D(mid), spec, precision)
    assert got_asks == [D(a) for a in asks]
    assert got_bids == [D(b) for b in bids]


@pytest.mark.parametrize(
    ("t_s", "expected"),
    [(-1.0, "1"), (0.0, "1"), (2.5, "2"), (5.0, "3"), (7.5, "2"), (10.0, "1"), (99.0, "1")],
)
def test_mid_follows_the_path(t_s: float, expected: str) -> None:
    path = (PricePoint(0, D(1)), PricePoint(5, D(3)), PricePoint(10, D(1)))
    assert mid_at(path, t_s) == D(expected)


def _play_until_listed(scenario: Scenario, start_ms: int) -> list[SimEvent]:
    """Every event up to and including the last listing's ``PairListed``, in order."""
    engine = SimEngine(scenario, start_ms)
    wanted = {li.rules.pair for li in scenario.listings}
    happened: list[SimEvent] = []
    while wanted:
        due_ms = engine.next_event_ms()
        assert due_ms is not None
        for event in engine.advance(due_ms):
            happened.append(event)
            if isinstance(event, PairListed):
                wanted.discard(event.pair.pair)
    return happened


@pytest.mark.parametrize("time_scale", [1.0, 0.5, 0.1, 3.0])
@pytest.mark.parametrize("name", ["new_listing", "new_listing_fast", "listing_dump"])
def test_announcement_comes_before_the_pair_appears(name: str, time_scale: float) -> None:
    scenario = load_scenario(name, time_scale=time_scale)
    for phase_ms in START_PHASES_MS:
        happened = _play_until_listed(scenario, START_MS + phase_ms)
        order = [
            ("ann", e.title) if isinstance(e, Announced) else ("pair", e.pair.base)
            for e in happened
            if isinstance(e, Announced | PairListed)
        ]
        for listing in scenario.listings:
            base = listing.rules.base
            announced = [
                i for i, (kind, what) in enumerate(order) if kind == "ann" and base in what
            ]
            listed = order.index(("pair", base))
            assert announced, (name, phase_ms)
            assert announced[0] < listed, (name, time_scale, phase_ms, order)


def _opened(name: str, start_ms: int = START_MS) -> tuple[SimEngine, Listing, int, int]:
    """The scenario's engine right after its listing's first ladder: (engine, listing, uid,
    open_ms)."""
    scenario = load_scenario(name)
    (listing,) = scenario.listings
    engine = SimEngine(scenario, start_ms)
    uid = engine.add_user("k", "s", dict(scenario.balances))
    _play_until_listed(scenario, start_ms)  # same script, separate engine: find buy_start
    engine.advance(start_ms + round(listing.appear_at_s * 1000))
    open_ms = engine.get_pair(listing.rules.pair).buy_start_s * 1000
    engine.advance(open_ms + round(listing.mm_delay_s * 1000))
    return engine, listing, uid, open_ms


def _buy_at_first_ask(engine: SimEngine, listing: Listing, uid: int, now_ms: int) -> Decimal:
    """IOC buy ~100 USDT at the best ask; returns its average fill price."""
    pair = listing.rules.pair
    _, asks, _ = engine.order_book(pair, 1)
    first_ask = asks[0][0]
    amount = quantize_down(D(100) / first_ask, listing.rules.amount_precision)
    order, _ = engine.place_order(
        uid,
        {"currency_pair": pair, "side": "buy", "amount": str(amount), "price": str(first_ask),
         "time_in_force": "ioc", "text": "t-buy"},
        now_ms,
    )  # fmt: skip
    assert (order.status, order.filled_amount) == ("closed", amount)
    assert order.avg_deal_price == first_ask
    return first_ask


@pytest.mark.parametrize("name", ["new_listing", "new_listing_fast"])
@pytest.mark.parametrize("slippage", ["1", "1.1"])  # at the first ask, or 10 % above it
def test_spike_fills_a_30_pct_take_profit(name: str, slippage: str) -> None:
    engine, listing, uid, open_ms = _opened(name)
    pair, base = listing.rules.pair, listing.rules.base
    entry = _buy_at_first_ask(engine, listing, uid, open_ms + 100) * D(slippage)
    # Fees are charged in the base received; sell what is held, rounded down.
    held = quantize_down(engine.balances(uid)[base][0], listing.rules.amount_precision)
    quantum = D(1).scaleb(-listing.rules.precision)
    tp_price = (entry * D("1.3")).quantize(quantum, rounding=ROUND_CEILING)
    tp, _ = engine.place_order(
        uid,
        {"currency_pair": pair, "side": "sell", "amount": str(held), "price": str(tp_price),
         "text": "t-tp"},
        open_ms + 101,
    )  # fmt: skip
    assert tp.status == "open"
    peak_s = max(listing.price_path, key=lambda p: p.mid).at_s
    engine.advance(open_ms + round(peak_s * 1000) + 1)
    done = engine.get_order(uid, pair, tp.id)
    assert (done.status, done.filled_amount) == ("closed", held)
    assert engine.balances(uid)[base][1] == 0


@pytest.mark.parametrize("phase_ms", START_PHASES_MS)
def test_listing_dump_bid_falls_30_pct_below_the_open(phase_ms: int) -> None:
    engine, listing, uid, open_ms = _opened("listing_dump", START_MS + phase_ms)
    pair = listing.rules.pair
    assert listing.rules.base == "DUMPCOIN"
    entry = _buy_at_first_ask(engine, listing, uid, open_ms + 50)  # there is something to stop
    assert entry <= listing.open_price * D("1.01")
    floor = listing.open_price * D("0.7")
    crossed_ms = None
    for t_ms in range(open_ms + 100, open_ms + 5000, 100):
        engine.advance(t_ms)
        _, _, bids = engine.order_book(pair, 1)
        if bids and bids[0][0] < floor:
            crossed_ms = t_ms
            break
    assert crossed_ms is not None
    assert crossed_ms - open_ms <= 3000  # "within a few seconds"
    engine.advance(open_ms + 10_000)  # and it stays down
    _, _, bids = engine.order_book(pair, 1)
    assert bids[0][0] < floor
