"""Progress on stderr: what runs now, n of N, time elapsed and an estimate of what is left.

The ETA starts from each task's estimated duration and is corrected by how far off the
estimates have been so far on this machine.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


def clock(seconds: float) -> str:
    seconds = max(0, int(seconds + 0.5))
    return f"{seconds // 60}:{seconds % 60:02d}"


class Progress:
    def __init__(self, total_tasks: int, total_estimate_s: float,
                 stream: TextIO = sys.stderr) -> None:
        self.total = total_tasks
        self.remaining_estimate = total_estimate_s
        self.done_estimate = 0.0
        self.done = 0
        self.current_estimate = 0.0
        self.started = time.monotonic()
        self.stream = stream

    def begin(self, label: str, estimate_s: float) -> None:
        elapsed = time.monotonic() - self.started
        # How much slower (or faster) than estimated tasks have been; bounded against noise.
        ratio = elapsed / self.done_estimate if self.done_estimate > 1.0 else 1.0
        eta = self.remaining_estimate * min(max(ratio, 0.5), 3.0)
        self.note(f"[{self.done + 1:>3}/{self.total}] {label}   "
                  f"elapsed {clock(elapsed)}  ETA {clock(eta)}")
        self.current_estimate = estimate_s

    def end(self) -> None:
        self.done += 1
        self.done_estimate += self.current_estimate
        self.remaining_estimate = max(0.0, self.remaining_estimate - self.current_estimate)

    def note(self, text: str) -> None:
        print(text, file=self.stream, flush=True)
