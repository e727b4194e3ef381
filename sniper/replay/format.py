"""The recording format: length-prefixed raw payloads with receive timestamps, compressed.

One recording is a *series* of parts (``out``, ``out.001``, ``out.002`` ... when rotated by
size). Each part is a gzip (or zstd, when the ``zstandard`` package is installed and the name
ends in ``.zst``) stream of::

    SNIPREC1 {"format": "sniper-recording", "version": 1, "series": ..., "part": 0, ...}\\n
    <kind> <mono_ns> <wall_ms> <nbytes> <meta>\\n<payload: exactly nbytes>\\n
    ...

``kind`` is ``W`` (one raw WebSocket frame of the market connection, byte for byte), ``R`` (one
raw REST answer body; ``meta`` names it: ``currency_pairs`` or ``order_book:<PAIR>``) or ``E``
(a recorder event, JSON: subscriptions, stop). ``mono_ns`` is the local monotonic clock at
receive, ``wall_ms`` the wall clock (exchange-corrected) at receive. Payloads are raw bytes, so
nothing is re-encoded and a frame replays exactly as it arrived; the length prefix makes a
truncated or corrupt file detectable at the exact byte where it goes wrong.

Reading validates every record and raises :class:`RecordingError` with the byte offset
(in the decompressed stream, plus the part file) of the first bad one, after yielding every
good record before it.
"""

from __future__ import annotations

import gzip
import importlib
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final

import orjson

from sniper.errors import SniperError

MAGIC: Final = b"SNIPREC1 "
FORMAT_NAME: Final = "sniper-recording"
FORMAT_VERSION: Final = 1
KIND_WS: Final = "W"
KIND_REST: Final = "R"
KIND_EVENT: Final = "E"
KINDS: Final = frozenset({KIND_WS, KIND_REST, KIND_EVENT})
META_PAIRS: Final = "currency_pairs"
META_BOOK_PREFIX: Final = "order_book:"
DEFAULT_MAX_PART_BYTES: Final = 64 * 1024 * 1024
_GZIP_MAGIC: Final = b"\x1f\x8b"
_ZSTD_MAGIC: Final = b"\x28\xb5\x2f\xfd"
_CHUNK: Final = 1 << 18
_MAX_HEADER_LINE: Final = 256
_MAX_PAYLOAD: Final = 64 * 1024 * 1024


class RecordingError(SniperError):
    """A recording is corrupt, truncated or not a recording. ``offset`` is the byte offset of
    the problem in the decompressed stream of ``path`` (``None`` when unknown)."""

    def __init__(self, path: Path | str, offset: int | None, problem: str,
                 *, record: int | None = None) -> None:
        self.path = str(path)
        self.offset = offset
        self.problem = problem
        self.record = record
        where = f" at byte {offset}" if offset is not None else ""
        which = f" (record #{record})" if record is not None else ""
        super().__init__(f"recording {self.path}: {problem}{where}{which}")


@dataclass(frozen=True, slots=True)
class Record:
    """One recorded input. ``offset`` is where its header line starts (decompressed bytes)."""

    kind: str
    mono_ns: int
    wall_ms: int
    meta: str
    payload: bytes
    offset: int = 0


def part_path(first: Path, index: int) -> Path:
    """The path of part ``index`` of the series whose first part is ``first``."""
    return first if index == 0 else first.with_name(f"{first.name}.{index:03d}")


def series_parts(first: Path) -> list[Path]:
    """Every existing part of a series, in order (``first`` must exist)."""
    parts = [first]
    while part_path(first, len(parts)).exists():
        parts.append(part_path(first, len(parts)))
    return parts


def _zstd() -> Any:
    try:
        return importlib.import_module("zstandard")
    except ImportError as exc:
        raise SniperError(
            "zstd recordings need the 'zstandard' package (pip install zstandard); "
            "or use a .gz name"
        ) from exc


def _open_write(path: Path) -> tuple[Any, IO[bytes]]:
    """(compressed writer, raw file) for ``path``; zstd when it ends in ``.zst``."""
    raw = path.open("wb")
    if path.suffix == ".zst":
        writer: Any = _zstd().ZstdCompressor(level=3).stream_writer(raw, closefd=False)
    else:
        # mtime=0: the same frames give the same bytes (golden files stay golden).
        writer = gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=6, mtime=0)
    return writer, raw


