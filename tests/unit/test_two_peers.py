"""Two in-process peers through the reference device (tests/support/pydevice.py): the
handshake, data both ways, rekeying, replays, cryptokey routing, stale keys, retries and
giving up, keepalives, all on a fake clock and an in-memory network.

Every datagram both devices exchange is real WireGuard (the handshake core and transport
reference build them); the expectations are the protocol's: message sizes, 20 initiations
before giving up, a keepalive 10 s after unanswered data, REJECT_AFTER_TIME of 180 s.
"""

from __future__ import annotations

import itertools
import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from pywg._protocol.timers import Timing
from tests.support.packets import ipv4, ipv6
from tests.support.pydevice import A_INNER, B_INNER, Datagram, Pair, make_pair

S = 1_000_000_000


def a_to_b(payload: bytes = b"ping", v6: bool = False) -> bytes:
    if v6:
        return ipv6(A_INNER[1], B_INNER[1], payload)
    return ipv4(A_INNER[0], B_INNER[0], payload)


def b_to_a(payload: bytes = b"pong", v6: bool = False) -> bytes:
    if v6:
        return ipv6(B_INNER[1], A_INNER[1], payload)
    return ipv4(B_INNER[0], A_INNER[0], payload)


def kinds(datagrams: list[Datagram]) -> list[tuple[int, int]]:
    """(message type, size) of each datagram."""
    return [(struct.unpack_from("<I", d.data)[0], len(d.data)) for d in datagrams]


def from_(pair_: Pair, who: str, msg_type: int, size: int | None = None) -> list[Datagram]:
    src = (pair_.a if who == "a" else pair_.b).endpoint
    return [d for d in pair_.network.sent
            if d.src == src and d.data[0] == msg_type and (size is None or len(d.data) == size)]


def connected(**kwargs: object) -> Pair:
    """A pair that has completed a handshake and exchanged one packet each way."""
    p = make_pair(**kwargs)  # type: ignore[arg-type]
    p.a.send(a_to_b(b"hello"))
    p.settle()
    p.clock.advance(0.001)
    p.b.send(b_to_a(b"hello back"))
    p.settle()
    p.a.tun.clear()
    p.b.tun.clear()
    return p


def test_handshake_then_data_both_ways_v4_and_v6() -> None:
    p = make_pair()
    sent = [a_to_b(b"one"), a_to_b(b"two", v6=True)]
    for packet in sent:
        p.a.send(packet)
    assert len(p.a.peers[p.b.public_key].staged) == 2  # waiting for the handshake
    p.settle()
    assert list(p.b.tun) == sent
    # Initiation (148), response (92), then the two staged packets, padded to 16 bytes.
    assert kinds(list(p.network.sent)) == [(1, 148), (2, 92), (4, 32 + 32), (4, 32 + 48)]
    # b learned a's endpoint from the authenticated initiation (it was never configured).
    assert p.b.peers[p.a.public_key].endpoint == p.a.endpoint
    p.clock.advance(0.01)
    back = [b_to_a(b"three"), b_to_a(b"four" * 100, v6=True)]
    for packet in back:
        p.b.send(packet)
    p.settle()
    assert list(p.a.tun) == back
    assert not p.a.drops and not p.b.drops


def test_the_responder_sends_only_once_the_initiator_confirmed() -> None:
    p = make_pair()
    p.a.send(a_to_b())
    p.network.deliver(limit=2)  # the initiation and the response, not the data
    held = p.network.hold()
    assert kinds(held) == [(4, 64)]
    b_peer = p.b.peers[p.a.public_key]
    assert b_peer.keypairs.next is not None and b_peer.keypairs.current is None
    p.b.send(b_to_a(b"early"))
    assert list(b_peer.staged) == [b_to_a(b"early")]
    p.network.in_flight.extend(held)
    p.settle()
    # a's data confirmed b's keypair, which then carried the staged packet.
    assert p.b.events["next_keypair_confirmed"] == 1
    assert b_to_a(b"early") in p.a.tun
    assert list(p.b.tun) == [a_to_b()]


def test_rekey_after_rekey_after_time_loses_nothing() -> None:
    p = connected()
    expected_a, expected_b = [], []
    for second in range(400):
        pa, pb = a_to_b(second.to_bytes(2, "big")), b_to_a(second.to_bytes(2, "big"), v6=True)
        expected_b.append(pa)
        expected_a.append(pb)
        p.a.send(pa)
        p.b.send(pb)
        p.run_for(1)
    assert list(p.b.tun) == expected_b
    assert list(p.a.tun) == expected_a
    # The initiator rekeys every REKEY_AFTER_TIME (120 s) while it sends: at 120, 240, 360.
    assert p.a.events["session_installed"] == 4
    assert p.b.events["send_initiation"] == 0  # the responder never rekeys on age
    assert not p.a.drops and not p.b.drops


