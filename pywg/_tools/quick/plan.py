"""The decisions of wg-quick(8), as pure functions: no I/O, tested without root.

- The MTU when none is configured: the largest MTU of the routes to the peers' endpoints
  (a route's own `mtu`, else its device's), else that of the default route, else 1500;
  minus 80, WireGuard's overhead over IPv6.
- The routes: one per allowed IP of every peer, longest prefixes first. Table=off adds
  none; a table number or name puts every one there; Table=auto (the default) puts them in
  the main table, except a prefix some route on the interface already covers (the one its
  address brought), and except /0, which becomes a full tunnel.
- A full tunnel, per address family: the default route in a table of its own (the
  interface's fwmark, or the first free table from 51820, which then becomes the fwmark),
  two rules (`not fwmark T table T`, so that all but the tunnel's own UDP goes there, and
  `table main suppress_prefixlength 0`, so that the main table's more specific routes
  still win), and an nftables table `wg-quick-IFNAME` that drops packets for the
  interface's addresses arriving elsewhere and copies the mark through conntrack so that
  replies to the tunnel's UDP find their way back.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pywg._config.model import AllowedIP, Endpoint, IPAddress
from pywg._constants import (
    QUICK_FALLBACK_LINK_MTU,
    QUICK_FIRST_FWMARK_TABLE,
    QUICK_MTU_OVERHEAD,
    QUICK_NFT_PRIORITY_MANGLE,
    QUICK_NFT_PRIORITY_RAW,
    QUICK_NFT_TABLE_PREFIX,
    QUICK_RT_TABLES_BUILTIN,
    RT_TABLE_MAIN,
)
from pywg._tools.quick.report import QuickError

__all__ = [
    "DefaultRoute",
    "Interface",
    "Route",
    "RouteAction",
    "Rule",
    "auto_mtu",
    "covered",
    "family_of",
    "first_free_table",
    "full_tunnel_rules",
    "mtu_endpoint_ip",
    "nft_family",
    "nft_script",
    "nft_table_name",
    "ntop",
    "ntop_network",
    "parse_rt_tables",
    "plan_routes",
    "resolve_table",
    "sort_routes",
]

Interface = ipaddress.IPv4Interface | ipaddress.IPv6Interface
_MAX_TABLE = 0xFFFFFFFF


def family_of(network: AllowedIP | Interface | IPAddress) -> int:
    return socket.AF_INET if network.version == 4 else socket.AF_INET6


def ntop(ip: IPAddress) -> str:
    """An address as the C library prints it, and so `ip`, `wg` and wg-quick: unlike
    Python, it writes ::1.2.3.4 and ::ffff:1.2.3.4 with a dotted IPv4 part."""
    return socket.inet_ntop(family_of(ip), ip.packed)


def ntop_network(network: AllowedIP) -> str:
    return f"{ntop(network.network_address)}/{network.prefixlen}"


def _ip_flag(family: int) -> str:
    return "-4" if family == socket.AF_INET else "-6"


# MTU.


def mtu_endpoint_ip(endpoint: Endpoint | None) -> IPAddress | None:
    """The address wg-quick asks the route of: none for a scoped (link-local) endpoint,
    which its pattern for `wg show endpoints` skips."""
    if endpoint is None:
        return None
    if isinstance(endpoint.ip, ipaddress.IPv6Address) and endpoint.ip.scope_id:
        return None
    return endpoint.ip


def auto_mtu(endpoint_mtus: Iterable[int | None], default_route_mtu: int | None) -> int:
    """The interface MTU when the file sets none (None: no route to that endpoint)."""
    link = max((m for m in endpoint_mtus if m), default=0)
    if not link:
        link = default_route_mtu or 0
    return (link or QUICK_FALLBACK_LINK_MTU) - QUICK_MTU_OVERHEAD


# Routes.


@dataclass(frozen=True)
class Route:
    """`ip route add NETWORK dev IFNAME [table TABLE]`."""

    network: AllowedIP
    table: int = RT_TABLE_MAIN

    def describe(self, ifname: str) -> str:
        table = "" if self.table == RT_TABLE_MAIN else f" table {self.table}"
        flag = _ip_flag(family_of(self.network))
        return f"ip {flag} route add {ntop_network(self.network)} dev {ifname}{table}"


@dataclass(frozen=True)
class DefaultRoute:
    """A /0 with Table=auto: a full tunnel for its family."""

    network: AllowedIP


@dataclass(frozen=True)
class MainRoute:
    """A route in the main table, unless a route on the interface already covers it."""

    network: AllowedIP


RouteAction = Route | DefaultRoute | MainRoute


def sort_routes(networks: Iterable[AllowedIP]) -> list[AllowedIP]:
    """In wg-quick's order, `LC_ALL=C sort -nr -k 2 -t /`: longest prefixes first, and
    between equal lengths the text backwards byte by byte (so ::/0 comes before
    0.0.0.0/0, and IPv6 goes first of the two full tunnels)."""
    return sorted(networks, key=lambda n: (n.prefixlen, ntop_network(n).encode()),
                  reverse=True)


def plan_routes(table: str | None, table_id: int | None,
                networks: Iterable[AllowedIP]) -> list[RouteAction]:
    """What to do for each allowed IP. `table` is the file's Table (None: absent);
    `table_id` its number when it is neither off nor auto."""
    if table == "off":
        return []
    actions: list[RouteAction] = []
    for network in sort_routes(networks):
        if table not in (None, "auto"):
            assert table_id is not None
            actions.append(Route(network, table_id))
        elif network.prefixlen == 0:
            actions.append(DefaultRoute(network))
        else:
            actions.append(MainRoute(network))
    return actions


def covered(network: AllowedIP, routes: Iterable[AllowedIP]) -> bool:
    """Whether one of `routes` contains `network` (`ip route show dev X match NETWORK`)."""
    return any(r.prefixlen <= network.prefixlen and network.network_address in r.network
               for r in routes)


def first_free_table(used: Iterable[int]) -> int:
    """The first table from 51820 with no route in it, IPv4 or IPv6."""
    taken = set(used)
    table = QUICK_FIRST_FWMARK_TABLE
    while table in taken:
        table += 1
    if table > _MAX_TABLE:
        raise QuickError("no free routing table for the full tunnel")
    return table


# Routing-table names, as iproute2 reads them (lib/rt_names.c).

_TABLE_LINE = re.compile(r"\s*([0-9][0-9a-fA-FxX]*)\s+(\S+)")
_TABLE_NUMBER = re.compile(r"0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*")


def _table_number(text: str) -> int | None:
    """iproute2's get_u32(text, 0): decimal, 0x hex or 0-led octal; None if neither."""
    if not _TABLE_NUMBER.fullmatch(text):
        return None
    if text[:2] in ("0x", "0X"):
        value = int(text[2:], 16)
    else:
        value = int(text, 8 if text.startswith("0") else 10)
    return value if value <= _MAX_TABLE else None


