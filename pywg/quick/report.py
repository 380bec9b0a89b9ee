"""What `pywg up` and `pywg down` tell the user, and the one error they raise.

Every step that changes the system is announced before it runs, on stderr, as the command
wg-quick(8) would have run for it (`[#] ip -4 address add 10.0.0.1/24 dev wg0`): an
operator who knows wg-quick reads the same transcript, and can replay a step by hand.
"""

from __future__ import annotations

import sys

__all__ = ["QuickError", "step", "warn"]


class QuickError(Exception):
    """A step of up/down/save/strip failed; the message names the cause."""


def step(command: str) -> None:
    print(f"[#] {command}", file=sys.stderr, flush=True)


def warn(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
