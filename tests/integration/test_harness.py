"""The harness's own topologies beyond the pair the other tests use, with real daemons of
mixed implementations: a gateway with several clients (star; WG_IMPLS's implementations
join as more clients), and two peers that reach each other only through a routing
namespace (chain). Each must carry traffic, show the endpoints the addressing plan
promises, and leave nothing behind: no namespace, process, socket or interface.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import daemons, files, impls, links, netns, topology
from tests.harness.impls import Impl
from tests.harness.probes import ping
from tests.harness.skips import require_impls, require_root, require_tools
from tests.harness.topology import Topology


def _assert_nothing_left(t: Topology, made: list[daemons.Daemon]) -> None:
    listed = netns.run(None, ["ip", "netns", "list"]).stdout
    assert not [ns for ns in t.namespaces() if ns in listed.split()]
    for d in made:
        assert d.wait_exit(), f"{d.ifname} outlived its topology"
        assert not d.leftovers()


@pytest.fixture
def workdir() -> Iterator[Path]:
    require_root()
    require_tools("wg", "ping")
    with files.workdir("harness") as d:
        yield d


def _extra_impls() -> list[Impl]:
    """WG_IMPLS's implementations that are here: each joins the star as one more client."""
    found, _ = impls.available()
    return [i for i in found if i.name not in (impls.WGGO.name, impls.PYWG.name)]


@pytest.mark.parametrize("hub_impl", ["pywg", "wggo"])
def test_star_gateway_with_clients_of_every_implementation(workdir: Path,
                                                           hub_impl: str) -> None:
    hub_kind, *client_kinds = require_impls(hub_impl, "wggo", "pywg")
    client_kinds += _extra_impls()
    with topology.star("hstar", workdir, clients=len(client_kinds)) as t:
        hub = t.nodes["hub"]
        clients = [t.nodes[f"c{i + 1}"] for i in range(len(client_kinds))]
        t.start_daemon(hub, hub_kind)
        for client, kind in zip(clients, client_kinds, strict=True):
            t.start_daemon(client, kind)
        t.configure(endpoints=[c.name for c in clients])  # the clients dial the gateway
        for client in clients:
            ping(client.ns, hub.inner4)
            ping(client.ns, hub.inner6)
        seen = hub.daemon.dump().peers
        for i, client in enumerate(clients):
            # Each client came in over its own veth to the hub: link i, second end.
            assert seen[client.daemon.keys.public].endpoint == f"10.71.{i}.2:{client.port}"
            assert seen[client.daemon.keys.public].latest_handshake > 0
        made = t.daemons()
    _assert_nothing_left(t, made)


def test_chain_peers_meet_through_the_routing_namespace(workdir: Path) -> None:
    a_kind, b_kind = require_impls("wggo", "pywg")
    with topology.chain("hchain", workdir) as t:
        a, b, mid = t.a, t.b, t.nodes["mid"]
        t.start_daemon(a, a_kind)
        t.start_daemon(b, b_kind)
        t.configure(endpoints="a")
        forwarded = links.counter(mid.ns, mid.links[1].devs[0], "tx_packets")
        ping(a.ns, b.inner4)
        ping(b.ns, a.inner6)
        # b learned a's endpoint from a's handshake: a's own address, two links away.
        assert b.daemon.dump().peers[a.daemon.keys.public].endpoint == "10.71.0.1:40001"
        assert links.counter(mid.ns, mid.links[1].devs[0], "tx_packets") > forwarded
        made = t.daemons()
    _assert_nothing_left(t, made)
