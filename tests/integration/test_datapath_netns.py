"""Two C data planes in two network namespaces, joined by a veth pair, each with a real TUN.

Keys and indices are chosen by the test and installed by hand on both sides (A as the
initiator, B as the responder), so this tests the C packet paths alone: no handshake code
runs. The kernel's own ping and TCP are the traffic, and a sha256 compared at the far end
is the judge of a 100 MB transfer.

    ns A: tun 10.77.0.1 fd77::1          ns B: tun 10.77.0.2 fd77::2
          data plane  -- veth 10.99.0.1/fd99::1 <-> 10.99.0.2/fd99::2 --  data plane
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import os
import socket
import struct
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from pywg._driver.datapath import DataPlane, Endpoint, EventType, Settings
from pywg._driver.offload import ALL as ALL_OFFLOADS
from pywg._driver.offload import TUN_OFFLOADS, Offload
from pywg._driver.tun import IFF_TUN, TUNSETIFF, Tun
from tests.harness import links, netns
from tests.harness.netns import inside
from tests.harness.skips import require_root, require_tools
from tests.harness.transfer import checked_transfer

PORT = 51820
MTU = 1420
TRANSFER = 100 * 1024 * 1024
SO_RCVBUFFORCE, SO_SNDBUFFORCE = 33, 32

@dataclass
class Side:
    ns: str
    tun: Tun
    udp4: socket.socket
    udp6: socket.socket
    dp: DataPlane
    inner4: str
    inner6: str
    outer4: str
    outer6: str

    def close(self) -> None:
        self.dp.close()
        self.tun.close()
        self.udp4.close()
        self.udp6.close()


def bound_socket(family: int, addr: str) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_DGRAM)
    if family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 8 << 20)
    sock.setsockopt(socket.SOL_SOCKET, SO_SNDBUFFORCE, 8 << 20)
    sock.bind((addr, PORT))
    return sock


def tun_with_packet_info(name: str) -> Tun:
    """A TUN opened as wireguard-go opens it: without IFF_NO_PI."""
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH22x", name.encode(), IFF_TUN))
    return Tun(fd=fd, name=name, ifindex=socket.if_nametoindex(name), vnet_hdr=False)


def make_side(ns: str, inner4: str, inner6: str, outer4: str, outer6: str,
              pi: bool = False, offloads: Offload = Offload.NONE) -> Side:
    with inside(ns):
        name = netns.unique("wgd")
        tun = tun_with_packet_info(name) if pi else Tun.create(name, mtu=MTU, offloads=offloads)
        udp4 = bound_socket(socket.AF_INET, "0.0.0.0")
        udp6 = bound_socket(socket.AF_INET6, "::")
    links.configure(ns, tun.name, f"{inner4}/24", f"{inner6}/64")
    dp = DataPlane(Settings(tun_fd=tun.fd, udp4_fd=udp4.fileno(), udp6_fd=udp6.fileno(),
                            mtu=MTU, max_peers=4, tun_pi=pi, tun_vnet_hdr=tun.vnet_hdr,
                            offloads=(offloads & ~TUN_OFFLOADS) | tun.offloads))
    return Side(ns, tun, udp4, udp6, dp, inner4, inner6, outer4, outer6)


def connect(a: Side, b: Side, outer: int) -> None:
    """Each side's only peer (slot 0) is the other, allowed its inner /32 and /128."""
    for me, other in ((a, b), (b, a)):
        me.dp.add_peer(0)
        me.dp.insert_allowed_ip(0, ipaddress.ip_network(f"{other.inner4}/32"))
        me.dp.insert_allowed_ip(0, ipaddress.ip_network(f"{other.inner6}/128"))
        address = other.outer4 if outer == 4 else other.outer6
        me.dp.set_endpoint(0, Endpoint(ipaddress.ip_address(address), PORT))


def install_keys(initiator: Side, responder: Side) -> None:
    k1, k2 = os.urandom(32), os.urandom(32)
    i1, i2 = initiator.dp.new_index(0), responder.dp.new_index(0)  # as for a handshake
    now = time.monotonic_ns()
    # The responder's first, so that it can open what the initiator sends at once.
    responder.dp.install_keypair(0, local_index=i2, remote_index=i1, send_key=k2,
                                 receive_key=k1, initiator=False, birth_ns=now)
    initiator.dp.install_keypair(0, local_index=i1, remote_index=i2, send_key=k1,
                                 receive_key=k2, initiator=True, birth_ns=now)


