"""Roaming: the client's source changes in the middle of a TCP transfer; the transfer goes
on intact and the server's endpoint follows the first authenticated packet from the new
source. The client is side a; the server (side b) has no configured endpoint for it.

Three ways to move:
- NAT: nftables in the client's namespace rewrites its UDP source port 40001 to 40101 (and
  back on the way in), statelessly, so it applies to a flow already under way;
- address: the client's veth address changes from 10.71.0.1 to 10.71.0.3. Only with pywg as
  the client: Debian's wireguard-go keeps sending from its cached, deleted source address
  until its new-handshake timer (about 15 s) clears it, which this suite cannot afford four
  times over (it does recover: the transfer completes);
- port (the kernel's netns.sh roaming): the client moves to another listen port and is told
  the server's endpoint in the other family, over outer IPv4 and then IPv6; one ping moves
  the server's endpoint to the client's new address and port.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.harness import files, nat, netns, topology, wait
from tests.harness.probes import ping, ping_once
from tests.harness.skips import require_impls, require_root, require_tools
from tests.harness.topology import Node, Topology
from tests.harness.transfer import transfer

MB = 1 << 20
NEW_ADDRESS = "10.71.0.3"
NAT_PORT = 40101
ROAM_PORT = 40200


def _move_address(client: Node) -> str:
    # Deleting the primary address must not take the new (secondary) one with it.
    netns.run(client.ns, ["sysctl", "-q", "-w",
                          f"net.ipv4.conf.{client.veth}.promote_secondaries=1"])
    netns.run(client.ns, ["ip", "addr", "add", f"{NEW_ADDRESS}/24", "dev", client.veth])
    netns.run(client.ns, ["ip", "addr", "del", f"{client.outer4}/24", "dev", client.veth])
    return f"{NEW_ADDRESS}:{client.port}"


def _nat_port(client: Node) -> str:
    nat.rewrite_source_port(client.ns, client.port, NAT_PORT)
    return f"{client.outer4}:{NAT_PORT}"


def _undo(client: Node) -> None:
    nat.undo(client.ns)
    netns.run(client.ns, ["ip", "addr", "add", f"{client.outer4}/24", "dev", client.veth],
              check=False)
    netns.run(client.ns, ["ip", "addr", "del", f"{NEW_ADDRESS}/24", "dev", client.veth],
              check=False)


@pytest.fixture(scope="module", params=[("pywg", "wggo"), ("pywg", "pywg")],
                ids=["pywg-wggo", "pywg-pywg"])
def pywg_client_tunnel(request: pytest.FixtureRequest) -> Iterator[Topology]:
    require_root()
    a, b = require_impls(*request.param)
    with files.workdir("roam") as work, topology.tunnel((a, b), "roam", work) as t:
        yield t


def test_client_source_port_natted_during_transfer(tunnel: Topology) -> None:
    require_tools("nft")
    _roam(tunnel, _nat_port)


def test_client_address_moves_during_transfer(pywg_client_tunnel: Topology) -> None:
    _roam(pywg_client_tunnel, _move_address)


def _roam(tunnel: Topology, move: Callable[[Node], str]) -> None:
    client, server = tunnel.a, tunnel.b
    tunnel.configure(endpoints="a")
    ping(client.ns, server.inner4)
    old = server.daemon.dump().peers[client.daemon.keys.public]
    assert old.endpoint == client.endpoint(4)
    try:
        # Paced, so the move lands in the middle whatever the implementations' speed.
        with transfer(client.ns, server.ns, server.inner4, 40 * MB, seconds=4.0) as t:
            wait.wait_for(
                lambda: server.daemon.dump().peers[client.daemon.keys.public].rx
                > old.rx + 4 * MB, "the transfer to get going", timeout=20)
            new_endpoint = move(client)
            assert t.running(), "the move must happen while the transfer is under way"
            sent, received = t.finish(timeout=60)
        assert received == sent, "bytes were lost or changed across the move"
        moved = server.daemon.dump().peers[client.daemon.keys.public]
        assert moved.endpoint == new_endpoint
    finally:
        _undo(client)


@pytest.mark.parametrize("family", [4, 6], ids=["outer4", "outer6"])
def test_listen_port_change_roams(tunnel: Topology, family: int) -> None:
    """The kernel's netns.sh roaming: a moves to another port and is told b's endpoint in
    the other family; a single ping (inner IPv6 over outer IPv4, and the reverse) leaves b
    with a's new address and port."""
    a, b = tunnel.a, tunnel.b
    tunnel.configure(family=6 if family == 4 else 4)
    assert ping_once(a.ns, b.inner4)
    moved = ROAM_PORT + family
    try:
        a.daemon.wg("set", a.ifname, "listen-port", str(moved))
        a.daemon.wg("set", a.ifname, "peer", b.daemon.keys.public,
                    "endpoint", b.endpoint(family))
        assert ping_once(a.ns, b.inner6 if family == 4 else b.inner4)
        shown = b.daemon.wg("show", b.ifname, "endpoints").stdout.strip()
        address = a.outer4 if family == 4 else f"[{a.outer6}]"
        assert shown == f"{a.daemon.keys.public}\t{address}:{moved}"
    finally:
        a.daemon.wg("set", a.ifname, "listen-port", str(a.port))
