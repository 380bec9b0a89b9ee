"""pywg._driver.parallel_gzip: parts deflated on their own make one gzip member, read back
by the standard library's gzip reader and by zlib as a single member."""

from __future__ import annotations

import concurrent.futures
import gzip
import os
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pywg._driver.parallel_gzip import ParallelGzip


@pytest.fixture(scope="module")
def pool():
    with concurrent.futures.ThreadPoolExecutor(2) as executor:
        yield executor


def _one_member(body: bytes) -> bytes:
    """The data of the gzip member `body`, which must be exactly one member."""
    reader = zlib.decompressobj(16 + zlib.MAX_WBITS)
    data = reader.decompress(body)
    assert reader.eof and reader.unused_data == b""
    return data


@given(parts=st.lists(st.binary(max_size=3000), max_size=8), level=st.integers(1, 9))
def test_parts_make_one_member(pool, parts, level):
    writer = ParallelGzip(pool, level)
    for part in parts:
        writer.add(part)
    body = writer.finish()
    assert _one_member(body) == b"".join(parts)
    assert gzip.decompress(body) == b"".join(parts)


def test_big_parts_of_text(pool):
    lines = [f'wireguard_peer_receive_bytes_total{{public_key="{os.urandom(32).hex()}"}} '
             f'{i}.0\n'.encode() for i in range(40_000)]
    parts = [b"".join(lines[i:i + 7000]) for i in range(0, len(lines), 7000)]
    writer = ParallelGzip(pool, 1)
    for part in parts:
        writer.add(part)
    body = writer.finish()
    assert _one_member(body) == b"".join(parts)
    assert len(body) < len(b"".join(parts)) // 2  # it did compress
