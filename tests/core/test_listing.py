"""ListingTracker over sequences of pair snapshots, and announcement parsing."""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from decimal import Decimal

import pytest

from sniper.core.listing import (
    PARTIAL_VANISH_MIN,
    BuyStartScheduled,
    ListingEvent,
    ListingTracker,
    PairDelisted,
    PairListed,
    PairOpened,
    is_open,
    parse_announcement,
)
from sniper.core.models import PairInfo, TradeStatus

NOW = 1_800_000_000
T0 = NOW + 600  # a listing's start, ten minutes ahead

U = TradeStatus.UNTRADABLE
S = TradeStatus.SELLABLE
B = TradeStatus.BUYABLE
T = TradeStatus.TRADABLE


def pair(
    name: str,
    status: TradeStatus = T,
    buy_start_s: int = 0,
    *,
    premarket: bool = False,
) -> PairInfo:
    base, quote = name.split("_")
    return PairInfo(
        pair=name,
        base=base,
        quote=quote,
        trade_status=status,
        buy_start_s=buy_start_s,
        sell_start_s=0,
        amount_precision=2,
        price_precision=6,
        min_base_amount=Decimal(1),
        min_quote_amount=Decimal(3),
        premarket=premarket,
    )


BASELINE = (pair("BTC_USDT"), pair("ETH_USDT"), pair("OLD_USDT", U, 1_600_000_000))


def kinds(events: Sequence[ListingEvent]) -> list[tuple[str, str]]:
    return [(type(e).__name__, e.pair.pair) for e in events]


def tracker(*, premarket: bool = False, quotes: tuple[str, ...] = ("USDT",)) -> ListingTracker:
    t = ListingTracker(quotes, include_premarket=premarket)
    assert t.observe(BASELINE, NOW) == []
    return t


# ------------------------------------------------------------------------------ baseline


def test_baseline_pairs_are_never_listings() -> None:
    t = ListingTracker(["usdt"])
    pending = pair("WAIT_USDT", S, T0)
    assert t.observe([*BASELINE, pending], NOW) == []
    assert t.baseline_taken
    assert t.is_baseline("WAIT_USDT")
    # it opens, reschedules, flaps: nothing, ever
    assert t.observe([*BASELINE, pair("WAIT_USDT", S, T0 + 60)], NOW + 1) == []
    assert t.observe([*BASELINE, pair("WAIT_USDT", T, T0 + 60)], T0 + 61) == []
    assert t.observe([*BASELINE, pair("OLD_USDT", T)], T0 + 62) == [
        PairDelisted(pair("WAIT_USDT", T, T0 + 60), T0 + 62)
    ]


def test_empty_observation_is_not_a_baseline() -> None:
    t = ListingTracker(["USDT"])
    assert t.observe([], NOW) == []
    assert not t.baseline_taken
    assert t.observe(BASELINE, NOW + 1) == []
    assert t.is_baseline("BTC_USDT")
    assert t.observe([], NOW + 2) == []  # and later an empty answer delists nothing
    assert t.statistics().empty_ignored == 2


def test_duplicate_polls_produce_nothing() -> None:
    t = tracker()
    listing = pair("NEW_USDT", S, T0)
    assert kinds(t.observe([*BASELINE, listing], NOW + 1)) == [("PairListed", "NEW_USDT")]
    for second in range(2, 6):
        assert t.observe([*BASELINE, listing], NOW + second) == []


# ------------------------------------------------------------------------------ listings


@pytest.mark.parametrize(
    ("listing", "scheduled", "start_s", "opened"),
    [
        pytest.param(pair("NEW_USDT", U, T0), True, T0, False, id="untradable-future"),
        pytest.param(pair("NEW_USDT", S, T0), True, T0, False, id="sellable-future"),
        pytest.param(pair("NEW_USDT", T, T0), True, T0, False, id="tradable-but-future"),
        pytest.param(pair("NEW_USDT", U, 0), False, None, False, id="untradable-no-start"),
        pytest.param(pair("NEW_USDT", U, NOW - 99), False, None, False, id="untradable-past"),
        pytest.param(pair("NEW_USDT", T, NOW - 99), False, None, True, id="already-open"),
        pytest.param(pair("NEW_USDT", B, 0), False, None, True, id="buyable"),
        pytest.param(pair("NEW_USDT", S, 0), False, None, False, id="sellable-only"),
    ],
)
def test_first_sight_of_a_new_pair(
    listing: PairInfo, scheduled: bool, start_s: int | None, opened: bool
) -> None:
    t = tracker()
    events = t.observe([*BASELINE, listing], NOW)
    expected: list[ListingEvent] = [PairListed(listing, NOW, scheduled, start_s)]
    if opened:
        expected.append(PairOpened(listing, NOW))
    assert events == expected
    assert t.statistics().listings == 1


