"""The HTTP/1.1 response reader's refusals (its framings are covered in ``test_rawhttp.py``)."""

from __future__ import annotations

import asyncio
import zlib

import pytest

from sniper.gate.httpwire import BadResponseError, read_response


async def _parse(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    reader = asyncio.StreamReader()
    reader.feed_data(raw)
    reader.feed_eof()
    return await read_response(reader)


@pytest.mark.parametrize(
    "raw",
    [
        b"SSH-2.0-OpenSSH\r\n\r\n",
        b"HTTP/1.1 abc OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 99999999\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabXY0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 3\r\n\r\nabc",
    ],
)
async def test_bytes_that_are_not_a_readable_response(raw: bytes) -> None:
    with pytest.raises(BadResponseError):
        await _parse(raw)


async def test_gzip_body_is_decoded() -> None:
    packed = zlib.compress(b'{"ok":1}', wbits=31)
    head = f"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: {len(packed)}\r\n\r\n"
    assert await _parse(head.encode() + packed) == (
        200,
        {"content-encoding": "gzip", "content-length": str(len(packed))},
        b'{"ok":1}',
    )
