"""A tunnel between two implementations: each side initiating, ping over IPv4 and IPv6
inside and outside, a 100 MB TCP transfer checked by sha256, and cryptokey routing's
source check on the receiving side."""

from __future__ import annotations

import pytest

from tests.harness import links, netns, wait
from tests.harness.probes import ping
from tests.harness.topology import Topology
from tests.harness.transfer import checked_transfer

MB = 1 << 20


@pytest.mark.parametrize("initiator", ["a", "b"])
def test_handshake_initiated_by_each_side(tunnel: Topology, initiator: str) -> None:
    # Only the initiator knows where the other is, so it alone can start the handshake.
    tunnel.configure(endpoints=initiator)
    me = tunnel.a if initiator == "a" else tunnel.b
    other = tunnel.other(me)
    before = other.daemon.dump().peers[me.daemon.keys.public]
    assert before.endpoint == "(none)" and before.latest_handshake == 0

    ping(me.ns, other.inner4)
    ping(other.ns, me.inner4)

    learned = other.daemon.dump().peers[me.daemon.keys.public]
    assert learned.endpoint == me.endpoint(4), "the responder learns the initiator's address"
    assert learned.latest_handshake > 0
    assert me.daemon.dump().peers[other.daemon.keys.public].latest_handshake > 0


@pytest.mark.parametrize("family", [4, 6], ids=["outer4", "outer6"])
def test_ping_both_ways_ipv4_and_ipv6_inside(tunnel: Topology, family: int) -> None:
    tunnel.configure(family=family)
    for me in tunnel.sides():
        other = tunnel.other(me)
        ping(me.ns, other.inner4)
        ping(me.ns, other.inner6)
    for me in tunnel.sides():
        other = tunnel.other(me)
        peer = me.daemon.dump().peers[other.daemon.keys.public]
        assert peer.endpoint == other.endpoint(family)
        assert peer.rx > 0 and peer.tx > 0


def test_tcp_transfer_100mb_checksum(tunnel: Topology) -> None:
    tunnel.configure()
    checked_transfer(tunnel.a.ns, tunnel.b.ns, tunnel.b.inner4, 100 * MB)


def test_inner_source_outside_allowed_ips_is_dropped(tunnel: Topology) -> None:
    tunnel.configure()
    a, b = tunnel.a, tunnel.b
    ping(a.ns, b.inner4)  # the session is up; what follows is only the source check
    stray = "10.72.0.11"
    netns.run(a.ns, ["ip", "addr", "add", f"{stray}/24", "dev", a.ifname])
    try:
        delivered = links.counter(b.ns, b.ifname, "rx_packets")
        received = b.daemon.dump().peers[a.daemon.keys.public].rx
        assert not ping(a.ns, b.inner4, count=2, source=stray, check=False, deadline=2)
        # The packets did reach B's daemon (its receive counter moved: they were
        # authenticated) but none went through B's TUN to B's kernel.
        wait.wait_for(lambda: b.daemon.dump().peers[a.daemon.keys.public].rx > received,
                      "B to receive the stray packets", timeout=5)
        assert links.counter(b.ns, b.ifname, "rx_packets") == delivered
    finally:
        netns.run(a.ns, ["ip", "addr", "del", f"{stray}/24", "dev", a.ifname])
    # The same path with an allowed source still delivers: the drop above was the check.
    ping(a.ns, b.inner4, count=1)
    assert links.counter(b.ns, b.ifname, "rx_packets") > delivered
