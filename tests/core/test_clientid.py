"""Client ids: Gate's length and alphabet rules, determinism, uniqueness, round trip."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sniper.core.clientid import (
    ALPHABET,
    MAX_ATTEMPT,
    MAX_BODY_BYTES,
    ParsedText,
    Purpose,
    listing_prefix,
    make_text,
    parse_text,
    purpose_of,
    to_base36,
    validate_text,
)

PURPOSES = st.sampled_from(list(Purpose))
RUNS = st.text(min_size=0, max_size=40)
PAIRS = st.text(min_size=1, max_size=30)
ATTEMPTS = st.integers(0, MAX_ATTEMPT)


def test_known_layout() -> None:
    text = make_text("run-1", "NEW_USDT", "buy", 0)
    assert text.startswith(listing_prefix("run-1", "NEW_USDT"))
    assert text.endswith("-b0")
    assert len(text) == 2 + 10 + 1 + 2
    assert make_text("run-1", "NEW_USDT", Purpose.TAKE_PROFIT, 35).endswith("-tz")
    assert make_text("run-1", "NEW_USDT", "s", 36).endswith("-s10")


def test_longest_id_is_exactly_at_the_limit() -> None:
    text = make_text("run", "NEW_USDT", Purpose.STOP, MAX_ATTEMPT)
    assert len(text.encode()) - 2 == MAX_BODY_BYTES
    validate_text(text)


@pytest.mark.parametrize("attempt", [-1, MAX_ATTEMPT + 1])
def test_attempt_out_of_range(attempt: int) -> None:
    with pytest.raises(ValueError, match="attempt"):
        make_text("run", "NEW_USDT", "b", attempt)


@pytest.mark.parametrize(
    ("purpose", "expected"),
    [("b", Purpose.BUY), ("buy", Purpose.BUY), ("tp", Purpose.TAKE_PROFIT),
     ("take_profit", Purpose.TAKE_PROFIT), ("t", Purpose.TAKE_PROFIT), ("stop", Purpose.STOP),
     ("sell", Purpose.STOP), (Purpose.STOP, Purpose.STOP)],
)
def test_purpose_aliases(purpose: str, expected: Purpose) -> None:
    assert purpose_of(purpose) is expected


def test_unknown_purpose() -> None:
    with pytest.raises(ValueError, match="unknown order purpose 'x'"):
        make_text("run", "NEW_USDT", "x", 0)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("abc", "must start with 't-'"),
        ("T-abc", "must start with 't-'"),
        ("t-", "empty"),
        ("t-a b", "character ' ' at 3"),
        ("t-ab/c", "character '/' at 4"),
        ("t-é", "character 'é'"),
        ("t-" + "a" * 29, "29 bytes"),
    ],
)
def test_validate_text_names_the_problem(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        validate_text(text)


@pytest.mark.parametrize("text", ["t-a", "t-" + "a" * 28, "t-A_z.9-", "t-apiv4-like_ID.1"])
def test_validate_text_accepts(text: str) -> None:
    validate_text(text)


@given(st.text(alphabet=sorted(ALPHABET), min_size=1, max_size=40))
def test_validate_text_length_boundary(body: str) -> None:
    if len(body) <= MAX_BODY_BYTES:
        validate_text("t-" + body)
    else:
        with pytest.raises(ValueError, match="bytes"):
            validate_text("t-" + body)


@given(st.characters().filter(lambda c: c not in ALPHABET))
def test_validate_text_rejects_every_other_character(char: str) -> None:
    with pytest.raises(ValueError, match="character"):
        validate_text(f"t-ok{char}")


@given(run=RUNS, pair=PAIRS, purpose=PURPOSES, attempt=ATTEMPTS)
def test_made_ids_are_valid_deterministic_and_parse_back(
    run: str, pair: str, purpose: Purpose, attempt: int
) -> None:
    text = make_text(run, pair, purpose, attempt)
    validate_text(text)
    assert make_text(run, pair, purpose, attempt) == text
    assert parse_text(text) == ParsedText(
        listing=listing_prefix(run, pair)[2:-1], purpose=purpose, attempt=attempt
    )


@given(run=RUNS, pair=PAIRS, purpose=PURPOSES, attempt=ATTEMPTS, other=ATTEMPTS,
       other_purpose=PURPOSES)
def test_different_attempt_or_purpose_gives_a_different_id(
    run: str, pair: str, purpose: Purpose, attempt: int, other: int, other_purpose: Purpose
) -> None:
    same = (purpose, attempt) == (other_purpose, other)
    assert (make_text(run, pair, purpose, attempt)
            == make_text(run, pair, other_purpose, other)) is same


def test_different_pairs_and_runs_give_different_ids() -> None:
    texts = {
        make_text(run, pair, Purpose.BUY, 0)
        for run in ("r1", "r2", "r3", "")
        for pair in ("A_USDT", "B_USDT", "A_BTC", "AB_USDT")
    }
    assert len(texts) == 16
    # the separator keeps ("ab", "c") apart from ("a", "bc")
    assert listing_prefix("ab", "c") != listing_prefix("a", "bc")


@pytest.mark.parametrize(
    "text",
    ["apiv4", "t-", "t-snipe-001", "t-3f9a0c41d2-x1", "t-3f9a0c41d2-b", "t-3f9a0c41d2-b00",
     "t-3F9A0C41D2-b1", "t-3f9a0c41d-b1", "t-3f9a0c41d2-b1!", "t-3f9a0c41d2b1"],
)
def test_parse_text_rejects_foreign_ids(text: str) -> None:
    assert parse_text(text) is None


@pytest.mark.parametrize(("value", "digits"), [(0, "0"), (35, "z"), (36, "10"), (1295, "zz")])
def test_base36(value: int, digits: str) -> None:
    assert to_base36(value) == digits
    assert int(digits, 36) == value


def test_base36_negative() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        to_base36(-1)
