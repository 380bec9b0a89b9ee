"""The C data plane's packet paths with real UDP sockets, checked by independent code.

The UDP sockets live in a network namespace made for this module (root only); the TUN is a
socketpair (see dpnet.py). The far side is tests/support/transport.py, which seals and opens
with libsodium, so every sealed datagram is opened by other code and every datagram the C
side opens was sealed by other code.
"""

from __future__ import annotations

import errno
import hashlib
import ipaddress
import os
import random
import socket
import struct
import time

import pytest

from pywg import _constants as constants
from pywg._driver.datapath import EventType
from pywg._protocol.timers import Timing
from tests.c.dpnet import Node, PyPeer, node, udp_socket, wait_for
from tests.harness import netns
from tests.harness.skips import require_root
from tests.support import transport
from tests.support.packets import ipv4, ipv4_of_size, ipv6, ipv6_of_size

PEER = 3
NET4 = ipaddress.ip_network("10.0.0.0/24")
NET6 = ipaddress.ip_network("fd00::/64")


@pytest.fixture(scope="module")
def ns():
    require_root()
    with netns.namespace("pdp") as name:
        yield name


@pytest.fixture
def side(ns):
    """A data plane with one peer (slot PEER) played by a PyPeer, allowed 10.0.0.0/24 and
    fd00::/64, reached at the PyPeer's socket; no keypair yet."""
    n = node(ns)
    far = PyPeer(ns)
    n.dp.add_peer(PEER)
    n.dp.insert_allowed_ip(PEER, NET4)
    n.dp.insert_allowed_ip(PEER, NET6)
    n.dp.set_endpoint(PEER, far.endpoint)
    n.dp.start()
    try:
        yield n, far
    finally:
        n.close()
        far.close()


def stats_settle(n: Node, field: str, value: int) -> bool:
    return wait_for(lambda: getattr(n.dp.stats(), field) >= value)


def test_seal_matches_reference_for_every_size(side) -> None:
    """Packets of 20..1500 bytes (IPv4) and 40..1500 (IPv6) from the TUN, sealed by C,
    opened and trimmed by the Python reference: same bytes, padding as the reference says."""
    n, far = side
    far.install_on(n.dp, PEER, initiator=True)
    sizes = [(4, s) for s in range(20, 1501)] + [(6, s) for s in range(40, 1501, 7)]
    for counter, (version, size) in enumerate(sizes):
        pkt = ipv4_of_size(size) if version == 4 else ipv6_of_size(size)
        n.tun.send(pkt)
        datagram = far.receive()
        opened = far.open(datagram)
        assert isinstance(opened, transport.Opened), (version, size, opened)
        assert opened.counter == counter
        assert len(opened.plaintext) == size + transport.padding_length(size, 1420)
        assert transport.trim(opened.plaintext) == pkt
    # Size 0: a keepalive.
    n.dp.send_keepalive(PEER)
    keepalive = far.receive()
    assert len(keepalive) == constants.MESSAGE_DATA_MIN_SIZE
    opened = far.open(keepalive)
    assert isinstance(opened, transport.Opened) and opened.is_keepalive
    # The keepalive was a synchronous call, so every counter is final.
    st = n.dp.stats()
    assert st.keepalives_tx == 1 and st.udp_tx_packets == len(sizes) + 1


def test_open_matches_reference_for_every_size(side) -> None:
    """Sealed by the Python reference, opened by C, written to the TUN trimmed."""
    n, far = side
    far.install_on(n.dp, PEER, initiator=True)
    to = n.endpoint()
    for size in range(20, 1501):
        pkt = ipv4_of_size(size, src="10.0.0.7", dst="10.9.9.9")
        far.send(far.seal(pkt), to)
        assert n.read_tun() == pkt
    for size in range(40, 1501, 11):
        pkt = ipv6_of_size(size, src="fd00::7", dst="fd09::9")
        far.send(far.seal(pkt), to)
        assert n.read_tun() == pkt
    # Traffic put the peer on the active list once; it leaves it when read.
    assert n.dp.active_peers() == [PEER]
    assert n.dp.active_peers() == []
    # A keepalive is recognised and not written to the TUN.
    far.send(far.seal(b""), to)
    assert stats_settle(n, "keepalives_rx", 1)
    assert n.dp.active_peers() == [PEER]
    info = n.dp.peer_info(PEER)
    assert info.last_rx_auth_ns and info.last_rx_data_ns and info.rx_bytes > 0


