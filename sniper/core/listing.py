"""Listing detection: diff successive ``/spot/currency_pairs`` snapshots into listing events.

Pure: the caller polls and passes the pairs with the exchange time ``now_s`` of the poll.
Lifecycle facts are in gate-v4.md §5; the semantics chosen here:

- **Scope.** Only pairs quoted in ``quote_currencies`` are tracked; others are ignored
  entirely. ``premarket`` pairs are tracked but produce no events unless ``include_premarket``;
  one that later turns ``normal`` is treated like a pair first seen at that moment.
- **Baseline.** The first non-empty observation is the baseline. Its pairs are never listings:
  no PairListed, PairOpened or BuyStartScheduled, ever, whatever they do later (even if an
  announcement named them). An empty observation is ignored, not taken as a baseline: an
  empty baseline would make every pair on the exchange a "listing".
- **PairListed** once per listing: a non-baseline pair, first seen (or first eligible).
  ``scheduled`` is true when it is not open yet and a start in the future is known
  (``buy_start`` or an announced start); ``start_s`` is that start.
- **Open** means ``trade_status`` allows buys *and* ``buy_start`` is not in the future: a
  future ``buy_start`` is a scheduled listing whatever the status says; a past one proves
  nothing (untradable pairs carry old ``buy_start`` values). **PairOpened** is emitted at most
  once per listing, the first time it is seen open (possibly in the same observation as its
  PairListed, right after it; possibly with no field change, when ``buy_start`` passes).
  Status flapping never produces a second one.
- **BuyStartScheduled** when a listing's ``buy_start`` changes to a time in the future (not
  at first sight: PairListed carries it). It is informational after the pair opened.
- **PairDelisted** when a tracked pair (baseline or not) is missing from an observation. If
  the same observation drops more than half of the tracked pairs (and more than
  :data:`PARTIAL_VANISH_MIN`), it is treated as a partial answer: no delistings from it.
- **Return.** A baseline pair that comes back is still baseline: nothing. A listing that
  comes back before it ever opened is listed again (PairListed), so an armer that disarmed on
  the delisting re-arms; no order can have been placed for it. A listing that had opened
  comes back silently: it already had its one PairOpened, and a second buy must not follow.
- **Announcements** (:meth:`ListingTracker.add_announced`) name a pair before it appears.
  Its appearance is a listing like any other, with the announced start used when
  ``buy_start`` gives none; a pair already in the baseline stays baseline.

Duplicate polls produce no events. Events come in observation order: delistings first, then
per pair PairListed, BuyStartScheduled, PairOpened.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final, TypeAlias

from sniper.core.models import PairInfo

PARTIAL_VANISH_MIN: Final = 10
"""A poll may drop up to this many pairs at once without being suspected of being partial."""


@dataclass(frozen=True, slots=True)
class PairListed:
    """A new pair in scope appeared (or became eligible). ``start_s``: known future start."""

    pair: PairInfo
    seen_s: int
    scheduled: bool
    start_s: int | None = None


@dataclass(frozen=True, slots=True)
class PairOpened:
    """A listing was seen open for buys for the first time."""

    pair: PairInfo
    seen_s: int


@dataclass(frozen=True, slots=True)
class BuyStartScheduled:
    """A listing's ``buy_start`` moved to ``pair.buy_start_s``, a time in the future."""

    pair: PairInfo
    seen_s: int
    previous_buy_start_s: int


@dataclass(frozen=True, slots=True)
class PairDelisted:
    """A tracked pair vanished from ``/spot/currency_pairs``; ``pair`` is how it was last seen."""

    pair: PairInfo
    seen_s: int


ListingEvent: TypeAlias = PairListed | PairOpened | BuyStartScheduled | PairDelisted


@dataclass(frozen=True, slots=True)
class ListingStatistics:
    """Counters of a ListingTracker."""

    observations: int
    empty_ignored: int
    partial_ignored: int
    tracked: int
    present: int
    listings: int


