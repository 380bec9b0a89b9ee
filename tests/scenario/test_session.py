"""A session between two real devices: the handshake, data both ways, and what a device
must refuse (replays, forged sources, unknown destinations, bad handshake messages).

The expectations are the protocol's, checked on the wire between the devices: message
types and sizes (initiation 148, response 92, cookie reply 64, data 32 plus the padded
plaintext), and what each TUN receives.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.scenario.pair import a_to_b, b_to_a, padded, pair
from tests.support.packets import ipv4, ipv6


def sizes(datagrams: list) -> list[tuple[int, int]]:  # type: ignore[type-arg]
    return [(d.type, len(d.data)) for d in datagrams]


def test_handshake_then_data_both_ways_v4_and_v6() -> None:
    with pair() as p:
        sent = [a_to_b(b"one"), a_to_b(b"two", v6=True)]
        for packet in sent:
            p.a.send(packet)
        assert p.wait(lambda: len(p.b.received) == 2)
        assert p.b.received == sent
        # Initiation, response, then the two staged packets, each padded to 16 bytes.
        assert sizes(p.wire.log) == [(1, 148), (2, 92), (4, padded(len(sent[0]))),
                                     (4, padded(len(sent[1])))]
        back = [b_to_a(b"three"), b_to_a(b"four" * 100, v6=True)]
        for packet in back:
            p.b.send(packet)
        assert p.wait(lambda: len(p.a.received) == 2)
        assert p.a.received == back
        # Nothing was dropped anywhere.
        for side in (p.a, p.b):
            stats = side.stats()
            assert stats.drop_decrypt == stats.drop_replay == stats.drop_bad_src == 0


def test_the_responder_learns_the_initiators_endpoint() -> None:
    with pair() as p:
        p.b.set("public_key=" + p.a.public_key.hex() + "\nupdate_only=true\nendpoint=127.0.0.1:9")
        p.a.send(a_to_b())
        assert p.wait(lambda: len(p.b.received) == 1)
        # b's configured endpoint was wrong; the authenticated initiation corrected it.
        b_info = p.b.peer_info()
        assert b_info.endpoint is not None and b_info.endpoint.port != 9
        p.b.send(b_to_a())
        assert p.wait(lambda: len(p.a.received) == 1)


def test_the_responder_sends_only_once_the_initiator_confirmed() -> None:
    with pair() as p:
        p.wire.hold.add("a>b")
        p.wire.drop["a>b"] = lambda d: False
        p.a.send(a_to_b(b"first"))
        # Let the initiation through, hold a's first data packet.
        assert p.wait(lambda: bool(p.wire.held))
        initiation = p.wire.held.pop(0)
        assert initiation.type == 1
        p.wire.send("a>b", initiation.data)
        assert p.wait(lambda: any(d.type == 4 for d in p.wire.held))
        info = p.b.peer_info()
        assert info.next_index is not None and info.current_index is None
        p.b.send(b_to_a(b"early"))
        p.run_for(0.05)
        assert not p.wire.sent("b>a", 4)  # staged: b's keypair is not confirmed yet
        p.wire.release()
        assert p.wait(lambda: len(p.a.received) == 1 and len(p.b.received) == 1)
        assert p.a.received == [b_to_a(b"early")]
        info = p.b.peer_info()
        assert info.current_index is not None and info.next_index is None


def test_replayed_data_is_dropped_and_counted() -> None:
    with pair() as p:
        p.connect()
        p.a.send(a_to_b(b"once"))
        assert p.wait(lambda: len(p.b.received) == 1)
        data = p.wire.sent("a>b", 4)
        for d in data:
            p.wire.send("a>b", d.data)
        assert p.wait(lambda: p.b.stats().drop_replay == len(data))
        assert p.b.received == [a_to_b(b"once")]


def test_a_forged_data_packet_fails_authentication() -> None:
    with pair() as p:
        p.connect()
        p.a.send(a_to_b(b"real"))
        assert p.wait(lambda: len(p.b.received) == 1)
        forged = bytearray(p.wire.sent("a>b", 4)[-1].data)
        forged[-20] ^= 1
        forged[8] ^= 0x80  # a fresh counter, so the replay window does not see it first
        p.wire.send("a>b", bytes(forged))
        assert p.wait(lambda: p.b.stats().drop_decrypt == 1)
        assert p.b.received == [a_to_b(b"real")]


def test_inner_source_outside_allowed_ips_is_dropped() -> None:
    with pair() as p:
        p.connect()
        p.b.send(ipv4("10.0.0.99", p.a.inner[0], b"spoofed"))
        p.b.send(ipv6("fd00::99", p.a.inner[1], b"spoofed"))
        p.b.send(b_to_a(b"honest"))
        assert p.wait(lambda: len(p.a.received) == 1 and p.a.stats().drop_bad_src == 2)
        assert p.a.received == [b_to_a(b"honest")]


def test_a_destination_no_peer_allows_is_refused_with_icmp() -> None:
    with pair() as p:
        p.a.send(ipv4(p.a.inner[0], "10.9.9.9", b"nowhere"))
        assert p.wait(lambda: p.a.stats().drop_no_peer == 1)
        assert p.wait(lambda: len(p.a.received) == 1)
        icmp = p.a.received[0]
        assert icmp[9] == 1 and icmp[20:22] == b"\x03\x01"  # host unreachable, as the kernel
        assert not p.wire.log  # nothing went out, not even a handshake


def test_bad_handshake_messages_are_dropped_and_the_real_one_is_not() -> None:
    with pair() as p:
        p.wire.hold.add("a>b")
        p.a.send(a_to_b())
        assert p.wait(lambda: bool(p.wire.held))
        initiation = p.wire.held.pop(0).data
        forged = bytearray(initiation)
        forged[120] ^= 1  # inside mac1
        for data in (bytes(forged), initiation[:147], initiation + b"\0",
                     b"\x05" + initiation[1:], b""):
            p.wire.send("a>b", data)
        p.wire.send("a>b", initiation)
        assert p.wait(lambda: len(p.b.received) == 0 and bool(p.wire.sent("b>a", 2)))
        assert p.b.stats().drop_handshake_mac == 1
        assert p.b.stats().drop_malformed == 4
        # The same initiation again is a replay of its timestamp: no second response.
        p.wire.send("a>b", initiation)
        assert p.wait(lambda: p.b.device.drops["STALE_TIMESTAMP"] == 1)
        assert len(p.wire.sent("b>a", 2)) == 1


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=200), st.sampled_from([b"", b"\x04\0\0\0", b"\x01\0\0\0",
                                                 b"\x02\0\0\0", b"\x03\0\0\0"]))
def test_arbitrary_datagrams_leave_a_device_working(data: bytes, prefix: bytes) -> None:
    with pair() as p:
        p.connect()
        p.wire.send("a>b", prefix + data)
        p.a.send(a_to_b(b"still fine"))
        assert p.wait(lambda: len(p.b.received) == 1)
        assert p.b.received == [a_to_b(b"still fine")]


def test_the_timers_read_what_the_data_plane_reports() -> None:
    # peer_facts is peer_info's timer fields read in one unpack: they must agree.
    with pair() as p:
        p.connect()
        p.b.send(b_to_a())
        assert p.wait(lambda: len(p.a.received) == 1)
        for side in (p.a, p.b):
            (peer,) = side.device._peers.values()
            info = side.device.dp.peer_info(peer.slot)
            reachable, facts = side.device.dp.peer_facts(peer.slot)
            assert reachable == (info.endpoint is not None) is True
            assert (facts.last_tx_auth_ns, facts.last_rx_auth_ns, facts.last_tx_data_ns,
                    facts.last_rx_data_ns, facts.first_tx_data_since_rx_ns,
                    facts.first_rx_data_since_tx_ns, facts.keypair_birth_ns,
                    facts.keypair_send_counter, facts.keypair_is_initiator,
                    facts.has_next_keypair, facts.staged) == (
                info.last_tx_auth_ns, info.last_rx_auth_ns, info.last_tx_data_ns,
                info.last_rx_data_ns, info.first_tx_data_since_rx_ns,
                info.first_rx_data_since_tx_ns, info.current_birth_ns,
                info.current_send_counter, info.current_initiator, info.next_index is not None,
                info.staged)
            assert facts.keypair_birth_ns and facts.last_rx_auth_ns
        assert p.a.device.dp.peer_facts(0)[1].keypair_is_initiator
