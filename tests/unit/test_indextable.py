"""The index table: random unique u32s, lookups, hand-over and release, bounded."""

import random

import pytest

from pywg._protocol.errors import LocalProtocolError
from pywg._protocol.indextable import IndexTable


def test_allocate_lookup_replace_release():
    table: IndexTable[str] = IndexTable(rng=random.Random(1).randbytes)
    a, b = table.allocate("a"), table.allocate("b")
    assert a != b and 0 <= a < 2**32 and len(table) == 2
    assert table.lookup(a) == "a" and a in table
    table.replace(a, "a2")
    assert table.lookup(a) == "a2"
    assert table.release(a) == "a2" and table.lookup(a) is None and a not in table
    assert table.release(a) is None
    with pytest.raises(LocalProtocolError):
        table.replace(a, "x")


def test_collisions_are_retried_and_bounded():
    values = iter([b"\1\0\0\0", b"\1\0\0\0", b"\2\0\0\0"])
    table: IndexTable[int] = IndexTable(rng=lambda n: next(values))
    assert table.allocate(1) == 1
    assert table.allocate(2) == 2  # the repeated 1 was skipped
    stuck: IndexTable[int] = IndexTable(rng=lambda n: b"\7\0\0\0")
    stuck.allocate(0)
    with pytest.raises(LocalProtocolError):
        stuck.allocate(1)


def test_size_is_bounded():
    table: IndexTable[int] = IndexTable(max_entries=2)
    table.allocate(1)
    table.allocate(2)
    with pytest.raises(LocalProtocolError):
        table.allocate(3)


def test_indices_look_random():
    table: IndexTable[int] = IndexTable()
    indices = [table.allocate(i) for i in range(1000)]
    assert len(set(indices)) == 1000
    assert max(indices) > 2**31  # not a counter from zero
