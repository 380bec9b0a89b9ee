"""A TCP transfer checked end to end: tcpcheck.py runs at both ends (each in its namespace)
and what arrived is compared with what was sent, by length and sha256."""

from __future__ import annotations

import contextlib
import json
import secrets
import select
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.harness import netns
from tests.harness.procs import HarnessError

SCRIPT = str(Path(__file__).with_name("tcpcheck.py"))
PORT = 5201
READY_TIMEOUT_S = 10.0


@dataclass
class Transfer:
    receiver: subprocess.Popen[str]
    sender: subprocess.Popen[str]
    nbytes: int

    def running(self) -> bool:
        return self.sender.poll() is None

    def finish(self, timeout: float) -> tuple[dict[str, object], dict[str, object]]:
        """(sent, received) reports; fails if either end fails or overruns `timeout`."""
        results = []
        for name, proc in (("sender", self.sender), ("receiver", self.receiver)):
            try:
                out, err = proc.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                raise HarnessError(f"the {name} did not finish within {timeout:.0f} s") from None
            if proc.returncode != 0:
                raise HarnessError(f"the {name} exited {proc.returncode}: {err.strip()}")
            results.append(json.loads(out.strip().splitlines()[-1]))
        return results[0], results[1]


def _popen(ns: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(netns.exec_argv(ns, [sys.executable, SCRIPT, *args]),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL)


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=10)
    for pipe in (proc.stdout, proc.stderr):
        if pipe is not None:
            pipe.close()


@contextlib.contextmanager
def transfer(send_ns: str, recv_ns: str, recv_addr: str, nbytes: int,
             seconds: float = 0.0) -> Iterator[Transfer]:
    """A TCP transfer of `nbytes` pseudo-random bytes to `recv_addr`, under way on entry."""
    receiver = _popen(recv_ns, "recv", recv_addr, str(PORT))
    try:
        assert receiver.stdout is not None
        ready, _, _ = select.select([receiver.stdout], [], [], READY_TIMEOUT_S)
        line = receiver.stdout.readline() if ready else ""
        if line.strip() != "ready":
            receiver.kill()
            _, err = receiver.communicate(timeout=READY_TIMEOUT_S)
            raise HarnessError(f"the receiver did not start: {line!r} {err.strip()!r}")
        sender = _popen(send_ns, "send", recv_addr, str(PORT), str(nbytes),
                        str(secrets.randbits(32)), str(seconds))
        try:
            yield Transfer(receiver, sender, nbytes)
        finally:
            _stop(sender)
    finally:
        _stop(receiver)


def checked_transfer(send_ns: str, recv_ns: str, recv_addr: str, nbytes: int,
                     timeout: float = 120.0) -> None:
    with transfer(send_ns, recv_ns, recv_addr, nbytes) as t:
        sent, received = t.finish(timeout)
    assert sent["bytes"] == nbytes
    assert received == sent, "the far end received other bytes than were sent"