def test_rekey_after_messages() -> None:
    timing = Timing(rekey_after_messages=20, reject_after_messages=30)
    p = connected(timing=timing)
    expected = []
    for i in range(200):
        packet = a_to_b(i.to_bytes(2, "big"))
        expected.append(packet)
        p.a.send(packet)
        p.run_for(0.01 if i % 10 else 6)  # bursts, with time for a handshake in between
    assert list(p.b.tun) == expected
    assert p.a.events["session_installed"] >= 200 // 30
    assert not p.b.drops


def test_replayed_transport_packets_are_rejected() -> None:
    p = connected()
    p.a.send(a_to_b(b"once"))
    p.settle()
    assert list(p.b.tun) == [a_to_b(b"once")]
    for d in list(p.network.sent):
        if d.data[0] == 4:
            p.network.send(d.src, d.dst, d.data)
    p.settle()
    assert list(p.b.tun) == [a_to_b(b"once")]
    assert p.b.drops["replayed"] >= 2 and p.a.drops["replayed"] >= 1


def test_inner_source_outside_allowed_ips_is_dropped() -> None:
    p = connected()
    p.b.send(ipv4("10.0.0.99", A_INNER[0], b"spoofed"))
    p.b.send(ipv6("fd00::99", A_INNER[1], b"spoofed"))
    p.b.send(b_to_a(b"honest"))
    p.settle()
    assert list(p.a.tun) == [b_to_a(b"honest")]
    assert p.a.drops["disallowed_source"] == 2


def test_no_route_for_an_unknown_destination() -> None:
    p = connected()
    p.a.send(ipv4(A_INNER[0], "10.9.9.9", b"nowhere"))
    assert p.a.drops["no_route"] == 1


def test_keys_are_rejected_after_reject_after_time() -> None:
    p = connected()
    current = p.b.peers[p.a.public_key].keypairs.current
    assert current is not None
    birth = current.birth_ns
    p.a.send(a_to_b(b"late"))
    p.a.send(a_to_b(b"in time"))
    late, in_time = p.network.hold()
    p.clock.now_ns = birth + 180 * S - 1
    p.network.in_flight.append(in_time)
    p.network.deliver()
    p.clock.now_ns = birth + 180 * S
    p.network.in_flight.append(late)
    p.network.deliver()
    assert list(p.b.tun) == [a_to_b(b"in time")]
    assert p.b.drops["key_expired"] == 1


def test_sending_after_reject_after_time_needs_a_new_handshake() -> None:
    p = connected()
    p.run_for(200)
    assert p.a.events["session_installed"] == 1
    p.a.send(a_to_b(b"after"))
    assert p.network.in_flight[-1].data[0] == 1  # staged; an initiation went out instead
    p.settle()
    assert list(p.b.tun) == [a_to_b(b"after")]
    assert p.a.events["session_installed"] == 2


def test_retries_and_gives_up_when_the_peer_is_gone() -> None:
    p = make_pair()
    p.network.unreachable.add(p.b.endpoint)
    p.a.send(a_to_b(b"lost"))
    p.run_for(200)
    initiations = from_(p, "a", 1)
    assert len(initiations) == 20
    gaps = [y.sent_ns - x.sent_ns for x, y in itertools.pairwise(initiations)]
    assert all(5 * S <= gap < 5 * S + 334_000_000 for gap in gaps)
    a_peer = p.a.peers[p.b.public_key]
    assert not a_peer.staged and a_peer.counters.staged_dropped == 1
    assert p.a.events["flush_staged"] == 1
    p.run_for(1000)
    assert len(from_(p, "a", 1)) == 20  # nothing more is tried until there is traffic
    assert p.a.events["zero_key_material"] == 1


def test_keys_are_wiped_540_s_after_the_last_session() -> None:
    p = connected()
    keypair = p.a.peers[p.b.public_key].keypairs.current
    assert keypair is not None
    p.run_for(539)
    assert keypair.valid and any(keypair.send_key)
    p.run_for(2)
    assert not keypair.valid and not any(keypair.send_key) and not any(keypair.receive_key)
    assert p.a.peers[p.b.public_key].keypairs.current is None
    assert p.b.peers[p.a.public_key].keypairs.current is None
    # The indices went back to the handshake core's table.
    assert p.a.core.index_entry(keypair.local_index) is None


def test_staged_packets_are_bounded_and_the_oldest_go() -> None:
    p = make_pair()
    p.network.unreachable.add(p.b.endpoint)
    packets = [a_to_b(i.to_bytes(2, "big")) for i in range(200)]
    for packet in packets:
        p.a.send(packet)
    a_peer = p.a.peers[p.b.public_key]
    assert len(a_peer.staged) == 128 and a_peer.counters.staged_dropped == 72
    p.network.unreachable.clear()
    p.run_for(6)  # the retransmission gets through
    assert list(p.b.tun) == packets[72:]


