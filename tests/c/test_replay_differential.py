"""The C replay window (csrc/replay.c) and the Python reference give the same answers."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pywg import _constants as constants
from pywg._protocol.replay import ReplayFilter

_wgdp = pytest.importorskip("pywg._wgdp")
ffi, lib = _wgdp.ffi, _wgdp.lib

W = constants.COUNTER_WINDOW_SIZE
R = constants.REJECT_AFTER_MESSAGES
U64_MAX = 2**64 - 1


class CWindow:
    def __init__(self) -> None:
        self._buf = ffi.new("char[]", lib.wg_replay_size())
        self._window = ffi.cast("struct wg_replay *", self._buf)
        lib.wg_replay_init(self._window)

    def check(self, counter: int, limit: int) -> bool:
        return bool(lib.wg_replay_check(self._window, counter, limit))


def compare(counters: list[int], limit: int = R) -> None:
    c, py = CWindow(), ReplayFilter()
    for i, counter in enumerate(counters):
        assert c.check(counter, limit) == py.validate_counter(counter, limit), (i, counter)


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
        counter = min(max(counter, 0), U64_MAX)
        top = max(top, counter)
        out.append(counter)
    return out


@pytest.mark.parametrize("seed", range(8))
def test_random_walks_from_zero(seed: int) -> None:
    compare(walk(random.Random(seed), 0, 4000))


@pytest.mark.parametrize("seed", range(4))
def test_random_walks_near_the_limit(seed: int) -> None:
    # Crossing REJECT_AFTER_MESSAGES and the end of the 64-bit range.
    compare(walk(random.Random(100 + seed), R - 3 * W, 3000))


def test_small_limit() -> None:
    compare(walk(random.Random(7), 0, 2000), limit=5000)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.integers(0, 3 * 8192), max_size=300))
def test_arbitrary_sequences(counters: list[int]) -> None:
    compare(counters)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(R - 3 * 8192, U64_MAX), max_size=200))
def test_arbitrary_sequences_at_the_top(counters: list[int]) -> None:
    compare(counters)
