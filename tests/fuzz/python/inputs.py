"""Input strategies shared by the Python fuzz targets: byte-level mutation of valid seeds
(as libFuzzer's mutators do: flip, insert, erase, duplicate, splice, truncate) and random
splitting of a stream into reads."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from hypothesis import strategies as st

_INTERESTING = (b"\x00", b"\n", b"\r", b"=", b"-", b"/", b":", b"[", b"]", b"%", b"#", b",",
                b"+", b" ", b"\t", b"\xff", b"\x80", b"0", b"9", b"f", b"true", b"\n\n")


@st.composite
def mutated(draw: st.DrawFn, seeds: Sequence[bytes], max_mutations: int = 4) -> bytes:
    """One of `seeds`, changed by up to `max_mutations` random edits (none: the seed)."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(0, max_mutations))):
        where = draw(st.integers(0, len(data)))
        kind = draw(st.integers(0, 6))
        if kind == 0 and where < len(data):
            data[where] ^= 1 << draw(st.integers(0, 7))
        elif kind == 1:
            data[where:where] = draw(st.one_of(st.sampled_from(_INTERESTING),
                                               st.binary(min_size=1, max_size=8)))
        elif kind == 2:
            del data[where:where + draw(st.integers(1, 16))]
        elif kind == 3:
            piece = data[where:where + draw(st.integers(1, 64))]
            data[where:where] = piece * draw(st.integers(1, 3))
        elif kind == 4:
            other = draw(st.sampled_from(seeds))
            start = draw(st.integers(0, len(other)))
            data[where:] = other[start:]
        elif kind == 5:
            del data[where:]
        elif where < len(data):
            data[where] = draw(st.integers(0, 255))
    return bytes(data)


def mutated_text(seeds: Sequence[str], max_mutations: int = 4) -> st.SearchStrategy[str]:
    """mutated() on the UTF-8 of text seeds, read back as text (bad UTF-8 replaced)."""
    return mutated([s.encode() for s in seeds], max_mutations).map(
        lambda b: b.decode("utf-8", "replace"))


@st.composite
def reads(draw: st.DrawFn, data: bytes) -> list[bytes]:
    """`data` cut into the pieces a socket might return it in."""
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=6)))
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds) if b > a]
