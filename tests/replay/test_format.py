"""The recording format: round trip, rotation, and clear errors (with offsets) on bad files."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from sniper.replay.format import (
    KIND_REST,
    KIND_WS,
    Record,
    RecordingError,
    RecordingWriter,
    iter_records,
    part_path,
    read_header,
    series_parts,
)

FRAME = b'{"channel":"spot.book_ticker","event":"update","result":{"s":"A_USDT"}}'


def write(path: Path, n: int, *, max_part_bytes: int = 1 << 20,
          payload: bytes = FRAME) -> list[tuple[str, int, int, str, bytes]]:
    written = []
    with RecordingWriter(path, {"series": "s1"}, max_part_bytes=max_part_bytes) as w:
        for i in range(n):
            kind = KIND_REST if i % 10 == 0 else KIND_WS
            meta = "currency_pairs" if kind == KIND_REST else "market"
            body = payload + str(i).encode()
            w.write(kind, 1_000 + i, 2_000 + i, meta, body)
            written.append((kind, 1_000 + i, 2_000 + i, meta, body))
    return written


def as_tuples(records: list[Record]) -> list[tuple[str, int, int, str, bytes]]:
    return [(r.kind, r.mono_ns, r.wall_ms, r.meta, r.payload) for r in records]


def test_round_trip_keeps_every_byte(tmp_path: Path) -> None:
    path = tmp_path / "r.rec.gz"
    written = write(path, 50, payload=b'{"a": "line\\nbreak"}\n  \n')  # raw newlines inside
    assert as_tuples(list(iter_records(path))) == written
    header = read_header(path)
    assert header["format"] == "sniper-recording"
    assert header["series"] == "s1"
    assert header["part"] == 0


def test_same_input_same_bytes(tmp_path: Path) -> None:
    write(tmp_path / "a.gz", 20)
    write(tmp_path / "b.gz", 20)
    assert (tmp_path / "a.gz").read_bytes() == (tmp_path / "b.gz").read_bytes()


def test_rotation_splits_into_parts_and_reads_back_in_order(tmp_path: Path) -> None:
    path = tmp_path / "r.rec.gz"
    # incompressible payloads so parts fill up
    import os

    blobs = [os.urandom(3000).hex().encode() for _ in range(60)]
    with RecordingWriter(path, {"series": "s2"}, max_part_bytes=64 * 1024) as w:
        for i, blob in enumerate(blobs):
            w.write(KIND_WS, i, i, "market", blob)
    parts = series_parts(path)
    assert len(parts) >= 3
    assert parts[1] == part_path(path, 1) == tmp_path / "r.rec.gz.001"
    assert [r.payload for r in iter_records(path)] == blobs
    assert read_header(parts[2])["part"] == 2


def test_part_of_another_series_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "r.gz"
    write(path, 5)
    with RecordingWriter(tmp_path / "other.gz", {"series": "zzz"}) as w:
        w.write(KIND_WS, 1, 1, "market", FRAME)
    (tmp_path / "r.gz.001").write_bytes((tmp_path / "other.gz").read_bytes())
    with pytest.raises(RecordingError, match="another recording"):
        list(iter_records(path))


@pytest.mark.parametrize(
    ("mangle", "problem"),
    [
        (lambda b: b.replace(b"W 1001 2001 72 market", b"W 1001 2001 99 market"),
         "wrong length prefix"),
        (lambda b: b.replace(b"W 1001 2001", b"Q 1001 2001"), "unknown kind"),
        (lambda b: b.replace(b"W 1001 2001", b"W 10x1 2001"), "bad number"),
        (lambda b: b[: b.index(b"W 1003")] + b"W 1003 20", "truncated record header"),
        (lambda b: b[: b.index(b"W 1003") + 30], "truncated: record needs"),
    ],
)
def test_corrupt_content_names_offset_and_keeps_earlier_records(
    tmp_path: Path, mangle: object, problem: str
) -> None:
    good = tmp_path / "good.gz"
    write(good, 6)
    plain = gzip.decompress(good.read_bytes())
    bad_plain = mangle(plain)  # type: ignore[operator]
    bad = tmp_path / "bad.gz"
    bad.write_bytes(gzip.compress(bad_plain, mtime=0))
    got: list[Record] = []
    with pytest.raises(RecordingError) as info:
        got.extend(iter_records(bad))
    err = info.value
    assert problem in str(err)
    assert err.offset is not None
    assert f"at byte {err.offset}" in str(err)
    # every record before the damage was delivered, and the offset points into the damage
    assert got
    assert err.offset >= got[-1].offset
    assert err.offset < len(bad_plain) + 1
    assert as_tuples(got) == as_tuples(list(iter_records(good)))[: len(got)]


def test_truncated_gzip_keeps_what_was_decompressed(tmp_path: Path) -> None:
    path = tmp_path / "r.gz"
    written = write(path, 400)
    data = path.read_bytes()
    cut = tmp_path / "cut.gz"
    cut.write_bytes(data[: int(len(data) * 0.8)])
    got: list[Record] = []
    with pytest.raises(RecordingError, match="truncated") as info:
        got.extend(iter_records(cut))
    assert info.value.offset is not None
    assert 0 < len(got) < 400
    assert as_tuples(got) == written[: len(got)]


def test_corrupt_gzip_data(tmp_path: Path) -> None:
    path = tmp_path / "r.gz"
    write(path, 400)
    data = bytearray(path.read_bytes())
    for i in range(len(data) // 2, len(data) // 2 + 64):
        data[i] ^= 0x5A
    path.write_bytes(bytes(data))
    with pytest.raises(RecordingError, match=r"corrupt|truncated") as info:
        list(iter_records(path))
    assert info.value.offset is not None


def test_not_a_recording(tmp_path: Path) -> None:
    path = tmp_path / "x.gz"
    path.write_bytes(gzip.compress(b"hello world\n"))
    with pytest.raises(RecordingError, match="bad magic"):
        list(iter_records(path))
    with pytest.raises(RecordingError, match="no such file"):
        list(iter_records(tmp_path / "missing.gz"))
    empty = tmp_path / "empty.gz"
    empty.write_bytes(b"")
    with pytest.raises(RecordingError, match="empty"):
        list(iter_records(empty))
