"""Source-address stickiness, the four cases of the kernel's netns.sh: a peer answers from the
address it was reached at, but lets go of that address when it goes away or when the route
to the peer moves to another interface.

        a (pywg, the subject) ==== v1 ---- v2 ==== b (pywg or wireguard-go)

1. Not too sticky: a's address on v1 changes (IPv4, then IPv6) and a's next packet leaves
   from the new one.
2. Reply to the sender's choice: a has two addresses per family; whichever b sends to, a
   answers from it (b's `wg show endpoints` names it).
3. The address b reaches a at belongs to another interface of a (a stub link) than the
   one the packets come in and go out on: a still answers from it.
4. A route through another interface (v3, source 10.0.0.3) takes precedence: a's packets
   follow it and leave from its address, not from the sticky one.

Each ping is a single echo (`ping -c 1`), as the kernel's: a reply that went astray once
fails the case, rather than being hidden by a retry.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterator

import pytest

from pywg._driver import route
from tests.harness import files, netns, wait
from tests.harness.impls import Impl
from tests.harness.probes import ping_once
from tests.harness.skips import require_impls, require_root, require_tools
from tests.harness.topology import Node, Topology

ROUTE_NEWS_S = 5.0


def _n(ns: str, *argv: str) -> None:
    netns.run(ns, list(argv))


class Site:
    """a and b with no link yet between them (each case makes its own), peers of each
    other with no endpoints."""

    def __init__(self, t: Topology) -> None:
        self.t = t
        self.a, self.b = t.nodes["a"], t.nodes["b"]
        self.v1, self.v2 = f"v1{t.tag}", f"v2{t.tag}"
        self.v3, self.v4 = f"v3{t.tag}", f"v4{t.tag}"
        self.stub = f"vs{t.tag}"

    def veth(self, mine: str, theirs: str) -> None:
        _n(self.a.ns, "ip", "link", "add", mine, "type", "veth", "peer", "name", theirs,
           "netns", self.b.ns)
        for ns, dev in ((self.a.ns, mine), (self.b.ns, theirs)):
            _n(ns, "sysctl", "-q", "-w", f"net.ipv6.conf.{dev}.accept_dad=0")
        _n(self.a.ns, "sysctl", "-q", "-w", f"net.ipv4.conf.{mine}.promote_secondaries=1")

    def up(self, ns: str, dev: str, *addrs: str) -> None:
        for addr in addrs:
            _n(ns, "ip", "addr", "add", addr, "dev", dev)
        _n(ns, "ip", "link", "set", dev, "up")

    def a_sends_to(self, endpoint: str) -> None:
        self.a.daemon.wg("set", self.a.ifname, "peer", self.b.daemon.keys.public,
                         "endpoint", endpoint)

    def b_sends_to(self, endpoint: str) -> None:
        self.b.daemon.wg("set", self.b.ifname, "peer", self.a.daemon.keys.public,
                         "endpoint", endpoint)

    def b_sees(self) -> str:
        return self.b.daemon.dump().peers[self.a.daemon.keys.public].endpoint

    def ping_from(self, node: Node) -> bool:
        return ping_once(node.ns, self.t.other(node).inner4)


@pytest.fixture(scope="module", params=[
    pytest.param(("pywg", "pywg"), id="pywg-pywg"),
    pytest.param(("pywg", "wggo"), id="pywg-wggo", marks=pytest.mark.long)])
def topo(request: pytest.FixtureRequest) -> Iterator[Topology]:
    require_root()
    require_tools("wg", "ping")
    impls: list[Impl] = require_impls(*request.param)
    with files.workdir("sticky") as work, Topology("stk", work) as t:
        a, b = t.add_node("a"), t.add_node("b")
        t.peerings.append((a, b))
        for node in (a, b):
            _n(node.ns, "sysctl", "-q", "-w", "net.ipv6.conf.all.accept_dad=0")
        t.start_daemon(a, impls[0])
        t.start_daemon(b, impls[1])
        yield t


@pytest.fixture
def site(topo: Topology) -> Iterator[Site]:
    """Fresh peers and no links: each case makes its own, deleted afterwards."""
    topo.configure(endpoints=[])
    s = Site(topo)
    try:
        yield s
    finally:
        for dev in (s.v1, s.v3, s.stub):
            netns.run(s.a.ns, ["ip", "link", "del", dev], check=False)


def test_not_too_sticky_when_the_address_goes(site: Site) -> None:
    a, b = site.a, site.b
    site.veth(site.v1, site.v2)
    site.up(a.ns, site.v1, "10.0.0.1/24", "fd00:aa::1/96")
    site.up(b.ns, site.v2, "10.0.0.2/24", "fd00:aa::2/96")
    site.a_sends_to(f"10.0.0.2:{b.port}")
    assert site.ping_from(a)
    assert site.b_sees() == f"10.0.0.1:{a.port}"
    _n(a.ns, "ip", "addr", "add", "10.0.0.10/24", "dev", site.v1)
    _n(a.ns, "ip", "addr", "del", "10.0.0.1/24", "dev", site.v1)
    assert site.ping_from(a), "a kept sending from its deleted IPv4 address"
    assert site.b_sees() == f"10.0.0.10:{a.port}"
    site.a_sends_to(f"[fd00:aa::2]:{b.port}")
    assert site.ping_from(a)
    assert site.b_sees() == f"[fd00:aa::1]:{a.port}"
    _n(a.ns, "ip", "addr", "add", "fd00:aa::10/96", "dev", site.v1)
    _n(a.ns, "ip", "addr", "del", "fd00:aa::1/96", "dev", site.v1)
    assert site.ping_from(a), "a kept sending from its deleted IPv6 address"
    assert site.b_sees() == f"[fd00:aa::10]:{a.port}"


def test_replies_come_from_the_address_the_peer_chose(site: Site) -> None:
    a, b = site.a, site.b
    site.veth(site.v1, site.v2)
    site.up(a.ns, site.v1, "10.0.0.1/24", "10.0.0.2/24", "fd00:aa::1/96", "fd00:aa::2/96")
    site.up(b.ns, site.v2, "10.0.0.3/24", "fd00:aa::3/96")
    for address in ("10.0.0.1", "[fd00:aa::1]", "10.0.0.2", "[fd00:aa::2]"):
        site.b_sends_to(f"{address}:{a.port}")
        assert site.ping_from(b), f"b pinging a at {address}"
        assert site.b_sees() == f"{address}:{a.port}"


def test_replies_from_an_address_of_another_interface(site: Site) -> None:
    a, b = site.a, site.b
    site.veth(site.v1, site.v2)
    site.up(a.ns, site.v1, "10.0.0.1/24")
    site.up(b.ns, site.v2, "10.0.0.2/24")
    # A stub link of a's own carries 10.50.0.1; b reaches it through v2 all the same.
    _n(a.ns, "ip", "link", "add", site.stub, "type", "veth", "peer", "name", f"{site.stub}p")
    _n(a.ns, "ip", "link", "set", f"{site.stub}p", "up")
    site.up(a.ns, site.stub, "10.50.0.1/24")
    _n(b.ns, "ip", "route", "add", "10.50.0.0/24", "dev", site.v2)
    site.b_sends_to(f"10.50.0.1:{a.port}")
    assert site.ping_from(b)
    assert site.b_sees() == f"10.50.0.1:{a.port}"


def test_a_preferred_route_through_another_interface_wins(site: Site) -> None:
    a, b = site.a, site.b
    site.veth(site.v1, site.v2)
    site.veth(site.v3, site.v4)
    site.up(a.ns, site.v1, "10.0.0.1/24")
    site.up(b.ns, site.v2, "10.0.0.2/24")
    site.up(a.ns, site.v3, "10.0.0.3/24")
    site.up(b.ns, site.v4)
    for dev in (site.v1, site.v3):
        _n(a.ns, "ip", "route", "flush", "dev", dev)
    _n(a.ns, "ip", "route", "add", "10.0.0.0/24", "dev", site.v1, "src", "10.0.0.1", "metric", "2")
    site.a_sends_to(f"10.0.0.2:{b.port}")
    assert site.ping_from(a)
    assert site.b_sees() == f"10.0.0.1:{a.port}"
    _n(a.ns, "ip", "route", "add", "10.0.0.0/24", "dev", site.v3, "src", "10.0.0.3", "metric", "1")
    for ns, dev in ((a.ns, site.v1), (b.ns, site.v4), (a.ns, "all"), (b.ns, "all")):
        _n(ns, "sysctl", "-q", "-w", f"net.ipv4.conf.{dev}.rp_filter=0")
    # The kernel module checks the route at each send; pywg hears of the new route from
    # rtnetlink a moment later, so the first ping may still leave the old way.
    assert wait.poll(lambda: site.ping_from(a) and site.b_sees() == f"10.0.0.3:{a.port}",
                     ROUTE_NEWS_S), "a kept the source of the old route"


def test_the_first_reply_goes_to_where_the_peer_moved(site: Site) -> None:
    """The kernel moves a peer's endpoint before it hands the packet on, so the reply to
    the first packet from a new address already goes there. a moves between addresses
    five times; b must answer each single echo at a's new address."""
    a, b = site.a, site.b
    site.veth(site.v1, site.v2)
    site.up(a.ns, site.v1, "10.0.0.1/24")
    site.up(b.ns, site.v2, "10.0.0.2/24")
    site.a_sends_to(f"10.0.0.2:{b.port}")
    assert site.ping_from(a)
    current = "10.0.0.1"
    for step in range(5):
        new = f"10.0.0.{20 + step}"
        _n(a.ns, "ip", "addr", "add", f"{new}/24", "dev", site.v1)
        _n(a.ns, "ip", "addr", "del", f"{current}/24", "dev", site.v1)
        current = new
        assert site.ping_from(a), f"move {step + 1}: the reply went to a's old address"
        assert site.b_sees() == f"{current}:{a.port}"