@contextlib.contextmanager
def two_sides(outer: int, b_pi: bool = False, offloads: Offload = Offload.NONE,
              ) -> Iterator[tuple[Side, Side]]:
    require_root()
    require_tools("ping")
    with netns.namespace("pda") as ns_a, netns.namespace("pdb") as ns_b:
        links.veth_pair(ns_a, ns_b)
        a = make_side(ns_a, "10.77.0.1", "fd77::1", "10.99.0.1", "fd99::1", offloads=offloads)
        b = make_side(ns_b, "10.77.0.2", "fd77::2", "10.99.0.2", "fd99::2", pi=b_pi,
                      offloads=offloads)
        try:
            connect(a, b, outer)
            a.dp.start()
            b.dp.start()
            yield a, b
        finally:
            a.close()
            b.close()


def ping(src: Side, dst: str, *extra: str) -> subprocess.CompletedProcess[str]:
    # Two echoes and no deadline (-w would send more than two): the drop counts are exact.
    return netns.run(src.ns, ["ping", "-c", "2", "-i", "0.2", "-W", "2", *extra, dst],
                     check=False)


@pytest.mark.parametrize(("outer", "b_pi"), [(4, False), (6, False), (4, True)],
                         ids=["outer4", "outer6", "packet-info-tun"])
def test_ping_both_ways(outer: int, b_pi: bool) -> None:
    with two_sides(outer, b_pi) as (a, b):
        install_keys(a, b)
        for dst in (b.inner4, b.inner6):
            result = ping(a, dst)
            assert result.returncode == 0, result.stdout + result.stderr
        # A's first packet confirmed B's responder keypair.
        assert EventType.KEYPAIR_CONFIRMED in {e.type for e in b.dp.read_events()}
        for dst in (a.inner4, a.inner6):
            result = ping(b, dst)
            assert result.returncode == 0, result.stdout + result.stderr
        info = b.dp.peer_info(0)
        assert info.endpoint is not None and info.endpoint.address.version == outer
        assert info.rx_bytes > 0 and info.tx_bytes > 0
        st = b.dp.stats()
        assert st.drop_decrypt == st.drop_replay == st.drop_bad_src == 0


@pytest.mark.parametrize("offloads", [Offload.NONE, ALL_OFFLOADS], ids=["plain", "offloads"])
def test_tcp_transfer_with_checksum(offloads: Offload) -> None:
    """With offloads, the kernel hands A's data plane TSO super-packets, which it splits;
    A sends them in UDP_SEGMENT batches, B's socket hands them over coalesced (the veth keeps
    them whole), and B writes them to its TUN coalesced again, which B's kernel TCP takes."""
    with two_sides(4, offloads=offloads) as (a, b):
        install_keys(a, b)
        checked_transfer(a.ns, b.ns, b.inner4, TRANSFER)
        sa, sb = a.dp.stats(), b.dp.stats()
        used = (sa.tun_rx_gso, sa.udp_tx_gso, sb.udp_rx_gro, sb.tun_tx_gro)
        assert all(used) if offloads else not any(used), used


def test_source_outside_allowed_ips_is_dropped() -> None:
    with two_sides(4) as (a, b):
        install_keys(a, b)
        assert ping(a, b.inner4).returncode == 0
        netns.run(a.ns, ["ip", "addr", "add", "10.88.0.1/32", "dev", a.tun.name])
        result = ping(a, b.inner4, "-I", "10.88.0.1")
        assert result.returncode != 0
        deadline = time.monotonic() + 5
        while b.dp.stats().drop_bad_src < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert b.dp.stats().drop_bad_src == 2
        assert b.dp.stats().tun_tx_packets == 2  # only the first ping's two requests


def test_staging_until_a_keypair_is_installed() -> None:
    with two_sides(4) as (a, b):
        pinger = subprocess.Popen(
            netns.exec_argv(b.ns, ["ping", "-c", "1", "-W", "10", a.inner4]),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            deadline = time.monotonic() + 10
            while b.dp.peer_info(0).staged == 0 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert b.dp.peer_info(0).staged >= 1
            assert [e.type for e in b.dp.read_events()] == [EventType.NEED_HANDSHAKE]
            install_keys(b, a)  # B initiates; then, as the driver does, it sends what waited
            b.dp.send_keepalive(0)
            out, _ = pinger.communicate(timeout=20)
            assert pinger.returncode == 0, out
        finally:
            pinger.kill()
            pinger.wait()
        assert b.dp.peer_info(0).staged == 0


def test_deleting_the_interface_raises_tun_gone() -> None:
    with two_sides(4) as (a, _b):
        netns.run(a.ns, ["ip", "link", "del", a.tun.name])
        deadline = time.monotonic() + 10
        events: list[EventType] = []
        while EventType.TUN_GONE not in events and time.monotonic() < deadline:
            events += [e.type for e in a.dp.read_events()]
            time.sleep(0.01)
        assert EventType.TUN_GONE in events