class RecordingWriter:
    """Appends records to a series, rotating to a new part past ``max_part_bytes`` compressed.

    Not thread-safe; call from the event loop. ``bytes_written`` counts compressed bytes.
    """

    def __init__(self, path: Path | str, header: dict[str, Any], *,
                 max_part_bytes: int = DEFAULT_MAX_PART_BYTES) -> None:
        if max_part_bytes < 4096:
            raise ValueError("max_part_bytes must be at least 4096")
        self.first = Path(path)
        self.header = dict(header)
        self.max_part_bytes = max_part_bytes
        self.part = 0
        self.records = 0
        self.frames = 0
        self.bytes_closed = 0  # compressed bytes of finished parts
        self._writer: Any = None
        self._raw: IO[bytes] | None = None
        self._open_part()

    def _open_part(self) -> None:
        self._writer, self._raw = _open_write(part_path(self.first, self.part))
        head = {"format": FORMAT_NAME, "version": FORMAT_VERSION, **self.header,
                "part": self.part}
        self._writer.write(MAGIC + orjson.dumps(head, option=orjson.OPT_SORT_KEYS) + b"\n")

    @property
    def bytes_written(self) -> int:
        """Compressed bytes on disk so far (approximate for the open part: buffered)."""
        raw = self._raw
        return self.bytes_closed + (raw.tell() if raw is not None and not raw.closed else 0)

    @property
    def path(self) -> Path:
        """The part being written."""
        return part_path(self.first, self.part)

    def write(self, kind: str, mono_ns: int, wall_ms: int, meta: str, payload: bytes) -> None:
        """Append one record (``meta`` must not contain spaces or newlines)."""
        writer = self._writer
        if writer is None:
            raise ValueError("recording closed")
        head = f"{kind} {mono_ns} {wall_ms} {len(payload)} {meta or '-'}\n".encode()
        writer.write(head + payload + b"\n")
        self.records += 1
        if kind == KIND_WS:
            self.frames += 1
        raw = self._raw
        if raw is not None and raw.tell() >= self.max_part_bytes:
            self._rotate()

    def _rotate(self) -> None:
        self._close_part()
        self.part += 1
        self._open_part()

    def flush(self) -> None:
        """Push buffered data to the OS (a sync flush point for gzip: readable up to here)."""
        if self._writer is not None:
            self._writer.flush()
        if self._raw is not None:
            self._raw.flush()

    def _close_part(self) -> None:
        writer, raw = self._writer, self._raw
        self._writer = self._raw = None
        if writer is not None:
            writer.close()
        if raw is not None:
            raw.flush()
            self.bytes_closed += raw.tell()
            raw.close()

    def close(self) -> None:
        """Finish the current part (writes the compression trailer)."""
        self._close_part()

    def __enter__(self) -> RecordingWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- reading ------------------------------------------------------------------------------------


def _decompressed_chunks(path: Path) -> Iterator[bytes]:
    """The decompressed bytes of one part, as they come out of the decompressor (so a cut-off
    file still yields everything before the cut); errors name the offsets reached."""
    try:
        raw = path.open("rb")
    except OSError as exc:
        raise RecordingError(path, None, f"cannot open: {exc.strerror or exc}") from exc
    with raw:
        head = raw.read(4)
        raw.seek(0)
        if head.startswith(_GZIP_MAGIC):
            new_decompressor: Any = lambda: zlib.decompressobj(wbits=31)  # noqa: E731
            errors: tuple[type[Exception], ...] = (zlib.error,)
        elif head == _ZSTD_MAGIC:
            zstd = _zstd()
            new_decompressor = zstd.ZstdDecompressor().decompressobj
            errors = (zstd.ZstdError,)
        else:
            new_decompressor = None  # uncompressed (tests, hand-made files)
            errors = ()
        done = 0  # decompressed bytes yielded
        read = 0  # compressed bytes consumed
        decomp = new_decompressor() if new_decompressor is not None else None
        while True:
            chunk = raw.read(_CHUNK)
            if not chunk:
                break
            read += len(chunk)
            if decomp is None:
                done += len(chunk)
                yield chunk
                continue
            while chunk:
                try:
                    out = decomp.decompress(chunk)
                except errors as exc:
                    raise RecordingError(
                        path, done, f"corrupt compressed data near compressed byte {read}: "
                        f"{exc}") from exc
                if out:
                    done += len(out)
                    yield out
                chunk = b""
                if getattr(decomp, "eof", False):
                    chunk = decomp.unused_data  # another gzip member / zstd frame follows
                    if chunk:
                        decomp = new_decompressor()
        if decomp is not None and not getattr(decomp, "eof", True):
            raise RecordingError(
                path, done, f"truncated: the compressed stream ends at compressed byte {read} "
                "before its end marker (the copy was cut short)")


def read_header(path: Path | str) -> dict[str, Any]:
    """The header of one part (validates the magic and version)."""
    path = Path(path)
    for record_or_header in _iter_part(path, header_only=True):
        assert isinstance(record_or_header, dict)
        return record_or_header
    raise RecordingError(path, 0, "empty file: not a recording")


