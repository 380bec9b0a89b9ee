"""The TUN offloads of the C data plane, checked against an independent reference.

TUN side (a socketpair stands in for a TUN opened with IFF_VNET_HDR, see dpnet.py):
super-packets written with a virtio header must leave as the segments the kernel's own
segmentation would make (tests/support/offload_ref.py, written from the RFCs), each opened
by the pure-Python transport; opened packets of one flow must reach the TUN as one
super-packet whose virtio header and headers say what the reference says, and never merged
where the kernel's GRO would not merge them. Malformed virtio headers and super-packets are
dropped and counted. Kernel acceptance of what is written is checked with real TUNs in
tests/integration/test_offload_netns.py and the interop suite.
"""

from __future__ import annotations

import ctypes
import fcntl
import ipaddress
import os
import random
import socket
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pywg._driver.datapath import DataPlane, Endpoint, Settings
from pywg._driver.offload import ALL, Offload
from tests.c.dpnet import SO_RCVBUFFORCE, Node, PyPeer, node, tun_pair, wait_for
from tests.harness import links, netns
from tests.harness.netns import inside
from tests.harness.skips import require_root
from tests.support import offload_ref as ref
from tests.support import transport

PEER = 3
NET4 = ipaddress.ip_network("10.0.0.0/24")
NET6 = ipaddress.ip_network("fd00::/64")
# The far side (the PyPeer's inner addresses) and us.
FAR4, US4 = "10.0.0.7", "10.9.9.9"
FAR6, US6 = "fd00::7", "fd09::9"
SOL_UDP = 17
UDP_SEGMENT = 103
SO_NO_CHECK = 11  # asm-generic/socket.h


@pytest.fixture(scope="module")
def ns():
    require_root()
    with netns.namespace("pof") as name:
        yield name


def make_side(ns: str, **kwargs: object) -> tuple[Node, PyPeer]:
    n = node(ns, vnet_hdr=True, **kwargs)  # type: ignore[arg-type]
    far = PyPeer(ns)
    n.dp.add_peer(PEER)
    n.dp.insert_allowed_ip(PEER, NET4)
    n.dp.insert_allowed_ip(PEER, NET6)
    n.dp.set_endpoint(PEER, far.endpoint)
    far.install_on(n.dp, PEER, initiator=True)
    n.dp.start()
    return n, far


@pytest.fixture
def side(ns):
    n, far = make_side(ns)
    try:
        yield n, far
    finally:
        n.close()
        far.close()


def flow_out(version: int, **kwargs: object) -> ref.Flow:
    """A flow from us (the TUN side) to the far side."""
    return ref.Flow(US4 if version == 4 else US6, FAR4 if version == 4 else FAR6, **kwargs)


def flow_in(version: int, **kwargs: object) -> ref.Flow:
    """A flow from the far side to us."""
    return ref.Flow(FAR4 if version == 4 else FAR6, US4 if version == 4 else US6, **kwargs)


def received(far: PyPeer, count: int) -> list[bytes]:
    """`count` datagrams from the data plane, opened by the reference and trimmed."""
    out = []
    for _ in range(count):
        opened = far.open(far.receive())
        assert isinstance(opened, transport.Opened), opened
        out.append(transport.trim(opened.plaintext))
    return out


def gso_header(packet: bytes, gso_size: int, *, hdr_len: int | None = None) -> bytes:
    """The virtio header the kernel puts before a TSO/USO super-packet (hdr_len: what the
    kernel reports, the length of the skb's linear part, not the headers')."""
    l3 = ref.ip_header_len(packet)
    proto = packet[9] if packet[0] >> 4 == 4 else packet[6]
    kind = ref.GSO_UDP_L4 if proto == ref.UDP else (
        ref.GSO_TCPV4 if packet[0] >> 4 == 4 else ref.GSO_TCPV6)
    return ref.vnet(flags=ref.NEEDS_CSUM, gso_type=kind,
                    hdr_len=l3 + ref.transport_header_len(packet) if hdr_len is None else hdr_len,
                    gso_size=gso_size, csum_start=l3, csum_offset=16 if proto == ref.TCP else 6)


