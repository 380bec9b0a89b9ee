"""Where offloads could go wrong, between every pair of implementations: TCP over inner
IPv6, a tunnel MTU of 1280, an outer path MTU below the size of the sealed datagrams (so
that pywg's UDP_SEGMENT sends are refused and must fall back, and every datagram is
fragmented), and UDP super-packets from an application (USO on pywg's TUN).

Debian's wireguard-go has no offloads: whatever pywg splits must carry checksums its kernel
accepts, and whatever it sends pywg must still be coalesced correctly. Run the suite with
PYWG_DISABLE_OFFLOADS=all to check the same without any offload (the harness passes the
variable on to pywg daemons).
"""

from __future__ import annotations

import contextlib
import hashlib
import socket
import struct
from collections.abc import Iterator

import pytest

from tests.harness import links
from tests.harness.netns import inside
from tests.harness.probes import ping
from tests.harness.topology import Node, Topology
from tests.harness.transfer import checked_transfer

MB = 1 << 20
SOL_UDP = 17
UDP_SEGMENT = 103
UDP_PORT = 6002
BURST = 16
ATTEMPTS = 5


@contextlib.contextmanager
def link_mtu(tunnel: Topology, which: str, mtu: int) -> Iterator[None]:
    """Both sides' tunnel interfaces (`which` = "tunnel") or veths ("path") at `mtu`, then
    back."""
    def name(side: Node) -> str:
        return side.ifname if which == "tunnel" else side.veth

    before = {}
    for side in tunnel.sides():
        before[side.ns] = links.mtu(side.ns, name(side))
        links.set_mtu(side.ns, name(side), mtu)
    try:
        yield
    finally:
        for side in tunnel.sides():
            links.set_mtu(side.ns, name(side), before[side.ns], check=False)


def transfers(tunnel: Topology, nbytes: int, family: int = 4) -> None:
    """A checked TCP transfer each way."""
    for me in tunnel.sides():
        other = tunnel.other(me)
        checked_transfer(me.ns, other.ns, other.inner4 if family == 4 else other.inner6,
                         nbytes)


def test_tcp_over_inner_ipv6_both_ways(tunnel: Topology) -> None:
    tunnel.configure(family=6)
    ping(tunnel.a.ns, tunnel.b.inner6)
    transfers(tunnel, 20 * MB, family=6)


def test_tunnel_mtu_1280(tunnel: Topology) -> None:
    tunnel.configure()
    with link_mtu(tunnel, "tunnel", 1280):
        ping(tunnel.a.ns, tunnel.b.inner4)
        transfers(tunnel, 20 * MB)
        transfers(tunnel, 10 * MB, family=6)


def test_path_mtu_below_the_datagrams(tunnel: Topology) -> None:
    """A 1400-byte outer path under a 1420-byte tunnel: full datagrams (1480 bytes on the
    wire) are fragmented, and UDP_SEGMENT sends of them are refused."""
    tunnel.configure()
    with link_mtu(tunnel, "path", 1400):
        ping(tunnel.a.ns, tunnel.b.inner4)
        transfers(tunnel, 20 * MB)


def _datagram(seq: int, size: int) -> bytes:
    body = hashlib.sha256(seq.to_bytes(4, "big")).digest() * (size // 32 + 1)
    return seq.to_bytes(4, "big") + body[:size - 4]


def _receive(receiver: socket.socket, want: set[int], size: int) -> set[int]:
    seen: set[int] = set()
    while not want <= seen:
        try:
            data = receiver.recv(1 << 16)
        except TimeoutError:
            break
        seq = int.from_bytes(data[:4], "big")
        assert data == _datagram(seq, size), f"datagram {seq} damaged"
        seen.add(seq)
    return seen


@pytest.mark.parametrize("family", [4, 6], ids=["inner4", "inner6"])
def test_udp_super_packets_from_an_application(tunnel: Topology, family: int) -> None:
    """An application's UDP_SEGMENT sends: pywg's TUN hands them over whole (USO) and pywg
    splits them; every datagram must arrive intact (bursts a peer lost are sent again)."""
    tunnel.configure()
    a, b = tunnel.a, tunnel.b
    ping(a.ns, b.inner4)
    af = socket.AF_INET if family == 4 else socket.AF_INET6
    dest = (b.inner4 if family == 4 else b.inner6, UDP_PORT)
    size = 1000
    with inside(a.ns):
        sender = socket.socket(af, socket.SOCK_DGRAM)
    with inside(b.ns):
        receiver = socket.socket(af, socket.SOCK_DGRAM)
    try:
        receiver.bind(dest)
        receiver.settimeout(2.0)
        for burst in range(8):
            seqs = set(range(burst * BURST, (burst + 1) * BURST))
            payload = b"".join(_datagram(s, size) for s in sorted(seqs))
            seen: set[int] = set()
            for _ in range(ATTEMPTS):
                sender.sendmsg([payload], [(SOL_UDP, UDP_SEGMENT, struct.pack("=H", size))], 0,
                               dest)
                seen |= _receive(receiver, seqs - seen, size)
                if seqs <= seen:
                    break
            assert seqs <= seen, f"burst {burst}: never received {sorted(seqs - seen)}"
    finally:
        sender.close()
        receiver.close()
