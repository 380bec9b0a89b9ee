"""Topologies: namespaces (nodes), the veths between them (links), and a WireGuard daemon on
any node, built from the other modules and torn down as one.

    pair()      a ====== b                  two peers: the demo, the interop suite, bench
    star(n)     hub ====== c1 ... cN        a gateway and N clients, a veth to each
    chain()     a ====== mid ====== b       a namespace routing between two peers, where
                                            NAT or an impaired relay can sit

A builder makes the namespaces, the links and the list of which nodes are peers; the
caller then starts a daemon of any implementation on any node (`start_daemon`), so one
topology can mix implementations, and `configure()` makes the peers know each other.

Addressing is the same in every topology, so tests can name addresses:
- link i (in the order made) is 10.71.i.0/24 and fd71:0:0:i::/64; its first end is .1 / ::1,
  its second .2 / ::2; a node's first link is its primary one (`outer4`, `endpoint()`);
- node i (in the order made) has the tunnel addresses 10.72.0.(i+1)/24 and fd72::(i+1)/64
  and listens on UDP port 40001 + i.
Every name carries the topology's random tag: other runs share this machine, and
/var/run/wireguard is shared by every namespace.
"""

from __future__ import annotations

import contextlib
import ipaddress
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from tests.harness import daemons, links, netns
from tests.harness.daemons import Daemon
from tests.harness.impls import PYWG, Impl

TUNNEL_MTU = 1420
FIRST_PORT = 40001
TAG_BYTES = 3


@dataclass
class Link:
    index: int
    ends: tuple[Node, Node]
    devs: tuple[str, str]

    def end(self, node: Node) -> int:
        return self.ends.index(node)

    def addr4(self, end: int) -> str:
        return f"10.71.{self.index}.{end + 1}"

    def addr6(self, end: int) -> str:
        # In the form `wg show` prints it (fd71::1 for link 0), so tests can compare.
        return str(ipaddress.IPv6Address(f"fd71:0:0:{self.index:x}::{end + 1:x}"))


@dataclass(eq=False)
class Node:
    """One namespace of a topology, and the daemon on it if one was started."""

    name: str
    index: int
    ns: str
    links: list[Link] = field(default_factory=list, repr=False)
    _daemon: Daemon | None = field(default=None, repr=False)

    @property
    def daemon(self) -> Daemon:
        if self._daemon is None:
            raise LookupError(f"node {self.name} runs no daemon")
        return self._daemon

    @property
    def ifname(self) -> str:
        return self.daemon.ifname

    @property
    def inner4(self) -> str:
        return f"10.72.0.{self.index + 1}"

    @property
    def inner6(self) -> str:
        return f"fd72::{self.index + 1:x}"

    @property
    def port(self) -> int:
        return FIRST_PORT + self.index

    def _primary(self) -> tuple[Link, int]:
        link = self.links[0]
        return link, link.end(self)

    @property
    def veth(self) -> str:
        link, end = self._primary()
        return link.devs[end]

    @property
    def outer4(self) -> str:
        link, end = self._primary()
        return link.addr4(end)

    @property
    def outer6(self) -> str:
        link, end = self._primary()
        return link.addr6(end)

    def endpoint(self, family: int = 4, via: Node | None = None) -> str:
        """Where peers send to this node: its address on the link it shares with `via`,
        if any, else on its primary link."""
        link = next((x for x in self.links if via is not None and via in x.ends),
                    self.links[0])
        end = link.end(self)
        if family == 4:
            return f"{link.addr4(end)}:{self.port}"
        return f"[{link.addr6(end)}]:{self.port}"


