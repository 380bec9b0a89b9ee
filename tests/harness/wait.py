"""Bounded waiting: poll a condition until it holds or its time runs out, never longer."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from tests.harness.procs import HarnessError

T = TypeVar("T")
POLL_S = 0.05


class WaitTimeout(HarnessError):
    """What was waited for did not happen in time."""


def poll(predicate: Callable[[], T], timeout: float, interval: float = POLL_S) -> T | None:
    """The first truthy value of `predicate` within `timeout` seconds, else None."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval)


def wait_for(predicate: Callable[[], T], what: str, timeout: float = 10.0,
             interval: float = POLL_S) -> T:
    """As `poll`, but a timeout is an error that says what was waited for."""
    value = poll(predicate, timeout, interval)
    if value is None:
        raise WaitTimeout(f"timed out after {timeout:.0f} s waiting for {what}")
    return value
