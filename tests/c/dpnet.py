"""Harness for the C data plane tests with real sockets.

A `Node` is a data plane whose UDP sockets live in a network namespace the test created
(loopback only) and whose TUN is a SOCK_DGRAM socketpair: it keeps packet boundaries as a
TUN does, and the test reads and writes the other end. A `PyPeer` plays the remote peer
with the transport oracle (tests/support/transport.py, libsodium's AEAD) over a plain UDP
socket, so what the C code seals is checked by independent code, and the other way round.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass

from pywg._driver.datapath import DataPlane, Endpoint, Settings
from pywg._driver.offload import ALL as ALL_OFFLOADS
from pywg._driver.offload import Offload
from pywg._protocol.timers import Timing
from tests.harness.netns import inside
from tests.support import transport

TUN_QUEUE = 2048
LOOP4 = ipaddress.IPv4Address("127.0.0.1")
LOOP6 = ipaddress.IPv6Address("::1")
SO_RCVBUFFORCE = 33
SO_SNDBUFFORCE = 32


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Poll `condition` until it holds; bounded in time (never a timing assertion)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.005)
    return condition()


def udp_socket(ns: str, version: int, bind: str | None = None) -> socket.socket:
    """A UDP socket inside ns on loopback (`bind`: another loopback address, e.g. 127.0.0.2,
    to be another source)."""
    with inside(ns):
        family = socket.AF_INET if version == 4 else socket.AF_INET6
        sock = socket.socket(family, socket.SOCK_DGRAM)
        if version == 6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        # Room for a test's whole burst, so the kernel drops nothing before C sees it
        # (root: beyond rmem_max, as wireguard-go sets its buffers).
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 8 << 20)
        sock.bind((bind or str(LOOP4 if version == 4 else LOOP6), 0))
    return sock


def endpoint_of(sock: socket.socket) -> Endpoint:
    host, port = sock.getsockname()[:2]
    return Endpoint(ipaddress.ip_address(host), port)


@dataclass
class Node:
    dp: DataPlane
    tun: socket.socket
    dp_tun: socket.socket
    udp4: socket.socket
    udp6: socket.socket

    def endpoint(self, version: int = 4) -> Endpoint:
        return endpoint_of(self.udp4 if version == 4 else self.udp6)

    def read_tun(self, timeout: float = 5.0) -> bytes:
        self.tun.settimeout(timeout)
        return self.tun.recv(1 << 17)

    def close(self) -> None:
        self.dp.close()
        for s in (self.tun, self.dp_tun, self.udp4, self.udp6):
            s.close()


def tun_pair(ns: str) -> tuple[socket.socket, socket.socket]:
    """The TUN stand-in: a datagram socketpair made inside `ns`, whose queue then holds
    TUN_QUEUE datagrams (the namespace's net.unix.max_dgram_qlen, raised here from 10) and
    8 MB each way, so that a burst the data plane writes at once is not cut short by the
    test's reading."""
    subprocess.run(["ip", "netns", "exec", ns, "sysctl", "-qw",
                    f"net.unix.max_dgram_qlen={TUN_QUEUE}"], check=True, timeout=10)
    with inside(ns):
        pair = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    for end in pair:
        end.setsockopt(socket.SOL_SOCKET, SO_SNDBUFFORCE, 8 << 20)
    return pair


def node(ns: str, *, timing: Timing | None = None, tun: bool = True, mtu: int = 1420,
         max_peers: int = 16, event_ring_size: int = 256, vnet_hdr: bool = False,
         pi: bool = False, offloads: Offload = ALL_OFFLOADS, crypto_threads: int = 0) -> Node:
    ours, theirs = tun_pair(ns)
    udp4, udp6 = udp_socket(ns, 4), udp_socket(ns, 6)
    dp = DataPlane(Settings(
        tun_fd=theirs.fileno() if tun else -1, udp4_fd=udp4.fileno(), udp6_fd=udp6.fileno(),
        mtu=mtu, max_peers=max_peers, event_ring_size=event_ring_size, tun_vnet_hdr=vnet_hdr,
        tun_pi=pi, offloads=offloads, crypto_threads=crypto_threads,
        timing=timing or Timing()))
    return Node(dp, ours, theirs, udp4, udp6)


class PyPeer:
    """The far side, in pure Python: seals and opens with the transport oracle."""

    def __init__(self, ns: str, version: int = 4, bind: str | None = None) -> None:
        self.sock = udp_socket(ns, version, bind)
        self.rekey(int.from_bytes(os.urandom(4), "little"),
                   int.from_bytes(os.urandom(4), "little"))

    def rekey(self, local_index: int, remote_index: int = 0) -> None:
        """Fresh keys, as after another handshake. `remote_index` (the data plane's index
        for this keypair) is the one install_on gets from the data plane."""
        self.local_index, self.remote_index = local_index, remote_index
        self.send_key, self.receive_key = os.urandom(32), os.urandom(32)
        self.keypair = transport.Keypair(self.send_key, self.receive_key,
                                         local_index=local_index, remote_index=remote_index)

    @property
    def endpoint(self) -> Endpoint:
        return endpoint_of(self.sock)

    def install_on(self, dp: DataPlane, peer: int, *, initiator: bool,
                   birth_ns: int | None = None) -> None:
        """Give the data plane the mirror image of our keypair, under an index it draws (as
        for a handshake it took part in)."""
        self.remote_index = self.keypair.remote_index = dp.new_index(peer)
        dp.install_keypair(peer, local_index=self.remote_index, remote_index=self.local_index,
                           send_key=self.receive_key, receive_key=self.send_key,
                           initiator=initiator,
                           birth_ns=time.monotonic_ns() if birth_ns is None else birth_ns)

    def seal(self, packet: bytes, mtu: int = 1420) -> bytes:
        return transport.seal(self.keypair, packet, mtu)

    def send(self, datagram: bytes, to: Endpoint) -> None:
        self.sock.sendto(datagram, (str(to.address), to.port))

    def receive(self, timeout: float = 5.0) -> bytes:
        self.sock.settimeout(timeout)
        return self.sock.recv(1 << 17)

    def open(self, datagram: bytes) -> transport.Opened | None:
        return transport.open_message(self.keypair, datagram)

    def close(self) -> None:
        self.sock.close()
