"""BookSync: Gate's book sync rules (gate-v4.md §6.6) as a pure state machine."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sniper.core.book import BookState, BookSync, Outcome
from sniper.core.models import BookSnapshot, BookUpdate, Level

PAIR = "ABC_USDT"


def lv(*pairs: tuple[str, str]) -> tuple[Level, ...]:
    return tuple((Decimal(p), Decimal(a)) for p, a in pairs)


def upd(
    first: int,
    last: int,
    asks: tuple[tuple[str, str], ...] = (),
    bids: tuple[tuple[str, str], ...] = (),
    *,
    full: bool = False,
    pair: str = PAIR,
) -> BookUpdate:
    return BookUpdate(pair, first, last, lv(*asks), lv(*bids), full=full)


def snap(
    update_id: int,
    asks: tuple[tuple[str, str], ...] = (),
    bids: tuple[tuple[str, str], ...] = (),
    pair: str = PAIR,
) -> BookSnapshot:
    return BookSnapshot(pair, update_id, lv(*asks), lv(*bids))


def live_book(update_id: int = 100) -> BookSync:
    """A book LIVE at ``update_id`` with asks 10/11 and bids 9/8."""
    book = BookSync(PAIR)
    result = book.on_snapshot(snap(update_id, (("10", "1"), ("11", "2")), (("9", "1"), ("8", "3"))))
    assert result.outcome is Outcome.SNAPSHOT_APPLIED
    return book


def D(text: str) -> Decimal:  # noqa: N802 - reads like a literal
    return Decimal(text)


# ------------------------------------------------------------------ awaiting snapshot


def test_updates_are_buffered_and_the_first_asks_for_a_snapshot_once() -> None:
    book = BookSync(PAIR)
    first = book.on_update(upd(101, 102, (("10", "1"),)))
    second = book.on_update(upd(103, 103, (("10", "2"),)))
    assert (first.outcome, first.need_snapshot) == (Outcome.BUFFERED, True)
    assert (second.outcome, second.need_snapshot) == (Outcome.BUFFERED, False)
    assert book.state is BookState.AWAITING_SNAPSHOT
    assert book.best_ask() is None
    assert book.statistics().updates_buffered == 2


def test_snapshot_drops_old_buffered_updates_and_bridges_the_straddling_one() -> None:
    book = BookSync(PAIR)
    book.on_update(upd(90, 95, (("10", "9"),)))  # u < id+1: dropped
    book.on_update(upd(96, 102, (("10", "5"),)))  # straddles id+1 = 101
    book.on_update(upd(103, 104, (("12", "1"),), (("9", "0"),)))
    result = book.on_snapshot(snap(100, (("10", "1"), ("11", "1")), (("9", "1"), ("8", "1"))))
    assert result.outcome is Outcome.SNAPSHOT_APPLIED
    assert not result.need_snapshot
    assert book.state is BookState.LIVE
    assert book.update_id == 104
    assert book.asks(5) == lv(("10", "5"), ("11", "1"), ("12", "1"))
    assert book.bids(5) == lv(("8", "1"))
    assert book.statistics().updates_applied == 2


def test_snapshot_older_than_the_buffered_stream_asks_for_another() -> None:
    book = BookSync(PAIR)
    book.on_update(upd(110, 112, (("10", "1"),)))
    too_old = book.on_snapshot(snap(100, (("10", "3"),)))
    assert (too_old.outcome, too_old.need_snapshot) == (Outcome.SNAPSHOT_TOO_OLD, True)
    assert book.state is BookState.AWAITING_SNAPSHOT
    assert book.best_ask() is None
    ok = book.on_snapshot(snap(110, (("10", "3"),)))
    assert ok.outcome is Outcome.SNAPSHOT_APPLIED
    assert book.update_id == 112
    assert book.best_ask() == (D("10"), D("1"))
    assert book.statistics().snapshots_too_old == 1


def test_snapshot_newer_than_every_buffered_update_drops_them_all() -> None:
    book = BookSync(PAIR)
    book.on_update(upd(101, 105, (("10", "1"),)))
    book.on_update(upd(106, 110, (("10", "2"),)))
    result = book.on_snapshot(snap(120, (("10", "7"),)))
    assert result.outcome is Outcome.SNAPSHOT_APPLIED
    assert book.update_id == 120
    assert book.best_ask() == (D("10"), D("7"))
    # the next update may straddle the snapshot id
    assert book.on_update(upd(118, 122, (("10", "8"),))).outcome is Outcome.APPLIED
    assert book.update_id == 122


def test_a_gap_inside_the_buffered_chain_resyncs_and_keeps_the_rest() -> None:
    book = BookSync(PAIR)
    book.on_update(upd(101, 101, (("10", "1"),)))
    book.on_update(upd(105, 106, (("10", "2"),)))  # 102..104 lost
    book.on_update(upd(107, 107, (("10", "3"),)))
    result = book.on_snapshot(snap(100, (("10", "9"),)))
    assert (result.outcome, result.need_snapshot) == (Outcome.GAP, True)
    assert book.state is BookState.RESYNCING
    assert book.best_ask() is None
    # the updates from the gap on are kept and bridge a newer snapshot
    again = book.on_snapshot(snap(105, (("10", "4"),)))
    assert again.outcome is Outcome.SNAPSHOT_APPLIED
    assert book.update_id == 107
    assert book.best_ask() == (D("10"), D("3"))


def test_snapshot_while_live_is_ignored() -> None:
    book = live_book(100)
    result = book.on_snapshot(snap(200, (("50", "1"),)))
    assert result.outcome is Outcome.SNAPSHOT_IGNORED
    assert book.update_id == 100
    assert book.best_ask() == (D("10"), D("1"))


def test_bounded_buffer_drops_the_oldest_which_makes_the_snapshot_too_old() -> None:
    book = BookSync(PAIR, max_buffered=2)
    for i in range(101, 104):
        book.on_update(upd(i, i, (("10", str(i)),)))
    assert book.on_snapshot(snap(100)).outcome is Outcome.SNAPSHOT_TOO_OLD
    assert book.on_snapshot(snap(101)).outcome is Outcome.SNAPSHOT_APPLIED
    assert book.update_id == 103


def test_max_buffered_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_buffered"):
        BookSync(PAIR, max_buffered=0)


# ------------------------------------------------------------------------------ live

ASK4 = (("10", "4"),)


@pytest.mark.parametrize(
    ("update", "outcome", "update_id", "best_ask"),
    [
        pytest.param(upd(101, 101, ASK4), Outcome.APPLIED, 101, ("10", "4"), id="in-order"),
        pytest.param(upd(99, 103, ASK4), Outcome.APPLIED, 103, ("10", "4"), id="overlap"),
        pytest.param(upd(95, 100, ASK4), Outcome.STALE, 100, ("10", "1"), id="stale"),
        pytest.param(upd(100, 100, ASK4), Outcome.STALE, 100, ("10", "1"), id="duplicate"),
        pytest.param(upd(102, 103, ASK4), Outcome.GAP, 100, None, id="gap"),
    ],
)
def test_live_update_rules(
    update: BookUpdate, outcome: Outcome, update_id: int, best_ask: tuple[str, str] | None
) -> None:
    book = live_book(100)
    result = book.on_update(update)
    assert result.outcome is outcome
    assert result.need_snapshot is (outcome is Outcome.GAP)
    assert book.update_id == update_id
    expected = None if best_ask is None else (D(best_ask[0]), D(best_ask[1]))
    assert book.best_ask() == expected


def test_gap_resyncs_asks_once_then_buffers_until_a_snapshot() -> None:
    book = live_book(100)
    gap = book.on_update(upd(105, 106, (("10", "2"),)))
    assert (gap.outcome, gap.need_snapshot, gap.top_changed) == (Outcome.GAP, True, True)
    assert book.state is BookState.RESYNCING
    assert book.is_live is False
    assert (book.best_bid(), book.best_ask()) == (None, None)
    later = book.on_update(upd(107, 107, (("10", "3"),)))
    assert (later.outcome, later.need_snapshot) == (Outcome.BUFFERED, False)
    book.snapshot_failed()
    retry = book.on_update(upd(108, 108, (("10", "4"),)))
    assert retry.need_snapshot
    back = book.on_snapshot(snap(106, (("10", "2"),), (("9", "1"),)))
    assert back.outcome is Outcome.SNAPSHOT_APPLIED
    assert book.statistics().state is BookState.LIVE
    assert book.update_id == 108
    assert book.best_ask() == (D("10"), D("4"))
    stats = book.statistics()
    assert (stats.gaps, stats.resyncs, stats.snapshots_applied) == (1, 1, 2)


def test_amounts_are_absolute_and_zero_deletes() -> None:
    book = live_book(100)
    book.on_update(upd(101, 101, (("11", "5"), ("10.5", "1")), (("8", "0"),)))
    assert book.asks(10) == lv(("10", "1"), ("10.5", "1"), ("11", "5"))
    assert book.bids(10) == lv(("9", "1"))
    book.on_update(upd(102, 102, (("10.5", "0"), ("13", "0")), ()))  # 13 never existed
    assert book.asks(10) == lv(("10", "1"), ("11", "5"))


def test_equal_decimals_are_the_same_level() -> None:
    book = live_book(100)
    book.on_update(upd(101, 101, (("10.00", "0.000"),)))
    assert book.best_ask() == (D("11"), D("2"))


def test_best_level_is_recomputed_only_from_what_is_left() -> None:
    book = live_book(100)
    assert book.on_update(upd(101, 101, (("10", "0"),), (("9", "0"),))).top_changed
    assert book.best_ask() == (D("11"), D("2"))
    assert book.best_bid() == (D("8"), D("3"))
    book.on_update(upd(102, 102, (("11", "0"),), (("8", "0"),)))
    assert (book.best_ask(), book.best_bid()) == (None, None)
    book.on_update(upd(103, 103, (("12", "1"), ("11.5", "1")), (("7", "1"), ("7.5", "1"))))
    assert book.best_ask() == (D("11.5"), D("1"))
    assert book.best_bid() == (D("7.5"), D("1"))


@pytest.mark.parametrize(
    ("asks", "bids", "top_changed"),
    [
        pytest.param((("10", "9"),), (), True, id="best-ask-amount"),
        pytest.param((), (("9", "9"),), True, id="best-bid-amount"),
        pytest.param((("9.5", "1"),), (), True, id="better-ask"),
        pytest.param((("11", "9"),), (("8", "0"),), False, id="deeper-levels"),
        pytest.param((("10", "1"),), (), False, id="same-amount"),
    ],
)
def test_top_changed(
    asks: tuple[tuple[str, str], ...], bids: tuple[tuple[str, str], ...], top_changed: bool
) -> None:
    book = live_book(100)
    assert book.on_update(upd(101, 101, asks, bids)).top_changed is top_changed


def test_depth_views_are_ordered_and_limited() -> None:
    book = live_book(100)
    book.on_update(upd(101, 101, (("10.2", "1"), ("10.1", "1")), (("8.5", "1"),)))
    assert book.asks(2) == lv(("10", "1"), ("10.1", "1"))
    assert book.bids(2) == lv(("9", "1"), ("8.5", "1"))
    assert book.asks(0) == ()


# ---------------------------------------------------------------------------- crossed


def test_crossed_update_is_rejected_and_resyncs() -> None:
    book = live_book(100)
    result = book.on_update(upd(101, 101, (), (("10", "1"),)))  # bid == best ask
    assert (result.outcome, result.need_snapshot) == (Outcome.CROSSED, True)
    assert book.state is BookState.RESYNCING
    assert book.best_ask() is None
    assert book.statistics().crossed == 1


def test_crossed_snapshot_asks_for_another() -> None:
    book = BookSync(PAIR)
    result = book.on_snapshot(snap(100, (("10", "1"),), (("11", "1"),)))
    assert (result.outcome, result.need_snapshot, result.opened) == (Outcome.CROSSED, True, False)
    assert book.state is BookState.RESYNCING
    assert book.on_snapshot(snap(101, (("11", "1"),), (("10", "1"),))).opened


def test_crossed_full_push_resyncs() -> None:
    book = live_book(100)
    result = book.on_update(upd(150, 150, (("10", "1"),), (("10", "1"),), full=True))
    assert result.outcome is Outcome.CROSSED
    assert book.state is BookState.RESYNCING


def test_crossing_while_replaying_the_buffer() -> None:
    book = BookSync(PAIR)
    book.on_update(upd(101, 101, (), (("12", "1"),)))
    result = book.on_snapshot(snap(100, (("11", "1"),), (("9", "1"),)))
    assert result.outcome is Outcome.CROSSED
    assert not result.opened
    assert book.state is BookState.RESYNCING


# ------------------------------------------------------------------------- full push


def test_full_push_syncs_without_a_rest_snapshot() -> None:
    book = BookSync(PAIR)
    book.on_update(upd(90, 91, (("10", "1"),)))
    result = book.on_update(upd(200, 205, (("10", "2"),), (("9", "1"),), full=True))
    assert result.outcome is Outcome.FULL_APPLIED
    assert book.is_live
    assert book.update_id == 205
    assert book.on_update(upd(206, 206, (("10", "3"),))).outcome is Outcome.APPLIED
    # the REST snapshot asked for earlier arrives late: ignored
    assert book.on_snapshot(snap(150)).outcome is Outcome.SNAPSHOT_IGNORED
    assert book.best_ask() == (D("10"), D("3"))


@pytest.mark.parametrize("new_id", [50, 500])
def test_full_push_replaces_the_book_and_resets_the_id(new_id: int) -> None:
    book = live_book(100)
    result = book.on_update(upd(new_id, new_id, (("20", "1"),), (("19", "1"),), full=True))
    assert (result.outcome, result.top_changed) == (Outcome.FULL_APPLIED, True)
    assert book.update_id == new_id
    assert book.asks(5) == lv(("20", "1"))
    assert book.bids(5) == lv(("19", "1"))


def test_full_push_ends_a_resync() -> None:
    book = live_book(100)
    book.on_update(upd(110, 110))
    assert book.state is BookState.RESYNCING
    assert book.on_update(upd(111, 120, (("10", "1"),), full=True)).outcome is Outcome.FULL_APPLIED
    assert book.is_live
    assert book.statistics().full_pushes == 1


# ---------------------------------------------------------------------------- opened


def test_opened_fires_once_on_the_first_asks() -> None:
    book = BookSync(PAIR)
    empty = book.on_update(upd(1, 1, full=True))
    assert (empty.outcome, empty.opened) == (Outcome.FULL_APPLIED, False)
    bids_only = book.on_update(upd(2, 2, (), (("0.5", "100"),)))
    assert not bids_only.opened
    first_ask = book.on_update(upd(3, 3, (("1.0", "10"),)))
    assert (first_ask.opened, first_ask.top_changed) == (True, True)
    assert not book.on_update(upd(4, 4, (("1.1", "10"),))).opened
    # asks vanish and come back: not a new opening
    book.on_update(upd(5, 5, (("1.0", "0"), ("1.1", "0"))))
    assert not book.on_update(upd(6, 6, (("1.2", "1"),))).opened


def test_opened_survives_no_resync() -> None:
    book = live_book(100)  # opened by the snapshot
    book.on_update(upd(200, 200))  # gap
    assert not book.on_snapshot(snap(300, (("10", "1"),))).opened


def test_opened_by_the_snapshot_itself() -> None:
    book = BookSync(PAIR)
    assert book.on_snapshot(snap(100, (("10", "1"),))).opened


def test_opened_reported_when_the_asks_come_from_replayed_updates() -> None:
    book = BookSync(PAIR)
    book.on_update(upd(101, 101, (("10", "1"),)))
    result = book.on_snapshot(snap(100))
    assert (result.outcome, result.opened) == (Outcome.SNAPSHOT_APPLIED, True)


# ---------------------------------------------------------------------------- misc


def test_data_for_another_pair_is_refused() -> None:
    book = BookSync(PAIR)
    with pytest.raises(ValueError, match="XYZ_USDT"):
        book.on_update(upd(1, 1, pair="XYZ_USDT"))
    with pytest.raises(ValueError, match="XYZ_USDT"):
        book.on_snapshot(snap(1, pair="XYZ_USDT"))


def test_statistics_count_what_happened() -> None:
    book = live_book(100)
    book.on_update(upd(101, 101, (("10", "2"),)))
    book.on_update(upd(101, 101, (("10", "2"),)))
    stats = book.statistics()
    assert stats.state is BookState.LIVE
    assert (stats.update_id, stats.updates_applied, stats.updates_stale) == (101, 1, 1)
    assert (stats.ask_levels, stats.bid_levels) == (2, 2)


_prices = st.integers(min_value=1, max_value=30).map(lambda i: Decimal(i) / 4)
_amounts = st.sampled_from([Decimal(0), Decimal(0), Decimal("0.5"), Decimal(3)])


@given(st.lists(st.tuples(st.booleans(), _prices, _amounts), max_size=60))
def test_cached_best_matches_a_reference_model(
    changes: list[tuple[bool, Decimal, Decimal]],
) -> None:
    # Asks live above 10, bids below, so the book never crosses and every change applies.
    book = BookSync(PAIR)
    book.on_update(upd(0, 0, full=True))
    model: dict[bool, dict[Decimal, Decimal]] = {True: {}, False: {}}
    for update_id, (is_ask, offset, amount) in enumerate(changes, start=1):
        price = Decimal(10) + offset if is_ask else Decimal(10) - offset / 4
        level = ((str(price), str(amount)),)
        book.on_update(upd(update_id, update_id, level if is_ask else (), () if is_ask else level))
        if amount:
            model[is_ask][price] = amount
        else:
            model[is_ask].pop(price, None)
        asks, bids = model[True], model[False]
        expected_ask = (min(asks), asks[min(asks)]) if asks else None
        expected_bid = (max(bids), bids[max(bids)]) if bids else None
        assert (book.best_ask(), book.best_bid()) == (expected_ask, expected_bid)
    assert book.asks(100) == tuple(sorted(model[True].items()))
    assert book.bids(100) == tuple(sorted(model[False].items(), reverse=True))
