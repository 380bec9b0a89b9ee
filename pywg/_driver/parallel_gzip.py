"""One gzip member (RFC 1952) compressed a part at a time on a pool of threads.

A metrics scrape of 100,000 peers is 54 MB of text, and Prometheus asks for gzip: zlib's
fastest level spends about half a second of CPU on it, as long as everything else in the
scrape together. zlib lets go of the GIL while it deflates, so the parts are deflated on
other threads while the scrape goes on writing the next ones, and on every core at once.

Each part is deflated on its own (no history from the part before it, which costs a
fraction of a percent of the ratio at 1 MB parts) and ends with a sync flush, which leaves
the stream at a byte boundary with no final block; the parts, one empty final block after
them, a gzip header before and the CRC-32 and length of the whole after, make one ordinary
gzip member, as pigz writes them. Any gzip reader takes it: not several members, which some
HTTP clients stop reading after the first.
"""

from __future__ import annotations

import concurrent.futures
import struct
import zlib
from typing import Final

__all__ = ["ParallelGzip"]

# ID1 ID2, CM=deflate, FLG=0, MTIME=0 (none), XFL=4 (the fastest compression), OS=255.
_HEADER: Final = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x04\xff"
_TRAILER: Final = struct.Struct("<II")  # CRC-32, length mod 2**32


def _deflate(part: bytes, level: int) -> bytes:
    compressor = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS)
    return compressor.compress(part) + compressor.flush(zlib.Z_SYNC_FLUSH)


class ParallelGzip:
    """Add parts in order, then `finish()` for the whole gzip member."""

    def __init__(self, pool: concurrent.futures.Executor, level: int) -> None:
        self._pool = pool
        self._level = level
        self._parts: list[concurrent.futures.Future[bytes]] = []
        self._crc = 0
        self._length = 0

    def add(self, part: bytes) -> None:
        if part:
            self._parts.append(self._pool.submit(_deflate, part, self._level))
            self._crc = zlib.crc32(part, self._crc)  # zlib lets go of the GIL for it too
            self._length += len(part)

    def finish(self) -> bytes:
        end = zlib.compressobj(self._level, zlib.DEFLATED, -zlib.MAX_WBITS).flush()
        trailer = _TRAILER.pack(self._crc, self._length & 0xFFFFFFFF)
        return b"".join([_HEADER, *(f.result() for f in self._parts), end, trailer])

    def cancel(self) -> None:
        """Give up: parts not yet begun are not deflated."""
        for part in self._parts:
            part.cancel()
