"""What `pywg up` and `pywg down` tell the user, and the one error they raise.

Every step that changes the system is announced before it runs, on stderr, as the command
wg-quick(8) would have run for it (`[#] ip -4 address add 10.0.0.1/24 dev wg0`): an
operator who knows wg-quick reads the same transcript, and can replay a step by hand.
"""

from __future__ import annotations

import sys

from pywg._constants import QUICK_SYSTEM_FILE_MAX_LEN

__all__ = ["QuickError", "read_system_file", "step", "warn"]


class QuickError(Exception):
    """A step of up/down/save/strip failed; the message names the cause."""


def step(command: str) -> None:
    print(f"[#] {command}", file=sys.stderr, flush=True)


def warn(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def read_system_file(path: str) -> str | None:
    """The start of a small system file (rt_tables, resolvconf's); None if unreadable."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read(QUICK_SYSTEM_FILE_MAX_LEN)
    except OSError:
        return None
