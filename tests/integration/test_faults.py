"""Faults under load: each happens in the middle of a paced TCP transfer from a to b, both
pywg, on a chain (a and b reach each other through mid). The transfer must arrive intact,
and once the fault is undone the tunnel carries traffic again within RECOVERY_S: no state
is left stuck (staged packets for a route that came back, a socket for the old port, a
session with a peer that was removed).

- the route to the peer's network is removed and restored;
- the TUN's MTU is lowered mid-flow, then raised again;
- the listen port changes (the far side follows by roaming);
- the peer is removed and added again, on the receiving side and then the sending one
  (the receiving side's removal goes unnoticed by the sender until its new-handshake timer
  fires, KEEPALIVE_TIMEOUT + REKEY_TIMEOUT after its data went unanswered: every protocol
  time is cut by 10 here, so that this takes 1.5 s and not 15);
- the daemon is killed with SIGKILL (its TUN goes with it, its socket file stays) and
  started again by `wg-quick up`, then killed again and started by `pywg up`, from the same
  configuration file: the far side, which still holds the old session, takes the new
  handshake, and traffic flows.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.harness import daemons, files, links, netns, topology, wait
from tests.harness.daemons import Daemon
from tests.harness.files import write_private
from tests.harness.impls import PYWG, Impl
from tests.harness.probes import ping, ping_once
from tests.harness.skips import require_impls, require_root, require_tools
from tests.harness.topology import Node, Topology, add_peer
from tests.harness.transfer import transfer
from tests.harness.wg import KeyPair

MB = 1 << 20
TRANSFER = 16 * MB
PACED_S = 4.0
# Every protocol time over 10: a sender whose peer lost the session (removed on the
# receiving side) starts a new handshake after 1.5 s of silence instead of 15 s.
FAST = {"PYWG_TIMING_SCALE": "0.1"}
FAULT_AFTER_S = 1.5
FAULT_FOR_S = 1.0
RECOVERY_S = 5.0
MOVED_PORT = 40301
QUICK_TIMEOUT_S = 30.0


@pytest.fixture(scope="module")
def chain() -> Iterator[Topology]:
    require_root()
    require_tools("wg", "ping")
    impls: list[Impl] = require_impls("pywg", "pywg")
    with files.workdir("faults") as work, topology.chain("flt", work) as t:
        t.start_daemon(t.a, impls[0], env=FAST)
        t.start_daemon(t.b, impls[1], env=FAST)
        yield t


def _under_load(t: Topology, fault: Callable[[], None], undo: Callable[[], None]) -> None:
    """A paced transfer from a to b with `fault` 1.5 s into it and `undo` a second later."""
    a, b = t.sides()
    t.configure()
    ping(a.ns, b.inner4)
    with transfer(a.ns, b.ns, b.inner4, TRANSFER, seconds=PACED_S) as x:
        time.sleep(FAULT_AFTER_S)
        try:
            fault()
            assert x.running(), "the fault must come while the transfer is under way"
            time.sleep(FAULT_FOR_S)
        finally:
            undo()
        sent, received = x.finish(timeout=120)
    assert sent["bytes"] == TRANSFER and received == sent, "the transfer arrived changed"
    for me in (a, b):
        wait.wait_for(lambda me=me: ping_once(me.ns, t.other(me).inner4, wait_s=1),
                      f"{me.name} to reach its peer again", timeout=RECOVERY_S)


def test_route_to_the_peer_removed_and_restored(chain: Topology) -> None:
    a = chain.a
    gateway = a.links[0].addr4(1)
    route = ["10.71.1.0/24", "via", gateway]
    _under_load(chain, lambda: netns.run(a.ns, ["ip", "route", "del", *route]),
                lambda: netns.run(a.ns, ["ip", "route", "replace", *route]))


def test_tun_mtu_changed_mid_flow(chain: Topology) -> None:
    a = chain.a
    _under_load(chain, lambda: links.set_mtu(a.ns, a.ifname, 1280),
                lambda: links.set_mtu(a.ns, a.ifname, topology.TUNNEL_MTU))
    assert links.mtu(a.ns, a.ifname) == topology.TUNNEL_MTU


def test_listen_port_changed_under_load(chain: Topology) -> None:
    a, b = chain.sides()
    _under_load(chain, lambda: a.daemon.wg("set", a.ifname, "listen-port", str(MOVED_PORT)),
                lambda: None)
    try:
        seen = b.daemon.dump().peers[a.daemon.keys.public].endpoint
        assert seen == f"{a.outer4}:{MOVED_PORT}", "b did not follow a to its new port"
    finally:
        a.daemon.wg("set", a.ifname, "listen-port", str(a.port))


@pytest.mark.parametrize("side", ["receiver", "sender"])
def test_peer_removed_and_added_again_under_load(chain: Topology, side: str) -> None:
    a, b = chain.sides()
    me, other = (b, a) if side == "receiver" else (a, b)

    def remove() -> None:
        me.daemon.wg("set", me.ifname, "peer", other.daemon.keys.public, "remove")

    def add_again() -> None:
        add_peer(me, other, endpoint=other.endpoint(4, via=me))

    _under_load(chain, remove, add_again)


# ---- SIGKILL, then wg-quick up / pywg up ----------------------------------------------------

def _config(a: Node, b: Node, keys: KeyPair) -> str:
    return (f"[Interface]\nPrivateKey = {keys.private}\nListenPort = {a.port}\n"
            f"Address = {a.inner4}/24\n\n"
            f"[Peer]\nPublicKey = {b.daemon.keys.public}\nEndpoint = {b.endpoint(4, via=a)}\n"
            f"AllowedIPs = {b.inner4}/32\n")


def _up(tool: str, ns: str, conf: Path, log: Path) -> None:
    argv = ["wg-quick", "up", str(conf)] if tool == "wg-quick" else [*PYWG.argv, "up", str(conf)]
    env = daemons.clean_env(WG_QUICK_USERSPACE_IMPLEMENTATION=PYWG.binary)
    with open(log, "ab") as out:
        done = subprocess.run(netns.exec_argv(ns, argv), stdout=out, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL, env=env, timeout=QUICK_TIMEOUT_S,
                              check=False)
    assert done.returncode == 0, f"{tool} up failed:\n{log.read_text()}"


def test_daemon_killed_and_started_again_by_wg_quick_and_pywg_up(tmp_path: Path) -> None:
    require_root()
    require_tools("wg", "wg-quick", "ping")
    require_impls("pywg")
    with files.workdir("kill") as work, topology.pair("kill", work) as t:
        a, b = t.sides()
        t.start_daemon(b, PYWG)
        keys = KeyPair.generate()
        name = netns.unique("wgk")
        conf = write_private(work / f"{name}.conf", _config(a, b, keys))
        b.daemon.wg("set", b.ifname, "peer", keys.public, "allowed-ips", f"{a.inner4}/32")
        d = Daemon(PYWG, a.ns, name, work / "quick.log", keys=keys)
        try:
            _up("pywg", a.ns, conf, d.log_path)
            for restart in ("wg-quick", "pywg"):
                ping(a.ns, b.inner4)
                pids = d.pids()
                for pid in pids:
                    os.kill(pid, signal.SIGKILL)
                assert wait.poll(lambda: not links.exists(a.ns, name), 10), \
                    "the TUN outlived its killed daemon"
                assert daemons.socket_path(name).exists(), "SIGKILL leaves the socket file"
                _up(restart, a.ns, conf, d.log_path)
                assert d.pids() and not set(d.pids()) & set(pids)
                wait.wait_for(lambda: ping_once(a.ns, b.inner4, wait_s=1),
                              f"traffic again after `{restart} up`", timeout=RECOVERY_S)
                assert ping_once(b.ns, a.inner4)
            _down = [*PYWG.argv, "down", str(conf)]
            netns.run(a.ns, _down, env=daemons.clean_env(), timeout=QUICK_TIMEOUT_S)
            assert d.wait_exit() and not d.leftovers()
        finally:
            d.stop()
