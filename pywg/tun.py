"""The TUN interface: opened with the TUN ioctls, watched and configured through netlink.

The TUN fd is what the C data plane reads and writes; this module only creates it (or adopts
one passed in with WG_TUN_FD), names it, sets its initial MTU as wireguard-go does, and
watches rtnetlink for the two facts the driver needs: the MTU changed (padding depends on
it) and the interface is gone (the daemon must exit). Netlink messages are parsed by
pyroute2, never packed by hand.
"""

from __future__ import annotations

import errno
import fcntl
import os
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.rtnl.marshal import MarshalRtnl

from pywg import constants

# Linux ABI (include/uapi/linux/if_tun.h); Debian's headers lack the USO flags.
TUNSETIFF = 0x400454CA
TUNGETIFF = 0x800454D2
TUNSETOFFLOAD = 0x400454D0
TUNSETVNETHDRSZ = 0x400454D8
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
IFF_VNET_HDR = 0x4000
IFNAMSIZ = 16
RTMGRP_LINK = 1

_IFREQ = struct.Struct("16sH22x")


class TunError(OSError):
    """The TUN could not be created, adopted or configured."""


@dataclass
class Tun:
    """An open TUN device. The fd is non-blocking and owned by this object."""

    fd: int
    name: str
    ifindex: int
    vnet_hdr: bool
    pi: bool = False  # opened without IFF_NO_PI: packets carry a 4-byte packet-info header

    @classmethod
    def create(cls, name: str, *, vnet_hdr: bool = False, mtu: int = constants.DEFAULT_MTU) -> Tun:
        """Create (or attach to) the TUN called `name` and set its MTU, as wireguard-go does."""
        validate_ifname(name)
        flags = IFF_TUN | IFF_NO_PI | (IFF_VNET_HDR if vnet_hdr else 0)
        fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            reply = fcntl.ioctl(fd, TUNSETIFF, _IFREQ.pack(name.encode(), flags))
            tun = cls._describe(fd, reply)
            set_mtu(tun.ifindex, mtu)
        except OSError as e:
            os.close(fd)
            raise TunError(e.errno, f"cannot create TUN {name}: {e.strerror}") from e
        return tun

    @classmethod
    def adopt(cls, fd: int, *, mtu: int = constants.DEFAULT_MTU) -> Tun:
        """Take over a TUN fd opened by someone else (WG_TUN_FD), opened with or without
        IFF_NO_PI, and set its MTU as wireguard-go does."""
        try:
            reply = fcntl.ioctl(fd, TUNGETIFF, _IFREQ.pack(b"", 0))
            os.set_blocking(fd, False)
            tun = cls._describe(fd, reply)
            set_mtu(tun.ifindex, mtu)
        except OSError as e:
            raise TunError(e.errno, f"fd {fd} is not a usable TUN: {e.strerror}") from e
        return tun

    @classmethod
    def _describe(cls, fd: int, ifreq: bytes) -> Tun:
        raw_name, flags = _IFREQ.unpack(ifreq)
        name = raw_name.rstrip(b"\0").decode()
        flags = _sysfs_flags(name, flags)
        return cls(fd=fd, name=name, ifindex=socket.if_nametoindex(name),
                   vnet_hdr=bool(flags & IFF_VNET_HDR), pi=not flags & IFF_NO_PI)

    def exists(self) -> bool:
        """False once the interface has been deleted. True after a move to another
        namespace, where the fd keeps working although the name no longer resolves here."""
        try:
            fcntl.ioctl(self.fd, TUNGETIFF, _IFREQ.pack(b"", 0))
        except OSError as e:
            if e.errno in (errno.EBADFD, errno.ENODEV, errno.EBADF):
                return False
            raise
        return True

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _sysfs_flags(name: str, ioctl_flags: int) -> int:
    """The TUN's flags as sysfs shows them. TUNGETIFF reports IFF_NO_PI even for a TUN
    opened without it (seen on Linux 6.18), so it cannot tell an adopted TUN's framing."""
    try:
        with open(f"/sys/class/net/{name}/tun_flags", encoding="ascii") as f:
            return int(f.read().strip(), 16)
    except (OSError, ValueError):
        return ioctl_flags


def validate_ifname(name: str) -> None:
    """The kernel's rules for an interface name (dev_valid_name)."""
    if not name or len(name.encode()) >= IFNAMSIZ or name in (".", "..") or any(
        c in name for c in "/: \t\n"
    ):
        raise TunError(errno.EINVAL, f"invalid interface name {name!r}")


def set_mtu(ifindex: int, mtu: int) -> None:
    with IPRoute() as ipr:
        ipr.link("set", index=ifindex, mtu=mtu)


def get_mtu(ifindex: int) -> int | None:
    """The MTU, or None when the interface is not visible in this namespace."""
    with IPRoute() as ipr:
        try:
            links = ipr.get_links(ifindex)
        except NetlinkError:
            return None
        return int(links[0].get("mtu")) if links else None


class LinkMonitor:
    """rtnetlink link events for one interface, read on the event loop.

    A non-blocking NETLINK_ROUTE socket subscribed to RTMGRP_LINK; pyroute2's marshal turns
    the datagrams into messages. `on_mtu(mtu)` runs when the MTU changes and `on_gone()` when
    the link disappears from this namespace (the caller checks Tun.exists() to tell a
    deletion from a move to another namespace).
    """

    def __init__(self, ifindex: int, on_mtu: Callable[[int], None], on_gone: Callable[[], None]):
        self.ifindex = ifindex
        self._on_mtu = on_mtu
        self._on_gone = on_gone
        self._marshal = MarshalRtnl()
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_NONBLOCK,
                                  socket.NETLINK_ROUTE)
        self.sock.bind((0, RTMGRP_LINK))

    def fileno(self) -> int:
        return self.sock.fileno()

    def readable(self) -> None:
        """Drain the socket; call when the loop reports it readable."""
        while True:
            try:
                data = self.sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                if e.errno == errno.ENOBUFS:  # overrun: events were lost, nothing to replay
                    continue
                raise
            for msg in self._marshal.parse(data):
                self._dispatch(msg)

    def _dispatch(self, msg: object) -> None:
        get = getattr(msg, "get", None)
        if get is None or get("index") != self.ifindex:
            return
        event = get("event")
        if event == "RTM_DELLINK":
            self._on_gone()
        elif event == "RTM_NEWLINK" and get("mtu") is not None:
            self._on_mtu(int(get("mtu")))

    def close(self) -> None:
        self.sock.close()