def tcp_segments(flow: ref.Flow, count: int, size: int, *, last: int | None = None,
                 seq: int = 7_000_000, flags_last: int = ref.ACK, first_id: int = 100,
                 **kwargs: object) -> list[bytes]:
    sizes = [size] * (count - 1) + [size if last is None else last]
    out, offset = [], 0
    for k, n in enumerate(sizes):
        payload = bytes((offset + i) * 7 & 0xFF for i in range(n))
        flags = flags_last if k == count - 1 else ref.ACK
        out.append(flow.tcp(seq + offset, payload, flags=flags, ident=first_id + k, **kwargs))
        offset += n
    return out


# ---- TUN reads: super-packets are split --------------------------------------------------

@pytest.mark.parametrize("version", [4, 6])
def test_tso_super_packet_leaves_as_the_reference_segments(side, version: int) -> None:
    n, far = side
    segs = tcp_segments(flow_out(version), 6, 1000, last=507,
                        flags_last=ref.ACK | ref.PSH | ref.FIN)
    segs[0] = bytearray(segs[0])
    l3 = ref.ip_header_len(segs[0])
    segs[0][l3 + 13] |= ref.CWR            # CWR stays on the first segment only
    segs[0] = bytes(segs[0])
    packet = ref.super_packet(segs)
    expected = ref.segment(packet, 1000)
    # The kernel's hdr_len is the skb's linear part; it must not be taken for the headers.
    n.tun.send(gso_header(packet, 1000, hdr_len=l3 + 20 + 300) + packet)
    got = received(far, len(expected))
    assert got == expected
    for seg in got:
        assert ref.l4_checksum_ok(seg)
        assert version == 6 or ref.ipv4_checksum_ok(seg)
    flags = [seg[l3 + 13] for seg in got]
    assert flags[0] & ref.CWR and not any(f & ref.CWR for f in flags[1:])
    assert all(not f & (ref.FIN | ref.PSH) for f in flags[:-1])
    assert flags[-1] & ref.FIN and flags[-1] & ref.PSH
    st_ = n.dp.stats()
    assert st_.tun_rx_gso == 1 and st_.tun_rx_packets == len(expected)


@pytest.mark.parametrize("version", [4, 6])
def test_uso_super_packet_leaves_as_the_reference_datagrams(side, version: int) -> None:
    n, far = side
    flow = flow_out(version)
    datagrams = [flow.udp(os.urandom(1200), ident=9 + k) for k in range(4)]
    datagrams.append(flow.udp(os.urandom(333), ident=13))
    packet = ref.super_packet(datagrams)
    n.tun.send(gso_header(packet, 1200) + packet)
    got = received(far, 5)
    assert got == ref.segment(packet, 1200) == datagrams
    assert all(ref.l4_checksum_ok(d) for d in got)


def test_plain_packet_with_checksum_left_to_us(side) -> None:
    """NEEDS_CSUM without GSO: the field holds the pseudo-header sum, we finish it."""
    n, far = side
    good = flow_out(6).tcp(1, b"finish my checksum", flags=ref.ACK | ref.PSH)
    partial = bytearray(good)
    struct.pack_into("!H", partial, 40 + 16, ref.pseudo_sum(good, ref.TCP, len(good) - 40))
    n.tun.send(ref.vnet(flags=ref.NEEDS_CSUM, csum_start=40, csum_offset=16) + bytes(partial))
    assert received(far, 1) == [good]


