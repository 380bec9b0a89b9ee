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
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.harness import daemons, files, links, netns, topology
from tests.harness.daemons import Daemon
from tests.harness.files import write_private
from tests.harness.impls import Impl
from tests.harness.probes import ping
from tests.harness.skips import require_tools
from tests.harness.topology import Node
from tests.harness.wg import KeyPair

BEYOND4, BEYOND6 = "192.0.2.77", "2001:db8::77"
WG_QUICK_TIMEOUT_S = 30.0
FULL_TUNNEL_MARK = "0xca6c"  # 51820, the first table wg-quick tries


@dataclass
class Site:
    client: Node         # wg-quick runs here; the harness starts no daemon on it
    far: Node            # the server
    client_impl: Impl
    workdir: Path

    @property
    def client_ns(self) -> str:
        return self.client.ns

    @property
    def server(self) -> Daemon:
        return self.far.daemon


@pytest.fixture(scope="module")
def site(pair: tuple[Impl, Impl]) -> Iterator[Site]:
    require_tools("wg-quick", "nft")
    with files.workdir("quick") as work, topology.pair("quick", work) as t:
        topology.default_route_only(t.a)
        t.start_daemon(t.b, pair[1])
        links.configure(t.b.ns, "lo", f"{BEYOND4}/32", f"{BEYOND6}/128")
        yield Site(t.a, t.b, pair[0], work)


def _config(site: Site, client: KeyPair, allowed: str) -> str:
    return (f"[Interface]\nPrivateKey = {client.private}\n"
            f"Address = {site.client.inner4}/24, {site.client.inner6}/64\nMTU = 1380\n\n"
            f"[Peer]\nPublicKey = {site.server.keys.public}\n"
            f"Endpoint = {site.far.outer4}:{site.far.port}\nAllowedIPs = {allowed}\n")


def _wg_quick(site: Site, verb: str, conf: Path) -> None:
    # Output to a file, not a pipe: a daemon started by wg-quick may hold the pipe open.
    log = site.workdir / "wg-quick.log"
    env = daemons.clean_env(WG_QUICK_USERSPACE_IMPLEMENTATION=site.client_impl.binary)
    with open(log, "ab") as out:
        done = subprocess.run(["ip", "netns", "exec", site.client_ns, "wg-quick", verb,
                               str(conf)], stdout=out, stderr=subprocess.STDOUT, env=env,
                              stdin=subprocess.DEVNULL, timeout=WG_QUICK_TIMEOUT_S)
    if done.returncode != 0:
        pytest.fail(f"wg-quick {verb} exited {done.returncode}:\n{log.read_text()}")


@contextlib.contextmanager
def _up(site: Site, allowed: str) -> Iterator[Daemon]:
    client = KeyPair.generate()
    name = netns.unique("wgQ")
    conf = write_private(site.workdir / f"{name}.conf", _config(site, client, allowed))
    site.server.wg("set", site.server.ifname, "peer", client.public, "allowed-ips",
                   f"{site.client.inner4}/32,{site.client.inner6}/128")
    d = Daemon(site.client_impl, site.client_ns, name, site.workdir / "wg-quick.log",
               keys=client)
    try:
        _wg_quick(site, "up", conf)
        yield d
        _wg_quick(site, "down", conf)
        assert d.wait_exit(), "the daemon outlived `wg-quick down`"
        assert not d.leftovers()
    finally:
        d.stop()
        site.server.wg("set", site.server.ifname, "peer", client.public, "remove")


def _ip(site: Site, *args: str) -> str:
    return netns.run(site.client_ns, ["ip", *args]).stdout


def test_up_traffic_down(site: Site) -> None:
    inner = f"{site.far.inner4}/32, {site.far.inner6}/128"
    with _up(site, inner) as d:
        assert d.alive()
        assert "mtu 1380" in _ip(site, "link", "show", "dev", d.ifname)
        assert f"{site.client.inner4}/24" in _ip(site, "-4", "addr", "show", "dev", d.ifname)
        assert d.dump().public_key == d.keys.public
        ping(site.client_ns, site.far.inner4)
        ping(site.client_ns, site.far.inner6)
        assert d.wg("show", d.ifname, "fwmark").stdout.strip() == "off"


def test_full_tunnel(site: Site) -> None:
    with _up(site, "0.0.0.0/0, ::/0") as d:
        assert d.wg("show", d.ifname, "fwmark").stdout.strip() == FULL_TUNNEL_MARK
        assert f"not from all fwmark {FULL_TUNNEL_MARK} lookup 51820" in _ip(site, "-4", "rule")
        assert f"wg-quick-{d.ifname}" in netns.run(site.client_ns,
                                                     ["nft", "list", "tables"]).stdout
        # Reachable only through the default route, i.e. the tunnel; the handshake itself
        # escapes it only because the daemon marks its UDP socket with the fwmark.
        ping(site.client_ns, BEYOND4)
        ping(site.client_ns, BEYOND6)
        ping(site.client_ns, site.far.inner4)
    assert "fwmark" not in _ip(site, "-4", "rule"), "wg-quick down leaves no rule behind"