def test_replay_and_bad_source_and_forgery_are_dropped(side) -> None:
    n, far = side
    far.install_on(n.dp, PEER, initiator=True)
    to = n.endpoint()
    good = far.seal(ipv4("10.0.0.5", "10.9.9.9", b"x"))
    far.send(good, to)
    assert n.read_tun()[12:16] == ipaddress.ip_address("10.0.0.5").packed
    far.send(good, to)                                   # the same counter again
    assert stats_settle(n, "drop_replay", 1)
    far.send(far.seal(ipv4("10.1.0.5", "10.9.9.9", b"x")), to)   # source not allowed
    assert stats_settle(n, "drop_bad_src", 1)
    forged = bytearray(far.seal(ipv4("10.0.0.5", "10.9.9.9", b"y")))
    forged[-1] ^= 1
    far.send(bytes(forged), to)
    assert stats_settle(n, "drop_decrypt", 1)
    far.send(far.seal(b"\x45" + bytes(30)), to)   # IPv4 header claiming 0 bytes
    assert stats_settle(n, "drop_malformed", 1)
    st = n.dp.stats()
    assert st.tun_tx_packets == 1


def expected_class(datagram: bytes) -> str:
    """How WireGuard classifies a datagram when no index of ours is in use and it has no
    key: responses, cookie replies and data name an index, so they drop; an initiation
    cannot carry a valid mac1 for a device without a key."""
    sizes = {1: 148, 2: 92, 3: 64}
    if len(datagram) < 4:
        return "drop_malformed"
    kind = struct.unpack_from("<I", datagram)[0]
    if kind == 1 and len(datagram) == sizes[1]:
        return "drop_handshake_mac"
    if sizes.get(kind) == len(datagram) or (kind == 4 and len(datagram) >= 32):
        return "drop_unknown_index"
    return "drop_malformed"


def test_garbage_of_every_length_is_counted(ns) -> None:
    """Lengths 0..200 with random bytes and with each type byte, at full rate: every one is
    dropped or queued as a handshake, counted, and the data plane carries on."""
    n = node(ns, event_ring_size=4096)
    sender = PyPeer(ns)
    rng = random.Random(7)
    try:
        n.dp.start()
        datagrams = []
        for length in range(201):
            datagrams.append(rng.randbytes(length))
            for kind in (1, 2, 3, 4):
                if length >= 4:
                    datagrams.append(struct.pack("<I", kind) + rng.randbytes(length - 4))
        expected: dict[str, int] = {}
        for d in datagrams:
            expected[expected_class(d)] = expected.get(expected_class(d), 0) + 1
        to = n.endpoint()
        for d in datagrams:
            sender.send(d, to)
        assert stats_settle(n, "udp_rx_packets", len(datagrams))
        st = n.dp.stats()
        for field, count in expected.items():
            assert getattr(st, field) == count, field
        assert st.handshakes_rx == 0 and not n.dp.read_events()  # nothing reached Python
    finally:
        n.close()
        sender.close()


def test_garbage_with_a_known_index_fails_authentication(side) -> None:
    n, far = side
    far.install_on(n.dp, PEER, initiator=True)
    rng = random.Random(8)
    to = n.endpoint()
    count = 0
    for length in range(32, 201):
        header = struct.pack("<IIQ", 4, far.remote_index, rng.getrandbits(64) >> 4)
        far.send(header + rng.randbytes(length - 16), to)
        count += 1
    assert stats_settle(n, "drop_decrypt", count)
    assert n.dp.stats().drop_replay == 0


