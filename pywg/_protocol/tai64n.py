"""TAI64N timestamps for handshake initiations (whitepaper 5.1, 5.4.2).

12 bytes: big-endian seconds since 1970 offset by 2^62 + 10 (the TAI64 label), then
big-endian nanoseconds. The nanoseconds are rounded down to a multiple of 2^24 (about
16.8 ms) as the kernel and wireguard-go do, so that an observer who can decrypt a timestamp
(a compromised peer key) learns nothing finer about our clock. Big-endian fields make
"newer" a plain bytewise comparison, which is what the replay check uses.
"""

from __future__ import annotations

import struct

from pywg._constants import NOISE_TIMESTAMP_LEN, TAI64_LABEL, TAI64N_WHITENER_MASK
from pywg._protocol.errors import LocalProtocolError

__all__ = ["ZERO", "after", "from_wall_ns"]

_NS_PER_S = 1_000_000_000
_TAI64N = struct.Struct(">QI")

# Older than any real timestamp: the starting point of each peer's replay check.
ZERO = bytes(NOISE_TIMESTAMP_LEN)


def from_wall_ns(wall_ns: int) -> bytes:
    """The whitened TAI64N stamp of a wall-clock time in nanoseconds since the Unix epoch."""
    if wall_ns < 0:
        raise LocalProtocolError(f"wall-clock time before 1970: {wall_ns}")
    seconds, nanoseconds = divmod(wall_ns, _NS_PER_S)
    if TAI64_LABEL + seconds >= 1 << 64:
        raise LocalProtocolError(f"wall-clock time beyond TAI64: {wall_ns}")
    return _TAI64N.pack(TAI64_LABEL + seconds, nanoseconds & TAI64N_WHITENER_MASK)


def after(stamp: bytes, previous: bytes) -> bool:
    """Whether `stamp` is strictly newer than `previous` (both 12 bytes)."""
    return len(stamp) == NOISE_TIMESTAMP_LEN and stamp > previous