def test_super_packet_with_more_segments_than_a_batch(side) -> None:
    """64 KB cut into 48-byte segments: 1364 of them, more than one batch holds; the rest
    goes in the next batch, in order, none lost."""
    n, far = side
    flow = flow_out(4)
    payload = random.Random(5).randbytes(65535 - 40)
    head = flow.tcp(123, payload[:48], flags=ref.ACK)
    packet = bytearray(head[:40] + payload)
    struct.pack_into("!H", packet, 2, len(packet))
    struct.pack_into("!H", packet, 10, 0)
    struct.pack_into("!H", packet, 10, ~ref.csum(bytes(packet[:20])) & 0xFFFF)
    expected = ref.segment(bytes(packet), 48)
    assert len(expected) > 1024
    n.tun.send(gso_header(bytes(packet), 48) + bytes(packet))
    got = received(far, len(expected))
    assert got == expected


MALFORMED = {
    "gso_size 0": lambda p: gso_header(p, 0) + p,
    "no NEEDS_CSUM": lambda p: ref.vnet(gso_type=ref.GSO_TCPV4, gso_size=500, csum_start=20,
                                        csum_offset=16) + p,
    "csum_start not the IP header": lambda p: ref.vnet(
        flags=ref.NEEDS_CSUM, gso_type=ref.GSO_TCPV4, gso_size=500, csum_start=24,
        csum_offset=16) + p,
    "csum_offset not TCP's": lambda p: ref.vnet(
        flags=ref.NEEDS_CSUM, gso_type=ref.GSO_TCPV4, gso_size=500, csum_start=20,
        csum_offset=6) + p,
    "hdr_len past the end": lambda p: gso_header(p, 500, hdr_len=len(p) + 1) + p,
    "UFO (fragmentation)": lambda p: ref.vnet(flags=ref.NEEDS_CSUM, gso_type=ref.GSO_UDP,
                                              gso_size=500, csum_start=20, csum_offset=6) + p,
    "unknown GSO type": lambda p: ref.vnet(flags=ref.NEEDS_CSUM, gso_type=9, gso_size=500,
                                           csum_start=20, csum_offset=16) + p,
    "TCPv6 type on IPv4": lambda p: ref.vnet(flags=ref.NEEDS_CSUM, gso_type=ref.GSO_TCPV6,
                                             gso_size=500, csum_start=20, csum_offset=16) + p,
    "IP length lies": lambda p: gso_header(p, 500) + p[:2] + struct.pack("!H", len(p) - 9)
    + p[4:],
    "truncated after the headers": lambda p: gso_header(p, 500) + p[:40],
    "TCP data offset below 5": lambda p: gso_header(p, 500) + p[:32] + bytes([0x40]) + p[33:],
    "not IP": lambda p: gso_header(p, 500) + bytes([0x55]) + p[1:],
    "IPv4 header length below 20": lambda p: ref.vnet(
        flags=ref.NEEDS_CSUM, gso_type=ref.GSO_TCPV4, gso_size=500, csum_start=16,
        csum_offset=16) + bytes([0x44]) + p[1:],
    "a fragment": lambda p: gso_header(p, 500) + p[:6] + b"\x20\x00" + p[8:],
    "checksum field past the end": lambda p: ref.vnet(flags=ref.NEEDS_CSUM, csum_start=60,
                                                      csum_offset=2000) + p,
    "empty": lambda p: b"",
    "only a virtio header": lambda p: gso_header(p, 500),
}


def test_malformed_virtio_headers_and_super_packets_are_dropped(side) -> None:
    n, far = side
    segs = tcp_segments(flow_out(4), 4, 500)
    packet = ref.super_packet(segs)
    for make in MALFORMED.values():
        n.tun.send(make(packet))
    assert wait_for(lambda: n.dp.stats().drop_malformed == len(MALFORMED))
    # Nothing of them left; the TUN still works.
    n.tun.send(gso_header(packet, 500) + packet)
    assert received(far, 4) == segs
    assert wait_for(lambda: n.dp.stats().udp_tx_packets == 4)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(header=st.binary(min_size=10, max_size=10), size=st.integers(0, 3000),
       mutate=st.lists(st.tuples(st.integers(0, 120), st.integers(0, 255)), max_size=6),
       version=st.sampled_from([4, 6]), udp=st.booleans())