def test_staging_then_flush(side) -> None:
    """No keypair: packets wait (the newest 128), one NEED_HANDSHAKE event; an initiator's
    keypair sends nothing itself, then send_keepalive sends them in order."""
    n, far = side
    pkts = [ipv4("10.9.9.9", "10.0.0.1", struct.pack("!I", i)) for i in range(200)]
    for p in pkts:
        n.tun.send(p)
    assert wait_for(lambda: n.dp.peer_info(PEER).staged == constants.MAX_STAGED_PACKETS
                    and n.dp.stats().drop_staged_overflow == 72)
    events = n.dp.read_events()
    assert [(e.type, e.peer) for e in events] == [(EventType.NEED_HANDSHAKE, PEER)]
    far.install_on(n.dp, PEER, initiator=True)
    assert n.dp.peer_info(PEER).staged == constants.MAX_STAGED_PACKETS
    n.dp.send_keepalive(PEER)
    got = [transport.trim(far.open(far.receive()).plaintext) for _ in range(128)]
    assert got == pkts[72:]
    assert n.dp.peer_info(PEER).staged == 0
    # A new episode asks again.
    n.dp.clear_keypairs(PEER)
    n.tun.send(pkts[0])
    assert wait_for(lambda: any(e.type == EventType.NEED_HANDSHAKE for e in n.dp.read_events()))
    n.dp.clear_staged(PEER)
    assert n.dp.peer_info(PEER).staged == 0
    assert n.dp.stats().drop_staged_cleared == 1


def test_responder_keypair_is_confirmed_by_its_first_packet(side) -> None:
    n, far = side
    far.install_on(n.dp, PEER, initiator=True)
    old = (far.local_index, far.remote_index)
    info = n.dp.peer_info(PEER)
    assert info.current_index == old[1] and info.next_index is None
    # A new handshake in which the data plane answered: its keypair waits in `next`.
    far.rekey(old[0] ^ 1)
    far.install_on(n.dp, PEER, initiator=False)
    info = n.dp.peer_info(PEER)
    assert (info.previous_index, info.current_index, info.next_index) == (
        None, old[1], far.remote_index)
    # Until confirmed the data plane still sends with the old keypair.
    n.tun.send(ipv4("10.9.9.9", "10.0.0.1", b"a"))
    assert struct.unpack_from("<I", far.receive(), 4)[0] == old[0]
    far.send(far.seal(ipv4("10.0.0.1", "10.9.9.9", b"b")), n.endpoint())
    assert n.read_tun().endswith(b"b")
    assert wait_for(lambda: any(e.type == EventType.KEYPAIR_CONFIRMED and e.peer == PEER
                                for e in n.dp.read_events()))
    info = n.dp.peer_info(PEER)
    assert (info.previous_index, info.current_index, info.next_index) == (
        old[1], far.remote_index, None)
    assert not info.current_initiator
    n.tun.send(ipv4("10.9.9.9", "10.0.0.1", b"c"))
    assert struct.unpack_from("<I", far.receive(), 4)[0] == far.local_index


def test_a_handshake_index_takes_no_data(side) -> None:
    """A data message naming a pending handshake's index (not a keypair's) is dropped as
    an unknown index; a response naming it goes up to Python with its peer."""
    n, far = side
    public = os.urandom(32)
    n.dp.set_public_key(public)
    pending = n.dp.new_index(PEER)
    data = struct.pack("<IIQ", 4, pending, 0) + bytes(32)
    far.send(data, n.endpoint())
    assert stats_settle(n, "drop_unknown_index", 1)
    body = struct.pack("<III", 2, 77, pending) + bytes(48)
    mac1_key = hashlib.blake2s(b"mac1----" + public).digest()
    response = body + hashlib.blake2s(body, key=mac1_key, digest_size=16).digest() + bytes(16)
    far.send(response, n.endpoint())
    assert wait_for(lambda: any(e.type == EventType.HANDSHAKE and e.peer == PEER
                                and e.data == response for e in n.dp.read_events()))
    far.send(response[:8] + struct.pack("<I", pending ^ 1) + response[12:], n.endpoint())
    assert stats_settle(n, "drop_unknown_index", 2)


