"""Network namespaces: created with a unique name, entered for a moment, always deleted.

Names carry a random suffix because other runs share this machine, and /var/run/wireguard
(where UAPI sockets live) is shared by every namespace: an interface name must be unique
machine-wide, not only in its namespace. Only addresses inside these namespaces are used.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import secrets
import socket
import subprocess
import threading
from collections.abc import Iterator, Sequence

from tests.harness import procs

CLONE_NEWNET = 0x40000000
NETNS_TIMEOUT_S = 10.0
IFNAME_MAX = 15

_libc = ctypes.CDLL(None, use_errno=True)


def unique(prefix: str) -> str:
    """prefix and a random suffix, cut to what an interface name may hold (15 bytes)."""
    return f"{prefix}{secrets.token_hex(3)}"[:IFNAME_MAX]


def exec_argv(ns: str | None, argv: Sequence[str]) -> list[str]:
    """argv run inside ns (`ip netns exec` execs, so the PID is the command's own)."""
    return ["ip", "netns", "exec", ns, *argv] if ns else list(argv)


def run(ns: str | None, argv: Sequence[str], *, check: bool = True,
        input: str | None = None, timeout: float = procs.CMD_TIMEOUT_S,
        env: dict[str, str] | None = None, quiet: bool = False,
        ) -> subprocess.CompletedProcess[str]:
    """Runs argv inside ns (or here if ns is None), bounded by timeout."""
    return procs.run(exec_argv(ns, argv), timeout, check=check, input=input, env=env,
                     quiet=quiet)


def create(name: str) -> None:
    """A new namespace with lo up (loopback traffic needs it; a new namespace has it down)."""
    procs.run(["ip", "netns", "add", name], NETNS_TIMEOUT_S)
    try:
        run(name, ["ip", "link", "set", "lo", "up"])
    except BaseException:
        delete(name)
        raise


def delete(name: str) -> None:
    """Deleting a namespace deletes its veth ends, and with them their peers elsewhere."""
    procs.run(["ip", "netns", "delete", name], NETNS_TIMEOUT_S, check=False)


@contextlib.contextmanager
def namespace(prefix: str = "pt", name: str | None = None) -> Iterator[str]:
    """A fresh namespace (named prefix + a random suffix unless given a name), deleted
    afterwards, and by `procs.cleanup()` should the body never return."""
    name = name or unique(prefix)
    create(name)
    forget = procs.defer(f"netns {name}", lambda: delete(name))
    try:
        yield name
    finally:
        forget()
        delete(name)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


@contextlib.contextmanager
def inside(ns: str) -> Iterator[None]:
    """The calling thread in namespace ns for the body (Python 3.11 has no os.setns).

    Sockets and TUNs belong to the namespace their creator was in and keep it afterwards,
    so they can be made here and used (or handed to a data plane) from anywhere.
    """
    with open(f"/var/run/netns/{ns}") as target, open("/proc/thread-self/ns/net") as home:
        _setns(target.fileno())
        try:
            yield
        finally:
            _setns(home.fileno())


def socket_in(ns: str, family: int, kind: int, proto: int = 0) -> socket.socket:
    """A socket opened inside ns by a short-lived thread, so no other thread moves."""
    opened: list[socket.socket] = []
    failed: list[BaseException] = []

    def enter_and_open() -> None:
        try:
            with inside(ns):
                opened.append(socket.socket(family, kind, proto))
        except BaseException as exc:
            failed.append(exc)

    thread = threading.Thread(target=enter_and_open)
    thread.start()
    thread.join()
    if failed:
        raise failed[0]
    return opened[0]