def test_random_virtio_headers_never_break_it(side, header: bytes, size: int,
                                              mutate: list[tuple[int, int]], version: int,
                                              udp: bool) -> None:
    """Random virtio headers before plausible packets with random bytes changed: each is
    dropped and counted or sealed (and then opens); the data plane carries on."""
    n, far = side
    flow = flow_out(version)
    pkt = bytearray(flow.udp(bytes(size)) if udp else flow.tcp(1, bytes(size)))
    for at, value in mutate:
        if at < len(pkt):
            pkt[at] = value
    before = n.dp.stats()
    n.tun.send(header + bytes(pkt))
    marker = flow.udp(b"marker")
    n.tun.send(ref.vnet() + marker)
    # Whatever it made of the random one comes first, then the marker, in order.
    while True:
        opened = far.open(far.receive())
        assert isinstance(opened, transport.Opened)
        if transport.trim(opened.plaintext) == marker:
            break
    after = n.dp.stats()
    handled = (after.drop_malformed - before.drop_malformed) + (
        after.drop_no_peer - before.drop_no_peer) + (after.tun_rx_packets - before.tun_rx_packets)
    assert handled >= 2


# ---- TUN writes: opened packets of a flow are coalesced ----------------------------------

def arrive_in_one_batch(n: Node, far: PyPeer, packets: list[bytes]) -> None:
    """Seal and send `packets` while the data plane is stopped, so that it takes them in one
    batch when it starts."""
    n.dp.stop()
    to = n.endpoint()
    for p in packets:
        far.send(far.seal(p), to)
    n.dp.start()


def tun_writes(n: Node, inner_packets: int) -> list[tuple[dict[str, int], bytes]]:
    """The TUN writes (virtio header, packet) that carry `inner_packets` packets."""
    out, covered = [], 0
    while covered < inner_packets:
        data = n.read_tun()
        header, packet = ref.parse_vnet(data), data[10:]
        out.append((header, packet))
        if header["gso_type"] == ref.GSO_NONE:
            covered += 1
        else:
            covered += len(ref.segment(packet, header["gso_size"]))
    return out


def check_super_packet(header: dict[str, int], packet: bytes, parts: list[bytes]) -> None:
    """A super-packet written to the TUN must be what the reference makes of its parts,
    with the virtio header that asks the kernel to finish the checksum."""
    l3 = ref.ip_header_len(packet)
    proto = packet[9] if packet[0] >> 4 == 4 else packet[6]
    assert header["flags"] == ref.NEEDS_CSUM
    assert header["gso_type"] == (ref.GSO_UDP_L4 if proto == ref.UDP else
                                  ref.GSO_TCPV4 if packet[0] >> 4 == 4 else ref.GSO_TCPV6)
    assert header["csum_start"] == l3
    assert header["csum_offset"] == (16 if proto == ref.TCP else 6)
    assert header["hdr_len"] == l3 + ref.transport_header_len(packet)
    assert header["gso_size"] == len(parts[0]) - header["hdr_len"]
    assert packet == ref.super_packet(parts)
    # The kernel would make the parts again from it.
    assert ref.segment(packet, header["gso_size"]) == parts


@pytest.mark.parametrize("version", [4, 6])
def test_gro_tcp_flow_becomes_one_super_packet(side, version: int) -> None:
    n, far = side
    segs = tcp_segments(flow_in(version), 12, 1200, last=300, flags_last=ref.ACK | ref.PSH)
    arrive_in_one_batch(n, far, segs)
    writes = tun_writes(n, len(segs))
    assert len(writes) == 1
    check_super_packet(*writes[0], segs)
    assert wait_for(lambda: n.dp.stats().tun_tx_gro == 1
                    and n.dp.stats().tun_tx_packets == len(segs))


@pytest.mark.parametrize("version", [4, 6])
def test_gro_udp_flow_becomes_one_super_packet(side, version: int) -> None:
    n, far = side
    flow = flow_in(version)
    datagrams = [flow.udp(os.urandom(1000), ident=40 + k) for k in range(7)]
    datagrams.append(flow.udp(os.urandom(10), ident=47))
    arrive_in_one_batch(n, far, datagrams)
    writes = tun_writes(n, len(datagrams))
    assert len(writes) == 1
    check_super_packet(*writes[0], datagrams)