@dataclass(slots=True)
class _Tracked:
    info: PairInfo
    baseline: bool
    present: bool = True
    listed: bool = False
    opened: bool = False


def is_open(info: PairInfo, now_s: int) -> bool:
    """Buys allowed now: status allows buys and ``buy_start`` is not in the future."""
    return info.trade_status.can_buy and info.buy_start_s <= now_s


class ListingTracker:
    """Turns successive pair lists into :data:`ListingEvent` values (rules in the module doc)."""

    __slots__ = (
        "_announced",
        "_baseline_taken",
        "_n_empty",
        "_n_listings",
        "_n_observations",
        "_n_partial",
        "_present",
        "_tracked",
        "include_premarket",
        "quote_currencies",
    )

    def __init__(self, quote_currencies: Iterable[str], *, include_premarket: bool = False) -> None:
        self.quote_currencies = frozenset(q.upper() for q in quote_currencies)
        if not self.quote_currencies:
            raise ValueError("at least one quote currency is needed")
        self.include_premarket = include_premarket
        self._tracked: dict[str, _Tracked] = {}
        self._present: set[str] = set()
        self._announced: dict[str, int | None] = {}
        self._baseline_taken = False
        self._n_observations = 0
        self._n_empty = 0
        self._n_partial = 0
        self._n_listings = 0

    @property
    def baseline_taken(self) -> bool:
        """True once a non-empty observation has been taken as the baseline."""
        return self._baseline_taken

    def is_baseline(self, pair: str) -> bool:
        """True for a pair that was present in the baseline (never a listing)."""
        tracked = self._tracked.get(pair)
        return tracked is not None and tracked.baseline

    def announced_start_s(self, pair: str) -> int | None:
        """Start time from an announcement for ``pair`` (``BASE_QUOTE``), if one gave it."""
        return self._announced.get(pair)

    def statistics(self) -> ListingStatistics:
        """A snapshot of the counters."""
        return ListingStatistics(
            observations=self._n_observations,
            empty_ignored=self._n_empty,
            partial_ignored=self._n_partial,
            tracked=len(self._tracked),
            present=len(self._present),
            listings=self._n_listings,
        )

    def add_announced(self, symbol: str, quote: str, start_s: int | None) -> None:
        """Remember a listing known from an announcement, before (or after) its pair appears.

        A later announcement for the same pair replaces the start unless it gives none.
        """
        quote = quote.upper()
        if quote not in self.quote_currencies:
            return
        pair = f"{symbol.upper()}_{quote}"
        if start_s is None:
            self._announced.setdefault(pair, None)
        else:
            self._announced[pair] = start_s

    def observe(self, pairs: Sequence[PairInfo], now_s: int) -> list[ListingEvent]:
        """Feed one full ``/spot/currency_pairs`` answer; returns what changed."""
        self._n_observations += 1
        if not pairs:
            self._n_empty += 1
            return []
        quotes = self.quote_currencies
        current = {p.pair: p for p in pairs if p.quote.upper() in quotes}
        if not self._baseline_taken:
            self._baseline_taken = True
            self._tracked = {name: _Tracked(info, baseline=True) for name, info in current.items()}
            self._present = set(current)
            return []

        events: list[ListingEvent] = []
        self._vanish(current, now_s, events)
        tracked_pairs = self._tracked
        for name, info in current.items():
            tracked = tracked_pairs.get(name)
            if tracked is None:
                tracked = tracked_pairs[name] = _Tracked(info, baseline=False)
                self._present.add(name)
                previous = None
            else:
                previous = tracked.info
                tracked.info = info
                if not tracked.present:
                    tracked.present = True
                    self._present.add(name)
                if tracked.baseline:
                    continue
            if info.premarket and not self.include_premarket:
                continue
            self._advance(tracked, previous, now_s, events)
        return events

    # --------------------------------------------------------------------------- helpers

    def _vanish(self, current: dict[str, PairInfo], now_s: int, events: list[ListingEvent]) -> None:
        gone = [name for name in self._present if name not in current]
        if not gone:
            return
        if len(gone) > PARTIAL_VANISH_MIN and 2 * len(gone) > len(self._present):
            self._n_partial += 1
            return
        gone.sort()  # deterministic event order (the set's order is not)
        for name in gone:
            tracked = self._tracked[name]
            tracked.present = False
            self._present.discard(name)
            if not tracked.opened:
                tracked.listed = False
            if self._eligible(tracked.info):
                events.append(PairDelisted(tracked.info, now_s))

    def _eligible(self, info: PairInfo) -> bool:
        return self.include_premarket or not info.premarket

    def _advance(
        self,
        tracked: _Tracked,
        previous: PairInfo | None,
        now_s: int,
        events: list[ListingEvent],
    ) -> None:
        info = tracked.info
        open_now = is_open(info, now_s)
        if not tracked.listed:
            tracked.listed = True
            self._n_listings += 1
            start_s = self._future_start(info, now_s)
            scheduled = start_s is not None and not open_now
            events.append(PairListed(info, now_s, scheduled, start_s))
        elif (
            previous is not None
            and info.buy_start_s != previous.buy_start_s
            and info.buy_start_s > now_s
        ):
            events.append(BuyStartScheduled(info, now_s, previous.buy_start_s))
        if open_now and not tracked.opened:
            tracked.opened = True
            events.append(PairOpened(info, now_s))

    def _future_start(self, info: PairInfo, now_s: int) -> int | None:
        if info.buy_start_s > now_s:
            return info.buy_start_s
        announced = self._announced.get(info.pair)
        if announced is not None and announced > now_s:
            return announced
        return None


