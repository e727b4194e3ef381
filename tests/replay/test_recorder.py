"""``sniper record`` against the simulator: raw frames, pair lists, snapshots, progress."""

from __future__ import annotations

import io
from pathlib import Path

import orjson
import pytest

from sniper.core.codec import decode_ws_message
from sniper.errors import ConfigError
from sniper.replay.format import KIND_EVENT, KIND_REST, KIND_WS, iter_records, read_header
from sniper.replay.recorder import DURATION_ENV, Progress, _duration_from_env
from sniper.replay.sample import record_simulator


async def test_records_the_new_listing_raw_with_timestamps(tmp_path: Path) -> None:
    out = tmp_path / "rec.gz"
    progress = io.StringIO()
    stats = await record_simulator(out, duration_s=3.0, progress=progress)
    assert stats.pairs == ("NEWCOIN_USDT",)
    assert stats.frames > 10
    records = list(iter_records(out))
    header = read_header(out)
    assert header["synthetic"] is True
    assert header["scenario"] == "new_listing_fast"
    # the baseline pair list comes first; established pairs' books are not recorded
    assert records[0].kind == KIND_REST
    assert records[0].meta == "currency_pairs"
    pair_lists = [orjson.loads(r.payload) for r in records if r.meta == "currency_pairs"]
    assert "NEWCOIN_USDT" not in {p["id"] for p in pair_lists[0]}
    assert "NEWCOIN_USDT" in {p["id"] for p in pair_lists[-1]}
    assert len(pair_lists) < 10  # unchanged answers are not repeated
    subscribe = next(r for r in records if r.kind == KIND_EVENT and r.meta == "subscribe")
    assert orjson.loads(subscribe.payload)["pair"] == "NEWCOIN_USDT"
    frames = [r for r in records if r.kind == KIND_WS]
    channels = {decode_ws_message(r.payload).channel for r in frames}  # type: ignore[union-attr]
    assert {"spot.order_book_update", "spot.book_ticker"} <= channels
    # receive stamps: monotonic and wall clocks, both non-decreasing
    monos = [r.mono_ns for r in records]
    assert monos == sorted(monos)
    assert all(r.wall_ms > 1_600_000_000_000 for r in records)
    assert records[-1].meta == "stop"
    text = progress.getvalue()
    assert "frames" in text
    assert "NEWCOIN_USDT" in text


def test_progress_line_rewrites_in_place_on_a_tty() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty = Tty()
    progress = Progress(tty)
    progress.show("a")
    progress.show("b", final=True)
    assert tty.getvalue() == "\r\x1b[Ka\r\x1b[Kb\n"


def test_duration_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DURATION_ENV, raising=False)
    assert _duration_from_env() is None
    monkeypatch.setenv(DURATION_ENV, "2.5")
    assert _duration_from_env() == 2.5
    monkeypatch.setenv(DURATION_ENV, "soon")
    with pytest.raises(ConfigError):
        _duration_from_env()
