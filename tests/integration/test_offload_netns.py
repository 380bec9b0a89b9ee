"""UDP super-packets through two C data planes on real TUNs, judged by the kernel.

An application in A sends with UDP_SEGMENT, so A's kernel hands A's data plane USO
super-packets (TUN_F_USO); A splits them, with checksums, and seals; B opens and writes
them to its TUN coalesced again (GSO_UDP_L4). B's kernel must take them: a receiving
socket with UDP_GRO gets them whole (a gso_size control message), one without gets every
datagram, and both only datagrams whose checksums verify, each checked here byte for byte.
The topology and helpers are test_datapath_netns.py's.
"""

from __future__ import annotations

import hashlib
import os
import socket
import struct
import time

import pytest

from pywg._driver.offload import ALL, TUN_OFFLOADS, Offload
from pywg._driver.tun import Tun
from tests.harness import netns
from tests.harness.netns import inside
from tests.harness.skips import require_root
from tests.integration.test_datapath_netns import Side, install_keys, two_sides

SOL_UDP = 17
UDP_SEGMENT = 103
UDP_GRO = 104
PORT = 6001
BURST = 20
SIZE = 1200
ATTEMPTS = 5
WAIT_S = 2.0


def datagram(seq: int, size: int) -> bytes:
    """Sequence number, then bytes derived from it: any damage shows."""
    body = hashlib.sha256(seq.to_bytes(4, "big")).digest() * (size // 32 + 1)
    return seq.to_bytes(4, "big") + body[:size - 4]


def sockets(a: Side, b: Side, version: int, gro: bool) -> tuple[socket.socket, socket.socket]:
    family = socket.AF_INET if version == 4 else socket.AF_INET6
    with inside(a.ns):
        sender = socket.socket(family, socket.SOCK_DGRAM)
    with inside(b.ns):
        receiver = socket.socket(family, socket.SOCK_DGRAM)
    receiver.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    if gro:
        receiver.setsockopt(SOL_UDP, UDP_GRO, 1)
    receiver.bind((b.inner4 if version == 4 else b.inner6, PORT))
    receiver.settimeout(WAIT_S)
    return sender, receiver


def receive_burst(receiver: socket.socket, want: set[int]) -> tuple[set[int], int]:
    """Datagrams until `want` is covered or a wait runs out: the sequence numbers seen
    (each checked against its content) and the largest gso_size reported."""
    seen: set[int] = set()
    gso = 0
    while not want <= seen:
        try:
            data, ancillary, _flags, _addr = receiver.recvmsg(1 << 16, 64)
        except TimeoutError:
            break
        size = SIZE
        for level, kind, value in ancillary:
            if level == SOL_UDP and kind == UDP_GRO:
                size = struct.unpack("=i", value[:4])[0]
                gso = max(gso, size)
        for off in range(0, len(data), size):
            piece = data[off:off + size]
            seq = int.from_bytes(piece[:4], "big")
            assert piece == datagram(seq, len(piece)), f"datagram {seq} damaged"
            seen.add(seq)
    return seen, gso


@pytest.mark.parametrize("version", [4, 6], ids=["inner4", "inner6"])
@pytest.mark.parametrize("gro", [True, False], ids=["gro-socket", "plain-socket"])
def test_udp_super_packets_through_the_tunnel(version: int, gro: bool) -> None:
    with two_sides(version, offloads=ALL) as (a, b):
        if Offload.TUN_USO not in a.tun.offloads:
            pytest.skip("this kernel has no TUN USO (Linux 6.2)")
        install_keys(a, b)
        sender, receiver = sockets(a, b, version, gro)
        try:
            largest_gso = 0
            for burst in range(10):
                seqs = set(range(burst * BURST, (burst + 1) * BURST))
                payload = b"".join(datagram(s, SIZE) for s in sorted(seqs))
                # One send of 20 datagrams; lost ones (there is no reason) are sent again.
                seen: set[int] = set()
                for _ in range(ATTEMPTS):
                    sender.sendmsg([payload], [(SOL_UDP, UDP_SEGMENT, struct.pack("=H", SIZE))],
                                   0, (b.inner4 if version == 4 else b.inner6, PORT))
                    got, gso = receive_burst(receiver, seqs - seen)
                    seen |= got
                    largest_gso = max(largest_gso, gso)
                    if seqs <= seen:
                        break
                assert seqs <= seen, f"burst {burst}: never received {sorted(seqs - seen)}"
                time.sleep(0.01)
        finally:
            sender.close()
            receiver.close()
        sa, sb = a.dp.stats(), b.dp.stats()
        assert sa.tun_rx_gso > 0, "A's kernel handed over no super-packet"
        assert sb.tun_tx_gro > 0 and sb.tun_gro_refused == 0
        if gro:
            assert largest_gso == SIZE, "B's kernel delivered no coalesced datagram"


@pytest.mark.parametrize("wanted", [ALL, Offload.NONE, ALL & ~(Offload.TUN_TSO | Offload.TUN_USO),
                                    Offload.TUN_TSO], ids=["all", "none", "gro-only", "tso-only"])
def test_tun_negotiates_what_is_asked_and_the_kernel_has(wanted: Offload) -> None:
    require_root()
    with netns.namespace("pon") as ns, inside(ns):
        tun = Tun.create(netns.unique("wgo"), offloads=wanted)
        try:
            assert tun.vnet_hdr == bool(wanted & TUN_OFFLOADS)
            assert tun.offloads == tun.offloads & wanted & TUN_OFFLOADS
            assert Offload.TUN_TSO in tun.offloads or Offload.TUN_TSO not in wanted
            assert Offload.TUN_TCP_GRO in tun.offloads or Offload.TUN_TCP_GRO not in wanted
            # USO and UDP coalescing need the same kernel (6.2): both or neither.
            uso_kernel = Offload.TUN_UDP_GRO in tun.offloads or Offload.TUN_USO in tun.offloads
            if uso_kernel:
                assert tun.offloads & (Offload.TUN_USO | Offload.TUN_UDP_GRO) == \
                    wanted & (Offload.TUN_USO | Offload.TUN_UDP_GRO)
            # The daemon's child adopts the fd and asks again: the same answer.
            adopted = Tun.adopt(os.dup(tun.fd))
            try:
                assert adopted.vnet_hdr == tun.vnet_hdr
                assert adopted.negotiate(wanted) == tun.offloads
            finally:
                adopted.close()
        finally:
            tun.close()
