"""WireGuard inside WireGuard, and routing loops through a tunnel (the kernel's netns.sh).

        a                                        b
        wgo (outer, 10.72.0.1 fd72::1) ======== wgo (outer, 10.72.0.2 fd72::2)
        wgi (inner, 10.73.0.1 fd73::1) -------- wgi (inner, 10.73.0.2 fd73::2)
                                                 the inner tunnel's endpoint is [fd72::2]

The outer tunnel is pywg on both sides; the inner one pywg or Debian's wireguard-go, so each
implementation carries the other. Then loops:

- a's outer peer is told its endpoint is b's outer tunnel address: the tunnel's own
  datagrams are routed into the tunnel itself. pywg drops each at its first turn
  (pywg_drop_loop counts them), so ten flood pings cost a few hundred bytes, not a storm
  that never ends (the kernel module refuses such sends with ELOOP); the daemon answers
  `wg` throughout, and the right endpoint brings the tunnel back.
- the outer tunnel's endpoint is routed through the inner tunnel, whose endpoint is routed
  through the outer one: a loop through two interfaces, which neither the kernel module nor
  a userspace implementation can see whole (each sees another's datagrams). Packets grow
  at each turn and split into fragments past the MTU, so the storm outlives the pings by
  seconds, on both hosts (each delivers the other's looping datagrams to its own sockets).
  Roaming even carries the loop to the far host, whose daemon learns a's address inside
  the inner tunnel from the looping datagrams it is handed. What must hold is that every
  daemon keeps answering `wg` in the storm. A long test (`make long`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import pytest

from tests.harness import daemons, files, links, netns, wait
from tests.harness.daemons import Daemon
from tests.harness.impls import Impl
from tests.harness.probes import flood_ping, ping, ping_once
from tests.harness.skips import require_impls, require_root, require_tools
from tests.harness.topology import Node, Topology, tunnel
from tests.harness.transfer import checked_transfer

MB = 1 << 20
INNER_MTU = 1340
INNER_PORT = 41005
LOOP_PINGS = 10
# Ten echoes of 84 bytes: each turns once (sealed: 128 + 28 bytes of UDP and IP) before the
# loop check drops it, so the outer peer's counter moves by a few kilobytes at most.
LOOP_BOUND_BYTES = 10_000
STORM_CHECKS = 5


def _inner4(node: Node) -> str:
    return f"10.73.0.{node.index + 1}"


def _inner6(node: Node) -> str:
    return f"fd73::{node.index + 1}"


class Nest:
    def __init__(self, t: Topology, inner: dict[str, Daemon]) -> None:
        self.t = t
        self.a, self.b = t.sides()
        self.inner = inner

    def outer_tx(self) -> int:
        return self.a.daemon.dump().peers[self.b.daemon.keys.public].tx

    def set_outer_endpoint(self, endpoint: str) -> None:
        self.a.daemon.wg("set", self.a.ifname, "peer", self.b.daemon.keys.public,
                         "endpoint", endpoint)

    def set_inner_endpoint(self, endpoint: str) -> None:
        a = self.inner["a"]
        a.wg("set", a.ifname, "peer", self.inner["b"].keys.public, "endpoint", endpoint)


@pytest.fixture(scope="module", params=[
    pytest.param("pywg", id="inner-pywg"),
    pytest.param("wggo", id="inner-wggo", marks=pytest.mark.long)])
def nest(request: pytest.FixtureRequest) -> Iterator[Nest]:
    require_root()
    require_tools("wg", "ping")
    outer: list[Impl] = require_impls("pywg", "pywg")
    (inner_impl,) = require_impls(request.param)
    with files.workdir("nest") as work, \
            tunnel((outer[0], outer[1]), "nest", work) as t, contextlib.ExitStack() as stack:
        inner = {node.name: stack.enter_context(daemons.running(
            inner_impl, node.ns, f"wi{node.name}{t.tag}", work)) for node in t.sides()}
        for node in t.sides():
            d = inner[node.name]
            d.set_private_key()
            d.wg("set", d.ifname, "listen-port", str(INNER_PORT))
            links.configure(node.ns, d.ifname, f"{_inner4(node)}/24", f"{_inner6(node)}/64",
                            mtu=INNER_MTU)
        for node in t.sides():
            other = t.other(node)
            inner[node.name].wg("set", inner[node.name].ifname, "peer",
                                inner[other.name].keys.public, "allowed-ips",
                                f"{_inner4(other)}/32,{_inner6(other)}/128",
                                "endpoint", f"[{other.inner6}]:{INNER_PORT}")
        yield Nest(t, inner)


def test_wireguard_inside_wireguard(nest: Nest) -> None:
    a, b = nest.a, nest.b
    for me, other in ((a, b), (b, a)):
        ping(me.ns, _inner4(other))
        ping(me.ns, _inner6(other))
    carried = nest.outer_tx()
    checked_transfer(a.ns, b.ns, _inner4(b), 10 * MB)
    assert nest.outer_tx() - carried > 10 * MB, "the inner tunnel went through the outer"
    assert flood_ping(a.ns, _inner6(b), 100)


def _drops(d: Daemon, name: str) -> int:
    """pywg's pywg_drop_* counter from its UAPI `get` (wg(8) does not show them)."""
    reply = d.uapi_get()
    return int(reply.get(f"pywg_drop_{name}", "0"))


def test_a_routing_loop_through_the_tunnel_itself_stays_bounded(nest: Nest) -> None:
    a, b = nest.a, nest.b
    ping(a.ns, b.inner4)
    before_drops = _drops(a.daemon, "loop")
    try:
        nest.set_outer_endpoint(f"{b.inner4}:{b.port}")
        sent = nest.outer_tx()
        assert not flood_ping(a.ns, b.inner4, LOOP_PINGS)
        time.sleep(1)
        assert a.daemon.answers(), "the daemon stopped answering in the loop"
        looped = nest.outer_tx() - sent
        assert looped < LOOP_BOUND_BYTES, f"{looped} bytes went round the loop"
        assert _drops(a.daemon, "loop") > before_drops
        settled = nest.outer_tx()
        time.sleep(1)
        assert nest.outer_tx() == settled, "the loop still turns after the pings ended"
    finally:
        nest.set_outer_endpoint(b.endpoint(4))
    wait.wait_for(lambda: ping_once(a.ns, b.inner4), "the tunnel to carry traffic again")


@pytest.mark.long
def test_a_loop_through_two_tunnels_leaves_the_daemons_responsive(nest: Nest) -> None:
    a, b = nest.a, nest.b
    ping(a.ns, _inner4(b))
    try:
        # The outer tunnel's datagrams to b now go through the inner tunnel, whose
        # datagrams go through the outer one.
        nest.set_outer_endpoint(f"{_inner4(b)}:{b.port}")
        netns.run(a.ns, ["ping", "-n", "-q", "-f", "-c", "10", "-W", "1", b.inner4],
                  check=False, timeout=20)
        for _ in range(STORM_CHECKS):
            for d in (a.daemon, nest.inner["a"], b.daemon, nest.inner["b"]):
                assert d.answers(), f"{d.impl.name} {d.ifname} stopped answering in the loop"
            time.sleep(1)
    finally:
        nest.set_outer_endpoint(b.endpoint(4))
