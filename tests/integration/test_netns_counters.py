"""The kernel's netns.sh, first checks: exact counters after N pings, and a route MTU below
the interface's honoured together with WireGuard's padding.

Counters. b pings a ten times over a fresh session that b initiates. The peer counters
(`wg show transfer`) count what went over the wire, handshake included, as the kernel
module and wireguard-go count them: b sent one initiation (148 bytes) and ten data
messages of an 84-byte echo padded to 96 (16 + 96 + 16 = 128 bytes each): 1428 bytes, or
1460 when a keepalive went too; it received the response (92) and ten replies: 1372. The
interface counters (`ip -s link`) of a TUN count what crossed the TUN, the plaintext: ten
packets of 84 bytes each way. Router solicitations are turned off first, so that the
kernel sends nothing else through the TUN meanwhile.

Route MTU. Both interfaces have MTU 1300, and a route to the far tunnel address says 1299.
A 1269-byte ping makes a 1297-byte packet; padded to 16 it would be 1312, more than the
route allows, so it must be padded to 1299 at most: the outer packet is then 1359 bytes,
never 1360. The far namespace drops every 1360-byte packet, as the kernel test does.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import files, netns
from tests.harness.impls import Impl
from tests.harness.probes import flood_ping, ping_once
from tests.harness.skips import require_impls, require_root, require_tools
from tests.harness.topology import Node, Topology, pair
from tests.harness.wait import wait_for

PINGS = 10
ECHO = 84                     # 56 bytes of data, 8 of ICMP, 20 of IPv4
INITIATION, RESPONSE, KEEPALIVE = 148, 92, 32
DATA = 16 + 96 + 16           # header, the echo padded to 16, tag
ROUTE_MTU_LINK = 1300
ROUTE_MTU = 1299
ROUTE_MTU_PAYLOAD = 1269      # + 8 + 20 = 1297 bytes, within the route's MTU
PAIRS = [("pywg", "pywg"), ("pywg", "wggo"), ("wggo", "pywg")]


@pytest.fixture
def workdir() -> Iterator[Path]:
    require_root()
    require_tools("wg", "ping", "nft")
    with files.workdir("counters") as d:
        yield d


def _quiet_topology(impls: tuple[Impl, Impl], workdir: Path, mtu: int = 1420) -> Topology:
    """A pair whose TUNs carry nothing the test did not send: no router solicitations."""
    t = pair("cnt", workdir)
    try:
        for node in t.sides():
            netns.run(node.ns, ["sysctl", "-q", "-w",
                                "net.ipv6.conf.default.router_solicitations=0"])
        for node, impl in zip(t.sides(), impls, strict=True):
            t.start_daemon(node, impl, mtu=mtu)
        t.configure()
    except BaseException:
        t.close()
        raise
    return t


def link_stats(node: Node) -> dict[str, int]:
    """`ip -s link` of the node's tunnel interface: rx/tx packets and bytes."""
    shown = json.loads(netns.run(node.ns, ["ip", "-s", "-j", "link", "show", "dev",
                                           node.ifname]).stdout)[0]["stats64"]
    return {f"{way}_{what}": shown[way][what] for way in ("rx", "tx")
            for what in ("packets", "bytes")}


def transfer(node: Node) -> tuple[int, int]:
    """`wg show IFNAME transfer` for the node's only peer: (received, sent)."""
    (line,) = node.daemon.wg("show", node.ifname, "transfer").stdout.splitlines()
    _, rx, tx = line.split("\t")
    return int(rx), int(tx)


@pytest.mark.parametrize("impls", PAIRS, ids=["-".join(p) for p in PAIRS])
def test_exact_counters_after_ten_pings(workdir: Path, impls: tuple[str, str]) -> None:
    kinds = require_impls(*impls)
    with _quiet_topology((kinds[0], kinds[1]), workdir) as t:
        a, b = t.sides()
        before = {node.name: link_stats(node) for node in (a, b)}
        assert flood_ping(b.ns, a.inner4, PINGS)
        after = {node.name: link_stats(node) for node in (a, b)}
        crossed = {"rx_packets": PINGS, "rx_bytes": PINGS * ECHO,
                   "tx_packets": PINGS, "tx_bytes": PINGS * ECHO}
        for node in (a, b):
            moved = {k: after[node.name][k] - before[node.name][k] for k in crossed}
            assert moved == crossed, f"ip -s link on {node.name} ({node.daemon.impl.name})"
        sent_by_b = (INITIATION + PINGS * DATA, INITIATION + PINGS * DATA + KEEPALIVE)
        got_by_b = RESPONSE + PINGS * DATA
        rx_b, tx_b = transfer(b)
        assert rx_b == got_by_b and tx_b in sent_by_b, f"wg show transfer on b: {rx_b} {tx_b}"
        rx_a, tx_a = transfer(a)
        assert tx_a == got_by_b and rx_a in sent_by_b, f"wg show transfer on a: {rx_a} {tx_a}"
        for node in (a, b):
            (line,) = node.daemon.wg("show", node.ifname, "latest-handshakes").stdout.split()[1:]
            assert int(line) != 0


@pytest.mark.parametrize("impls", [("pywg", "pywg")], ids=["pywg-pywg"])
def test_route_mtu_below_the_interface_mtu_bounds_the_padding(workdir: Path,
                                                             impls: tuple[str, str]) -> None:
    kinds = require_impls(*impls)
    with _quiet_topology((kinds[0], kinds[1]), workdir, mtu=ROUTE_MTU_LINK) as t:
        a, b = t.sides()
        outer = ROUTE_MTU_LINK + 32 + 8 + 20  # a full-MTU message in UDP over IPv4
        # A named counter: `nft reset counters` resets those, not a rule's own (nft 1.0.6).
        rules = (f"table ip wgmtu {{\n counter dropped {{ }}\n chain input {{\n"
                 f" type filter hook input priority 0;\n"
                 f" ip length {outer} counter name dropped drop\n }}\n}}\n")
        netns.run(a.ns, ["nft", "-f", "-"], input=rules)
        assert ping_once(b.ns, a.inner4), "the handshake and a small ping"
        # The rule bites: a message of the interface's full MTU is 1360 bytes outside (and
        # pywg has seen the MTU set after its start once such a ping is lost).
        wait_for(lambda: not ping_once(b.ns, a.inner4, size=ROUTE_MTU_LINK - 28, wait_s=1),
                 "a full-MTU ping to be dropped", timeout=10)
        assert "packets 0 " not in _nft_counter(a)
        netns.run(a.ns, ["nft", "reset", "counters", "table", "ip", "wgmtu"])
        for me, other in ((a, b), (b, a)):
            netns.run(me.ns, ["ip", "route", "add", f"{other.inner4}/32", "dev", me.ifname,
                              "mtu", str(ROUTE_MTU)])
        # pywg hears of routes through rtnetlink, a moment after `ip route add` returns.
        wait_for(lambda: ping_once(b.ns, a.inner4, size=ROUTE_MTU_PAYLOAD, wait_s=1),
                 "a ping that fits the route's MTU", timeout=10)
        netns.run(a.ns, ["nft", "reset", "counters", "table", "ip", "wgmtu"])
        assert ping_once(b.ns, a.inner4, size=ROUTE_MTU_PAYLOAD), \
            "a packet that fits the route's MTU was padded past it"
        assert "packets 0 " in _nft_counter(a)


def _nft_counter(node: Node) -> str:
    return netns.run(node.ns, ["nft", "list", "table", "ip", "wgmtu"]).stdout
