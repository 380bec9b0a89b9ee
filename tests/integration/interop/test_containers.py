"""Containers, as the WireGuard site describes them: the interface is created in namespace
A, where the daemon and its UDP socket stay, then moved into namespace C, whose only other
interface is lo. C's traffic reaches the far peer through the tunnel; `wg` still works from
C because /var/run/wireguard is shared; deleting the interface in C ends the daemon.
"""

from __future__ import annotations

from tests.harness import daemons, links, netns
from tests.harness.probes import ping
from tests.harness.topology import TUNNEL_MTU, Topology


def test_interface_moved_into_another_namespace(tunnel: Topology) -> None:
    host, far = tunnel.a, tunnel.b
    tunnel.configure()
    d = host.daemon
    with netns.namespace("ic") as container:
        try:
            netns.run(host.ns, ["ip", "link", "set", "dev", d.ifname, "netns", container])
            d.link_ns = container
            links.configure(container, d.ifname, f"{host.inner4}/24", f"{host.inner6}/64",
                            mtu=TUNNEL_MTU)
            listed = netns.run(container, ["ip", "-o", "link"]).stdout
            assert sorted(line.split(":")[1].strip() for line in listed.splitlines()) == \
                sorted(["lo", d.ifname])
            assert not links.exists(host.ns, d.ifname)

            ping(container, far.inner4)
            ping(container, far.inner6)
            ping(far.ns, host.inner4)
            # The UDP socket stayed in A: the far side sees A's veth address.
            seen = far.daemon.dump().peers[d.keys.public]
            assert seen.endpoint == host.endpoint(4)
            assert d.dump().peers[far.daemon.keys.public].latest_handshake > 0
            assert d.alive()

            netns.run(container, ["ip", "link", "del", "dev", d.ifname])
            assert d.wait_exit(), "the daemon outlived its interface"
            assert not daemons.socket_path(d.ifname).exists()
        finally:
            # Before C goes: a TUN left in a dying namespace is moved to the root one.
            d.stop()