class Topology:
    """Nodes, links and daemons, undone newest first by `close()` (or leaving `with`)."""

    def __init__(self, label: str, logdir: Path, tag: str | None = None) -> None:
        self.label = label
        self.tag = tag or secrets.token_hex(TAG_BYTES)
        self.logdir = logdir
        self.nodes: dict[str, Node] = {}
        self.links: list[Link] = []
        self.peerings: list[tuple[Node, Node]] = []
        self._stack = contextlib.ExitStack()

    # ---- building -----------------------------------------------------------------------

    def add_node(self, name: str) -> Node:
        ns = self._stack.enter_context(netns.namespace(name=f"{self.label}-{self.tag}-{name}"))
        node = Node(name, len(self.nodes), ns)
        self.nodes[name] = node
        return node

    def add_link(self, a: Node, b: Node, *, mtu: int = links.OUTER_MTU) -> Link:
        """A veth between a and b, addressed by the plan; both namespaces own an end."""
        index = len(self.links)
        devs = (f"v{a.name}{index}{self.tag}"[:netns.IFNAME_MAX],
                f"v{b.name}{index}{self.tag}"[:netns.IFNAME_MAX])
        link = Link(index, (a, b), devs)
        links.veth_pair(a.ns, b.ns, (f"{link.addr4(0)}/24", f"{link.addr6(0)}/64"),
                        (f"{link.addr4(1)}/24", f"{link.addr6(1)}/64"), names=devs, mtu=mtu)
        self.links.append(link)
        a.links.append(link)
        b.links.append(link)
        return link

    def route_through(self, middle: Node) -> None:
        """middle forwards between its links, and every other node reaches every link's
        subnet through its own link to middle."""
        for key in ("net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding"):
            netns.run(middle.ns, ["sysctl", "-q", "-w", f"{key}=1"])
        for link in middle.links:
            node = link.ends[1 - link.end(middle)]
            gateway = link.end(middle)
            for other in middle.links:
                if other is not link:
                    netns.run(node.ns, ["ip", "route", "add", f"10.71.{other.index}.0/24",
                                        "via", link.addr4(gateway)])
                    netns.run(node.ns, ["ip", "-6", "route", "add",
                                        f"fd71:0:0:{other.index:x}::/64",
                                        "via", link.addr6(gateway)])

    # ---- daemons ------------------------------------------------------------------------

    def start_daemon(self, node: Node, impl: Impl, *, foreground: bool = False,
                     env: dict[str, str] | None = None, mtu: int = TUNNEL_MTU,
                     bare: bool = False) -> Daemon:
        """impl serving wg<node><tag> on node: its private key and listen port set through
        `wg`, its tunnel addresses and MTU through `ip`, up; no peers yet. `bare`: none of
        that, for a caller that configures it its own way."""
        d = self._stack.enter_context(daemons.running(
            impl, node.ns, f"wg{node.name}{self.tag}"[:netns.IFNAME_MAX], self.logdir,
            foreground=foreground, env=env))
        node._daemon = d
        if bare:
            return d
        d.set_private_key()
        d.wg("set", d.ifname, "listen-port", str(node.port))
        links.configure(node.ns, d.ifname, f"{node.inner4}/24", f"{node.inner6}/64", mtu=mtu)
        return d

    def configure(self, *, endpoints: Iterable[str] | None = None, family: int = 4,
                  persistent_keepalive: int = 0, psk: str | None = None) -> None:
        """Fresh peers for every peering, both ways (which drops every session), so that
        each test can choose who may initiate: `endpoints` names the nodes that are told
        the other's endpoint (default: all)."""
        knowing = set(self.nodes) if endpoints is None else set(endpoints)
        for a, b in self.peerings:
            for me, other in ((a, b), (b, a)):
                add_peer(me, other, endpoint=other.endpoint(family, via=me)
                         if me.name in knowing else None,
                         persistent_keepalive=persistent_keepalive, psk=psk)

    # ---- the pair's view ----------------------------------------------------------------

    @property
    def a(self) -> Node:
        return self.nodes["a"]

    @property
    def b(self) -> Node:
        return self.nodes["b"]

    def sides(self) -> tuple[Node, Node]:
        return self.a, self.b

    def other(self, node: Node) -> Node:
        return self.b if node is self.a else self.a

    def daemons(self) -> list[Daemon]:
        return [n._daemon for n in self.nodes.values() if n._daemon is not None]

    def namespaces(self) -> list[str]:
        return [n.ns for n in self.nodes.values()]

    # ---- undoing ------------------------------------------------------------------------

    def close(self) -> None:
        """Daemons first (deleting their interfaces), then the namespaces."""
        self._stack.close()

    def __enter__(self) -> Topology:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        # The daemons' context managers print their logs when an exception passes.
        self._stack.__exit__(kind, exc, tb)


