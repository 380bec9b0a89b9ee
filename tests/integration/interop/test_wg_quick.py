"""wg-quick starts each implementation as its userspace fallback, inside a namespace:
addresses, MTU, routes, a full tunnel (fwmark 51820 and policy routing through nftables),
traffic through the tunnel, and `down` removing the interface and ending the daemon.

    namespace A (client, by wg-quick)              namespace B (server, by wg)
    wgQ.. 10.72.0.1 fd72::1                  wgB.. 10.72.0.2 fd72::2
    veth 10.71.0.1/32, default dev veth ==== veth 10.71.0.2/24
                                             lo 192.0.2.77 2001:db8::77 (beyond the server)
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.interop import harness, topology
from tests.integration.interop.harness import IMPLS, Daemon, Impl, KeyPair
from tests.support.netns import namespace, require_tools, veth_pair

BEYOND4, BEYOND6 = "192.0.2.77", "2001:db8::77"
WG_QUICK_TIMEOUT_S = 30.0
FULL_TUNNEL_MARK = "0xca6c"  # 51820, the first table wg-quick tries


@dataclass
class Site:
    client_ns: str
    client_impl: Impl
    server: Daemon
    workdir: Path


@pytest.fixture(scope="module")
def site(pair: tuple[str, str]) -> Iterator[Site]:
    require_tools("wg-quick", "nft")
    with contextlib.ExitStack() as stack:
        work = stack.enter_context(harness.workdir("quick"))
        ns_a = stack.enter_context(namespace("qa"))
        ns_b = stack.enter_context(namespace("qb"))
        veth_a, _ = stack.enter_context(veth_pair(ns_a, ns_b, f"{topology.OUTER4[0]}/32",
                                                  f"{topology.OUTER4[1]}/24"))
        # The client reaches the server only through its default route, the one a full
        # tunnel takes over: the handshake then escapes the tunnel only by its fwmark.
        harness.run(ns_a, ["ip", "route", "add", "default", "dev", veth_a])
        server = stack.enter_context(harness.daemon(IMPLS[pair[1]], ns_b,
                                                    harness.ifname("wgB"), work))
        server.set_private_key()
        server.wg("set", server.ifname, "listen-port", str(topology.PORTS[1]))
        topology.address_interface(ns_b, server.ifname, topology.INNER4[1], topology.INNER6[1])
        harness.run(ns_b, ["ip", "addr", "add", f"{BEYOND4}/32", "dev", "lo"])
        harness.run(ns_b, ["ip", "-6", "addr", "add", f"{BEYOND6}/128", "dev", "lo"])
        yield Site(ns_a, IMPLS[pair[0]], server, work)


def _config(site: Site, client: KeyPair, allowed: str) -> str:
    return (f"[Interface]\nPrivateKey = {client.private}\n"
            f"Address = {topology.INNER4[0]}/24, {topology.INNER6[0]}/64\nMTU = 1380\n\n"
            f"[Peer]\nPublicKey = {site.server.keys.public}\n"
            f"Endpoint = {topology.OUTER4[1]}:{topology.PORTS[1]}\nAllowedIPs = {allowed}\n")


def _wg_quick(site: Site, verb: str, conf: Path) -> None:
    # Output to a file, not a pipe: a daemon started by wg-quick may hold the pipe open.
    log = site.workdir / "wg-quick.log"
    env = harness.clean_env(WG_QUICK_USERSPACE_IMPLEMENTATION=site.client_impl.command())
    with open(log, "ab") as out:
        done = subprocess.run(["ip", "netns", "exec", site.client_ns, "wg-quick", verb,
                               str(conf)], stdout=out, stderr=subprocess.STDOUT, env=env,
                              stdin=subprocess.DEVNULL, timeout=WG_QUICK_TIMEOUT_S)
    if done.returncode != 0:
        pytest.fail(f"wg-quick {verb} exited {done.returncode}:\n{log.read_text()}")


@contextlib.contextmanager
def _up(site: Site, allowed: str) -> Iterator[Daemon]:
    client = KeyPair.generate()
    name = harness.ifname("wgQ")
    conf = site.workdir / f"{name}.conf"
    fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(_config(site, client, allowed))
    site.server.wg("set", site.server.ifname, "peer", client.public, "allowed-ips",
                   f"{topology.INNER4[0]}/32,{topology.INNER6[0]}/128")
    d = Daemon(site.client_impl, site.client_ns, name, site.workdir / "wg-quick.log",
               keys=client)
    try:
        _wg_quick(site, "up", conf)
        yield d
        _wg_quick(site, "down", conf)
        assert d.wait_exit(), "the daemon outlived `wg-quick down`"
        assert not harness.link_exists(site.client_ns, name)
        assert not harness.socket_path(name).exists()
    finally:
        d.stop()
        site.server.wg("set", site.server.ifname, "peer", client.public, "remove")


def _ip(site: Site, *args: str) -> str:
    return harness.run(site.client_ns, ["ip", *args]).stdout


def test_up_traffic_down(site: Site) -> None:
    inner = f"{topology.INNER4[1]}/32, {topology.INNER6[1]}/128"
    with _up(site, inner) as d:
        assert d.alive()
        assert "mtu 1380" in _ip(site, "link", "show", "dev", d.ifname)
        assert f"{topology.INNER4[0]}/24" in _ip(site, "-4", "addr", "show", "dev", d.ifname)
        assert d.dump().public_key == d.keys.public
        harness.ping(site.client_ns, topology.INNER4[1])
        harness.ping(site.client_ns, topology.INNER6[1])
        assert d.wg("show", d.ifname, "fwmark").stdout.strip() == "off"


def test_full_tunnel(site: Site) -> None:
    with _up(site, "0.0.0.0/0, ::/0") as d:
        assert d.wg("show", d.ifname, "fwmark").stdout.strip() == FULL_TUNNEL_MARK
        assert f"not from all fwmark {FULL_TUNNEL_MARK} lookup 51820" in _ip(site, "-4", "rule")
        assert f"wg-quick-{d.ifname}" in harness.run(site.client_ns,
                                                     ["nft", "list", "tables"]).stdout
        # Reachable only through the default route, i.e. the tunnel; the handshake itself
        # escapes it only because the daemon marks its UDP socket with the fwmark.
        harness.ping(site.client_ns, BEYOND4)
        harness.ping(site.client_ns, BEYOND6)
        harness.ping(site.client_ns, topology.INNER4[1])
    assert "fwmark" not in _ip(site, "-4", "rule"), "wg-quick down leaves no rule behind"
