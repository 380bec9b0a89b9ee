"""Routes as the kernel decides them for our UDP sockets: which interface a datagram to an
endpoint leaves through, and news that the routes changed (rtnetlink, NETLINK_ROUTE).

The sticky source address needs both. A peer's replies leave from the address and through
the interface its packets came in on, as the kernel module sends them; when a route to
the peer through another interface takes precedence, the kernel module notices on its next
send (the route's device is no longer the source's) and lets the kernel choose the source
again. A userspace sender cannot see the route of each datagram, so the driver asks here
whenever the routes change, and forgets the sources whose routes moved.

Both talk to the kernel of the namespace the daemon (and so its UDP sockets) runs in.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
import struct

__all__ = ["RouteMonitor", "output_interface"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# linux/netlink.h and linux/rtnetlink.h.
NETLINK_ROUTE = 0
NLMSG_ERROR = 2
NLM_F_REQUEST = 0x1
RTM_NEWROUTE, RTM_DELROUTE, RTM_GETROUTE = 24, 25, 26
RTA_DST, RTA_SRC, RTA_OIF, RTA_MARK = 1, 2, 4, 16
RTMGRP_IPV4_ROUTE, RTMGRP_IPV6_ROUTE = 0x40, 0x400

_NLMSGHDR = struct.Struct("=IHHII")
_RTMSG = struct.Struct("=BBBBBBBBI")
_RTATTR = struct.Struct("=HH")
_ERROR = struct.Struct("=i")
_U32 = struct.Struct("=I")
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


class RouteMonitor:
    """A netlink socket told of every IPv4 and IPv6 route added or removed; `changed()`
    drains it and says whether any came (non-blocking, for an event loop's reader)."""

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

    def changed(self) -> bool:
        seen = False
        while True:
            try:
                data = self._sock.recv(RECV_SIZE)
            except BlockingIOError:
                return seen
            except OSError as e:
                # ENOBUFS: notifications were lost, so anything may have changed.
                if e.errno == errno.ENOBUFS:
                    seen = True
                    continue
                return seen
            seen = seen or _has_route_message(data)

    def close(self) -> None:
        self._sock.close()


def _has_route_message(data: bytes) -> bool:
    offset = 0
    while offset + _NLMSGHDR.size <= len(data):
        length, kind, _flags, _seq, _pid = _NLMSGHDR.unpack_from(data, offset)
        if kind in (RTM_NEWROUTE, RTM_DELROUTE):
            return True
        if length < _NLMSGHDR.size:
            break
        offset += (length + 3) & ~3
    return False