def _variant(segs: list[bytes], k: int, make: object, *, to_end: bool = False) -> list[bytes]:
    """segs with segment k (and with to_end every later one) rebuilt by `make`."""
    end = len(segs) if to_end else k + 1
    return segs[:k] + [make(s) for s in segs[k:end]] + segs[end:]  # type: ignore[operator]


def _tcp_with(flow: ref.Flow, seg: bytes, **fields: object) -> bytes:
    """The same TCP segment with some fields changed."""
    l3 = ref.ip_header_len(seg)
    seq, ack, _off, flags, window = struct.unpack_from("!IIBBH", seg, l3 + 4)
    hdr = l3 + ref.transport_header_len(seg)
    args: dict[str, object] = dict(ack=ack, flags=flags, window=window,
                                   options=seg[l3 + 20:hdr],
                                   ident=struct.unpack_from("!H", seg, 4)[0] if l3 == 20 else 0)
    target = ref.Flow(**{**flow.__dict__, **fields.pop("flow_fields", {})})  # type: ignore[arg-type]
    args.update(fields)
    return target.tcp(seq, seg[hdr:], **args)  # type: ignore[arg-type]


def _scenarios() -> dict[str, tuple[list[bytes], list[int]]]:
    """name -> (packets in arrival order, sizes of the TUN writes in order)."""
    f = flow_in(4)
    base = tcp_segments(f, 6, 1000)
    other = tcp_segments(flow_in(4, sport=40001), 3, 1000)
    out: dict[str, tuple[list[bytes], list[int]]] = {}
    out["two interleaved flows"] = (
        [base[0], other[0], base[1], other[1], base[2], other[2]], [3, 3])
    out["a gap in the sequence"] = ([base[0], base[1], base[3], base[4]], [2, 2])
    for name, flags in (("FIN", ref.ACK | ref.FIN), ("SYN", ref.SYN), ("RST", ref.RST | ref.ACK),
                        ("URG", ref.URG | ref.ACK), ("ECE", ref.ECE | ref.ACK),
                        ("CWR", ref.CWR | ref.ACK)):
        out[f"{name} alone"] = (
            _variant(base, 2, lambda s, fl=flags: _tcp_with(f, s, flags=fl)), [2, 1, 3])
    out["PSH ends a super-packet"] = (
        _variant(base, 2, lambda s: _tcp_with(f, s, flags=ref.ACK | ref.PSH)), [3, 3])
    out["another ACK number"] = (
        _variant(base, 3, lambda s: _tcp_with(f, s, ack=5), to_end=True), [3, 3])
    out["one other ACK number"] = (_variant(base, 3, lambda s: _tcp_with(f, s, ack=5)), [3, 1, 2])
    out["another window"] = (
        _variant(base, 3, lambda s: _tcp_with(f, s, window=9), to_end=True), [3, 3])
    stamp = b"\x01\x01\x08\x0a"
    with_ts = [_tcp_with(f, s, options=stamp + bytes(8)) for s in base]
    out["options that differ"] = (
        _variant(with_ts, 3, lambda s: _tcp_with(f, s, options=stamp + bytes(7) + b"\x01"),
                 to_end=True), [3, 3])
    out["same options"] = (with_ts, [6])
    out["another TTL"] = (
        _variant(base, 3, lambda s: _tcp_with(f, s, flow_fields={"ttl": 9}), to_end=True), [3, 3])
    out["another TOS"] = (
        _variant(base, 3, lambda s: _tcp_with(f, s, flow_fields={"tos": 4}), to_end=True), [3, 3])
    no_df = tcp_segments(flow_in(4, df=False), 4, 1000)
    out["without DF, IDs that count up"] = (no_df, [4])
    out["without DF, an ID out of line"] = (
        no_df[:2] + [_tcp_with(flow_in(4, df=False), s, ident=900 + k)
                     for k, s in enumerate(no_df[2:])], [2, 2])
    out["a longer segment after"] = (
        [base[0], f.tcp(7_001_000, bytes(1100))], [1, 1])
    out["nothing after a short one"] = (
        tcp_segments(f, 2, 1000, last=500) + [f.tcp(7_001_500, bytes(1000))], [2, 1])
    out["a pure ACK"] = ([base[0], f.tcp(7_001_000, b""), base[1]], [1, 1, 1])
    u = flow_in(4)
    out["UDP of another size after"] = (
        [u.udp(bytes(500), ident=1), u.udp(bytes(500), ident=2), u.udp(bytes(600), ident=3)],
        [2, 1])
    out["ICMP between"] = ([base[0], f.ip(1, b"\x08\x00" + bytes(30)), base[1]], [2, 1])
    # A bad IPv4 header checksum: the kernel must see the packet as it is (and drop it), not
    # with the head's fresh checksum in a super-packet (found by gro_fuzz).
    broken = [s[:10] + bytes([s[10] ^ 0x5A]) + s[11:] for s in base]
    out["a broken IPv4 header checksum"] = (base[:3] + broken[3:4] + base[4:], [3, 1, 2])
    out["a head with a broken IPv4 header checksum"] = (broken[:1] + base[1:], [1, 5])
    return out