# ------------------------------------------------------------------------- announcements

_MONTHS: Final = {
    name: number
    for number, name in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"),
        start=1,
    )
}
_MONTH = r"(?P<mon>jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?"
_DAY = r"(?P<d>\d{1,2})(?:st|nd|rd|th)?"
_DATES = (
    r"(?P<y>\d{4})[-/.](?P<mo>\d{1,2})[-/.](?P<d>\d{1,2})",
    _DAY + r"\s+(?:of\s+)?" + _MONTH + r",?\s+(?P<y>\d{4})",
    _MONTH + r"\s+" + _DAY + r",?\s+(?P<y>\d{4})",
)
_TIME = r"(?P<h>\d{1,2})(?::(?P<mi>\d{2}))?(?::(?P<se>\d{2}))?\s*(?P<ap>[ap]\.?m\b\.?)?"
_ZONE = (
    r"(?:\s*\(?\s*(?:UTC|GMT|Z\b)\s*"
    r"(?:(?P<sign>[+-])\s*(?P<oh>\d{1,2})(?::?(?P<om>\d{2}))?)?\s*\)?)?"
)
_DATE_TIME = tuple(
    re.compile(pattern, re.IGNORECASE)
    for date in _DATES
    for pattern in (
        date + r"(?:\s*,\s*|\s+|T)(?:at\s+)?" + _TIME + _ZONE,
        _TIME + _ZONE + r"\s*,?\s*(?:on\s+)?(?:the\s+)?" + date,
    )
)
_SYMBOL_IN_PARENS: Final = re.compile(r"\(\s*([A-Z0-9][A-Z0-9.\-]{0,19})\s*\)")
_SYMBOL_AFTER_VERB: Final = re.compile(
    r"(?i:\b(?:list|lists|commence|launch|launches)\s+)([A-Z0-9]{2,20})\b"
)
_LISTING_WORDS: Final = re.compile(
    r"\b(?:will\s+list|lists|listing|list|commence|launch|launches|launched)\b", re.IGNORECASE
)
_NOT_SPOT_LISTING: Final = re.compile(r"delist|pre-?market", re.IGNORECASE)
_DERIVATIVES: Final = re.compile(r"perpetual|futures|contract|margin|options", re.IGNORECASE)
_NOT_SYMBOLS: Final = frozenset({"UTC", "GMT", "ST", "ETF", "USDT", "AMA"})


