"""The C replay window against the Linux module's counter self-test table."""

import json
from pathlib import Path

import pytest

from pywg import _constants as constants

_wgdp = pytest.importorskip("pywg._wgdp")
ffi, lib = _wgdp.ffi, _wgdp.lib

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