def test_scheduled_listing_opens_when_status_and_time_allow() -> None:
    t = tracker()
    t.observe([*BASELINE, pair("NEW_USDT", S, T0)], NOW)
    # tradable early, but buy_start is still ahead: not open
    assert t.observe([*BASELINE, pair("NEW_USDT", T, T0)], T0 - 1) == []
    # the same snapshot once buy_start passes: open, with no field change
    assert t.observe([*BASELINE, pair("NEW_USDT", T, T0)], T0) == [
        PairOpened(pair("NEW_USDT", T, T0), T0)
    ]


def test_past_buy_start_is_not_open_until_the_status_says_so() -> None:
    t = tracker()
    t.observe([*BASELINE, pair("NEW_USDT", U, NOW - 1000)], NOW)
    assert t.observe([*BASELINE, pair("NEW_USDT", S, NOW - 1000)], NOW + 1) == []
    assert kinds(t.observe([*BASELINE, pair("NEW_USDT", B, NOW - 1000)], NOW + 2)) == [
        ("PairOpened", "NEW_USDT")
    ]


def test_status_flapping_opens_once() -> None:
    t = tracker()
    t.observe([*BASELINE, pair("NEW_USDT", U)], NOW)
    opened = []
    for i, status in enumerate([T, U, T, S, B, T, U, T]):
        opened += t.observe([*BASELINE, pair("NEW_USDT", status)], NOW + 1 + i)
    assert kinds(opened) == [("PairOpened", "NEW_USDT")]


def test_buy_start_rescheduled_to_the_future() -> None:
    t = tracker()
    t.observe([*BASELINE, pair("NEW_USDT", S, T0)], NOW)
    later = pair("NEW_USDT", S, T0 + 3600)
    assert t.observe([*BASELINE, later], NOW + 1) == [BuyStartScheduled(later, NOW + 1, T0)]
    # moved into the past: not a schedule
    assert t.observe([*BASELINE, pair("NEW_USDT", S, NOW - 5)], NOW + 2) == []
    # from "none" to a future time
    assert t.observe([*BASELINE, pair("NEW_USDT", S, 0)], NOW + 3) == []
    assert kinds(t.observe([*BASELINE, pair("NEW_USDT", S, T0)], NOW + 4)) == [
        ("BuyStartScheduled", "NEW_USDT")
    ]


def test_several_listings_in_one_poll_keep_input_order() -> None:
    t = tracker()
    events = t.observe([pair("ZZZ_USDT", U, T0), *BASELINE, pair("AAA_USDT", B)], NOW)
    assert kinds(events) == [
        ("PairListed", "ZZZ_USDT"),
        ("PairListed", "AAA_USDT"),
        ("PairOpened", "AAA_USDT"),
    ]


# ---------------------------------------------------------------------------- filters


def test_other_quote_currencies_are_ignored() -> None:
    t = tracker()
    assert t.observe([*BASELINE, pair("NEW_BTC", T), pair("NEW_ETH", U, T0)], NOW) == []
    assert t.statistics().tracked == len(BASELINE)


def test_several_quotes_allowed() -> None:
    t = tracker(quotes=("USDT", "usdc"))
    assert kinds(t.observe([*BASELINE, pair("NEW_USDC", U)], NOW)) == [("PairListed", "NEW_USDC")]


def test_premarket_is_ignored_until_it_turns_normal() -> None:
    t = tracker()
    assert t.observe([*BASELINE, pair("PRE_USDT", T, premarket=True)], NOW) == []
    assert t.observe([*BASELINE], NOW + 1) == []  # a premarket pair vanishing: nothing
    assert t.observe([*BASELINE, pair("PRE_USDT", T, premarket=True)], NOW + 2) == []
    assert kinds(t.observe([*BASELINE, pair("PRE_USDT", U, T0)], NOW + 3)) == [
        ("PairListed", "PRE_USDT")
    ]


