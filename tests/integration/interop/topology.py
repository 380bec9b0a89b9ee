"""Two namespaces joined by a veth, one implementation in each, a tunnel between them.

    namespace A                                              namespace B
    +-------------------------------+  veth  +-------------------------------+
    | wgA.. 10.72.0.1  fd72::1      |========| wgB.. 10.72.0.2  fd72::2      |
    |   impl a, UDP :40001          |        |   impl b, UDP :40002          |
    |   vaXX 10.71.0.1  fd71::1     |        |   vbXX 10.71.0.2  fd71::2     |
    +-------------------------------+        +-------------------------------+

Only addresses inside these namespaces are used. `configure()` removes and re-adds the peers
on both sides, which drops every session, so each test can choose who may initiate.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.integration.interop import harness
from tests.integration.interop.harness import IMPLS, Daemon
from tests.support.netns import namespace, veth_pair

OUTER4 = ("10.71.0.1", "10.71.0.2")
OUTER6 = ("fd71::1", "fd71::2")
INNER4 = ("10.72.0.1", "10.72.0.2")
INNER6 = ("fd72::1", "fd72::2")
PORTS = (40001, 40002)


@dataclass
class Side:
    ns: str
    veth: str
    outer4: str
    outer6: str
    inner4: str
    inner6: str
    port: int
    daemon: Daemon

    @property
    def ifname(self) -> str:
        return self.daemon.ifname

    def endpoint(self, family: int) -> str:
        return f"{self.outer4}:{self.port}" if family == 4 else f"[{self.outer6}]:{self.port}"


@dataclass
class Tunnel:
    a: Side
    b: Side
    workdir: Path

    def sides(self) -> tuple[Side, Side]:
        return self.a, self.b

    def configure(self, *, endpoints: str = "ab", family: int = 4,
                  persistent_keepalive: int = 0, psk: str | None = None) -> None:
        """Fresh peers on both sides: `endpoints` names the sides that know the other's
        endpoint (so only they can initiate)."""
        for me, other, label in ((self.a, self.b, "a"), (self.b, self.a, "b")):
            add_peer(me, other, endpoint=other.endpoint(family) if label in endpoints else None,
                     persistent_keepalive=persistent_keepalive, psk=psk)

    def other(self, side: Side) -> Side:
        return self.b if side is self.a else self.a


def add_peer(me: Side, other: Side, *, endpoint: str | None, persistent_keepalive: int = 0,
             psk: str | None = None) -> None:
    """Replace every peer of `me` with `other`, allowed its two inner addresses."""
    me.daemon.wg("set", me.ifname, "peer", other.daemon.keys.public, "remove")
    args = ["set", me.ifname, "peer", other.daemon.keys.public,
            "allowed-ips", f"{other.inner4}/32,{other.inner6}/128",
            "persistent-keepalive", str(persistent_keepalive) if persistent_keepalive else "off"]
    if endpoint:
        args += ["endpoint", endpoint]
    if psk:
        args += ["preshared-key", "/dev/stdin"]
    me.daemon.wg(*args, input=psk + "\n" if psk else None)


def address_interface(ns: str, ifname: str, inner4: str, inner6: str, mtu: int = 1420) -> None:
    harness.run(ns, ["ip", "addr", "add", f"{inner4}/24", "dev", ifname])
    harness.run(ns, ["ip", "-6", "addr", "add", f"{inner6}/64", "dev", ifname, "nodad"])
    harness.run(ns, ["ip", "link", "set", "dev", ifname, "mtu", str(mtu), "up"])


@contextlib.contextmanager
def tunnel(pair: tuple[str, str], label: str, *, env: dict[str, str] | None = None,
           env_all: dict[str, str] | None = None, foreground: bool = False,
           configure: bool = True) -> Iterator[Tunnel]:
    """Namespaces, veth, one daemon per side (background mode, as wg-quick starts them,
    unless `foreground`), private keys and listen ports set, inner addresses up; peers
    configured unless told not to. `env` goes to pywg daemons only (PYWG_TIMING_SCALE),
    `env_all` to every daemon (LOG_LEVEL)."""
    with contextlib.ExitStack() as stack:
        work = stack.enter_context(harness.workdir(label))
        ns_a = stack.enter_context(namespace("ia"))
        ns_b = stack.enter_context(namespace("ib"))
        veth_a, veth_b = stack.enter_context(veth_pair(
            ns_a, ns_b, f"{OUTER4[0]}/24", f"{OUTER4[1]}/24",
            f"{OUTER6[0]}/64", f"{OUTER6[1]}/64"))
        sides = []
        for i, (ns, veth, prefix) in enumerate(((ns_a, veth_a, "wgA"), (ns_b, veth_b, "wgB"))):
            impl = IMPLS[pair[i]]
            daemon_env = dict(env_all or {}, **(env or {} if impl is harness.PYWG else {}))
            d = stack.enter_context(harness.daemon(
                impl, ns, harness.ifname(prefix), work, env=daemon_env, foreground=foreground))
            d.set_private_key()
            d.wg("set", d.ifname, "listen-port", str(PORTS[i]))
            address_interface(ns, d.ifname, INNER4[i], INNER6[i])
            sides.append(Side(ns, veth, OUTER4[i], OUTER6[i], INNER4[i], INNER6[i], PORTS[i], d))
        t = Tunnel(sides[0], sides[1], work)
        if configure:
            t.configure()
        yield t


NAT_TABLE = "wgroam"


def nat_source_port(side: Side, new_port: int) -> str:
    """Make `side`'s datagrams leave from `new_port` (and answers to it come back to its
    real port) with stateless nftables rewrites, which apply to a flow already under way,
    unlike conntrack NAT. Returns the endpoint the far side should now see."""
    rules = f"""
table ip {NAT_TABLE} {{
    chain out {{
        type filter hook postrouting priority 300;
        udp sport {side.port} udp sport set {new_port}
    }}
    chain in {{
        type filter hook prerouting priority -300;
        udp dport {new_port} udp dport set {side.port}
    }}
}}
"""
    harness.run(side.ns, ["nft", "-f", "-"], input=rules)
    return f"{side.outer4}:{new_port}"


def undo_nat(side: Side) -> None:
    harness.run(side.ns, ["nft", "delete", "table", "ip", NAT_TABLE], check=False)