def test_route_lookup_agrees_with_ip_route_get(topo: Topology) -> None:
    """pywg's own rtnetlink lookup (pywg._driver.route), which the sticky source checks,
    against `ip route get` in the same namespace, with and without a fwmark rule."""
    a = topo.nodes["a"]
    mark_table = "4242"
    _n(a.ns, "ip", "route", "add", "192.0.2.0/24", "dev", a.ifname, "table", mark_table)
    _n(a.ns, "ip", "rule", "add", "fwmark", "0x99", "table", mark_table)
    try:
        for dst, mark in (("10.71.0.2", 0), ("fd71::2", 0), ("192.0.2.7", 0x99),
                          ("198.51.100.1", 0)):
            shown = netns.run(a.ns, ["ip", "-j", "route", "get", dst, "mark", str(mark)],
                              check=False)
            want = None
            if shown.returncode == 0:
                dev = json.loads(shown.stdout)[0]["dev"]
                want = int(netns.run(a.ns, ["cat", f"/sys/class/net/{dev}/ifindex"]).stdout)
            with netns.inside(a.ns):
                got = route.output_interface(ipaddress.ip_address(dst), None, mark)
            assert got == want, f"{dst} mark {mark}"
    finally:
        _n(a.ns, "ip", "rule", "del", "fwmark", "0x99", "table", mark_table)
