"""Routes as the kernel decides them for our UDP sockets: which interface a datagram to an
endpoint leaves through, and news that the routes changed (rtnetlink, NETLINK_ROUTE).

The sticky source address needs both. A peer's replies leave from the address and through
the interface its packets came in on, as the kernel module sends them; when a route to
the peer through another interface takes precedence, the kernel module notices on its next
send (the route's device is no longer the source's) and lets the kernel choose the source
again. A userspace sender cannot see the route of each datagram, so the driver asks here
whenever the routes change, and forgets the sources whose routes moved.

Padding needs the routes through our own interface that carry an MTU metric: the kernel
module pads a packet to at most the MTU of the route it took (dst_mtu), which a route's
`mtu` sets below the interface's. `route_mtus` dumps them, `bound_route_mtus` fits them to
the data plane's table, and the monitor says when the routes through an interface changed.

All of them talk to the kernel of the namespace the daemon (and so its UDP sockets) runs in.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import os
import socket
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

__all__ = ["RouteChanges", "RouteMonitor", "RouteMtu", "bound_route_mtus", "output_interface",
           "route_mtus"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# linux/netlink.h and linux/rtnetlink.h.
NETLINK_ROUTE = 0
SOL_NETLINK, NETLINK_GET_STRICT_CHK = 270, 12
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_REQUEST, NLM_F_MULTI, NLM_F_DUMP = 0x1, 0x2, 0x300
RTM_NEWROUTE, RTM_DELROUTE, RTM_GETROUTE = 24, 25, 26
RTA_DST, RTA_SRC, RTA_OIF, RTA_METRICS, RTA_MULTIPATH, RTA_MARK = 1, 2, 4, 8, 9, 16
RTAX_MTU = 2
NLA_TYPE_MASK = 0x3FFF  # without NLA_F_NESTED and NLA_F_NET_BYTEORDER
RTN_UNICAST = 1
RTM_F_CLONED = 0x200
RTMGRP_IPV4_ROUTE, RTMGRP_IPV6_ROUTE = 0x40, 0x400

_NLMSGHDR = struct.Struct("=IHHII")
_RTMSG = struct.Struct("=BBBBBBBBI")
_RTATTR = struct.Struct("=HH")
_ERROR = struct.Struct("=i")
_U32 = struct.Struct("=I")
_RTNEXTHOP = struct.Struct("=HBBi")
LOOKUP_TIMEOUT_S = 1.0
RECV_SIZE = 65536


def _attr(kind: int, data: bytes) -> bytes:
    raw = _RTATTR.pack(_RTATTR.size + len(data), kind) + data
    return raw + b"\0" * (-len(raw) % 4)


def _request(dst: IPAddress, src: IPAddress | None, mark: int, seq: int) -> bytes:
    family = socket.AF_INET if dst.version == 4 else socket.AF_INET6
    bits = dst.max_prefixlen
    body = _RTMSG.pack(family, bits, bits if src is not None else 0, 0, 0, 0, 0, 0, 0)
    body += _attr(RTA_DST, dst.packed)
    if src is not None:
        body += _attr(RTA_SRC, src.packed)
    if mark:
        body += _attr(RTA_MARK, _U32.pack(mark))
    return _NLMSGHDR.pack(_NLMSGHDR.size + len(body), RTM_GETROUTE, NLM_F_REQUEST, seq, 0) + body


def _attrs(data: bytes, offset: int) -> dict[int, bytes]:
    found = {}
    while offset + _RTATTR.size <= len(data):
        length, kind = _RTATTR.unpack_from(data, offset)
        if length < _RTATTR.size:
            break
        found[kind] = data[offset + _RTATTR.size:offset + length]
        offset += (length + 3) & ~3
    return found


def _oif_from_reply(reply: bytes, seq: int) -> int | None:
    offset = 0
    while offset + _NLMSGHDR.size <= len(reply):
        length, kind, _flags, got_seq, _pid = _NLMSGHDR.unpack_from(reply, offset)
        if length < _NLMSGHDR.size:
            break
        message = reply[offset:offset + length]
        offset += (length + 3) & ~3
        if got_seq != seq:
            continue
        if kind == NLMSG_ERROR:
            return None  # no route (or a source that is no longer ours)
        if kind == RTM_NEWROUTE:
            oif = _attrs(message, _NLMSGHDR.size + _RTMSG.size).get(RTA_OIF)
            return _U32.unpack(oif)[0] if oif and len(oif) == _U32.size else None
    return None


def output_interface(dst: IPAddress, src: IPAddress | None = None, mark: int = 0) -> int | None:
    """The index of the interface a datagram to dst (from src, with fwmark `mark`) leaves
    through, as `ip route get DST from SRC mark MARK` shows it; None if there is no route
    or the kernel cannot say."""
    try:
        with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                           NETLINK_ROUTE) as sock:
            sock.settimeout(LOOKUP_TIMEOUT_S)
            sock.bind((0, 0))
            sock.send(_request(dst, src, mark, 1))
            return _oif_from_reply(sock.recv(RECV_SIZE), 1)
    except OSError:
        return None


# ---- the routes through an interface that carry an MTU ------------------------------------

class RouteMtu(NamedTuple):
    network: IPNetwork
    mtu: int


@dataclass(frozen=True, slots=True)
class _Route:
    """What one RTM_NEWROUTE or RTM_DELROUTE says that matters here."""

    family: int
    network: IPNetwork | None  # None: not an IPv4 or IPv6 route
    kind: int  # RTN_*
    flags: int  # RTM_F_*
    interfaces: frozenset[int]  # its output interface, or each of its nexthops'
    mtu: int  # its MTU metric; 0: none


def _parse_route(message: bytes) -> _Route | None:
    """A route message (netlink header included), or None if it is cut short."""
    if len(message) < _NLMSGHDR.size + _RTMSG.size:
        return None
    family, dst_len, _src, _tos, _table, _proto, _scope, kind, flags = _RTMSG.unpack_from(
        message, _NLMSGHDR.size)
    attrs = _attrs(message, _NLMSGHDR.size + _RTMSG.size)
    interfaces = set(_nexthop_interfaces(attrs.get(RTA_MULTIPATH, b"")))
    oif = attrs.get(RTA_OIF)
    if oif is not None and len(oif) == _U32.size:
        interfaces.add(_U32.unpack(oif)[0])
    return _Route(family, _network(family, attrs.get(RTA_DST), dst_len), kind, flags,
                  frozenset(interfaces), _metric(attrs.get(RTA_METRICS, b""), RTAX_MTU))


def _network(family: int, dst: bytes | None, length: int) -> IPNetwork | None:
    size = 4 if family == socket.AF_INET else 16 if family == socket.AF_INET6 else 0
    if not size or length > size * 8 or (dst is not None and len(dst) != size):
        return None
    address = ipaddress.ip_address(dst if dst is not None else bytes(size))
    return ipaddress.ip_network((address, length), strict=False)


def _nexthop_interfaces(data: bytes) -> Iterable[int]:
    """The interfaces of a multipath route's nexthops (struct rtnexthop, each followed by
    its own attributes)."""
    offset = 0
    while offset + _RTNEXTHOP.size <= len(data):
        length, _flags, _hops, ifindex = _RTNEXTHOP.unpack_from(data, offset)
        if length < _RTNEXTHOP.size:
            break
        yield ifindex
        offset += (length + 3) & ~3


def _metric(data: bytes, kind: int) -> int:
    """One RTAX_* value of a route's RTA_METRICS (nested attributes), 0 if absent."""
    offset = 0
    while offset + _RTATTR.size <= len(data):
        length, got = _RTATTR.unpack_from(data, offset)
        if length < _RTATTR.size or offset + length > len(data):
            break
        if got & NLA_TYPE_MASK == kind and length == _RTATTR.size + _U32.size:
            return int(_U32.unpack_from(data, offset + _RTATTR.size)[0])
        offset += (length + 3) & ~3
    return 0