def iter_records(path: Path | str) -> Iterator[Record]:
    """Every record of the series starting at ``path``, in order; raises RecordingError at the
    first bad byte after yielding every good record before it."""
    first = Path(path)
    if not first.is_file():
        raise RecordingError(first, None, "no such file")
    series: str | None = None
    for index, part in enumerate(series_parts(first)):
        parsed = _iter_part(part, header_only=False)
        header = next(parsed, None)
        if not isinstance(header, dict):
            raise RecordingError(part, 0, "empty file: not a recording")
        if index == 0:
            series = header.get("series")
        elif header.get("series") != series or header.get("part") != index:
            raise RecordingError(part, 0, f"part {index} belongs to another recording")
        for item in parsed:
            assert isinstance(item, Record)
            yield item


def _iter_part(path: Path, *, header_only: bool) -> Iterator[Record | dict[str, Any]]:
    """Parse one part: first the header dict, then the records."""
    buf = b""
    base = 0  # decompressed offset of buf[0]
    pos = 0
    count = 0
    chunks = _decompressed_chunks(path)
    header_seen = False
    eof = False

    def more() -> bool:
        nonlocal buf, base, pos, eof
        if eof:
            return False
        chunk = next(chunks, None)
        if chunk is None:
            eof = True
            return False
        buf = buf[pos:] + chunk
        base += pos
        pos = 0
        return True

    while True:
        nl = buf.find(b"\n", pos)
        while nl < 0:
            if len(buf) - pos > _MAX_HEADER_LINE + (0 if header_seen else 1 << 16):
                raise RecordingError(path, base + pos, "record header line too long",
                                     record=count)
            if not more():
                if pos < len(buf):
                    raise RecordingError(path, base + pos, "truncated record header",
                                         record=count)
                if not header_seen:
                    raise RecordingError(path, 0, "empty file: not a recording")
                return
            nl = buf.find(b"\n", pos)
        line = buf[pos:nl]
        offset = base + pos
        if not header_seen:
            yield _parse_header(path, line)
            header_seen = True
            pos = nl + 1
            if header_only:
                return
            continue
        kind, mono_ns, wall_ms, size, meta = _parse_record_head(path, line, offset, count)
        start = nl + 1
        while len(buf) - start < size + 1:
            consumed = start - pos
            if not more():
                raise RecordingError(
                    path, offset, f"truncated: record needs {size} payload bytes, "
                    f"{len(buf) - (pos + consumed)} left", record=count)
            start = pos + consumed
        end = start + size
        if buf[end:end + 1] != b"\n":
            raise RecordingError(path, base + end, "corrupt: payload not followed by newline "
                                 "(wrong length prefix)", record=count)
        yield Record(kind, mono_ns, wall_ms, meta, buf[start:end], offset)
        count += 1
        pos = end + 1


def _parse_header(path: Path, line: bytes) -> dict[str, Any]:
    if not line.startswith(MAGIC):
        raise RecordingError(path, 0, "not a sniper recording (bad magic)")
    try:
        header = orjson.loads(line[len(MAGIC):])
    except orjson.JSONDecodeError as exc:
        raise RecordingError(path, len(MAGIC), f"corrupt header: {exc}") from exc
    if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
        raise RecordingError(path, len(MAGIC), "corrupt header: not a sniper recording")
    if header.get("version") != FORMAT_VERSION:
        raise RecordingError(path, len(MAGIC),
                             f"unsupported recording version {header.get('version')!r}")
    return header


_KIND_BYTES: Final = {k.encode(): k for k in KINDS}


def _parse_record_head(path: Path, line: bytes, offset: int,
                       count: int) -> tuple[str, int, int, int, str]:
    try:  # the common case, checked once; any doubt goes to the precise checks below
        k, m, w, n, meta = line.split(b" ")
        kind, size = _KIND_BYTES[k], int(n)
        if 0 <= size <= _MAX_PAYLOAD:
            return kind, int(m), int(w), size, meta.decode()
    except (ValueError, KeyError, UnicodeDecodeError):
        pass
    fields = line.split(b" ")
    if len(fields) != 5:
        raise RecordingError(path, offset, "corrupt record header", record=count)
    kind = fields[0].decode("ascii", "replace")
    if kind not in KINDS:
        raise RecordingError(path, offset, f"corrupt record header: unknown kind {kind!r}",
                             record=count)
    try:
        mono_ns = int(fields[1])
        wall_ms = int(fields[2])
        size = int(fields[3])
    except ValueError:
        raise RecordingError(path, offset, "corrupt record header: bad number",
                             record=count) from None
    if size < 0 or size > _MAX_PAYLOAD:
        raise RecordingError(path, offset, f"corrupt record header: length {size}",
                             record=count)
    return kind, mono_ns, wall_ms, size, fields[4].decode("utf-8", "replace")