def test_expired_keypair_neither_sends_nor_receives(ns) -> None:
    timing = Timing(reject_after_time_ns=2 * constants.NSEC_PER_SEC)
    n = node(ns, timing=timing)
    far = PyPeer(ns)
    try:
        n.dp.add_peer(PEER)
        n.dp.insert_allowed_ip(PEER, NET4)
        n.dp.set_endpoint(PEER, far.endpoint)
        n.dp.start()
        far.install_on(n.dp, PEER, initiator=True,
                       birth_ns=time.monotonic_ns() - 3 * constants.NSEC_PER_SEC)
        n.tun.send(ipv4("10.9.9.9", "10.0.0.1", b"a"))
        assert wait_for(lambda: n.dp.peer_info(PEER).staged == 1)
        assert [e.type for e in n.dp.read_events()] == [EventType.NEED_HANDSHAKE]
        far.send(far.seal(ipv4("10.0.0.1", "10.9.9.9", b"b")), n.endpoint())
        assert stats_settle(n, "drop_expired", 1)
    finally:
        n.close()
        far.close()


def test_reject_after_messages(ns) -> None:
    """With the limit at 5 counters, the sixth packet waits for a new keypair."""
    timing = Timing(reject_after_messages=5, rekey_after_messages=3)
    n = node(ns, timing=timing)
    far = PyPeer(ns)
    try:
        n.dp.add_peer(PEER)
        n.dp.insert_allowed_ip(PEER, NET4)
        n.dp.set_endpoint(PEER, far.endpoint)
        n.dp.start()
        far.install_on(n.dp, PEER, initiator=True)
        for i in range(7):
            n.tun.send(ipv4("10.9.9.9", "10.0.0.1", bytes([i])))
        counters = [struct.unpack_from("<Q", far.receive(), 8)[0] for _ in range(5)]
        assert counters == [0, 1, 2, 3, 4]
        assert wait_for(lambda: n.dp.peer_info(PEER).staged == 2)
        kinds = {e.type for e in n.dp.read_events()}
        assert {EventType.REKEY_SEND, EventType.NEED_HANDSHAKE} <= kinds
    finally:
        n.close()
        far.close()


def rekey_events(n: Node) -> set[EventType]:
    wait_for(lambda: False, timeout=0.2)  # events come from the packet threads
    return {e.type for e in n.dp.read_events()} & {EventType.REKEY_SEND, EventType.REKEY_RECV}


def install_aged(n: Node, far: PyPeer, age_ns: int, *, initiator: bool) -> None:
    """A fresh keypair born age_ns ago, current on both sides."""
    far.rekey(int.from_bytes(os.urandom(4), "little"))
    far.install_on(n.dp, PEER, initiator=initiator, birth_ns=time.monotonic_ns() - age_ns)
    if not initiator:  # a responder's keypair waits for the initiator's first data
        far.send(far.seal(ipv4("10.0.0.1", "10.9.9.9", b"confirm")), n.endpoint())
        n.read_tun()
    n.dp.read_events()


@pytest.mark.parametrize("initiator", [True, False])
def test_keep_key_fresh_sending_on_age_asks_only_the_initiator(side, initiator) -> None:
    """keepKeyFreshSending: a keypair REKEY_AFTER_TIME old asks for a handshake after a
    send, but only on its initiator's side, so that the two sides do not race."""
    n, far = side
    rekey_after = Timing().rekey_after_time_ns
    for age, expected in ((rekey_after - 10**9, set()),
                          (rekey_after, {EventType.REKEY_SEND} if initiator else set())):
        install_aged(n, far, age, initiator=initiator)
        n.tun.send(ipv4("10.9.9.9", "10.0.0.1", b"data"))
        far.receive()
        assert rekey_events(n) == expected


