"""Client order ids (Gate's ``text``): deterministic, compact, valid by construction.

Gate's rules (gate-v4.md section 2.4, fact 6 of section 11): the id must start with ``t-``,
carry at most 28 bytes after the prefix, and use only ``0-9 A-Z a-z _ - .``. Gate does not
treat ``text`` as an idempotency key (a duplicate may *override* the first order), so every
attempt gets its own id, and the same (run, pair, purpose, attempt) always gets the same one:
a restart that replays the journal re-derives the ids it already used instead of minting new
ones.

Layout (at most 2 + 28 bytes)::

    t-<listing:10 hex>-<purpose:1><attempt:base36, 1..15>
    t-3f9a0c41d2-b0      first buy of a listing
    t-3f9a0c41d2-t1      second take-profit placement
    t-3f9a0c41d2-s2      third stop sell

``listing`` is a BLAKE2b digest of run id and pair, so ids of different runs or pairs do not
collide (40 bits), and :func:`listing_prefix` finds every order of one listing.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

PREFIX: Final = "t-"
MAX_BODY_BYTES: Final = 28
ALPHABET: Final = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_-.")
_LISTING_HEX: Final = 10
_DIGITS36: Final = "0123456789abcdefghijklmnopqrstuvwxyz"
# "t-" + 10 hex + "-" + purpose letter leaves 28 - 12 = 16 characters for the attempt.
_MAX_ATTEMPT_DIGITS: Final = MAX_BODY_BYTES - _LISTING_HEX - 2
MAX_ATTEMPT: Final = 36**_MAX_ATTEMPT_DIGITS - 1


class Purpose(StrEnum):
    """What an order is for, encoded as one letter in its id."""

    BUY = "b"
    TAKE_PROFIT = "t"
    STOP = "s"


_ALIASES: Final[dict[str, Purpose]] = {
    "buy": Purpose.BUY,
    "take_profit": Purpose.TAKE_PROFIT,
    "tp": Purpose.TAKE_PROFIT,
    "stop": Purpose.STOP,
    "sell": Purpose.STOP,
}


@dataclass(frozen=True, slots=True)
class ParsedText:
    """The parts of an id made by :func:`make_text`."""

    listing: str
    purpose: Purpose
    attempt: int


def purpose_of(purpose: Purpose | str) -> Purpose:
    """Normalise ``"b"``/``"buy"``/``Purpose.BUY`` (and friends) to a :class:`Purpose`."""
    if isinstance(purpose, Purpose):
        return purpose
    found = _ALIASES.get(purpose)
    if found is not None:
        return found
    try:
        return Purpose(purpose)
    except ValueError:
        raise ValueError(f"unknown order purpose {purpose!r}") from None


def listing_prefix(run_id: str, pair: str) -> str:
    """``t-<listing>-``: the prefix shared by every id of one listing in one run."""
    digest = hashlib.blake2b(f"{run_id}\x00{pair}".encode(), digest_size=8).hexdigest()
    return f"{PREFIX}{digest[:_LISTING_HEX]}-"


def to_base36(value: int) -> str:
    """Lower-case base-36 digits of a non-negative integer."""
    if value < 0:
        raise ValueError(f"base36 needs a non-negative integer, got {value}")
    digits = []
    while True:
        value, rest = divmod(value, 36)
        digits.append(_DIGITS36[rest])
        if value == 0:
            return "".join(reversed(digits))


def make_text(run_id: str, pair: str, purpose: Purpose | str, attempt: int) -> str:
    """The client id of attempt ``attempt`` (0-based) of ``purpose`` for ``pair`` in ``run_id``.

    Deterministic; different run, pair, purpose or attempt give different ids.
    """
    if not 0 <= attempt <= MAX_ATTEMPT:
        raise ValueError(f"attempt must be in 0..{MAX_ATTEMPT}, got {attempt}")
    text = f"{listing_prefix(run_id, pair)}{purpose_of(purpose).value}{to_base36(attempt)}"
    validate_text(text)  # cheap, and a layout change can never ship an id Gate refuses
    return text


def validate_text(text: str) -> None:
    """Check ``text`` against Gate's rules; raise :class:`ValueError` naming the problem."""
    if not text.startswith(PREFIX):
        raise ValueError(f"client id {text!r} must start with {PREFIX!r}")
    body = text[len(PREFIX) :]
    if not body:
        raise ValueError(f"client id {text!r} is empty after {PREFIX!r}")
    for index, char in enumerate(body):
        if char not in ALPHABET:
            raise ValueError(
                f"client id {text!r} has character {char!r} at {index + len(PREFIX)}; "
                "allowed: 0-9 A-Z a-z _ - ."
            )
    size = len(body.encode())
    if size > MAX_BODY_BYTES:
        raise ValueError(
            f"client id {text!r} is {size} bytes after {PREFIX!r}; at most {MAX_BODY_BYTES}"
        )


def parse_text(text: str) -> ParsedText | None:
    """Split an id made by :func:`make_text`; ``None`` for any other text (Gate's, a human's)."""
    if not text.startswith(PREFIX):
        return None
    listing, sep, tail = text[len(PREFIX) :].partition("-")
    if (
        not sep
        or len(listing) != _LISTING_HEX
        or any(c not in "0123456789abcdef" for c in listing)
        or not 2 <= len(tail) <= 1 + _MAX_ATTEMPT_DIGITS
        or any(c not in _DIGITS36 for c in tail[1:])
        or (len(tail) > 2 and tail[1] == "0")  # only the canonical spelling is ours
    ):
        return None
    try:
        purpose = Purpose(tail[0])
    except ValueError:
        return None
    return ParsedText(listing=listing, purpose=purpose, attempt=int(tail[1:], 36))
