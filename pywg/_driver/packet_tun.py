"""A TUN without a kernel interface: the device's end of a SOCK_SEQPACKET socketpair.

An application that embeds pywg without root (or that runs its own IP stack) holds the other
end and reads and writes whole IP packets there, one per message, as the kernel would through
/dev/net/tun: a sequenced-packet socket keeps each packet's boundaries, and the data plane
reads and writes it exactly as it does a TUN opened without a virtio header or packet info.

There is no link to watch: no MTU to poll (the owner sets it on the data plane) and no
deletion; the "interface" is gone when the application's end is closed, which the data
plane sees as a hang-up on its end.
"""

from __future__ import annotations

import select
import socket

from pywg._constants import PACKET_TUN_BUFFER_BYTES
from pywg._driver.tun import Tun, validate_ifname

__all__ = ["PacketTun"]


class PacketTun(Tun):
    """The data plane's end; `open` returns it with the application's end."""

    @classmethod
    def open(cls, name: str) -> tuple[PacketTun, socket.socket]:
        """A new pair; the application's end is non-blocking. `name` is what logs call it."""
        validate_ifname(name)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        for end in (ours, theirs):
            end.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, PACKET_TUN_BUFFER_BYTES)
            end.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, PACKET_TUN_BUFFER_BYTES)
        theirs.setblocking(False)
        return cls(fd=ours.detach(), name=name, ifindex=0, vnet_hdr=False), theirs

    def exists(self) -> bool:
        """False once the application's end is closed (a hang-up on ours)."""
        if self.fd < 0:
            return False
        poller = select.poll()
        poller.register(self.fd, select.POLLRDHUP)
        return not any(events & (select.POLLHUP | select.POLLRDHUP | select.POLLNVAL)
                       for _, events in poller.poll(0))
