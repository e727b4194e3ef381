"""The journal is durable, ordered, typed, and refuses to start on corruption."""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path

import pytest

from sniper.app.journal import Journal
from sniper.errors import JournalError


def test_append_and_read_back_in_order(tmp_path: Path) -> None:
    j = Journal.in_dir(tmp_path)
    s1 = j.append("armed", "NEW_USDT", {"texts": ["t-a1", "t-a2"]}, ts_ms=1)
    s2 = j.append(
        "fill", "NEW_USDT", {"price": Decimal("0.0123"), "amount": Decimal("10")}, ts_ms=2
    )
    j.append("armed", "OTHER_USDT", {"texts": []}, ts_ms=3)
    assert s2 > s1
    events = list(j.events("NEW_USDT"))
    assert [e.kind for e in events] == ["armed", "fill"]
    assert events[1].data == {"price": "0.0123", "amount": "10"}
    assert len(list(j.events())) == 3
    j.close()
    # survives reopening
    j2 = Journal.in_dir(tmp_path)
    assert [e.seq for e in j2.events()] == [1, 2, 3]
    j2.close()


def test_flags_persist(tmp_path: Path) -> None:
    j = Journal.in_dir(tmp_path)
    assert j.get_flag("halted") is None
    j.set_flag("halted", "1")
    j.set_flag("halted", "0")
    j.close()
    assert Journal.in_dir(tmp_path).get_flag("halted") == "0"


def test_corrupt_journal_refuses_to_start_and_names_file(tmp_path: Path) -> None:
    path = tmp_path / Journal.FILENAME
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(JournalError) as info:
        Journal(path)
    assert str(path) in str(info.value)
    # never silently reset: the bad file is left as it was
    assert path.read_bytes().startswith(b"this is not sqlite")


def test_unwritable_journal_raises_journal_error(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        # root ignores file modes; simulate a failing disk by closing the handle instead
        j = Journal.in_dir(tmp_path)
        j.close()
        with pytest.raises(JournalError):
            j.append("x", "P", {}, ts_ms=0)
        return
    tmp_path.chmod(0o500)
    try:
        with pytest.raises(JournalError):
            Journal.in_dir(tmp_path / "sub")
    finally:
        tmp_path.chmod(0o700)


def test_non_decimal_objects_are_refused(tmp_path: Path) -> None:
    j = Journal.in_dir(tmp_path)
    with pytest.raises(TypeError):
        j.append("x", "P", {"bad": object()}, ts_ms=0)