def test_premarket_when_configured() -> None:
    t = tracker(premarket=True)
    assert kinds(t.observe([*BASELINE, pair("PRE_USDT", T, premarket=True)], NOW)) == [
        ("PairListed", "PRE_USDT"),
        ("PairOpened", "PRE_USDT"),
    ]


def test_at_least_one_quote_is_required() -> None:
    with pytest.raises(ValueError, match="quote"):
        ListingTracker([])


# ---------------------------------------------------------------------- delist / return


def test_delisting_and_return_of_a_baseline_pair() -> None:
    t = tracker()
    without_eth = [p for p in BASELINE if p.pair != "ETH_USDT"]
    assert t.observe(without_eth, NOW + 1) == [PairDelisted(pair("ETH_USDT"), NOW + 1)]
    assert t.observe(without_eth, NOW + 2) == []
    assert t.observe(BASELINE, NOW + 3) == []  # back: still baseline, not a listing
    assert t.is_baseline("ETH_USDT")


def test_listing_that_vanishes_before_opening_is_listed_again() -> None:
    t = tracker()
    listing = pair("NEW_USDT", S, T0)
    t.observe([*BASELINE, listing], NOW)
    assert t.observe(BASELINE, NOW + 1) == [PairDelisted(listing, NOW + 1)]
    assert t.observe([*BASELINE, listing], NOW + 2) == [PairListed(listing, NOW + 2, True, T0)]


def test_listing_that_vanishes_after_opening_returns_silently() -> None:
    t = tracker()
    t.observe([*BASELINE, pair("NEW_USDT", T)], NOW)
    assert kinds(t.observe(BASELINE, NOW + 1)) == [("PairDelisted", "NEW_USDT")]
    assert t.observe([*BASELINE, pair("NEW_USDT", U)], NOW + 2) == []
    assert t.observe([*BASELINE, pair("NEW_USDT", T)], NOW + 3) == []