def test_passive_keepalive_answers_unanswered_data() -> None:
    p = connected()  # b's "hello back" is the last packet: a owes an answer
    first = from_(p, "b", 4)[-1]
    p.clock.advance(1)
    p.b.send(b_to_a(b"a second word"))  # does not push the keepalive back
    p.run_for(60)
    keepalives = from_(p, "a", 4, size=32)
    assert [k.sent_ns - first.sent_ns for k in keepalives] == [10 * S]
    assert p.b.events["keepalive_received"] == 1
    assert p.b.events["send_initiation"] == 0  # b heard back in time: no new handshake
    assert list(p.a.tun) == [b_to_a(b"a second word")]  # the keepalive adds nothing
    # Data after the keepalive owes another.
    p.b.send(b_to_a(b"later"))
    later = p.clock.now_ns
    p.run_for(60)
    keepalives = from_(p, "a", 4, size=32)
    assert len(keepalives) == 2 and keepalives[1].sent_ns - later == 10 * S


def test_new_handshake_when_data_goes_unanswered() -> None:
    p = connected()
    p.run_for(11)  # a's keepalive answers b's last packet: b has nothing to chase
    p.network.unreachable.add(p.b.endpoint)
    sent_at = p.clock.now_ns
    p.a.send(a_to_b(b"anyone?"))
    p.run_for(16)
    initiations = [d for d in from_(p, "a", 1) if d.sent_ns > sent_at]
    assert len(initiations) == 1
    assert 15 * S <= initiations[0].sent_ns - sent_at < 15 * S + 334_000_000


def test_persistent_keepalive() -> None:
    p = make_pair(a_keepalive_s=25)
    p.settle()  # turning it on sent a keepalive, which needed (and got) a handshake
    assert p.b.events["next_keypair_confirmed"] == 1
    p.run_for(101)
    keepalives = from_(p, "a", 4, size=32)
    gaps = [y.sent_ns - x.sent_ns for x, y in itertools.pairwise(keepalives)]
    assert len(keepalives) == 5 and gaps == [25 * S] * 4
    assert not from_(p, "b", 4, size=32)  # b has none configured and owes none


def test_both_sides_initiating_at_once() -> None:
    p = make_pair()
    p.b.peers[p.a.public_key].endpoint = p.a.endpoint
    p.a.send(a_to_b(b"from a"))
    p.b.send(b_to_a(b"from b"))
    p.run_for(30)
    assert list(p.b.tun) == [a_to_b(b"from a")]
    assert list(p.a.tun) == [b_to_a(b"from b")]


def test_bad_handshake_messages_are_counted_drops() -> None:
    p = make_pair()
    p.a.send(a_to_b())
    initiation = p.network.hold()[0]
    src, dst = initiation.src, initiation.dst
    forged = bytearray(initiation.data)
    forged[120] ^= 1  # inside mac1
    for data in (bytes(forged), initiation.data[:147], initiation.data + b"\x00",
                 b"\x05" + initiation.data[1:], b""):
        p.network.send(src, dst, data)
    p.network.send(src, dst, initiation.data)
    p.settle()
    assert p.b.drops["bad_mac1"] == 1
    assert p.b.drops["malformed"] == 4
    assert p.b.events["session_installed"] == 1
    p.clock.advance(1)
    p.network.send(src, dst, initiation.data)  # the same initiation again: a replay
    p.settle()
    assert p.b.drops["stale_timestamp"] == 1
    assert p.b.events["session_installed"] == 1


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=200), st.sampled_from([b"", b"\x04\x00\x00\x00", b"\x01\x00\x00\x00",
                                                 b"\x02\x00\x00\x00", b"\x03\x00\x00\x00"]))
def test_arbitrary_datagrams_never_crash_a_device(data: bytes, prefix: bytes) -> None:
    p = connected()
    p.b.receive(prefix + data, p.a.endpoint)
    assert not p.b.tun
    assert sum(p.b.drops.values()) == 1


def test_under_load_a_cookie_reply_then_mac2_gets_through() -> None:
    p = make_pair()
    p.b.under_load = True
    p.a.send(a_to_b(b"busy?"))
    p.settle()
    # b answered the mac2-less initiation with a 64-byte cookie reply, not a response.
    assert kinds(from_(p, "b", 3)) == [(3, 64)]
    assert not from_(p, "b", 2) and p.a.events["cookie_consumed"] == 1
    first = from_(p, "a", 1)[0]
    forged = bytearray(first.data)
    forged[-1] ^= 1  # a wrong mac2 is answered with a cookie again, never processed
    p.network.send(first.src, first.dst, bytes(forged))
    p.settle()
    assert len(from_(p, "b", 3)) == 2 and p.b.events["session_installed"] == 0
    # a does not resend at once: its retransmission 5 s later carries mac2 and succeeds.
    p.run_for(6)
    retries = [d for d in from_(p, "a", 1) if d.sent_ns > first.sent_ns]
    assert len(retries) == 1 and retries[0].data[-16:] != bytes(16)
    assert list(p.b.tun) == [a_to_b(b"busy?")]
