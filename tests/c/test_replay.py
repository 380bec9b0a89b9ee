"""The C replay window (csrc/replay.c), its one home: against the Linux module's counter
self-test table, and against the window's definition on random sequences.

The definition, in the whitepaper's and the kernel's terms: with `greatest` one past the
highest counter accepted so far, a counter is accepted iff it is below the limit, it was
never accepted before, and it is not too old (counter + 1 + W >= greatest). A set of every
accepted counter models that exactly, with none of the bitmap's arithmetic.
"""

import json
import random
from pathlib import Path

import pytest
from _wgdp_test import ffi, lib  # the test-only module: tests/conftest.py
from hypothesis import given, settings
from hypothesis import strategies as st

from pywg import _constants as constants

TABLE = json.loads((Path(__file__).parents[1] / "data" / "replay-window-table.json").read_text())
W = constants.COUNTER_WINDOW_SIZE
L = W + 1
R = constants.REJECT_AFTER_MESSAGES


def new_window():
    buf = ffi.new("char[]", lib.wg_replay_size())
    window = ffi.cast("struct wg_replay *", buf)
    lib.wg_replay_init(window)
    return buf, window


def test_window_size_matches_table():
    assert TABLE["window_size"] == W == 8128


def test_kernel_table():
    _keep, window = new_window()
    for step in TABLE["sequence"]:
        # The table writes counters as expressions of L, R and W.
        counter = eval(step["counter"], {"L": L, "R": R, "W": W})
        got = lib.wg_replay_check(window, counter, R)
        assert bool(got) == step["accept"], step


def _run(seq):
    _keep, window = new_window()
    return [bool(lib.wg_replay_check(window, c, R)) for c in seq]


@pytest.mark.parametrize(
    "seq, expect_tail",
    [
        (list(range(1, W + 1)) + [0, 0], [True, False]),
        (list(range(2, W + 2)) + [1, 0], [True, False]),
        (list(range(W, -1, -1)), [True, True]),
        (list(range(W + 1, 0, -1)) + [0], [True, False]),
        (list(range(W, 0, -1)) + [W + 1, 0], [True, False]),
        (list(range(W, 0, -1)) + [0, W + 1], [True, True]),
    ],
    ids=["loop1", "loop2", "loop3", "loop4", "loop5", "loop6"],
)
def test_kernel_loops(seq, expect_tail):
    results = _run(seq)
    assert all(results[:-2])
    assert results[-2:] == expect_tail


class Model:
    """The definition above, with a set instead of a bitmap."""

    def __init__(self) -> None:
        self.seen: set[int] = set()
        self.greatest = 0

    def check(self, counter: int, limit: int) -> bool:
        if counter >= limit or counter + 1 + W < self.greatest or counter in self.seen:
            return False
        self.seen.add(counter)
        self.greatest = max(self.greatest, counter + 1)
        return True


def compare(counters: list[int], limit: int = R) -> None:
    _keep, window = new_window()
    model = Model()
    for i, counter in enumerate(counters):
        assert bool(lib.wg_replay_check(window, counter, limit)) == model.check(counter, limit), \
            (i, counter)


def walk(rng: random.Random, start: int, steps: int) -> list[int]:
    """Mostly in-window reordering and duplicates, sometimes a jump forward or far back."""
    out, top = [], start
    for _ in range(steps):
        roll = rng.random()
        if roll < 0.6:
            counter = top + rng.randint(-W - 70, 70)
        elif roll < 0.75:
            counter = rng.choice(out) if out else top
        elif roll < 0.9:
            counter = top + rng.choice([64, 127 * 64, 128 * 64, 129 * 64, rng.randint(1, 10**6)])
        else:
            counter = top - rng.randint(W - 2, 3 * W)
        counter = min(max(counter, 0), 2**64 - 1)
        top = max(top, counter)
        out.append(counter)
    return out


@pytest.mark.parametrize("seed", range(8))
def test_random_walks_from_zero(seed):
    compare(walk(random.Random(seed), 0, 4000))


@pytest.mark.parametrize("seed", range(4))
def test_random_walks_near_the_limit(seed):
    # Crossing REJECT_AFTER_MESSAGES and the end of the 64-bit range.
    compare(walk(random.Random(100 + seed), R - 3 * W, 3000))


def test_a_small_limit():
    compare(walk(random.Random(7), 0, 2000), limit=5000)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.integers(0, 3 * 8192), max_size=300))
def test_arbitrary_sequences(counters):
    compare(counters)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(R - 3 * 8192, 2**64 - 1), max_size=200))
def test_arbitrary_sequences_at_the_top(counters):
    compare(counters)