SCENARIOS = _scenarios()


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_gro_never_merges_what_must_not_be(side, name: str) -> None:
    n, far = side
    packets, sizes = SCENARIOS[name]
    arrive_in_one_batch(n, far, packets)
    writes = tun_writes(n, len(packets))
    got = [1 if h["gso_type"] == ref.GSO_NONE else len(ref.segment(p, h["gso_size"]))
           for h, p in writes]
    assert got == sizes
    # Within a flow the order holds, and everything is delivered intact.
    delivered = []
    for h, p in writes:
        delivered += [p] if h["gso_type"] == ref.GSO_NONE else ref.segment(p, h["gso_size"])
    assert sorted(delivered) == sorted(packets)
    for flow_key in {_flow_key(p) for p in packets}:
        assert [p for p in delivered if _flow_key(p) == flow_key] == [
            p for p in packets if _flow_key(p) == flow_key]


def _flow_key(packet: bytes) -> bytes:
    l3 = ref.ip_header_len(packet)
    return packet[12:20] + packet[l3:l3 + 4] if packet[0] >> 4 == 4 else packet[8:44]


def test_gro_off_writes_one_by_one(ns) -> None:
    n, far = make_side(ns, offloads=ALL & ~(Offload.TUN_TCP_GRO | Offload.TUN_UDP_GRO))
    try:
        segs = tcp_segments(flow_in(4), 5, 1000)
        arrive_in_one_batch(n, far, segs)
        writes = tun_writes(n, len(segs))
        assert [p for _h, p in writes] == segs
        assert all(h["gso_type"] == ref.GSO_NONE and h["flags"] == 0 for h, _p in writes)
    finally:
        n.close()
        far.close()


def test_gro_write_refused_then_one_by_one(ns) -> None:
    """A super-packet the TUN refuses is written again packet by packet: nothing is lost.
    The TUN here is a connected UDP socket, which refuses a datagram above 65507 bytes
    (EMSGSIZE): 63 packets that make a 65530-byte super-packet, 65540 with its virtio
    header, each of them small enough alone."""
    n, far = make_side(ns)
    with inside(ns):
        ours = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        theirs = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        ours.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 8 << 20)
        ours.bind(("127.0.0.1", 0))
        theirs.bind(("127.0.0.1", 0))
        theirs.connect(ours.getsockname())
        ours.connect(theirs.getsockname())
        n.dp.close()
        n.dp = DataPlane(Settings(tun_fd=theirs.fileno(), udp4_fd=n.udp4.fileno(),
                                  udp6_fd=n.udp6.fileno(), tun_vnet_hdr=True))
        n.dp.add_peer(PEER)
        n.dp.insert_allowed_ip(PEER, NET4)
        far.install_on(n.dp, PEER, initiator=True)
        n.tun.close()
        n.tun = ours
        segs = tcp_segments(flow_in(4), 63, 1040, last=1010)
        arrive_in_one_batch(n, far, segs)
        writes = tun_writes(n, len(segs))
        assert [p for _h, p in writes] == segs
        assert n.dp.stats().tun_gro_refused == 1
    finally:
        n.close()
        far.close()
        theirs.close()