def parse_announcement(title: str, brief: str = "") -> tuple[str, int | None] | None:
    """``(symbol, start_s)`` from a Gate spot-listing announcement, else ``None``.

    Tolerant of Gate's wordings ("Gate will commence Worldcoin(WLD) Trading at 7:30am UTC 24th
    July 2023", "Gate Will List XYZ (XYZ)" with "Trading: 2026-12-01 08:00 (UTC)" in the
    brief). Delistings, pre-market and derivatives-only announcements give ``None``. The time
    comes from the title if it has one, else from the brief: the first time right after the
    word "trading", else the only time there. Times are UTC unless an offset is written
    (``UTC+8``); ``start_s`` is ``None`` when no unambiguous time is found.
    """
    if not _LISTING_WORDS.search(title) or _NOT_SPOT_LISTING.search(title):
        return None
    if _DERIVATIVES.search(title) and "spot" not in title.lower():
        return None
    symbol = _symbol(title)
    if symbol is None:
        return None
    title_times = _times(title)
    if title_times:
        return symbol, title_times[0][1]
    return symbol, _trading_time(brief)


def _symbol(title: str) -> str | None:
    for found in _SYMBOL_IN_PARENS.finditer(title):
        if found.group(1) not in _NOT_SYMBOLS:
            return found.group(1)
    after_verb = _SYMBOL_AFTER_VERB.search(title)
    if after_verb and after_verb.group(1) not in _NOT_SYMBOLS:
        return after_verb.group(1)
    return None


def _trading_time(text: str) -> int | None:
    times = _times(text)
    previous_end = 0
    for start, epoch_s, end in times:
        # Only the words since the previous time count, so "Trading pair ... deposits at T1"
        # does not make T1 the trading time.
        context = text[max(previous_end, start - 40) : start].lower()
        if "trad" in context or "list" in context:
            return epoch_s
        previous_end = end
    return times[0][1] if len(times) == 1 else None


def _times(text: str) -> list[tuple[int, int, int]]:
    """Every date-time in ``text`` as ``(start, epoch_s, end)``, in text order, no overlaps."""
    found: list[tuple[int, int, int]] = []
    for pattern in _DATE_TIME:
        for match in pattern.finditer(text):
            epoch_s = _epoch(match)
            if epoch_s is not None:
                found.append((match.start(), epoch_s, match.end()))
    found.sort(key=lambda item: (item[0], -item[2]))  # at one start, the longest match first
    result: list[tuple[int, int, int]] = []
    for item in found:
        if not result or item[0] >= result[-1][2]:
            result.append(item)
    return result


def _epoch(match: re.Match[str]) -> int | None:
    """Seconds since the epoch for one date-time match, or ``None`` if it is not a real one."""
    parts = match.groupdict()
    if parts["mi"] is None and parts["ap"] is None:
        return None  # a bare number is a day or a count, not a time
    hour = int(parts["h"])
    if parts["ap"] is not None:
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if parts["ap"].lower().startswith("p") else 0)
    minute = int(parts["mi"] or 0)
    second = int(parts["se"] or 0)
    year = int(parts["y"])
    month = int(parts["mo"]) if parts.get("mo") else _MONTHS[parts["mon"][:3].lower()]
    day = int(parts["d"])
    if not (1 <= month <= 12 and hour <= 23 and minute <= 59 and second <= 59):
        return None
    if not 1 <= day <= calendar.monthrange(year, month)[1]:
        return None
    epoch_s = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))
    if parts["sign"]:
        offset_s = int(parts["oh"]) * 3600 + int(parts["om"] or 0) * 60
        epoch_s += -offset_s if parts["sign"] == "+" else offset_s
    return epoch_s
