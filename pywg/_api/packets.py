"""The packet interface of a device without a TUN: the application's side of its IP packets.

What the kernel would read from and write to a TUN, the application sends and receives here,
one whole IPv4 or IPv6 packet at a time: `send` puts a packet into the tunnel (the device
routes it to a peer by its destination, as `wg`'s allowed IPs say), `recv` returns the next
packet that came out of it (decrypted, its source checked against the sending peer's allowed
IPs). Underneath is one end of a SOCK_SEQPACKET socketpair (pywg._driver.packet_tun) whose
other end the data plane reads and writes from its own threads; `fileno()` hands it to an
application that runs its own I/O on it (a userspace IP stack, say).

The socket's buffers are bounded: a packet the application does not read in time is dropped
and counted (the device's `drops["tun_write"]`), as a full TUN queue drops it.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable

from pywg._api.errors import ClosedError, PacketError
from pywg._constants import PACKET_MAX_LEN

__all__ = ["PacketInterface"]


class PacketInterface:
    """IP packets in and out of a TUN-less device; use it on the device's event loop."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock: socket.socket | None = sock
        self._readable: asyncio.Future[None] | None = None
        self._writable: asyncio.Future[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None  # where the watchers are

    def fileno(self) -> int:
        """The application's end of the socketpair (non-blocking; one packet a message)."""
        return self._open().fileno()

    async def send(self, packet: bytes | bytearray | memoryview) -> None:
        """Put one IP packet into the tunnel; waits while the device is behind."""
        if not 0 < len(packet) <= PACKET_MAX_LEN:
            raise PacketError(f"an IP packet is 1 to {PACKET_MAX_LEN} bytes, not {len(packet)}")
        while True:
            try:
                self._open().send(packet)
                return
            except BlockingIOError:
                await self._wait(writing=True)

    async def recv(self) -> bytes:
        """The next IP packet out of the tunnel; ClosedError once the device is closed."""
        while True:
            try:
                return self._open().recv(PACKET_MAX_LEN)
            except BlockingIOError:
                await self._wait(writing=False)

    def __aiter__(self) -> PacketInterface:
        return self

    async def __anext__(self) -> bytes:
        try:
            return await self.recv()
        except ClosedError:
            raise StopAsyncIteration from None

    def close(self) -> None:
        """Close the application's end. The device sees its "interface" gone and stops
        serving, as one whose TUN was deleted; waiting senders and receivers get ClosedError.
        The device closes it itself when it closes."""
        sock, self._sock = self._sock, None
        if sock is None:
            return
        for future, writing in ((self._readable, False), (self._writable, True)):
            if future is not None:
                self._ready(sock.fileno(), future, writing)  # they wake to ClosedError
        sock.close()

    def _open(self) -> socket.socket:
        if self._sock is None:
            raise ClosedError("the device was closed")
        return self._sock

    async def _wait(self, *, writing: bool) -> None:
        # Every task waiting the same way shares one future and one loop watcher.
        fd = self._open().fileno()
        loop = self._loop = asyncio.get_running_loop()
        future = self._writable if writing else self._readable
        if future is None:
            future = loop.create_future()
            watch: Callable[..., None] = loop.add_writer if writing else loop.add_reader
            watch(fd, self._ready, fd, future, writing)
            if writing:
                self._writable = future
            else:
                self._readable = future
        await asyncio.shield(future)

    def _ready(self, fd: int, future: asyncio.Future[None], writing: bool) -> None:
        if self._loop is not None:
            (self._loop.remove_writer if writing else self._loop.remove_reader)(fd)
        if writing:
            self._writable = None
        else:
            self._readable = None
        if not future.done():
            future.set_result(None)