def test_keep_key_fresh_receiving_near_reject_after_time(side) -> None:
    """keepKeyFreshReceiving: data under a keypair we initiated that is REJECT_AFTER_TIME -
    KEEPALIVE_TIMEOUT - REKEY_TIMEOUT (165 s) old asks for a handshake."""
    n, far = side
    t = Timing()
    last_minute = t.reject_after_time_ns - t.keepalive_timeout_ns - t.rekey_timeout_ns
    for age, expected in ((last_minute - 10**9, set()), (last_minute, {EventType.REKEY_RECV})):
        install_aged(n, far, age, initiator=True)
        far.send(far.seal(ipv4("10.0.0.1", "10.9.9.9", b"data")), n.endpoint())
        n.read_tun()
        assert rekey_events(n) == expected


def test_roaming_follows_the_latest_authenticated_packet(side, ns) -> None:
    n, far = side
    far.install_on(n.dp, PEER, initiator=True)
    moved = PyPeer(ns, version=6)
    try:
        datagram = far.seal(ipv4("10.0.0.1", "10.9.9.9", b"r"))
        moved.send(datagram, n.endpoint(6))
        assert n.read_tun().endswith(b"r")
        assert wait_for(lambda: n.dp.peer_info(PEER).endpoint.address == moved.endpoint.address)
        ep = n.dp.peer_info(PEER).endpoint
        assert ep.port == moved.endpoint.port and ep.source == ipaddress.ip_address("::1")
        events = [e for e in n.dp.read_events() if e.type == EventType.ENDPOINT_CHANGED]
        assert len(events) == 1 and events[0].source == ep
        # Replies now go to the new endpoint, from the address it reached.
        n.tun.send(ipv4("10.9.9.9", "10.0.0.1", b"back"))
        assert far.open(moved.receive()).plaintext.startswith(ipv4("10.9.9.9", "10.0.0.1", b"back"))
        # An unauthenticated datagram does not move it back.
        far.send(b"\x04" + bytes(40), n.endpoint())
        assert stats_settle(n, "drop_unknown_index", 1)
        assert n.dp.peer_info(PEER).endpoint.address == moved.endpoint.address
    finally:
        moved.close()


def test_handshake_messages_and_keepalives_sent_for_python(side) -> None:
    n, far = side
    message = bytes([1, 0, 0, 0]) + os.urandom(144)
    n.dp.send_to_peer(PEER, message)
    assert far.receive() == message
    info = n.dp.peer_info(PEER)
    assert info.last_tx_auth_ns and info.tx_bytes == len(message) and not info.last_tx_data_ns
    n.dp.send_to(far.endpoint, b"cookie reply")
    assert far.receive() == b"cookie reply"
    # No keypair: the keepalive is staged and a handshake asked for.
    n.dp.send_keepalive(PEER)
    assert n.dp.peer_info(PEER).staged == 1
    far.install_on(n.dp, PEER, initiator=True)
    n.dp.send_keepalive(PEER)  # what the driver does after an initiator's keypair
    assert far.open(far.receive()).is_keepalive
    assert n.dp.peer_info(PEER).staged == 0


def icmp_checksum_ok(data: bytes) -> bool:
    data += b"\0" * (len(data) % 2)
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total == 0xFFFF


def test_no_peer_gets_icmp_unreachable(side) -> None:
    n, _far = side
    probe = ipv4("10.5.0.1", "192.0.2.9", b"ping?", proto=1)
    n.tun.send(probe)
    reply = n.read_tun()
    assert reply[9] == 1 and reply[12:16] == probe[16:20] and reply[16:20] == probe[12:16]
    assert reply[20:22] == bytes([3, 1]) and reply[28:] == probe
    assert icmp_checksum_ok(reply[:20]) and icmp_checksum_ok(reply[20:])
    probe6 = ipv6("fd05::1", "2001:db8::9", b"ping6?", next_header=17)
    n.tun.send(probe6)
    reply6 = n.read_tun()
    assert reply6[6] == 58 and reply6[8:24] == probe6[24:40] and reply6[40:42] == bytes([1, 3])
    pseudo = reply6[8:40] + struct.pack("!I", len(reply6) - 40) + bytes([0, 0, 0, 58])
    assert icmp_checksum_ok(pseudo + reply6[40:]) and reply6[48:] == probe6
    # Counted just after the write: wait for the counter, not the packet.
    assert wait_for(lambda: n.dp.stats().icmp_tx == 2)
    assert n.dp.stats().drop_no_peer == 2
    # No error about an error.
    n.tun.send(ipv4("10.5.0.1", "192.0.2.9", bytes([3, 1]) + bytes(30), proto=1))
    assert stats_settle(n, "drop_no_peer", 3)
    n.tun.settimeout(0.2)
    with pytest.raises(socket.timeout):
        n.tun.recv(2048)