def default_route_only(node: Node) -> None:
    """node reaches the far end of its primary link only through a default route over it
    (its IPv4 address made a /32): the route a full tunnel takes over, so that the tunnel's
    own datagrams escape it only by their fwmark."""
    netns.run(node.ns, ["ip", "addr", "del", f"{node.outer4}/24", "dev", node.veth])
    netns.run(node.ns, ["ip", "addr", "add", f"{node.outer4}/32", "dev", node.veth])
    netns.run(node.ns, ["ip", "route", "add", "default", "dev", node.veth])


def add_peer(me: Node, other: Node, *, endpoint: str | None, persistent_keepalive: int = 0,
             psk: str | None = None) -> None:
    """Replace me's peer `other` with a fresh one allowed other's two tunnel addresses."""
    me.daemon.wg("set", me.ifname, "peer", other.daemon.keys.public, "remove")
    args = ["set", me.ifname, "peer", other.daemon.keys.public,
            "allowed-ips", f"{other.inner4}/32,{other.inner6}/128",
            "persistent-keepalive", str(persistent_keepalive) if persistent_keepalive else "off"]
    if endpoint:
        args += ["endpoint", endpoint]
    if psk:
        args += ["preshared-key", "/dev/stdin"]
    me.daemon.wg(*args, input=psk + "\n" if psk else None)


# ---- builders --------------------------------------------------------------------------------

@contextlib.contextmanager
def _undone_on_failure(t: Topology) -> Iterator[Topology]:
    try:
        yield t
    except BaseException:
        t.close()
        raise


def pair(label: str, logdir: Path, tag: str | None = None) -> Topology:
    """a and b joined by one veth, peers of each other."""
    with _undone_on_failure(Topology(label, logdir, tag)) as t:
        a, b = t.add_node("a"), t.add_node("b")
        t.add_link(a, b)
        t.peerings.append((a, b))
    return t


def star(label: str, logdir: Path, clients: int, tag: str | None = None) -> Topology:
    """A hub and clients c1..cN, each with a veth to the hub and a peer of it."""
    with _undone_on_failure(Topology(label, logdir, tag)) as t:
        hub = t.add_node("hub")
        for i in range(clients):
            client = t.add_node(f"c{i + 1}")
            t.add_link(hub, client)
            t.peerings.append((hub, client))
    return t


def chain(label: str, logdir: Path, tag: str | None = None) -> Topology:
    """a and b, peers of each other, reaching each other only through mid, which routes."""
    with _undone_on_failure(Topology(label, logdir, tag)) as t:
        a, b = t.add_node("a"), t.add_node("b")
        mid = t.add_node("mid")
        t.add_link(a, mid)
        t.add_link(mid, b)
        t.route_through(mid)
        t.peerings.append((a, b))
    return t


@contextlib.contextmanager
def tunnel(impls: tuple[Impl, Impl], label: str, logdir: Path, *, foreground: bool = False,
           env: dict[str, str] | None = None, env_all: dict[str, str] | None = None,
           configure: bool = True, tag: str | None = None) -> Iterator[Topology]:
    """A pair with impls[0] on a and impls[1] on b, peers configured unless told not to.
    `env` goes to pywg daemons only (PYWG_TIMING_SCALE), `env_all` to every daemon."""
    with pair(label, logdir, tag) as t:
        for node, impl in zip(t.sides(), impls, strict=True):
            extra = (env or {}) if impl.name == PYWG.name else {}
            t.start_daemon(node, impl, foreground=foreground, env={**(env_all or {}), **extra})
        if configure:
            t.configure()
        yield t