def _messages(data: bytes) -> Iterable[tuple[int, int, bytes]]:
    """(type, sequence number, message) of each netlink message in one read."""
    offset = 0
    while offset + _NLMSGHDR.size <= len(data):
        length, kind, _flags, seq, _pid = _NLMSGHDR.unpack_from(data, offset)
        if length < _NLMSGHDR.size:
            break
        yield kind, seq, data[offset:offset + length]
        offset += (length + 3) & ~3


def mtus_through(messages: Iterable[bytes], ifindex: int) -> list[RouteMtu]:
    """The unicast routes among `messages` (RTM_NEWROUTE, header included) that leave
    through `ifindex`, alone or as one of their nexthops, and carry an MTU metric. Routes
    of every table count: which table the kernel consults for a packet depends on rules a
    data plane cannot evaluate, and a route counted that the kernel would not take only
    pads a packet less, where one missed pads it past the route's MTU."""
    found = []
    for message in messages:
        r = _parse_route(message)
        if (r is not None and r.network is not None and r.kind == RTN_UNICAST and r.mtu
                and not r.flags & RTM_F_CLONED and ifindex in r.interfaces):
            found.append(RouteMtu(r.network, r.mtu))
    return found


def bound_route_mtus(routes: Iterable[RouteMtu], limit: int) -> tuple[list[RouteMtu], int]:
    """(at most `limit` routes, a cap for every packet or 0): the data plane's table.

    A prefix in several tables keeps its smallest MTU. Past the limit, the routes with the
    smallest MTUs are kept and the smallest MTU of the rest caps every packet: a packet to
    a route left out is never padded past that route's MTU, and others lose only some
    padding."""
    merged: dict[IPNetwork, int] = {}
    for network, mtu in routes:
        merged[network] = min(mtu, merged.get(network, mtu))
    ordered = sorted((RouteMtu(n, m) for n, m in merged.items()),
                     key=lambda r: (r.mtu, r.network.version, -r.network.prefixlen,
                                    r.network.network_address.packed))
    rest = ordered[limit:]
    return ordered[:limit], min((r.mtu for r in rest), default=0)


