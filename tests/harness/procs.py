"""Child processes: every command bounded in time, every background process ours to stop.

Namespaces, daemons, iperf3 servers and load generators must not outlive whoever started
them, however it ends: normally, by an exception, by Ctrl-C or by SIGTERM. Each background
process is registered here when started and stopped by its own PID, never by name (other
people's processes run on this machine); other undo actions (deleting a namespace, stopping
a daemon that went to the background) are registered with `defer`. `cleanup()` runs them
all, newest first. Tests undo through context managers and never need it; programs (bench,
the demo) call it in a `finally`, and `install_handlers()` makes SIGTERM and SIGHUP unwind
like Ctrl-C and registers it with atexit as a last resort.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import subprocess
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import IO

CMD_TIMEOUT_S = 20.0
# How long a process gets to exit after SIGTERM before it is sent SIGKILL.
TERM_GRACE_S = 3.0
ERROR_LINES = 10


class HarnessError(Exception):
    """Root of the harness's errors: a set-up step, a command or a wait failed."""


class CommandError(HarnessError):
    """A command exited non-zero, could not start, or ran past its timeout."""


class Interrupted(KeyboardInterrupt):
    """SIGTERM or SIGHUP arrived: unwinds like Ctrl-C, so `finally` blocks run."""


_children: list[subprocess.Popen[bytes]] = []
_undo: list[tuple[str, Callable[[], None]]] = []
_echo = False


def _show(cmd: Sequence[str]) -> str:
    return " ".join(cmd)


def _tail(text: str, lines: int = ERROR_LINES) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def announce(cmd: Sequence[str]) -> None:
    """Print the command about to run, while `echoing()`."""
    if _echo:
        print(f"$ {_show(cmd)}", flush=True)


def run(cmd: Sequence[str], timeout: float = CMD_TIMEOUT_S, *, check: bool = True,
        input: str | None = None, env: dict[str, str] | None = None,
        quiet: bool = False) -> subprocess.CompletedProcess[str]:
    """Runs cmd to completion (killed at the timeout) and returns its output as text.

    `quiet` keeps it out of `echoing()`: polls, and anything that prints a secret.
    """
    if not quiet:
        announce(cmd)
    try:
        done = subprocess.run(list(cmd), input=input, capture_output=True, text=True,
                              timeout=timeout, env=env, check=False)
    except subprocess.TimeoutExpired as exc:
        raise CommandError(f"`{_show(cmd)}`: no exit after {timeout:.0f} s") from exc
    except OSError as exc:
        raise CommandError(f"`{_show(cmd)}`: {exc}") from exc
    if _echo and not quiet and (done.stdout or done.stderr):
        print((done.stdout + done.stderr).rstrip(), flush=True)
    if check and done.returncode != 0:
        raise CommandError(f"`{_show(cmd)}` exited {done.returncode}: "
                           f"{_tail(done.stderr or done.stdout)}")
    return done


@contextlib.contextmanager
def echoing() -> Iterator[None]:
    """Print every command `run` runs, and its output, while the body runs (the demo)."""
    global _echo
    before, _echo = _echo, True
    try:
        yield
    finally:
        _echo = before


def start(cmd: Sequence[str], log: Path | None = None, *,
          env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Starts cmd in the background, registered for clean-up; its output goes to log.

    A file, never a pipe: a child that re-execs or forks may hold a pipe open for ever. Its
    own session, so Ctrl-C at a terminal reaches us alone and we stop it in order.
    """
    out: IO[bytes] | int = subprocess.DEVNULL
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
        out = log.open("ab")
    try:
        proc = subprocess.Popen(list(cmd), stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, env=env, start_new_session=True)
    except OSError as exc:
        raise CommandError(f"`{_show(cmd)}`: {exc}") from exc
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


def defer(label: str, action: Callable[[], None]) -> Callable[[], None]:
    """Registers an undo action for `cleanup()`; returns the function that forgets it,
    for whoever undoes it first by itself."""
    entry = (label, action)
    _undo.append(entry)

    def forget() -> None:
        if entry in _undo:
            _undo.remove(entry)

    return forget


def cleanup() -> list[str]:
    """Stops every registered process, then runs the undo actions newest first.

    Idempotent; returns the failures as text instead of raising, because it runs on the
    way out of a program, where an exception would hide the original one.
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


def is_root() -> bool:
    return os.geteuid() == 0
