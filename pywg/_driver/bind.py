"""The UDP sockets a device listens on (wireguard-go's conn.Bind, the kernel's socket.c).

One IPv4 and one IPv6 socket on the same port, as wireguard-go opens them: with port 0 the
kernel picks the IPv4 port and the IPv6 socket must get the same one, so a clash there
starts over with a new port. A machine or namespace without IPv6 gets an IPv4 socket only.
The C data plane reads and writes the fds; this module only creates, marks and closes them.
"""

from __future__ import annotations

import errno
import socket
import struct
from dataclasses import dataclass

from pywg._constants import BIND_PORT_ATTEMPTS, UDP_SOCKET_BUFFER_BYTES

# SO_RCVBUFFORCE / SO_SNDBUFFORCE (asm-generic/socket.h): root may exceed rmem_max.
SO_SNDBUFFORCE = 32
SO_RCVBUFFORCE = 33
SO_MARK = getattr(socket, "SO_MARK", 36)
_U32 = struct.Struct("=I")


@dataclass
class Bind:
    """A pair of bound UDP sockets; `port` is the port both are bound to."""

    port: int
    sock4: socket.socket | None
    sock6: socket.socket | None

    @property
    def fd4(self) -> int:
        return self.sock4.fileno() if self.sock4 else -1

    @property
    def fd6(self) -> int:
        return self.sock6.fileno() if self.sock6 else -1

    def set_mark(self, fwmark: int) -> None:
        """SO_MARK on both sockets, so policy routing (wg-quick's full tunnel) can tell the
        tunnel's own packets from what it carries; 0 clears it."""
        # As a u32: setsockopt with a Python int passes a C int, which refuses 2^31 and up.
        mark = _U32.pack(fwmark)
        for sock in (self.sock4, self.sock6):
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, SO_MARK, mark)

    def close(self) -> None:
        for sock in (self.sock4, self.sock6):
            if sock is not None:
                sock.close()
        self.sock4 = self.sock6 = None


def open_bind(port: int, fwmark: int = 0) -> Bind:
    """Bind both families to `port` (0: a random free port). OSError(EADDRINUSE) if the
    port is taken."""
    attempts = BIND_PORT_ATTEMPTS if port == 0 else 1
    for attempt in range(attempts):
        sock4 = _udp_socket(socket.AF_INET)
        try:
            sock4.bind(("0.0.0.0", port))
            chosen = sock4.getsockname()[1]
            sock6 = _bind6(chosen)
        except OSError as e:
            sock4.close()
            if e.errno == errno.EADDRINUSE and attempt + 1 < attempts:
                continue
            raise
        bind = Bind(chosen, sock4, sock6)
        if fwmark:
            try:
                bind.set_mark(fwmark)
            except OSError:
                bind.close()
                raise
        return bind
    raise OSError(errno.EADDRINUSE, "no free UDP port")


def _bind6(port: int) -> socket.socket | None:
    try:
        sock6 = _udp_socket(socket.AF_INET6)
    except OSError as e:
        if e.errno in (errno.EAFNOSUPPORT, errno.EPROTONOSUPPORT):
            return None
        raise
    try:
        sock6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock6.bind(("::", port))
    except OSError as e:
        sock6.close()
        if e.errno == errno.EADDRNOTAVAIL:  # IPv6 disabled in this namespace
            return None
        raise
    return sock6


def _udp_socket(family: int) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_DGRAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC)
    # Large buffers absorb the bursts a batch of sealed packets makes (wireguard-go: 7 MiB).
    for forced, plain in ((SO_RCVBUFFORCE, socket.SO_RCVBUF), (SO_SNDBUFFORCE, socket.SO_SNDBUF)):
        try:
            sock.setsockopt(socket.SOL_SOCKET, forced, UDP_SOCKET_BUFFER_BYTES)
        except PermissionError:
            sock.setsockopt(socket.SOL_SOCKET, plain, UDP_SOCKET_BUFFER_BYTES)
    return sock
