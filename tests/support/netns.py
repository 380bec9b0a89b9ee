"""Network namespaces for tests: created by the test, cleaned up by the test.

Names carry a random suffix because several test runs (and /var/run/wireguard, which all
namespaces share) may be in use at once. Only addresses inside these namespaces are used.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import secrets
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator

import pytest


def require_root() -> None:
    """Skip the calling test, saying why, unless it can create namespaces and TUNs."""
    if os.geteuid() != 0:
        pytest.skip("needs root (network namespaces, /dev/net/tun)")
    if not os.path.exists("/dev/net/tun"):
        pytest.skip("needs /dev/net/tun")
    if shutil.which("ip") is None:
        pytest.skip("needs iproute2 (`ip`)")


def require_tools(*names: str) -> None:
    missing = [n for n in names if shutil.which(n) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (make test installs them as root)")


def unique(prefix: str) -> str:
    """A short unique name, valid as an interface name (at most 15 bytes)."""
    return f"{prefix}{secrets.token_hex(3)}"[:15]


def sh(cmd: str, *, ns: str | None = None, check: bool = True, timeout: float = 20,
       ) -> subprocess.CompletedProcess[str]:
    """Run a shell command, inside namespace `ns` if given."""
    full = f"ip netns exec {ns} sh -c {_quote(cmd)}" if ns else cmd
    return subprocess.run(full, shell=True, check=check, timeout=timeout,
                          capture_output=True, text=True)


def _quote(s: str) -> str:
    return "'" + s.replace("'", "'\"'\"'") + "'"


@contextlib.contextmanager
def namespace(prefix: str = "pt") -> Iterator[str]:
    """A fresh network namespace with `lo` up, deleted afterwards."""
    name = unique(prefix)
    subprocess.run(["ip", "netns", "add", name], check=True, timeout=10)
    try:
        sh("ip link set lo up", ns=name)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False, timeout=10)


@contextlib.contextmanager
def veth_pair(
    ns_a: str, ns_b: str,
    addr_a: str = "10.99.0.1/24", addr_b: str = "10.99.0.2/24",
    addr6_a: str = "fd99::1/64", addr6_b: str = "fd99::2/64",
) -> Iterator[tuple[str, str]]:
    """A veth pair joining two namespaces, with IPv4 and IPv6 addresses, up."""
    a, b = unique("va"), unique("vb")
    sh(f"ip link add {a} netns {ns_a} type veth peer name {b} netns {ns_b}")
    for ns, dev, v4, v6 in ((ns_a, a, addr_a, addr6_a), (ns_b, b, addr_b, addr6_b)):
        sh(f"ip addr add {v4} dev {dev} && ip -6 addr add {v6} dev {dev} nodad "
           f"&& ip link set {dev} up", ns=ns)
    yield a, b


_CLONE_NEWNET = 0x40000000


def socket_in(ns: str, family: int, kind: int, proto: int = 0) -> socket.socket:
    """A socket opened inside namespace `ns`; it stays there whatever thread uses it.

    setns() moves only the calling thread, so a short-lived thread enters `ns`, opens the
    socket and ends; the test's own threads never change namespace.
    """
    opened: list[socket.socket] = []
    failed: list[BaseException] = []

    def enter_and_open() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        fd = os.open(f"/var/run/netns/{ns}", os.O_RDONLY)
        try:
            if libc.setns(fd, _CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns")
            opened.append(socket.socket(family, kind, proto))
        except BaseException as e:
            failed.append(e)
        finally:
            os.close(fd)

    thread = threading.Thread(target=enter_and_open)
    thread.start()
    thread.join()
    if failed:
        raise failed[0]
    return opened[0]