def test_a_partial_answer_delists_nothing() -> None:
    many = [pair(f"C{i:02d}_USDT") for i in range(3 * PARTIAL_VANISH_MIN)]
    t = ListingTracker(["USDT"])
    t.observe(many, NOW)
    half_gone = many[: len(many) // 3]
    assert t.observe(half_gone, NOW + 1) == []
    assert t.statistics().partial_ignored == 1
    # a handful vanishing is believed, in a stable order
    assert kinds(t.observe(many[2:], NOW + 2)) == [
        ("PairDelisted", "C00_USDT"),
        ("PairDelisted", "C01_USDT"),
    ]


# ------------------------------------------------------------------------ announcements


def test_announced_pair_appearing_is_a_listing_with_the_announced_start() -> None:
    t = tracker()
    t.add_announced("new", "usdt", T0)
    assert t.announced_start_s("NEW_USDT") == T0
    listing = pair("NEW_USDT", S, 0)  # Gate gives no buy_start yet
    assert t.observe([*BASELINE, listing], NOW) == [PairListed(listing, NOW, True, T0)]


def test_pair_buy_start_wins_over_the_announcement() -> None:
    t = tracker()
    t.add_announced("NEW", "USDT", T0)
    listing = pair("NEW_USDT", S, T0 + 30)
    assert t.observe([*BASELINE, listing], NOW) == [PairListed(listing, NOW, True, T0 + 30)]


def test_announcement_without_time_and_a_past_one() -> None:
    t = tracker()
    t.add_announced("NEW", "USDT", NOW - 10)
    t.add_announced("NEW", "USDT", None)  # a later one without a time keeps the known start
    assert t.announced_start_s("NEW_USDT") == NOW - 10
    listing = pair("NEW_USDT", U, 0)
    assert t.observe([*BASELINE, listing], NOW) == [PairListed(listing, NOW, False, None)]


def test_announcement_for_a_baseline_pair_changes_nothing() -> None:
    t = ListingTracker(["USDT"])
    t.add_announced("OLD", "USDT", T0)
    t.observe(BASELINE, NOW)
    assert t.observe([*BASELINE[:2], pair("OLD_USDT", T, T0)], T0 + 1) == []


def test_announcement_in_another_quote_is_ignored() -> None:
    t = tracker()
    t.add_announced("NEW", "BTC", T0)
    assert t.announced_start_s("NEW_BTC") is None


def test_is_open() -> None:
    assert is_open(pair("A_USDT", T, NOW), NOW)
    assert not is_open(pair("A_USDT", T, NOW + 1), NOW)
    assert not is_open(pair("A_USDT", S, 0), NOW)


# ------------------------------------------------------------------- parse_announcement


ABC = "Gate Will List ABC (ABC)"


def utc(year: int, month: int, day: int, hour: int = 8, minute: int = 0) -> int:
    return calendar.timegm((year, month, day, hour, minute, 0, 0, 0, 0))


@pytest.mark.parametrize(
    ("title", "brief", "expected"),
    [
        (
            "Gate will commence Worldcoin(WLD) Trading at 7:30am UTC 24th July 2023",
            "",
            ("WLD", utc(2023, 7, 24, 7, 30)),
        ),
        (
            "Gate Will List XYZ (XYZ)",
            "Trading: 2026-12-01 08:00 (UTC)",
            ("XYZ", utc(2026, 12, 1, 8)),
        ),
        (
            "Gate Will List XYZ (XYZ)",
            "Deposits open 2026-11-30 10:00 UTC. Trading: 2026-12-01 08:00 (UTC). "
            "Withdrawals: 2026-12-02 08:00 UTC",
            ("XYZ", utc(2026, 12, 1, 8)),
        ),
        (
            "Gate.io Will List Fetch.ai (FET)",
            "Gate.io will list FET on December 1, 2026, 08:00 UTC. Deposits: 2026-11-30 08:00 UTC",
            ("FET", utc(2026, 12, 1, 8)),
        ),
        (
            "Gate Will List ABC (ABC) for Spot Trading at 12:00 PM UTC on June 7, 2024",
            "",
            ("ABC", utc(2024, 6, 7, 12)),
        ),
        (
            "Gate Will List ABC (ABC) for Spot Trading at 12:15 am UTC, 1st Feb 2025",
            "",
            ("ABC", utc(2025, 2, 1, 0, 15)),
        ),
        (
            "Gate Will List ABC (ABC)",
            "Trading 2026-01-23 16:00 (UTC+8)",
            ("ABC", utc(2026, 1, 23, 8)),
        ),
        (
            "Gate Will List ABC (ABC)",
            "Trading at 2026-01-23 01:30 UTC-5:30",
            ("ABC", utc(2026, 1, 23, 7)),
        ),
        ("Gate Lists 1INCH (1INCH) Spot and Perpetual Trading", "", ("1INCH", None)),
        ("Gate will list ABC spot trading", "", ("ABC", None)),
        (
            "Gate Will List ABC (ABC)",
            "Deposits 2026-01-01 08:00 UTC, then 2026-01-02 08:00 UTC",
            ("ABC", None),
        ),
        (ABC, "One time only: Jan 5 2026 9:00", ("ABC", utc(2026, 1, 5, 9))),
        (ABC, "Trading: 2026-02-30 08:00 UTC", ("ABC", None)),
        (ABC, "Trading: 2026-02-03 25:00 UTC", ("ABC", None)),
        (ABC, "Trading: 13:00 pm UTC 3 March 2026", ("ABC", None)),
        (ABC, "Trading on 3 March 2026", ("ABC", None)),
        ("Gate Will Delist XYZ (XYZ)", "2026-12-01 08:00 UTC", None),
        ("Gate Will List XYZ (XYZ) Perpetual Futures", "", None),
        ("Gate Pre-Market Trading Will List XYZ (XYZ)", "", None),
        ("Gate Launchpool: Stake ABC (ABC) to Earn", "", None),
        ("Gate Will List the New Token (UTC)", "", None),
        ("Weekly report", "", None),
        ("", "", None),
    ],
)
def test_parse_announcement(
    title: str, brief: str, expected: tuple[str, int | None] | None
) -> None:
    assert parse_announcement(title, brief) == expected