# ---- UDP: GSO on send, GRO on receive ------------------------------------------------------

def send_gso(far: PyPeer, datagrams: list[bytes], to: tuple[str, int]) -> None:
    """One UDP_SEGMENT send: the kernel keeps it whole up to a socket with UDP_GRO."""
    size = len(datagrams[0])
    far.sock.sendmsg([b"".join(datagrams)], [(SOL_UDP, UDP_SEGMENT, struct.pack("=H", size))], 0,
                     to)


def test_udp_gro_receive_split_with_odd_sizes(side) -> None:
    """One coalesced receive: equal datagrams and a shorter tail, one of them forged and one
    too short to be a data message; each is handled on its own."""
    n, far = side
    flow = flow_in(4)
    inner = [flow.udp(bytes([k]) * 1001) for k in range(5)]
    sealed = [far.seal(p) for p in inner]
    forged = bytearray(sealed[2])
    forged[-1] ^= 1
    tail = far.seal(flow.udp(b"t" * 3))
    assert len(tail) < len(sealed[0])
    runt = struct.pack("<I", 4) + bytes(16)           # shorter than a keepalive
    datagrams = [sealed[0], sealed[1], bytes(forged), sealed[3], sealed[4]]
    to = (str(n.endpoint().address), n.endpoint().port)
    send_gso(far, datagrams + [tail], to)
    stranger = struct.pack("<IIQ", 4, far.remote_index ^ 1, 0) + bytes(len(sealed[0]) - 16)
    send_gso(far, [stranger, runt], to)
    delivered = []
    for h, p in tun_writes(n, 5):
        delivered += [p] if h["gso_type"] == ref.GSO_NONE else ref.segment(p, h["gso_size"])
    # (Coalesced with DF, the packets may come back with other IPv4 IDs: compare the rest.)
    expected = [inner[0], inner[1], inner[3], inner[4], flow.udp(b"t" * 3)]
    assert [p[20:] for p in delivered] == [p[20:] for p in expected]
    assert wait_for(lambda: n.dp.stats().drop_decrypt == 1 and n.dp.stats().drop_malformed == 1
                    and n.dp.stats().drop_unknown_index == 1)
    assert n.dp.stats().udp_rx_gro == 2


def burst_from_tun(n: Node, count: int, size: int = 1000) -> list[bytes]:
    """`count` segments that leave the TUN side in one batch: one TSO super-packet."""
    segs = tcp_segments(flow_out(4), count, size)
    packet = ref.super_packet(segs)
    n.tun.send(gso_header(packet, size) + packet)
    return segs


def test_udp_gso_sends_a_batch_in_few_calls(side) -> None:
    n, far = side
    segs = burst_from_tun(n, 40)
    assert received(far, 40) == segs
    assert wait_for(lambda: n.dp.stats().udp_tx_packets == 40)
    st_ = n.dp.stats()
    assert st_.udp_tx_gso >= 1 and st_.udp_tx_syscalls < 40 and st_.udp_gso_refused == 0


def test_udp_gso_refused_falls_back_and_delivers(ns) -> None:
    """SO_NO_CHECK on the data plane's socket makes the kernel refuse every UDP_SEGMENT send
    (EINVAL): the batch goes one datagram at a time."""
    n, far = make_side(ns)
    try:
        n.udp4.setsockopt(socket.SOL_SOCKET, SO_NO_CHECK, 1)
        segs = burst_from_tun(n, 30)
        assert received(far, 30) == segs
        assert n.dp.stats().udp_gso_refused == 1
    finally:
        n.close()
        far.close()


