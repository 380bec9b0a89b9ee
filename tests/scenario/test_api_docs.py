"""docs/api.md's examples run: every ```python block that needs no root, as its own program
(two embedded devices in one process over loopback UDP, no privileges). The blocks that
need root run in tests/integration/test_api.py."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.docblocks import Block, python_blocks

REPO = Path(__file__).resolve().parents[2]
PAGE = REPO / "docs" / "api.md"
BLOCKS = [b for b in python_blocks(PAGE) if not b.needs_root]
RUN_TIMEOUT_S = 120


def test_the_page_has_examples_of_each_kind() -> None:
    blocks = python_blocks(PAGE)
    assert len(BLOCKS) >= 3
    assert any(b.needs_root for b in blocks)


@pytest.mark.parametrize("block", BLOCKS, ids=[b.name for b in BLOCKS])
def test_example_runs(block: Block) -> None:
    done = subprocess.run([sys.executable, "-c", block.code], capture_output=True, text=True,
                          timeout=RUN_TIMEOUT_S, check=False, cwd=REPO)
    assert done.returncode == 0, f"docs/api.md:{block.line}\n{done.stdout}\n{done.stderr}"
    assert "Traceback" not in done.stderr, done.stderr