def test_no_icmpv6_error_about_an_error_behind_extension_headers(side) -> None:
    """RFC 4443 2.4 (e) holds behind extension headers too (found by icmp_fuzz): an ICMPv6
    error after a hop-by-hop and a destination-options header gets no reply, while an echo
    request or UDP behind the same headers does."""
    n, _far = side

    def behind_options(upper: int, payload: bytes) -> bytes:
        hop_by_hop = bytes([60, 0]) + bytes(6)            # next: destination options
        destination = bytes([upper, 1]) + bytes(14)       # 16 bytes, next: the upper layer
        return ipv6("fd05::1", "2001:db8::9", hop_by_hop + destination + payload,
                    next_header=0)

    error = behind_options(58, bytes([1, 0, 0, 0]) + bytes(4) + bytes(40))
    n.tun.send(error)
    assert stats_settle(n, "drop_no_peer", 1)
    for answered in (behind_options(58, bytes([128, 0, 0, 0, 0, 1, 0, 1])),
                     behind_options(17, bytes(8) + b"udp")):
        n.tun.send(answered)
        reply = n.read_tun()
        assert reply[40:42] == bytes([1, 3]) and reply[48:] == answered
    assert wait_for(lambda: n.dp.stats().icmp_tx == 2)


def test_stop_and_restart_and_set_udp(ns) -> None:
    n = node(ns)
    far = PyPeer(ns)
    try:
        n.dp.add_peer(PEER)
        n.dp.insert_allowed_ip(PEER, NET4)
        n.dp.set_endpoint(PEER, far.endpoint)
        far.install_on(n.dp, PEER, initiator=True)
        n.dp.start()
        n.dp.stop()
        n.dp.stop()
        n.dp.start()
        fresh4 = udp_socket(ns, 4)
        n.dp.set_udp(fresh4.fileno(), -1)
        n.udp4.close()
        n.udp4 = fresh4
        far.send(far.seal(ipv4("10.0.0.1", "10.9.9.9", b"new socket")), n.endpoint())
        assert n.read_tun().endswith(b"new socket")
    finally:
        n.close()
        far.close()


def test_garbage_from_the_tun_is_counted(side) -> None:
    """Random bytes of every length 0..200 written to the TUN: each is malformed (not an
    IPv4/IPv6 header), routed to no peer, or sealed for the peer; nothing crashes."""
    n, far = side
    far.install_on(n.dp, PEER, initiator=True)
    rng = random.Random(9)
    expected = {"drop_malformed": 0, "drop_no_peer": 0, "udp_tx_packets": 0}
    for length in range(201):
        pkt = bytearray(rng.randbytes(length))
        if length and rng.random() < 0.5:
            pkt[0] = (pkt[0] & 0x0F) | rng.choice([0x40, 0x60])
        version = pkt[0] >> 4 if pkt else 0
        if (version, length >= 20) == (4, True) or (version, length >= 40) == (6, True):
            dst = ipaddress.ip_address(bytes(pkt[16:20] if version == 4 else pkt[24:40]))
            expected["udp_tx_packets" if dst in (NET4 if version == 4 else NET6)
                     else "drop_no_peer"] += 1
        else:
            expected["drop_malformed"] += 1
        n.tun.send(bytes(pkt))
    total = sum(expected.values())
    assert wait_for(lambda: sum(getattr(n.dp.stats(), f) for f in expected) == total)
    st = n.dp.stats()
    assert {f: getattr(st, f) for f in expected} == expected