def test_udp_gso_larger_than_the_path_mtu(ns) -> None:
    """A path MTU below the datagram size: segmentation is refused, and the datagrams go one
    by one, fragmented by the kernel, and arrive."""
    with netns.namespace("pom") as small:
        links.set_mtu(small, "lo", 1300)       # IPv6 needs 1280
        n, far = make_side(small)
        try:
            segs = burst_from_tun(n, 20, size=1300)
            assert received(far, 20) == segs
            assert n.dp.stats().udp_gso_refused == 1
        finally:
            n.close()
            far.close()


SIOCETHTOOL = 0x8946
ETHTOOL_STXCSUM = 0x17


def tx_checksum_off(ns: str, ifname: str) -> None:
    """`ethtool -K IFNAME tx off` through its ioctl (struct ethtool_value behind ifr_data)."""
    value = ctypes.create_string_buffer(struct.pack("=II", ETHTOOL_STXCSUM, 0))
    ifreq = struct.pack("16sP", ifname.encode(), ctypes.addressof(value)).ljust(40, b"\0")
    with inside(ns), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        fcntl.ioctl(sock, SIOCETHTOOL, ifreq)


def test_udp_gso_through_a_device_without_checksum_offload(ns) -> None:
    """A device without transmit checksum offload: kernels before 6.11 refuse UDP_SEGMENT
    with EIO (udp_send_skb) and the datagrams go one by one; later ones checksum in
    software. Either way every datagram arrives, and at most the one send was refused."""
    with netns.namespace("pea") as ns_a, netns.namespace("peb") as ns_b:
        veth_a, _veth_b = links.veth_pair(ns_a, ns_b)
        tx_checksum_off(ns_a, veth_a)
        with inside(ns_a):
            udp4 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            udp4.bind(("10.99.0.1", 0))
        with inside(ns_b):
            peer_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            peer_sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 8 << 20)
            peer_sock.bind(("10.99.0.2", 0))
        tun, dp_tun = tun_pair(ns_a)
        far = PyPeer(ns_b)
        far.sock.close()
        far.sock = peer_sock
        dp = DataPlane(Settings(tun_fd=dp_tun.fileno(), udp4_fd=udp4.fileno(), mtu=1420,
                                max_peers=4, tun_vnet_hdr=True))
        try:
            dp.add_peer(PEER)
            dp.insert_allowed_ip(PEER, NET4)
            dp.set_endpoint(PEER, Endpoint(ipaddress.ip_address("10.99.0.2"),
                                           peer_sock.getsockname()[1]))
            far.install_on(dp, PEER, initiator=True)
            dp.start()
            segs = tcp_segments(flow_out(4), 20, 1000)
            packet = ref.super_packet(segs)
            tun.send(gso_header(packet, 1000) + packet)
            assert received(far, 20) == segs
            assert wait_for(lambda: dp.stats().udp_tx_packets == 20)
            assert dp.stats().udp_gso_refused + dp.stats().udp_tx_gso == 1
        finally:
            dp.close()
            for sock in (udp4, tun, dp_tun, peer_sock):
                sock.close()


def test_udp_offloads_off(ns) -> None:
    n, far = make_side(ns, offloads=Offload.NONE)
    try:
        assert n.dp.offloads() == Offload.NONE
        segs = burst_from_tun(n, 10)
        assert received(far, 10) == segs
        assert wait_for(lambda: n.dp.stats().udp_tx_packets == 10)
        assert n.dp.stats().udp_tx_gso == 0
        send_gso(far, [far.seal(p) for p in segs[:3]],
                 (str(n.endpoint().address), n.endpoint().port))
        assert wait_for(lambda: n.dp.stats().udp_rx_packets == 3)
        assert n.dp.stats().udp_rx_gro == 0
    finally:
        n.close()
        far.close()
