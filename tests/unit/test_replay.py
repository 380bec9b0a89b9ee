"""The pure-Python replay window against the Linux module's counter self-test table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pywg import _constants as constants
from pywg._protocol.replay import ReplayFilter

TABLE = json.loads((Path(__file__).parents[1] / "data" / "replay-window-table.json").read_text())
W = TABLE["window_size"]
L = W + 1
R = constants.REJECT_AFTER_MESSAGES


def test_window_size_is_the_kernels() -> None:
    assert W == 8128 == constants.COUNTER_WINDOW_SIZE


def test_kernel_table() -> None:
    replay = ReplayFilter()
    for step in TABLE["sequence"]:
        # The table writes counters as expressions of L, R and W.
        counter = eval(step["counter"], {"L": L, "R": R, "W": W})
        assert replay.validate_counter(counter, R) == step["accept"], step


def run(seq: list[int]) -> list[bool]:
    replay = ReplayFilter()
    return [replay.validate_counter(c, R) for c in seq]


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
def test_kernel_loops(seq: list[int], expect_tail: list[bool]) -> None:
    # TABLE["loops"] describes these six in words.
    assert len(TABLE["loops"]) == 6
    results = run(seq)
    assert all(results[:-2])
    assert results[-2:] == expect_tail


def test_limit_is_exclusive_and_negative_counters_refused() -> None:
    replay = ReplayFilter()
    assert not replay.validate_counter(10, 10)
    assert replay.validate_counter(9, 10)
    assert not replay.validate_counter(-1, 10)


def test_a_jump_of_many_ring_turns_forgets_everything_behind() -> None:
    replay = ReplayFilter()
    assert all(replay.validate_counter(c, R) for c in range(200))
    assert replay.validate_counter(10 * 8192 + 5, R)
    # Everything older than the window is refused; inside it, nothing was seen yet.
    assert not replay.validate_counter(150, R)
    assert replay.validate_counter(10 * 8192 + 5 - W, R)
    assert not replay.validate_counter(10 * 8192 + 5 - W - 1, R)
