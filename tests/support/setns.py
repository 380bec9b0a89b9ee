"""Entering a test's network namespace from this process, for a moment.

Sockets and TUN devices belong to the namespace of the thread that creates them and keep it
afterwards, so a test can make them inside a namespace it created and use them (and hand
their fds to a data plane) from anywhere. Python 3.11 has no os.setns, hence ctypes.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
from collections.abc import Iterator

CLONE_NEWNET = 0x40000000

_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


@contextlib.contextmanager
def inside(ns: str) -> Iterator[None]:
    """Run the body with the calling thread in network namespace `ns` (from `ip netns`)."""
    with open(f"/var/run/netns/{ns}") as target, open("/proc/thread-self/ns/net") as home:
        _setns(target.fileno())
        try:
            yield
        finally:
            _setns(home.fileno())