def _dump_request(family: int, ifindex: int, seq: int) -> bytes:
    # With strict checking the kernel keeps only the routes through ifindex (Linux 4.20+);
    # without, it ignores the attribute and mtus_through filters.
    body = _RTMSG.pack(family, 0, 0, 0, 0, 0, 0, 0, 0) + _attr(RTA_OIF, _U32.pack(ifindex))
    return _NLMSGHDR.pack(_NLMSGHDR.size + len(body), RTM_GETROUTE,
                          NLM_F_REQUEST | NLM_F_DUMP, seq, 0) + body


def _dump(sock: socket.socket, request: bytes, seq: int) -> list[bytes]:
    """The RTM_NEWROUTE messages of one dump; OSError if the kernel refuses it."""
    sock.send(request)
    found: list[bytes] = []
    while True:
        for kind, got_seq, message in _messages(sock.recv(RECV_SIZE)):
            if got_seq != seq:
                continue
            if kind == NLMSG_DONE:
                return found
            if kind == NLMSG_ERROR:
                code = _ERROR.unpack_from(message, _NLMSGHDR.size)[0] \
                    if len(message) >= _NLMSGHDR.size + _ERROR.size else -errno.EIO
                raise OSError(-code, os.strerror(-code))
            if kind == RTM_NEWROUTE:
                found.append(message)


def route_mtus(ifindex: int) -> list[RouteMtu]:
    """The routes through `ifindex` (in this namespace, every table) that carry an MTU
    metric, IPv4 and IPv6; OSError if the kernel cannot say."""
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                       NETLINK_ROUTE) as sock:
        sock.settimeout(LOOKUP_TIMEOUT_S)
        sock.bind((0, 0))
        with contextlib.suppress(OSError):
            sock.setsockopt(SOL_NETLINK, NETLINK_GET_STRICT_CHK, 1)
        messages: list[bytes] = []
        for seq, family in enumerate((socket.AF_INET, socket.AF_INET6), start=1):
            try:
                messages += _dump(sock, _dump_request(family, ifindex, seq), seq)
            except OSError as e:
                # A kernel without IPv6 has no IPv6 routes to tell of.
                if family != socket.AF_INET6 or e.errno != errno.EAFNOSUPPORT:
                    raise
    return mtus_through(messages, ifindex)


# ---- news of route changes -----------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class RouteChanges:
    """What one drain of the monitor saw."""

    seen: bool  # a route was added or removed (or news was lost)
    interfaces: frozenset[int] | None  # the interfaces they leave through; None: unknown

    def touch(self, ifindex: int) -> bool:
        return self.interfaces is None or ifindex in self.interfaces


class RouteMonitor:
    """A netlink socket told of every IPv4 and IPv6 route added or removed; `changes()`
    drains it and says which interfaces the routes that came leave through (non-blocking,
    for an event loop's reader)."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_NONBLOCK
                                   | socket.SOCK_CLOEXEC, NETLINK_ROUTE)
        try:
            self._sock.bind((0, RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_ROUTE))
        except OSError:
            self._sock.close()
            raise

    def fileno(self) -> int:
        return self._sock.fileno()

    def changes(self) -> RouteChanges:
        interfaces: set[int] | None = set()
        seen = False
        while True:
            try:
                data = self._sock.recv(RECV_SIZE)
            except BlockingIOError:
                break
            except OSError as e:
                # ENOBUFS: notifications were lost, so anything may have changed.
                if e.errno == errno.ENOBUFS:
                    seen, interfaces = True, None
                    continue
                break
            for kind, _seq, message in _messages(data):
                if kind not in (RTM_NEWROUTE, RTM_DELROUTE):
                    continue
                seen = True
                r = _parse_route(message)
                if interfaces is not None and r is not None:
                    interfaces |= r.interfaces
        return RouteChanges(seen, None if interfaces is None else frozenset(interfaces))

    def close(self) -> None:
        self._sock.close()

