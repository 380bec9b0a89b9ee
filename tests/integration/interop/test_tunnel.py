"""A tunnel between two implementations: each side initiating, ping over IPv4 and IPv6
inside and outside, a 100 MB TCP transfer checked by sha256, and cryptokey routing's
source check on the receiving side."""

from __future__ import annotations

import pytest

from tests.integration.interop import harness
from tests.integration.interop.topology import Tunnel
from tests.integration.interop.transfer import checked_transfer

MB = 1 << 20


@pytest.mark.parametrize("initiator", ["a", "b"])
def test_handshake_initiated_by_each_side(tunnel: Tunnel, initiator: str) -> None:
    # Only the initiator knows where the other is, so it alone can start the handshake.
    tunnel.configure(endpoints=initiator)
    me = tunnel.a if initiator == "a" else tunnel.b
    other = tunnel.other(me)
    before = other.daemon.dump().peers[me.daemon.keys.public]
    assert before.endpoint == "(none)" and before.latest_handshake == 0

    harness.ping(me.ns, other.inner4)
    harness.ping(other.ns, me.inner4)

    learned = other.daemon.dump().peers[me.daemon.keys.public]
    assert learned.endpoint == me.endpoint(4), "the responder learns the initiator's address"
    assert learned.latest_handshake > 0
    assert me.daemon.dump().peers[other.daemon.keys.public].latest_handshake > 0


@pytest.mark.parametrize("family", [4, 6], ids=["outer4", "outer6"])
def test_ping_both_ways_ipv4_and_ipv6_inside(tunnel: Tunnel, family: int) -> None:
    tunnel.configure(family=family)
    for me in tunnel.sides():
        other = tunnel.other(me)
        harness.ping(me.ns, other.inner4)
        harness.ping(me.ns, other.inner6)
    for me in tunnel.sides():
        other = tunnel.other(me)
        peer = me.daemon.dump().peers[other.daemon.keys.public]
        assert peer.endpoint == other.endpoint(family)
        assert peer.rx > 0 and peer.tx > 0


def test_tcp_transfer_100mb_checksum(tunnel: Tunnel) -> None:
    tunnel.configure()
    checked_transfer(tunnel.a.ns, tunnel.b.ns, tunnel.b.inner4, 100 * MB)


def test_inner_source_outside_allowed_ips_is_dropped(tunnel: Tunnel) -> None:
    tunnel.configure()
    a, b = tunnel.a, tunnel.b
    harness.ping(a.ns, b.inner4)  # the session is up; what follows is only the source check
    stray = "10.72.0.11"
    harness.run(a.ns, ["ip", "addr", "add", f"{stray}/24", "dev", a.ifname])
    try:
        delivered = harness.sysfs_counter(b.ns, b.ifname, "rx_packets")
        received = b.daemon.dump().peers[a.daemon.keys.public].rx
        assert not harness.ping(a.ns, b.inner4, count=2, source=stray, check=False,
                                    deadline=2)
        # The packets did reach B's daemon (its receive counter moved: they were
        # authenticated) but none went through B's TUN to B's kernel.
        harness.wait_for(lambda: b.daemon.dump().peers[a.daemon.keys.public].rx > received,
                         "B to receive the stray packets", timeout=5)
        assert harness.sysfs_counter(b.ns, b.ifname, "rx_packets") == delivered
    finally:
        harness.run(a.ns, ["ip", "addr", "del", f"{stray}/24", "dev", a.ifname])
    # The same path with an allowed source still delivers: the drop above was the check.
    harness.ping(a.ns, b.inner4, count=1)
    assert harness.sysfs_counter(b.ns, b.ifname, "rx_packets") > delivered
