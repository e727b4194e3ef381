"""Reading one HTTP/1.1 response off an :class:`asyncio.StreamReader` (RFC 9112 framing).

Just enough of HTTP/1.1 for :class:`~sniper.gate.rawhttp.RawHttpOrderSender`'s keep-alive
connections to Gate's REST host: status line, headers, the three body framings, skipped 1xx
answers and compressed bodies. Anything else is a :class:`BadResponseError`, which the sender
translates at its boundary (an order's outcome is then unknown).
"""

from __future__ import annotations

import asyncio
import zlib
from typing import Final

__all__ = ["BadResponseError", "read_response"]

_MAX_BODY: Final = 1 << 20


class BadResponseError(Exception):
    """The peer's bytes are not an HTTP/1.1 response we can read (never leaves the edge)."""


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    """Read one HTTP/1.1 response: ``(status, lower-cased headers, decoded body)``.

    Handles ``Content-Length``, ``Transfer-Encoding: chunked``, read-to-close bodies, skipped
    1xx answers and gzip/deflate ``Content-Encoding``. Raises :class:`BadResponseError` for bytes
    that are not HTTP, :class:`asyncio.IncompleteReadError` (an ``EOFError``) on a cut-off
    answer.
    """
    while True:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head[:-4].split(b"\r\n")
        fields = lines[0].split(b" ", 2)
        if len(fields) < 2 or not fields[0].startswith(b"HTTP/1."):
            raise BadResponseError(f"bad status line {lines[0][:80]!r}")
        try:
            status = int(fields[1])
        except ValueError:
            raise BadResponseError(f"bad status line {lines[0][:80]!r}") from None
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            if not sep:
                raise BadResponseError(f"bad header line {line[:80]!r}")
            headers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
        if not 100 <= status < 200:
            break
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = await _read_chunked(reader)
    elif "content-length" in headers:
        try:
            length = int(headers["content-length"])
        except ValueError:
            raise BadResponseError("bad Content-Length") from None
        if not 0 <= length <= _MAX_BODY:
            raise BadResponseError(f"Content-Length {length} out of range")
        body = await reader.readexactly(length)
    elif status in (204, 304):
        body = b""
    else:
        body = await _read_to_close(reader)  # no framing: the body runs to the close
        headers["connection"] = "close"
    encoding = headers.get("content-encoding", "").lower()
    if encoding in ("gzip", "deflate"):
        try:
            body = zlib.decompress(body, zlib.MAX_WBITS | 32)  # auto-detects gzip/zlib
        except zlib.error as exc:
            raise BadResponseError(f"bad {encoding} body: {exc}") from None
    return status, headers, body


async def _read_to_close(reader: asyncio.StreamReader) -> bytes:
    chunks: list[bytes] = []
    total = 0
    while chunk := await reader.read(65536):
        total += len(chunk)
        if total > _MAX_BODY:
            raise BadResponseError("unframed body too large")
        chunks.append(chunk)
    return b"".join(chunks)


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    chunks: list[bytes] = []
    total = 0
    while True:
        line = await reader.readuntil(b"\r\n")
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise BadResponseError(f"bad chunk size {line[:40]!r}") from None
        if size == 0:
            while await reader.readuntil(b"\r\n") != b"\r\n":
                pass  # trailers: ignored
            return b"".join(chunks)
        total += size
        if total > _MAX_BODY:
            raise BadResponseError("chunked body too large")
        chunk = await reader.readexactly(size + 2)
        if chunk[-2:] != b"\r\n":
            raise BadResponseError("chunk not terminated by CRLF")
        chunks.append(chunk[:-2])
