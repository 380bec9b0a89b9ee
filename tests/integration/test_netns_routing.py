"""The kernel's netns.sh on what lies between and around the peers, on a chain (the harness's
topology: a and b reach each other only through mid, which routes):

        a (pywg) ==== 10.71.0.0/24 ==== mid ==== 10.71.1.0/24 ==== b (pywg or wireguard-go)

- NAT: mid masquerades a behind its own address, with conntrack forgetting a UDP mapping
  after 1 s of silence. A persistent keepalive every second holds a's mapping open, so b
  still reaches a after 2 s of silence; without the keepalive the same silence closes it
  (which shows the NAT really forgets).
- ICMP errors along the right route: b forwards mid's pings for a's tunnel address into its
  tunnel, NATed to its own tunnel address, but has no peer for it. pywg answers with a
  destination-unreachable from that address; b's conntrack undoes the NAT on it, and it
  reaches mid's ping through the interface mid routes that address through (strict
  reverse-path filtering in mid would drop it otherwise).
- fwmark and policy routing as wg-quick sets them up (a full tunnel, b allowed every
  address: everything not carrying
  the fwmark goes to a table whose default route is the tunnel; the main table is consulted
  first with its default route suppressed): 100 flood pings over IPv4 and IPv6 to addresses
  only the tunnel reaches. Then the marks change: with the device's fwmark no longer the one
  the rules expect, the tunnel's own datagrams are routed into the tunnel (pywg drops that
  loop and counts it) and traffic stops; with the rules following the new mark, it flows at
  once. A firewall rule re-marking every packet leaves a plainly routed tunnel working.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.harness import files, links, netns, topology
from tests.harness.impls import Impl
from tests.harness.probes import flood_ping, ping, ping_once
from tests.harness.skips import require_impls, require_root, require_tools
from tests.harness.topology import Node, Topology

CONNTRACK_TIMEOUT_S = 1
SILENCE_S = 2
BEYOND4, BEYOND6 = "192.168.99.7", "abab::1111"
MARK, OTHER_MARK = 51820, 0x1234
TABLE = "51820"


def _nft(ns: str, rules: str) -> None:
    netns.run(ns, ["nft", "-f", "-"], input=rules)


@pytest.fixture(scope="module", params=[
    pytest.param(("pywg", "pywg"), id="pywg-pywg"),
    pytest.param(("pywg", "wggo"), id="pywg-wggo", marks=pytest.mark.long)])
def chain(request: pytest.FixtureRequest) -> Iterator[Topology]:
    require_root()
    require_tools("wg", "ping", "nft")
    impls: list[Impl] = require_impls(*request.param)
    with files.workdir("route") as work, topology.chain("rte", work) as t:
        t.start_daemon(t.a, impls[0])
        t.start_daemon(t.b, impls[1])
        yield t


def _mid(t: Topology) -> Node:
    return t.nodes["mid"]


def test_nat_with_a_persistent_keepalive_holding_the_mapping(chain: Topology) -> None:
    a, b, mid = chain.a, chain.b, _mid(chain)
    if b.daemon.impl.name != "pywg":
        pytest.skip("a, behind the NAT, sends the keepalives: pywg-pywg tests them")
    public = mid.links[1].addr4(0)  # mid's address on b's side
    for key in ("nf_conntrack_udp_timeout", "nf_conntrack_udp_timeout_stream"):
        netns.run(mid.ns, ["sysctl", "-q", "-w", f"net.netfilter.{key}={CONNTRACK_TIMEOUT_S}"])
    _nft(mid.ns, f"table ip wgnat {{\n chain post {{\n type nat hook postrouting priority srcnat;\n"
                 f" ip saddr 10.71.0.0/24 oifname \"{mid.links[1].devs[0]}\" snat to {public}\n"
                 f" }}\n}}\n")
    try:
        # The keepalive comes on once both sides know each other: its first one starts a
        # handshake, which b would drop before it knows a.
        chain.configure(endpoints="a")
        a.daemon.wg("set", a.ifname, "peer", b.daemon.keys.public, "persistent-keepalive", "1")
        assert ping_once(a.ns, b.inner4)
        assert ping_once(b.ns, a.inner4)
        assert b.daemon.dump().peers[a.daemon.keys.public].endpoint == f"{public}:{a.port}"
        time.sleep(SILENCE_S)
        assert ping_once(b.ns, a.inner4), "the keepalive did not hold the NAT mapping"
        a.daemon.wg("set", a.ifname, "peer", b.daemon.keys.public, "persistent-keepalive", "0")
        time.sleep(SILENCE_S)
        assert not ping_once(b.ns, a.inner4), "the NAT kept a silent mapping"
    finally:
        netns.run(mid.ns, ["nft", "delete", "table", "ip", "wgnat"], check=False)


def test_icmp_errors_return_along_the_right_route(chain: Topology) -> None:
    a, b, mid = chain.a, chain.b, _mid(chain)
    if b.daemon.impl.name != "pywg":
        pytest.skip("wireguard-go sends no ICMP errors for packets no peer takes")
    chain.configure()
    netns.run(b.ns, ["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"])
    netns.run(mid.ns, ["sysctl", "-q", "-w", "net.ipv4.conf.all.rp_filter=1"])
    _nft(b.ns, f"table ip wgicmp {{\n chain post {{\n type nat hook postrouting priority srcnat;\n"
               f" ip saddr 10.71.1.0/24 ip daddr 10.72.0.0/24 snat to {b.inner4}\n }}\n}}\n")
    netns.run(mid.ns, ["ip", "route", "add", f"{a.inner4}/32", "via", mid.links[1].addr4(1)])
    try:
        b.daemon.wg("set", b.ifname, "peer", a.daemon.keys.public, "remove")
        shown = netns.run(mid.ns, ["ping", "-n", "-c", "1", "-W", "2", a.inner4], check=False)
        assert f"From {a.inner4} icmp_seq=1 Destination Host Unreachable" in shown.stdout, \
            shown.stdout
    finally:
        netns.run(b.ns, ["nft", "delete", "table", "ip", "wgicmp"], check=False)
        netns.run(mid.ns, ["ip", "route", "del", f"{a.inner4}/32"], check=False)
        netns.run(mid.ns, ["sysctl", "-q", "-w", "net.ipv4.conf.all.rp_filter=0"])


def _policy_routing(a: Node, mark: int, *, add: bool = True) -> None:
    verb = "add" if add else "del"
    for family in ("-4", "-6"):
        netns.run(a.ns, ["ip", family, "rule", verb, "not", "fwmark", str(mark), "table", TABLE],
                  check=add)
        netns.run(a.ns, ["ip", family, "rule", verb, "table", "main", "suppress_prefixlength",
                         "0"], check=add)


def _loop_drops(a: Node) -> int:
    return int(a.daemon.uapi_get().get("pywg_drop_loop", "0"))


def test_fwmark_policy_routing_and_rerouting_when_the_mark_changes(chain: Topology) -> None:
    a, b = chain.a, chain.b
    chain.configure()
    links.configure(b.ns, b.ifname, f"{BEYOND4}/32", f"{BEYOND6}/128")
    a.daemon.wg("set", a.ifname, "fwmark", str(MARK), "peer", b.daemon.keys.public,
                "allowed-ips", "0.0.0.0/0,::/0")
    # a reaches b's link through mid by its default routes only, as a host behind a full
    # tunnel would: the tunnel's datagrams escape it by their mark alone.
    gateway4, gateway6 = a.links[0].addr4(1), a.links[0].addr6(1)
    netns.run(a.ns, ["ip", "route", "del", "10.71.1.0/24"])
    netns.run(a.ns, ["ip", "-6", "route", "del", "fd71:0:0:1::/64"])
    netns.run(a.ns, ["ip", "route", "add", "default", "via", gateway4])
    netns.run(a.ns, ["ip", "-6", "route", "add", "default", "via", gateway6])
    for family in ("-4", "-6"):
        netns.run(a.ns, ["ip", family, "route", "add", "default", "dev", a.ifname,
                         "table", TABLE])
    _policy_routing(a, MARK)
    try:
        assert flood_ping(a.ns, BEYOND4, 100)
        assert flood_ping(a.ns, BEYOND6, 100)
        # The device's mark changes, the rules do not follow: the tunnel's own datagrams
        # now take the tunnel.
        loops = _loop_drops(a)
        a.daemon.wg("set", a.ifname, "fwmark", str(OTHER_MARK))
        assert not ping_once(a.ns, BEYOND4, wait_s=1)
        assert _loop_drops(a) > loops, "the looping datagrams were not dropped as a loop"
        assert a.daemon.answers()
        _policy_routing(a, MARK, add=False)
        _policy_routing(a, OTHER_MARK)
        assert ping_once(a.ns, BEYOND4), "the new mark did not reroute the tunnel's datagrams"
        assert flood_ping(a.ns, BEYOND6, 100)
        _policy_routing(a, OTHER_MARK, add=False)
        a.daemon.wg("set", a.ifname, "fwmark", "off")
        # A firewall that re-marks every packet on its way out (the route is looked up
        # again): plain routing still carries the tunnel.
        _nft(a.ns, "table ip wgmark {\n chain out {\n type route hook output priority mangle;\n"
                   " meta mark set 1\n }\n}\n")
        assert ping_once(a.ns, b.inner4)
        assert flood_ping(a.ns, b.inner4, 100)
    finally:
        netns.run(a.ns, ["nft", "delete", "table", "ip", "wgmark"], check=False)
        _policy_routing(a, MARK, add=False)
        _policy_routing(a, OTHER_MARK, add=False)
        for family in ("-4", "-6"):
            netns.run(a.ns, ["ip", family, "route", "flush", "table", TABLE], check=False)
            netns.run(a.ns, ["ip", family, "route", "del", "default"], check=False)
        netns.run(a.ns, ["ip", "route", "replace", "10.71.1.0/24", "via", gateway4])
        netns.run(a.ns, ["ip", "-6", "route", "replace", "fd71:0:0:1::/64", "via", gateway6])
        a.daemon.wg("set", a.ifname, "fwmark", "off")
    ping(a.ns, b.inner4)