def test_virtio_header_on_the_tun(ns) -> None:
    """With IFF_VNET_HDR each TUN packet carries a 10-byte virtio_net_hdr: stripped on read
    (a checksum the kernel left to us is filled in), a zero one added on write."""
    n = node(ns, vnet_hdr=True)
    far = PyPeer(ns)
    try:
        n.dp.add_peer(PEER)
        n.dp.insert_allowed_ip(PEER, NET4)
        n.dp.set_endpoint(PEER, far.endpoint)
        n.dp.start()
        far.install_on(n.dp, PEER, initiator=True)
        # UDP in IPv4, checksum left to us: the field holds the pseudo-header sum.
        body = b"checksum me"
        udp = struct.pack("!HHHH", 1000, 2000, 8 + len(body), 0) + body
        pkt = bytearray(ipv4("10.9.9.9", "10.0.0.1", udp))
        pseudo = pkt[12:20] + struct.pack("!BBH", 0, 17, len(udp))
        partial = sum(struct.unpack("!6H", pseudo))
        while partial >> 16:
            partial = (partial & 0xFFFF) + (partial >> 16)
        struct.pack_into("!H", pkt, 26, partial)
        n.tun.send(struct.pack("<BBHHHH", 1, 0, 0, 0, 20, 6) + bytes(pkt))
        sent = transport.trim(far.open(far.receive()).plaintext)
        assert sent[:26] == pkt[:26] and sent[28:] == pkt[28:]
        assert icmp_checksum_ok(bytes(pseudo) + sent[20:])   # the UDP checksum verifies
        # A GSO packet cannot be segmented yet: dropped and counted.
        n.tun.send(struct.pack("<BBHHHH", 0, 1, 40, 1380, 20, 16) + bytes(pkt))
        assert stats_settle(n, "drop_malformed", 1)
        # Receive: the TUN gets a zero virtio header in front.
        inner = ipv4("10.0.0.1", "10.9.9.9", b"hello")
        far.send(far.seal(inner), n.endpoint())
        assert n.read_tun() == bytes(10) + inner
    finally:
        n.close()
        far.close()



@pytest.mark.parametrize("vnet_hdr", [False, True])
def test_packet_info_header_on_the_tun(ns, vnet_hdr: bool) -> None:
    """A TUN opened without IFF_NO_PI puts 4 bytes (flags, EtherType) before each packet,
    and before the virtio header if there is one; the data plane writes the right
    EtherType for each IP version."""
    n = node(ns, pi=True, vnet_hdr=vnet_hdr)
    far = PyPeer(ns)
    vnet = bytes(10) if vnet_hdr else b""
    try:
        n.dp.add_peer(PEER)
        n.dp.insert_allowed_ip(PEER, NET4)
        n.dp.insert_allowed_ip(PEER, NET6)
        n.dp.set_endpoint(PEER, far.endpoint)
        n.dp.start()
        far.install_on(n.dp, PEER, initiator=True)
        for pkt, proto in ((ipv4("10.9.9.9", "10.0.0.1", b"four"), 0x0800),
                           (ipv6("fd09::9", "fd00::1", b"six"), 0x86DD)):
            n.tun.send(struct.pack("!HH", 0, proto) + vnet + pkt)
            assert transport.trim(far.open(far.receive()).plaintext) == pkt
            reply = (ipv4("10.0.0.1", "10.9.9.9", b"r4") if proto == 0x0800
                     else ipv6("fd00::1", "fd09::9", b"r6"))
            far.send(far.seal(reply), n.endpoint())
            assert n.read_tun() == struct.pack("!HH", 0, proto) + vnet + reply
    finally:
        n.close()
        far.close()


