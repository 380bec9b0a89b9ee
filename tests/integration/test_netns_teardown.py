"""Taking a live tunnel away under traffic (the kernel's netns.sh deletes namespaces that hold
interfaces with sessions, and checks that every object it made is gone): the far side
flood-pings pywg (side a) while one of these happens, and afterwards no process of the
daemon runs, no socket file is left, no interface, in any namespace.

- the namespace holding the interface goes: the interface was moved into a container
  namespace (the daemon and its UDP socket stay behind), and the container is deleted;
- the interface is deleted (`ip link del`);
- the daemon's socket file is deleted (the daemon exits when its file goes, as
  wireguard-go does);
- the daemon's own namespace is deleted: the namespace lives on while a process is in it,
  so the daemon does too (wireguard-go alike), still reachable through its socket file in
  /var/run/wireguard, which every namespace shares; removing that file ends it, cleanly.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import daemons, files, links, netns, topology, wait, wg
from tests.harness.daemons import Daemon, socket_path
from tests.harness.impls import PYWG
from tests.harness.probes import ping
from tests.harness.skips import require_impls, require_root, require_tools
from tests.harness.topology import Node, Topology

EXIT_S = 15.0
FLOOD_S = 20


@pytest.fixture(scope="module")
def far() -> Iterator[Topology]:
    """A pair whose b side (the far peer) stays; each test starts its own a."""
    require_root()
    require_tools("wg", "ping")
    require_impls("pywg")
    with files.workdir("gone") as work, topology.pair("gone", work) as t:
        t.start_daemon(t.b, PYWG)
        yield t


@contextlib.contextmanager
def _flood(ns: str, dest: str) -> Iterator[None]:
    proc = subprocess.Popen(netns.exec_argv(ns, ["ping", "-n", "-q", "-f", "-w", str(FLOOD_S),
                                                 dest]),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield
    finally:
        proc.kill()
        proc.wait()


def _start(t: Topology) -> Daemon:
    d = t.start_daemon(t.a, PYWG)
    t.configure()
    ping(t.b.ns, t.a.inner4)
    return d


def _processes_end(pids: list[int]) -> bool:
    """Every one of pids ends (a process lingers a moment in /proc while it exits; a zombie
    has ended: reaping it is its parent's part, and the daemon's parent is gone)."""
    return bool(wait.poll(lambda: not any(daemons.pid_alive(p) for p in pids), EXIT_S))


def _assert_gone(d: Daemon, pids: list[int]) -> None:
    assert d.wait_exit(EXIT_S), f"the daemon outlived its end:\n{d.log()}"
    assert _processes_end(pids), "a process of the daemon was left"
    assert not socket_path(d.ifname).exists(), "the socket file was left behind"
    assert not links.exists(d.ns, d.ifname), "the interface was left in the daemon's namespace"
    assert not links.exists(None, d.ifname), "the interface ended up in the root namespace"


def _under_traffic(a: Node, b: Node) -> contextlib.AbstractContextManager[None]:
    return _flood(b.ns, a.inner4)


def test_the_interfaces_namespace_deleted(far: Topology) -> None:
    a, b = far.sides()
    d = _start(far)
    pids = d.pids()
    with netns.namespace("gc") as container:
        netns.run(a.ns, ["ip", "link", "set", "dev", d.ifname, "netns", container])
        d.link_ns = container
        links.configure(container, d.ifname, f"{a.inner4}/24", mtu=topology.TUNNEL_MTU)
        ping(b.ns, a.inner4)
        with _under_traffic(a, b):
            netns.delete(container)
            _assert_gone(d, pids)


def test_the_interface_deleted(far: Topology) -> None:
    a, b = far.sides()
    d = _start(far)
    pids = d.pids()
    with _under_traffic(a, b):
        netns.run(a.ns, ["ip", "link", "del", "dev", d.ifname])
        _assert_gone(d, pids)


def test_the_socket_file_deleted(far: Topology) -> None:
    a, b = far.sides()
    d = _start(far)
    pids = d.pids()
    with _under_traffic(a, b):
        socket_path(d.ifname).unlink()
        _assert_gone(d, pids)


def test_the_daemons_own_namespace_deleted(workdir_gone: Path) -> None:
    with netns.namespace("go") as ns:
        d = daemons.start(PYWG, ns, netns.unique("wgO"), workdir_gone)
    # `ip netns delete` only unmounts the name: the daemon keeps its namespace alive.
    try:
        pids = d.pids()
        # Any namespace reaches it: the socket directory is shared.
        assert d.alive() and wg.wg(None, "show", d.ifname, check=False).returncode == 0
        socket_path(d.ifname).unlink()
        assert d.wait_exit(EXIT_S), "removing the socket file did not end the daemon"
        assert _processes_end(pids)
        assert not links.exists(None, d.ifname)
    finally:
        d.stop()


@pytest.fixture
def workdir_gone() -> Iterator[Path]:
    require_root()
    require_tools("wg")
    require_impls("pywg")
    with files.workdir("gone1") as d:
        yield d
