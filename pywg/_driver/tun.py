"""The TUN interface: created and set up with the TUN and interface ioctls.

The TUN fd is what the C data plane reads and writes; this module only creates it (or adopts
one passed in with WG_TUN_FD), names it and sets its initial MTU and queue length, with the
same SIOCSIFMTU ioctl wireguard-go uses (and SIOCSIFTXQLEN beside it). Afterwards the driver
needs two facts about it, which it polls cheaply on its timer tick instead of holding a
netlink subscription open: the MTU (padding depends on it: one SIOCGIFMTU ioctl) and whether
the interface still exists (the TUN fd itself tells). That keeps pyroute2, and the 10 MB
its import costs, out of the long-running daemon; `pywg up` uses it for addresses and routes.
"""

from __future__ import annotations

import errno
import fcntl
import os
import socket
import struct
from dataclasses import dataclass

from pywg import _constants as constants
from pywg._driver.offload import TUN_OFFLOADS, Offload

# Linux ABI (include/uapi/linux/if_tun.h); Debian's headers lack the USO flags.
TUNSETIFF = 0x400454CA
TUNGETIFF = 0x800454D2
TUNSETOFFLOAD = 0x400454D0
TUNSETVNETHDRSZ = 0x400454D8
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
IFF_VNET_HDR = 0x4000
TUN_F_CSUM = 0x01
TUN_F_TSO4 = 0x02
TUN_F_TSO6 = 0x04
TUN_F_USO4 = 0x20  # Linux 6.2
TUN_F_USO6 = 0x40
IFNAMSIZ = 16
SIOCGIFMTU = 0x8921  # linux/sockios.h
SIOCSIFMTU = 0x8922
SIOCSIFTXQLEN = 0x8943

_IFREQ = struct.Struct("16sH22x")
_IFREQ_INT = struct.Struct("16si20x")


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
    offloads: Offload = Offload.NONE  # the TUN offloads in effect (see `negotiate`)

    @classmethod
    def create(cls, name: str, *, offloads: Offload = Offload.NONE,
               mtu: int = constants.DEFAULT_MTU) -> Tun:
        """Create (or attach to) the TUN called `name` and set its MTU, as wireguard-go does;
        with any TUN offload asked for, with a virtio header and those offloads negotiated."""
        validate_ifname(name)
        vnet_hdr = bool(offloads & TUN_OFFLOADS)
        flags = IFF_TUN | IFF_NO_PI | (IFF_VNET_HDR if vnet_hdr else 0)
        fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            reply = fcntl.ioctl(fd, TUNSETIFF, _IFREQ.pack(name.encode(), flags))
            tun = cls._describe(fd, reply)
            tun.negotiate(offloads)
            set_up(tun.name, mtu)
        except OSError as e:
            os.close(fd)
            raise TunError(e.errno, f"cannot create TUN {name}: {e.strerror}") from e
        return tun

    def negotiate(self, wanted: Offload) -> Offload:
        """Ask the kernel for the TUN offloads in `wanted` that it has; sets and returns
        `offloads`. Only a TUN with a virtio header can have any.

        TSO and USO decide what the kernel hands us (TUNSETOFFLOAD, with checksum offload,
        which both need); coalesced writes need no negotiation, but UDP ones need a kernel
        that knows GSO_UDP_L4, and one that accepts TUN_F_USO4/6 does (Linux 6.2). Called
        again on an adopted TUN, it finds the same answer.
        """
        self.offloads = Offload.NONE
        if not self.vnet_hdr:
            return self.offloads
        uso = _set_offload(self.fd, TUN_F_CSUM | TUN_F_USO4 | TUN_F_USO6)
        flags = 0
        if Offload.TUN_TSO in wanted:
            flags |= TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6
        if Offload.TUN_USO in wanted and uso:
            flags |= TUN_F_CSUM | TUN_F_USO4 | TUN_F_USO6
        if not _set_offload(self.fd, flags):
            flags = 0
            _set_offload(self.fd, 0)
        if flags & TUN_F_TSO4:
            self.offloads |= Offload.TUN_TSO
        if flags & TUN_F_USO4:
            self.offloads |= Offload.TUN_USO
        self.offloads |= wanted & Offload.TUN_TCP_GRO
        if uso:
            self.offloads |= wanted & Offload.TUN_UDP_GRO
        return self.offloads

    @classmethod
    def adopt(cls, fd: int) -> Tun:
        """Take over a TUN fd opened by someone else (WG_TUN_FD), with or without
        IFF_NO_PI. Its MTU is left as its creator set it."""
        try:
            reply = fcntl.ioctl(fd, TUNGETIFF, _IFREQ.pack(b"", 0))
            os.set_blocking(fd, False)
            return cls._describe(fd, reply)
        except OSError as e:
            raise TunError(e.errno, f"fd {fd} is not a usable TUN: {e.strerror}") from e

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


def _set_offload(fd: int, flags: int) -> bool:
    """TUNSETOFFLOAD; False if the kernel does not know one of the flags."""
    try:
        fcntl.ioctl(fd, TUNSETOFFLOAD, flags)
    except OSError as e:
        if e.errno == errno.EINVAL:
            return False
        raise
    return True


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


def set_up(name: str, mtu: int) -> None:
    """The new interface's MTU and transmit queue length (OSError when refused).

    The queue is where the kernel holds packets for our reader; the default 500 overflows
    (and TCP backs off) whenever the reader thread is briefly descheduled, so it gets the
    Ethernet default of 1000.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for request, value in ((SIOCSIFMTU, mtu), (SIOCSIFTXQLEN, constants.TUN_TX_QUEUE_LEN)):
            # ifr_mtu and ifr_qlen share the int right after the name.
            fcntl.ioctl(sock.fileno(), request, _IFREQ_INT.pack(name.encode(), value))


def in_this_namespace(ifindex: int, name: str) -> bool:
    """Whether the interface `name` is still `ifindex` here (not moved to another
    namespace, its index not taken by another interface since)."""
    try:
        return socket.if_indextoname(ifindex) == name
    except OSError:
        return False


def get_mtu(ifindex: int, name: str | None = None) -> int | None:
    """The MTU, or None when the interface is not (or no longer) in this namespace; with
    `name`, only if the index still carries that name (it was not moved and replaced)."""
    try:
        found = socket.if_indextoname(ifindex)
        if name is not None and found != name:
            return None
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            reply = fcntl.ioctl(sock.fileno(), SIOCGIFMTU, _IFREQ_INT.pack(found.encode(), 0))
    except OSError:
        return None
    return int(_IFREQ_INT.unpack(reply)[1])
