"""Child processes and clean-up: every subprocess has a timeout, and everything started is undone.

The suite starts daemons, iperf3 servers and load generators inside network namespaces it
creates. They must not outlive it, whether it ends normally, by an exception, by Ctrl-C or by
SIGTERM: each one is registered here when started and killed by its own PID (never by name,
other people's processes run on the same machine) in `cleanup()`, which `main` calls in a
`finally` and `atexit` calls again as a last resort. Undo actions (deleting namespaces) are
registered the same way and run newest first.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import IO

# How long a process gets to exit after SIGTERM before it is sent SIGKILL.
TERM_GRACE_S = 3.0


class BenchError(Exception):
    """Root of the suite's errors: a set-up step or a measurement failed."""


class CommandError(BenchError):
    """A command exited non-zero or ran past its timeout."""


class Interrupted(KeyboardInterrupt):
    """SIGTERM or SIGHUP arrived: unwinds like Ctrl-C, so `finally` blocks run."""


_children: list[subprocess.Popen[bytes]] = []
_undo: list[tuple[str, Callable[[], None]]] = []


def run(cmd: Sequence[str], timeout: float, *, check: bool = True,
        stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Runs cmd to completion (killed at the timeout) and returns its output as text."""
    try:
        done = subprocess.run(list(cmd), input=stdin, capture_output=True, text=True,
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise CommandError(f"{' '.join(cmd)}: no exit after {timeout:.0f} s") from exc
    except OSError as exc:
        raise CommandError(f"{' '.join(cmd)}: {exc}") from exc
    if check and done.returncode != 0:
        raise CommandError(f"{' '.join(cmd)}: exit {done.returncode}: {_tail(done.stderr)}")
    return done


def _tail(text: str, lines: int = 4) -> str:
    return " | ".join(text.strip().splitlines()[-lines:])


def start(cmd: Sequence[str], log: Path | None = None, *,
          stdin: int | None = subprocess.DEVNULL) -> subprocess.Popen[bytes]:
    """Starts cmd in the background, registered for clean-up; its output goes to log."""
    out: IO[bytes] | int = subprocess.DEVNULL
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
        out = log.open("ab")
    try:
        proc = subprocess.Popen(list(cmd), stdin=stdin, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    except OSError as exc:
        raise CommandError(f"{' '.join(cmd)}: {exc}") from exc
    finally:
        if not isinstance(out, int):
            out.close()
    _children.append(proc)
    return proc


def stop(proc: subprocess.Popen[bytes], grace: float = TERM_GRACE_S) -> int | None:
    """Ends one process started here (SIGTERM, then SIGKILL) and reaps it."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=grace)
    if proc in _children:
        _children.remove(proc)
    return proc.returncode


def on_cleanup(label: str, action: Callable[[], None]) -> Callable[[], None]:
    """Registers an undo action; returns a function that runs it now (once) instead."""
    entry = (label, action)
    _undo.append(entry)

    def run_now() -> None:
        if entry in _undo:
            _undo.remove(entry)
            action()

    return run_now


def cleanup() -> list[str]:
    """Kills every registered process, then runs the undo actions newest first.

    Idempotent; returns the failures as text instead of raising, because it runs on the
    way out of the program where an exception would hide the original one.
    """
    failures: list[str] = []
    for proc in list(_children):
        stop(proc, grace=1.0)
    while _undo:
        label, action = _undo.pop()
        try:
            action()
        except Exception as exc:  # clean-up must go on past one failure
            failures.append(f"{label}: {exc}")
    return failures


def _raise_interrupted(signum: int, _frame: FrameType | None) -> None:
    raise Interrupted(f"signal {signal.Signals(signum).name}")


def install_handlers() -> None:
    """SIGTERM and SIGHUP unwind like Ctrl-C (KeyboardInterrupt) does; atexit is the backstop."""
    signal.signal(signal.SIGTERM, _raise_interrupted)
    signal.signal(signal.SIGHUP, _raise_interrupted)
    atexit.register(cleanup)


def wait_for(predicate: Callable[[], bool], timeout: float, interval: float = 0.02) -> bool:
    """Polls predicate until it holds or timeout seconds pass; bounded in time."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def is_root() -> bool:
    return os.geteuid() == 0
