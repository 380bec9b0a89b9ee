"""The routes whose MTU caps the padding: what pywg._driver.route reads of rtnetlink route
messages, checked against messages encoded by pyroute2 (another implementation of the same
wire format), and how the data plane's bounded table is filled from them."""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

from pyroute2.netlink.rtnl.rtmsg import rtmsg

from pywg._driver import route
from pywg._driver.route import RouteMtu

OURS = 7
OTHER = 3
RTN_LOCAL = 2
RT_TABLE_MAIN = 254
WG_QUICK_TABLE = 51820


def message(dst: str, *, oif: int | None = OURS, mtu: int | None = 1299,
            table: int = RT_TABLE_MAIN, kind: int = route.RTN_UNICAST, flags: int = 0,
            nexthops: list[dict[str, Any]] | None = None,
            msg_type: int = route.RTM_NEWROUTE) -> bytes:
    """A route message as the kernel sends it, encoded by pyroute2."""
    network = ipaddress.ip_network(dst)
    m = rtmsg()
    m["family"] = socket.AF_INET if network.version == 4 else socket.AF_INET6
    m["dst_len"] = network.prefixlen
    m["table"] = min(table, 255)
    m["type"] = kind
    m["flags"] = flags
    attrs: list[tuple[str, Any]] = [("RTA_TABLE", table)]
    if network.prefixlen:
        attrs.append(("RTA_DST", str(network.network_address)))
    if oif is not None:
        attrs.append(("RTA_OIF", oif))
    if nexthops is not None:
        attrs.append(("RTA_MULTIPATH", nexthops))
    if mtu is not None:
        attrs.append(("RTA_METRICS", {"attrs": [("RTAX_HOPLIMIT", 9), ("RTAX_MTU", mtu)]}))
    m["attrs"] = attrs
    m["header"]["type"] = msg_type
    m.encode()
    return bytes(m.data)


def test_routes_through_our_interface_with_an_mtu() -> None:
    messages = [
        message("10.0.0.2/32"),                                     # main table
        message("10.8.0.0/16", mtu=1280, table=WG_QUICK_TABLE),     # wg-quick's table
        message("0.0.0.0/0", mtu=1400, table=WG_QUICK_TABLE),       # a default route
        message("fd01::/64", oif=None, mtu=1290,                    # multipath, one hop ours
                nexthops=[{"oif": OTHER, "hops": 0}, {"oif": OURS, "hops": 0}]),
        message("10.1.0.0/24", oif=OTHER),                          # another interface's
        message("10.2.0.0/24", mtu=None),                           # no MTU metric
        message("10.3.0.1/32", kind=RTN_LOCAL, table=255),          # a local route
        message("10.4.0.0/24", flags=route.RTM_F_CLONED),           # a cached exception
        message("fd02::/64", oif=None, nexthops=[{"oif": OTHER, "hops": 0}]),
    ]
    assert route.mtus_through(messages, OURS) == [
        RouteMtu(ipaddress.ip_network("10.0.0.2/32"), 1299),
        RouteMtu(ipaddress.ip_network("10.8.0.0/16"), 1280),
        RouteMtu(ipaddress.ip_network("0.0.0.0/0"), 1400),
        RouteMtu(ipaddress.ip_network("fd01::/64"), 1290),
    ]


def test_messages_cut_short_are_skipped() -> None:
    whole = message("10.0.0.2/32")
    cut = [whole[:n] for n in range(len(whole))]
    # Every prefix of the message either parses as a route without the MTU (the metrics
    # come last) or not at all; none raises.
    assert route.mtus_through(cut, OURS) == []
    assert route.mtus_through([b"", b"\xff" * 64], OURS) == []


def test_a_prefix_in_two_tables_keeps_its_smaller_mtu() -> None:
    net = ipaddress.ip_network("10.0.0.0/24")
    kept, overflow = route.bound_route_mtus([RouteMtu(net, 1290), RouteMtu(net, 1280)], 64)
    assert kept == [RouteMtu(net, 1280)] and overflow == 0


def test_past_the_bound_the_smallest_mtus_stay_and_the_rest_cap_every_packet() -> None:
    routes = [RouteMtu(ipaddress.ip_network(f"10.0.{i}.0/24"), 1200 + i) for i in range(70)]
    kept, overflow = route.bound_route_mtus(reversed(routes), 64)
    assert kept == routes[:64]
    assert overflow == 1264  # the smallest MTU among the six left out
    assert route.bound_route_mtus(routes[:64], 64) == (routes[:64], 0)
    assert route.bound_route_mtus([], 64) == ([], 0)


def _monitor_fed(datagrams: list[bytes]) -> route.RouteMonitor:
    """A RouteMonitor whose socket is a datagram socketpair the test has written to."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    for d in datagrams:
        theirs.send(d)
    theirs.close()
    ours.setblocking(False)
    monitor = route.RouteMonitor.__new__(route.RouteMonitor)
    monitor._sock = ours
    return monitor


def test_the_monitor_says_which_interfaces_changed() -> None:
    monitor = _monitor_fed([message("10.0.0.2/32", msg_type=route.RTM_DELROUTE),
                            message("fd01::/64", oif=None,
                                    nexthops=[{"oif": 12, "hops": 0}])])
    try:
        changes = monitor.changes()
    finally:
        monitor.close()
    assert changes.seen and changes.interfaces == frozenset({OURS, 12})
    assert changes.touch(OURS) and not changes.touch(OTHER)


def test_the_monitor_ignores_other_messages() -> None:
    other = bytearray(message("10.0.0.2/32"))
    other[4:6] = (16).to_bytes(2, "little")  # RTM_NEWLINK
    monitor = _monitor_fed([bytes(other)])
    try:
        changes = monitor.changes()
    finally:
        monitor.close()
    assert not changes.seen and not changes.touch(OURS)