ROUTE_MTU_CASES = [
    # (destination, size, the cap the routes below give it: worked out by hand)
    ("10.0.0.2", 1297, 1299),      # the /32's 1299, not the /24's 1290: the longest prefix
    ("10.0.0.2", 1290, 1299),
    ("10.0.0.2", 1299, 1299),      # already at the route's MTU: no padding
    ("10.0.0.2", 1280, 1299),      # a multiple of 16: no padding either way
    ("10.0.0.2", 1281, 1299),      # past the table's smallest MTU: looked up, padded to 1296
    ("10.0.0.7", 1285, 1290),      # the /24 alone
    ("10.0.0.7", 1200, 1290),      # far below every MTU: the fast path
    ("10.0.1.7", 1297, 1300),      # no route of ours: the interface's MTU
    ("fd00::2", 1283, 1285),       # IPv6: the /128
    ("fd00::3", 1283, 1300),       # another address of the same /64: the interface's
]


def _padded_to(far: PyPeer, n: Node, packet: bytes) -> int:
    n.tun.send(packet)
    opened = far.open(far.receive())
    assert isinstance(opened, transport.Opened)
    assert transport.trim(opened.plaintext) == packet
    return len(opened.plaintext)


def test_route_mtus_cap_the_padding(ns) -> None:
    """Packets are padded to at most the MTU of the longest route prefix (of those handed
    over) containing their destination, and never past the interface's MTU; the expected
    lengths come from the reference padding at the cap the test works out by hand."""
    n = node(ns, mtu=1300)
    far = PyPeer(ns)
    try:
        n.dp.add_peer(PEER)
        n.dp.insert_allowed_ip(PEER, ipaddress.ip_network("10.0.0.0/16"))
        n.dp.insert_allowed_ip(PEER, NET6)
        n.dp.set_endpoint(PEER, far.endpoint)
        n.dp.start()
        far.install_on(n.dp, PEER, initiator=True)
        n.dp.set_route_mtus([(ipaddress.ip_network("10.0.0.0/24"), 1290),
                             (ipaddress.ip_network("10.0.0.2/32"), 1299),
                             (ipaddress.ip_network("fd00::2/128"), 1285),
                             (ipaddress.ip_network("192.168.0.0/16"), 1200),
                             (ipaddress.ip_network("10.0.0.0/8"), 1400)])
        for dst, size, cap in ROUTE_MTU_CASES:
            packet = ipv4_of_size(size, dst=dst) if ":" not in dst else \
                ipv6_of_size(size, dst=dst)
            assert _padded_to(far, n, packet) == size + transport.padding_length(size, cap), \
                (dst, size, cap)
        # The cap for every packet (routes left out past the bound) joins the routes'.
        n.dp.set_route_mtus([(ipaddress.ip_network("10.0.0.2/32"), 1299)], overflow_mtu=1290)
        for dst, size in (("10.0.0.2", 1285), ("10.0.1.7", 1285), ("fd00::3", 1283)):
            packet = ipv4_of_size(size, dst=dst) if ":" not in dst else \
                ipv6_of_size(size, dst=dst)
            assert _padded_to(far, n, packet) == size + transport.padding_length(size, 1290)
        # An empty table: the interface's MTU again.
        n.dp.set_route_mtus([])
        assert _padded_to(far, n, ipv4_of_size(1297, dst="10.0.0.2")) == 1300
    finally:
        n.close()
        far.close()


@pytest.mark.parametrize("routes", [
    [(ipaddress.ip_network("10.0.0.0/24"), 0)],                    # an MTU of 0
    [(ipaddress.ip_network(f"10.{i >> 8}.{i & 255}.0/24"), 1280) for i in range(65)],
])
def test_route_mtus_refused(side, routes) -> None:
    """A table C cannot take is refused whole, and the one before stays."""
    n, far = side
    far.install_on(n.dp, PEER, initiator=True)
    n.dp.set_route_mtus([(ipaddress.ip_network("10.0.0.0/24"), 1290)])
    with pytest.raises(OSError) as e:
        n.dp.set_route_mtus(routes)
    assert e.value.errno == errno.EINVAL
    assert _padded_to(far, n, ipv4_of_size(1285, dst="10.0.0.7")) == 1290
