"""The C and Python copies of the protocol constants agree (csrc/messages.h, pywg/_constants.py)."""

import re
from pathlib import Path

from pywg import _constants as constants

HEADER = Path(__file__).parents[2] / "csrc" / "messages.h"
# Implementation limits of the C data plane (DP_*) have no Python copy by design.
C_ONLY = re.compile(r"^(DP_|MESSAGE_INVALID$)")


def c_constants() -> dict[str, int]:
    """Every enum member and integer #define of messages.h, evaluated."""
    text = re.sub(r"/\*.*?\*/", "", HEADER.read_text(), flags=re.S)
    env: dict[str, int] = {"UINT64_MAX": 2**64 - 1}
    found: dict[str, int] = {}
    entries = re.findall(r"^\s*([A-Z][A-Z0-9_]+)\s*=\s*([^,\n]+),", text, flags=re.M)
    entries += re.findall(r"^#define\s+([A-Z][A-Z0-9_]+)\s+(.+)$", text, flags=re.M)
    for name, expr in entries:
        expr = re.sub(r"(\d+)U?L{0,2}\b", r"\1", expr).replace("/", "//")
        found[name] = env[name] = eval(expr, {}, dict(env))  # expressions of earlier names
    return found


def test_header_parses():
    values = c_constants()
    assert values["MESSAGE_INITIATION_SIZE"] == 148
    assert values["COUNTER_WINDOW_SIZE"] == 8128
    assert values["REJECT_AFTER_MESSAGES"] == 2**64 - 2**13 - 1


def test_c_and_python_agree():
    for name, value in c_constants().items():
        if C_ONLY.match(name):
            continue
        assert hasattr(constants, name), f"{name} is in messages.h but not in constants.py"
        assert getattr(constants, name) == value, name
