"""bench.lines, the product's lines per component: what counts as code in C and Python, and
that every file of pywg/ and csrc/ belongs to a component."""

from __future__ import annotations

import subprocess

import pytest

from bench import lines

C_SAMPLE = """\
/*
 * A header comment over
 * three lines.
 */
#include <stdint.h>

// a line comment
int f(void) /* trailing */
{
    return 1; // trailing too
}
"""

PY_SAMPLE = '''\
"""A module docstring
over two lines."""

# a comment

def f(x: int) -> int:
    """One line."""
    y = """not a docstring:
    a string assigned"""
    return x  # trailing
'''


def test_c_code_lines_leave_out_comments_and_blanks() -> None:
    assert lines.c_code_lines(C_SAMPLE) == 5


def test_python_code_lines_leave_out_docstrings_comments_and_blanks() -> None:
    # def, the two lines of the assigned string, return
    assert lines.py_code_lines(PY_SAMPLE) == 4


def test_every_product_file_belongs_to_a_component() -> None:
    try:
        lines.git("rev-parse", "HEAD")
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    counts = lines.count("HEAD")
    engine = lines.engine_total(counts)
    assert counts["engine: C data plane"].files > 0
    assert counts["engine: protocol core"].files > 0
    assert 0 < engine.code < engine.lines
    assert "| **engine** |" in lines.table(["HEAD"])


def test_a_file_of_no_component_is_an_error() -> None:
    with pytest.raises(SystemExit, match="no component"):
        lines.component_of("pywg/_nowhere/new.py")
