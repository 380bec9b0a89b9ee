"""TAI64N stamps: the label, big-endian fields, the kernel's 2^24 ns whitening, ordering."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pywg._protocol import tai64n
from pywg._protocol.errors import LocalProtocolError

S = 1_000_000_000


def test_epoch_and_layout():
    assert tai64n.from_wall_ns(0) == bytes.fromhex("400000000000000a00000000")
    stamp = tai64n.from_wall_ns(1_700_000_000 * S + (5 << 24) + 123)
    assert int.from_bytes(stamp[:8], "big") == 0x400000000000000A + 1_700_000_000
    assert int.from_bytes(stamp[8:], "big") == 5 << 24


def test_nanoseconds_are_rounded_down_to_2_pow_24():
    assert tai64n.from_wall_ns((1 << 24) - 1)[8:] == bytes(4)
    assert tai64n.from_wall_ns(1 << 24)[8:] == (1 << 24).to_bytes(4, "big")
    assert int.from_bytes(tai64n.from_wall_ns(S - 1)[8:], "big") == 59 << 24


def test_out_of_range_times():
    with pytest.raises(LocalProtocolError):
        tai64n.from_wall_ns(-1)
    with pytest.raises(LocalProtocolError):
        tai64n.from_wall_ns((1 << 64) * S)


@given(st.integers(0, 1 << 40), st.integers(0, 1 << 40))
def test_after_is_strict_and_follows_time(a, b):
    sa, sb = tai64n.from_wall_ns(a * 1000), tai64n.from_wall_ns(b * 1000)
    assert tai64n.after(sa, sb) == (sa > sb)
    assert not tai64n.after(sa, sa)
    if a <= b:
        assert not tai64n.after(sa, sb)
    assert tai64n.after(sa, tai64n.ZERO)


def test_after_refuses_wrong_lengths():
    assert not tai64n.after(b"\xff" * 13, tai64n.ZERO)
    assert not tai64n.after(b"\xff" * 11, tai64n.ZERO)