def parse_rt_tables(text: str) -> dict[str, int]:
    """The names of an rt_tables file: `NUMBER NAME` lines; comments and junk skipped."""
    names: dict[str, int] = {}
    for line in text.splitlines():
        match = _TABLE_LINE.match(line)
        if match is None:
            continue
        number = _table_number(match.group(1))
        if number is not None:
            names[match.group(2)] = number
    return names


def resolve_table(table: str, files: Sequence[str]) -> int:
    """A Table value other than off/auto as `ip route add ... table T` reads it: a number,
    or a name from the built-in names and then the rt_tables texts `files`."""
    number = _table_number(table)
    if number is not None:
        return number
    names = dict(QUICK_RT_TABLES_BUILTIN)
    for text in files:
        names.update(parse_rt_tables(text))
    if table not in names:
        raise QuickError(f"Table = {table}: no routing table of that name "
                         "(see /etc/iproute2/rt_tables)")
    return names[table]


# Policy routing for a full tunnel.


@dataclass(frozen=True)
class Rule:
    """One `ip rule`: `[not] fwmark M table T` or `table T suppress_prefixlength N`."""

    family: int
    table: int
    fwmark: int | None = None
    invert: bool = False
    suppress_prefixlength: int | None = None

    def describe(self, verb: str = "add") -> str:
        words = ["ip", _ip_flag(self.family), "rule", verb]
        if self.invert:
            words.append("not")
        if self.fwmark is not None:
            words += ["fwmark", str(self.fwmark)]
        words += ["table", "main" if self.table == RT_TABLE_MAIN else str(self.table)]
        if self.suppress_prefixlength is not None:
            words += ["suppress_prefixlength", str(self.suppress_prefixlength)]
        return " ".join(words)


def full_tunnel_rules(family: int, table: int) -> tuple[Rule, Rule]:
    """In the order wg-quick adds them (the kernel puts the later one first)."""
    return (Rule(family, table, fwmark=table, invert=True),
            Rule(family, RT_TABLE_MAIN, suppress_prefixlength=0))


def nft_family(family: int) -> str:
    return "ip" if family == socket.AF_INET else "ip6"


def nft_table_name(ifname: str) -> str:
    return f"{QUICK_NFT_TABLE_PREFIX}{ifname}"


def nft_script(ifname: str, family: int, mark: int, addresses: Iterable[Interface]) -> str:
    """The `nft -f` input of wg-quick's add_default, line for line."""
    pf = nft_family(family)
    table = f"{pf} {nft_table_name(ifname)}"
    lines = [
        f"add table {table}",
        f"add chain {table} preraw {{ type filter hook prerouting priority "
        f"{QUICK_NFT_PRIORITY_RAW}; }}",
        f"add chain {table} premangle {{ type filter hook prerouting priority "
        f"{QUICK_NFT_PRIORITY_MANGLE}; }}",
        f"add chain {table} postmangle {{ type filter hook postrouting priority "
        f"{QUICK_NFT_PRIORITY_MANGLE}; }}",
    ]
    # Packets for our tunnel addresses may only arrive through the tunnel (or locally).
    lines += [f'add rule {table} preraw iifname != "{ifname}" {pf} daddr '
              f"{ntop(a.ip)} fib saddr type != local drop"
              for a in addresses if family_of(a) == family]
    lines += [f"add rule {table} postmangle meta l4proto udp mark {mark} ct mark set mark ",
              f"add rule {table} premangle meta l4proto udp meta mark set ct mark "]
    return "".join(line + "\n" for line in lines)
