"""The links, addresses, routes and rules of `pywg up`, through netlink (pyroute2).

Each change is sent as `ip` would send it, so that what pywg adds cannot be told from what
wg-quick adds, and either tool removes the other's: routes with `proto boot` and, for IPv4
without a gateway, `scope link`; rules without a priority, so that the kernel puts each new
one just before the first, as for `ip rule add`. Failures become QuickError with the step
and the kernel's reason.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Iterator
from types import TracebackType
from typing import Any

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from pywg._config.model import AllowedIP, IPAddress
from pywg._constants import (
    FIB_RULE_INVERT,
    FRA_SUPPRESS_PREFIXLEN_UNSET,
    RT_SCOPE_LINK,
    RT_SCOPE_UNIVERSE,
    RT_TABLE_MAIN,
    RTPROT_BOOT,
)
from pywg._tools.quick.plan import Interface, Route, Rule, family_of
from pywg._tools.quick.report import QuickError

__all__ = ["Netlink"]

_FAMILIES = (socket.AF_INET, socket.AF_INET6)


def _failed(what: str, e: NetlinkError) -> QuickError:
    code = e.code if isinstance(e.code, int) and e.code > 0 else 0
    reason = os.strerror(code) if code else str(e)
    return QuickError(f"{what}: {reason}")


def _table_of(msg: Any) -> int:
    table = msg.get("RTA_TABLE")
    return int(table if table is not None else msg["table"])


class Netlink:
    """One rtnetlink socket in the current network namespace."""

    def __init__(self) -> None:
        try:
            self._ipr = IPRoute()
        except OSError as e:
            raise QuickError(f"cannot open a netlink socket: {e.strerror}") from e

    def close(self) -> None:
        self._ipr.close()

    def __enter__(self) -> Netlink:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _do(self, what: str, method: str, *args: Any, **kwargs: Any) -> Any:
        try:
            return getattr(self._ipr, method)(*args, **kwargs)
        except NetlinkError as e:
            raise _failed(what, e) from e

    # Links.

    def link_index(self, ifname: str) -> int | None:
        found = self._do(f"look up {ifname}", "link_lookup", ifname=ifname)
        return int(found[0]) if found else None

    def link_mtu(self, index: int) -> int:
        links = self._do(f"read link {index}", "get_links", index)
        return int(links[0].get("IFLA_MTU"))

    def set_mtu_up(self, index: int, mtu: int, what: str) -> None:
        self._do(what, "link", "set", index=index, mtu=mtu, state="up")

    def delete_link(self, index: int, what: str) -> None:
        self._do(what, "link", "del", index=index)

    # Addresses.

    def add_address(self, index: int, address: Interface, what: str) -> None:
        self._do(what, "addr", "add", index=index, address=str(address.ip),
                 prefixlen=address.network.prefixlen)

    def addresses(self, index: int, family: int = socket.AF_UNSPEC) -> list[Interface]:
        """The link's addresses in the kernel's order (IPv4 first), as `ip addr` lists."""
        found = self._do(f"list the addresses of link {index}", "get_addr", index=index,
                         family=family)
        return [ipaddress.ip_interface((str(m.get("IFA_ADDRESS")), int(m["prefixlen"])))
                for m in found if m.get("IFA_ADDRESS") is not None]

    # Routes.

    def route_mtu(self, ip: IPAddress) -> int | None:
        """`ip route get IP`: the route's MTU, else its device's; None if unroutable."""
        try:
            found = self._ipr.route("get", dst=str(ip))
        except NetlinkError:
            return None
        return self._mtu_of(found[0]) if found else None

    def default_route_mtu(self) -> int | None:
        """The same for the main table's first IPv4 default route (`ip route show default`)."""
        routes = self._do("list the main table", "get_routes", family=socket.AF_INET,
                          table=RT_TABLE_MAIN)
        for msg in routes:
            if msg["dst_len"] == 0 and _table_of(msg) == RT_TABLE_MAIN:
                return self._mtu_of(msg)
        return None

    def _mtu_of(self, msg: Any) -> int | None:
        metrics = msg.get("RTA_METRICS")
        mtu = metrics.get("RTAX_MTU") if metrics is not None else None
        if mtu:
            return int(mtu)
        oif = msg.get("RTA_OIF")
        return self.link_mtu(int(oif)) if oif is not None else None

    def _routes(self, family: int) -> Iterator[Any]:
        yield from self._do("list routes", "get_routes", family=family)

    def main_routes_via(self, index: int, family: int) -> list[AllowedIP]:
        """The destinations of the main table's routes through link `index`."""
        out: list[AllowedIP] = []
        for msg in self._routes(family):
            if _table_of(msg) != RT_TABLE_MAIN or msg.get("RTA_OIF") != index:
                continue
            dst = msg.get("RTA_DST") or ("0.0.0.0" if family == socket.AF_INET else "::")
            out.append(AllowedIP.of(ipaddress.ip_network(f"{dst}/{msg['dst_len']}",
                                                         strict=False)))
        return out

    def used_tables(self) -> set[int]:
        """Every table that holds a route, IPv4 or IPv6."""
        return {_table_of(msg) for family in _FAMILIES for msg in self._routes(family)}

    def add_route(self, route: Route, index: int, what: str) -> None:
        family = family_of(route.network)
        scope = RT_SCOPE_LINK if family == socket.AF_INET else RT_SCOPE_UNIVERSE
        self._do(what, "route", "add", dst=str(route.network), oif=index, table=route.table,
                 proto=RTPROT_BOOT, scope=scope, family=family)

    # Rules.

    def rules(self, family: int) -> list[tuple[int, Rule]]:
        """(priority, rule) for each rule of `family` that a Rule can describe."""
        out = []
        for msg in self._do("list rules", "get_rules", family=family):
            suppress = msg.get("FRA_SUPPRESS_PREFIXLEN")
            rule = Rule(family, _table_of_rule(msg), msg.get("FRA_FWMARK"),
                        bool(msg["flags"] & FIB_RULE_INVERT),
                        None if suppress in (None, FRA_SUPPRESS_PREFIXLEN_UNSET)
                        else int(suppress))
            out.append((int(msg.get("FRA_PRIORITY") or 0), rule))
        return out

    def add_rule(self, rule: Rule, what: str) -> None:
        # priority=None: no FRA_PRIORITY, so the kernel chooses as it does for `ip rule`.
        self._do(what, "rule", "add", priority=None, **_rule_fields(rule))

    def delete_rule(self, rule: Rule, priority: int, what: str) -> None:
        self._do(what, "rule", "delete", priority=priority, **_rule_fields(rule))


def _table_of_rule(msg: Any) -> int:
    table = msg.get("FRA_TABLE")
    return int(table if table is not None else msg["table"])


def _rule_fields(rule: Rule) -> dict[str, int]:
    fields = {"family": rule.family, "table": rule.table}
    if rule.invert:
        fields["flags"] = FIB_RULE_INVERT
    if rule.fwmark is not None:
        fields["fwmark"] = rule.fwmark
    if rule.suppress_prefixlength is not None:
        fields["suppress_prefixlen"] = rule.suppress_prefixlength
    return fields
