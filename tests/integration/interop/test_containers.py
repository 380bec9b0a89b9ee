"""Containers, as the WireGuard site describes them: the interface is created in namespace
A, where the daemon and its UDP socket stay, then moved into namespace C, whose only other
interface is lo. C's traffic reaches the far peer through the tunnel; `wg` still works from
C because /var/run/wireguard is shared; deleting the interface in C ends the daemon.
"""

from __future__ import annotations

from tests.integration.interop import harness
from tests.integration.interop.topology import Tunnel, address_interface
from tests.support.netns import namespace


def test_interface_moved_into_another_namespace(tunnel: Tunnel) -> None:
    host, far = tunnel.a, tunnel.b
    tunnel.configure()
    d = host.daemon
    with namespace("ic") as container:
        try:
            harness.run(host.ns, ["ip", "link", "set", "dev", d.ifname, "netns", container])
            d.link_ns = container
            address_interface(container, d.ifname, host.inner4, host.inner6)
            links = harness.run(container, ["ip", "-o", "link"]).stdout
            assert sorted(line.split(":")[1].strip() for line in links.splitlines()) == \
                sorted(["lo", d.ifname])
            assert not harness.link_exists(host.ns, d.ifname)

            harness.ping(container, far.inner4)
            harness.ping(container, far.inner6)
            harness.ping(far.ns, host.inner4)
            # The UDP socket stayed in A: the far side sees A's veth address.
            seen = far.daemon.dump().peers[d.keys.public]
            assert seen.endpoint == host.endpoint(4)
            assert d.dump().peers[far.daemon.keys.public].latest_handshake > 0
            assert d.alive()

            harness.run(container, ["ip", "link", "del", "dev", d.ifname])
            assert d.wait_exit(), "the daemon outlived its interface"
            assert not harness.socket_path(d.ifname).exists()
        finally:
            # Before C goes: a TUN left in a dying namespace is moved to the root one.
            d.stop()
