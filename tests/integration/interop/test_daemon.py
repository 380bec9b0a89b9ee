"""The process contract of `wireguard-go IFNAME`, which every implementation keeps: what
exists when the command returns, foreground and background, how it ends, refusing a live
interface, and adopting a TUN and a UAPI socket passed by file descriptor."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import daemons, links, netns, procs, wait
from tests.harness.daemons import Daemon, socket_path
from tests.harness.impls import WGGO, Impl
from tests.harness.probes import ping
from tests.harness.skips import require_impls
from tests.harness.wg import KeyPair

LAUNCHER = str(Path(__file__).with_name("fdlauncher.py"))
WGGO_SIGNAL_SETTLE_S = 0.2


@pytest.fixture
def started(impl: Impl, scratch_ns: str, workdir: Path) -> Iterator[Daemon]:
    """A background start whose readiness the test itself checks."""
    d = daemons.start(impl, scratch_ns, netns.unique("wgD"), workdir,
                      wait_ready=False)
    try:
        yield d
    finally:
        d.stop()


def _is_socket(path: Path) -> bool:
    try:
        return stat.S_ISSOCK(path.stat().st_mode)
    except FileNotFoundError:
        return False


def _assert_gone(d: Daemon) -> None:
    assert d.wait_exit(), f"{d.impl.name} is still running:\n{d.log()}"
    assert not d.leftovers(), "the daemon left its socket or its TUN behind"


def test_background_start_returns_ready(started: Daemon) -> None:
    assert started.start_result is not None
    assert started.start_result.returncode == 0, started.log()
    # No waiting: all of this must hold the moment the command has returned.
    assert links.exists(started.ns, started.ifname)
    assert _is_socket(socket_path(started.ifname))
    assert started.wg("show", started.ifname, check=False).returncode == 0
    assert started.alive(), "the daemon went away after starting"


@pytest.mark.parametrize("how", ["-f", "--foreground", "WG_PROCESS_FOREGROUND=1"])
def test_foreground_keeps_running_as_the_started_process(
        impl: Impl, scratch_ns: str, workdir: Path, how: str) -> None:
    name = netns.unique("wgF")
    if how.startswith("-"):
        d = daemons.start(impl, scratch_ns, name, workdir, foreground=True, flag=how)
    else:
        d = _foreground_by_env(impl, scratch_ns, name, workdir)
    try:
        assert d.proc is not None and d.proc.poll() is None
        assert d.pids() == [d.proc.pid], "a foreground daemon must not re-exec or fork"
    finally:
        d.stop()


def _foreground_by_env(impl: Impl, ns: str, name: str, workdir: Path) -> Daemon:
    log_path = workdir / f"{name}.log"
    proc = procs.start(netns.exec_argv(ns, [*impl.argv, name]), log_path,
                       env=daemons.clean_env(WG_PROCESS_FOREGROUND="1"))
    d = Daemon(impl, ns, name, log_path, proc=proc)
    wait.wait_for(lambda: d.wg("show", name, check=False).returncode == 0 or
                  proc.poll() is not None, f"{impl.name} to serve {name}")
    return d


def test_exits_when_the_tun_is_deleted(started: Daemon) -> None:
    wait.wait_for(started.alive, "the daemon")
    netns.run(started.ns, ["ip", "link", "del", "dev", started.ifname])
    _assert_gone(started)


def test_exits_when_its_socket_is_removed(started: Daemon) -> None:
    wait.wait_for(started.alive, "the daemon")
    socket_path(started.ifname).unlink()
    _assert_gone(started)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_exits_cleanly_on_signal(impl: Impl, scratch_ns: str, workdir: Path,
                                 sig: signal.Signals) -> None:
    d = daemons.start(impl, scratch_ns, netns.unique("wgS"), workdir,
                      foreground=True, env={"LOG_LEVEL": "verbose"})
    try:
        assert d.proc is not None
        if impl is WGGO:
            # wireguard-go asks for SIGTERM/SIGINT only after its UAPI socket answers (a
            # signal in between kills it outright); the line it logs just before is the
            # closest sign. pywg must be ready for signals before it answers.
            wait.wait_for(lambda: "UAPI listener started" in d.log(), "wireguard-go's start")
            time.sleep(WGGO_SIGNAL_SETTLE_S)
        d.proc.send_signal(sig)
        assert d.proc.wait(timeout=daemons.EXIT_TIMEOUT_S) == 0, d.log()
        _assert_gone(d)
    finally:
        d.stop()


@pytest.mark.parametrize("where", ["same-namespace", "other-namespace"])
def test_second_start_for_a_live_interface_fails(started: Daemon, workdir: Path,
                                                 where: str) -> None:
    wait.wait_for(started.alive, "the first daemon")
    with netns.namespace("i2") as other_ns:
        ns = started.ns if where == "same-namespace" else other_ns
        argv = netns.exec_argv(ns, [*started.impl.argv, started.ifname])
        second = subprocess.run(argv, capture_output=True, text=True, env=daemons.clean_env(),
                                stdin=subprocess.DEVNULL, timeout=daemons.START_TIMEOUT_S)
        assert second.returncode == 1, second
        message = second.stdout + second.stderr
        assert started.ifname in message, f"the refusal does not name the interface: {message}"
        if where == "other-namespace":
            # /var/run/wireguard is shared: the socket, not the TUN, is what is in use, and
            # the failed start must not leave a TUN behind in its namespace.
            assert not links.exists(other_ns, started.ifname)
    assert started.alive()
    assert _is_socket(socket_path(started.ifname))
    assert started.wg("show", started.ifname, check=False).returncode == 0


# Debian's wireguard-go reads an adopted TUN as carrying the packet information header (see
# fdlauncher.py), so it is only given such a TUN; pywg must take either kind.
@pytest.mark.parametrize(("impl_name", "mode"),
                         [("wggo", "pi"), ("pywg", "pi"), ("pywg", "no-pi")])
def test_adopts_tun_and_uapi_file_descriptors(scratch_ns: str, workdir: Path,
                                              impl_name: str, mode: str) -> None:
    impl = require_impls(impl_name)[0]
    name = netns.unique("wgP")
    log_path = workdir / f"{name}.log"
    proc = procs.start(netns.exec_argv(scratch_ns, [sys.executable, LAUNCHER, mode, name,
                                                    *impl.argv, name]),
                       log_path, env=daemons.clean_env())
    d = Daemon(impl, scratch_ns, name, log_path, proc=proc)
    try:
        wait.wait_for(lambda: d.wg("show", name, check=False).returncode == 0 or
                      proc.poll() is not None, f"{impl.name} to serve {name}")
        assert proc.poll() is None, d.log()
        assert d.pids() == [proc.pid], "the implementation runs in place of the launcher"
        d.set_private_key()
        assert d.dump().public_key == d.keys.public, "the adopted UAPI socket is served"
        fd_targets = {os.readlink(f"/proc/{proc.pid}/fd/{fd}")
                      for fd in os.listdir(f"/proc/{proc.pid}/fd")}
        assert "/dev/net/tun" in fd_targets
        # The TUN is ours, not a new one: bringing our interface up is seen by the daemon
        # as traffic it can route once a peer exists.
        netns.run(scratch_ns, ["ip", "link", "set", "dev", name, "up"])
        netns.run(scratch_ns, ["ip", "addr", "add", "10.73.0.1/24", "dev", name])
        peer = KeyPair.generate()
        d.wg("set", name, "peer", peer.public, "allowed-ips", "10.73.0.2/32",
             "endpoint", "127.0.0.1:9")
        netns.run(scratch_ns, ["ip", "link", "set", "lo", "up"])
        ping(scratch_ns, "10.73.0.2", count=1, check=False, deadline=1)
        wait.wait_for(lambda: d.dump().peers[peer.public].tx > 0,
                      "the daemon to send a handshake for a packet written to our TUN")
        netns.run(scratch_ns, ["ip", "link", "del", "dev", name])
        _assert_gone(d)
    finally:
        d.stop()
