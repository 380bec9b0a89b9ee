"""Transport data messages: the Noise vectors' transport frames byte for byte, round trips
at every size, the padding rule at MTU edges, and every malformed input as a typed drop."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pywg._protocol import crypto, noise, transport
from pywg._protocol.keypair import Keypair
from pywg._protocol.timers import Timing
from pywg._protocol.transport import Opened, TransportDrop
from tests.support.packets import ipv4, ipv4_of_size, ipv6_of_size

S = 1_000_000_000
T0 = 1_000 * S
TIMING = Timing()
VECTORS = json.loads(
    (Path(__file__).parents[1] / "data" / "noise-ikpsk2-vectors.json").read_text())["vectors"]


def pair(birth: int = T0) -> tuple[Keypair, Keypair]:
    """Two ends of one session: a's send key is b's receive key and the reverse."""
    k1, k2 = bytearray(range(32)), bytearray(range(100, 132))
    a = Keypair(bytearray(k1), bytearray(k2), local_index=0x11, remote_index=0x22,
                birth_ns=birth, is_initiator=True)
    b = Keypair(bytearray(k2), bytearray(k1), local_index=0x22, remote_index=0x11,
                birth_ns=birth, is_initiator=False)
    return a, b


def lookup_for(*keypairs: Keypair):
    table = {kp.local_index: kp for kp in keypairs}
    return table.get


def unseal(datagram: bytes, receiver: Keypair, now: int = T0) -> Opened | TransportDrop:
    return transport.unseal(datagram, lookup_for(receiver), now, TIMING)


# ---- known answers ---------------------------------------------------------------------------


def vector_sessions(v: dict) -> tuple[Keypair, Keypair]:
    """Run the vector's handshake through the Noise layer; return both ends' keypairs."""
    h = bytes.fromhex
    name, prologue, psk = v["protocol_name"].encode(), h(v["init_prologue"]), h(v["init_psks"][0])
    init_static, resp_static = h(v["init_static"]), h(v["resp_static"])
    init_pub, resp_pub = crypto.public_key(init_static), crypto.public_key(resp_static)
    assert resp_pub == h(v["init_remote_static"])
    msg0, msg1 = (h(m["ciphertext"]) for m in v["messages"][:2])

    sym_i = noise.SymmetricState.initialize(name, prologue)
    sym_i.mix_hash(resp_pub)
    e, enc_s, enc_p = noise.write_initiation(
        sym_i, ephemeral_private=h(v["init_ephemeral"]), local_static_public=init_pub,
        remote_static=resp_pub, static_static=crypto.dh(init_static, resp_pub),
        payload=h(v["messages"][0]["payload"]))
    assert e + enc_s + enc_p == msg0

    sym_r = noise.SymmetricState.initialize(name, prologue)
    sym_r.mix_hash(resp_pub)
    noise.read_initiation_static(sym_r, local_static_private=resp_static, ephemeral=msg0[:32],
                                 encrypted_static=msg0[32:80])
    noise.read_initiation_payload(sym_r, static_static=crypto.dh(resp_static, init_pub),
                                  encrypted_payload=msg0[80:])
    e_r, enc_r = noise.write_response(
        sym_r, ephemeral_private=h(v["resp_ephemeral"]), remote_ephemeral=msg0[:32],
        remote_static=init_pub, preshared_key=psk, payload=h(v["messages"][1]["payload"]))
    assert e_r + enc_r == msg1
    noise.read_response(sym_i, ephemeral_private=h(v["init_ephemeral"]),
                        local_static_private=init_static, remote_ephemeral=msg1[:32],
                        preshared_key=psk, encrypted_payload=msg1[32:])
    assert bytes(sym_i.hash) == bytes(sym_r.hash) == h(v["handshake_hash"])

    i_send, i_recv = sym_i.split()
    r_recv, r_send = sym_r.split()
    initiator = Keypair(i_send, i_recv, local_index=1, remote_index=2, birth_ns=T0,
                        is_initiator=True)
    responder = Keypair(r_send, r_recv, local_index=2, remote_index=1, birth_ns=T0,
                        is_initiator=False)
    return initiator, responder


@pytest.mark.parametrize("v", VECTORS, ids=lambda v: v["source"])
def test_noise_vector_transport_messages(v: dict) -> None:
    # After the handshake the vectors alternate initiator, responder, initiator, ...; each
    # side's counter starts at 0. With the MTU equal to the payload size there is no
    # padding, so the bytes after our 16-byte header are exactly the vector's ciphertext.
    initiator, responder = vector_sessions(v)
    for i, message in enumerate(v["messages"][2:]):
        sender, receiver = (initiator, responder) if i % 2 == 0 else (responder, initiator)
        payload, expected = bytes.fromhex(message["payload"]), bytes.fromhex(message["ciphertext"])
        sealed = transport.seal(sender, payload, mtu=len(payload))
        assert sealed[:16] == struct.pack("<IIQ", 4, receiver.local_index, i // 2)
        assert sealed[16:] == expected
        opened = unseal(sealed, receiver)
        assert isinstance(opened, Opened)
        assert opened.plaintext == payload and opened.counter == i // 2


# ---- round trips and padding -----------------------------------------------------------------


def test_round_trip_every_size_up_to_1500() -> None:
    a, b = pair()
    for size in range(0, 1501):
        packets = [b""] if size == 0 else []
        if size >= 20:
            packets.append(ipv4_of_size(size))
        if size >= 40:
            packets.append(ipv6_of_size(size))
        for packet in packets:
            sealed = transport.seal(a, packet, mtu=1500)
            padded = min(1500, -(-size // 16) * 16)
            assert len(sealed) == 16 + padded + 16
            opened = unseal(sealed, b)
            assert isinstance(opened, Opened)
            assert opened.plaintext == packet + bytes(padded - size)
            assert opened.is_keepalive == (size == 0)
            if size:
                assert transport.trim(opened.plaintext) == packet


def test_a_keepalive_is_32_bytes() -> None:
    a, b = pair()
    sealed = transport.seal(a, b"", mtu=1420)
    assert len(sealed) == 32
    opened = unseal(sealed, b)
    assert isinstance(opened, Opened) and opened.is_keepalive


@pytest.mark.parametrize(
    "length, mtu, padding",
    [
        (0, 1420, 0),
        (1, 1420, 15),
        (16, 1420, 0),
        (17, 1420, 15),
        (1408, 1420, 0),  # a multiple of 16 below the MTU
        (1409, 1420, 11),  # rounding up would give 1424: clamped to the MTU
        (1419, 1420, 1),
        (1420, 1420, 0),
        (1421, 1420, 15),  # beyond the MTU (GSO): padded as its 1-byte last segment
        (2840, 1420, 0),
        (2841, 1420, 15),
        (100, 0, 12),  # no MTU: just the multiple of 16
        (1500, 0, 4),
        (1280, 1280, 0),
        (1279, 1280, 1),
        (1, 1, 0),
        (5, 3, 1),  # 5 % 3 = 2 bytes, padded up to the MTU of 3
    ],
)
def test_padding_rule(length: int, mtu: int, padding: int) -> None:
    assert transport.padding_length(length, mtu) == padding


def test_padding_is_zeros() -> None:
    a, b = pair()
    packet = ipv4_of_size(21)
    opened = unseal(transport.seal(a, packet, mtu=1420), b)
    assert isinstance(opened, Opened)
    assert opened.plaintext == packet + bytes(11)


def test_trim_cuts_to_the_ip_length() -> None:
    packet = ipv4("10.0.0.1", "10.0.0.2", b"x" * 9)
    assert transport.trim(packet + bytes(3)) == packet
    packet6 = ipv6_of_size(41)
    assert transport.trim(packet6 + bytes(7)) == packet6


@pytest.mark.parametrize(
    "plaintext",
    [
        b"\x45" + bytes(18),  # IPv4, shorter than its minimal header
        b"\x45\x00\x00\x13" + bytes(16),  # total length 19 < 20
        b"\x45\x00\x00\x30" + bytes(28),  # total length 48 > 32 bytes present
        b"\x60" + bytes(38),  # IPv6, shorter than its header
        b"\x60\x00\x00\x00\x00\x09" + bytes(42),  # payload length 9 > 8 present
        b"\x50" + bytes(47),  # version 5
        b"\x00" * 48,  # version 0
        b"",
    ],
)
def test_trim_rejects_bad_inner_packets(plaintext: bytes) -> None:
    assert transport.trim(plaintext) is TransportDrop.BAD_INNER_PACKET


# ---- malformed and hostile input ---------------------------------------------------------


def test_too_short() -> None:
    a, b = pair()
    sealed = transport.seal(a, b"", mtu=1420)
    for n in range(32):
        assert unseal(sealed[:n], b) is TransportDrop.TOO_SHORT


@pytest.mark.parametrize("kind", [0, 1, 2, 3, 5, 0x104, 0x01000004, 0xFFFFFFFF])
def test_wrong_type(kind: int) -> None:
    a, b = pair()
    sealed = transport.seal(a, ipv4_of_size(60), mtu=1420)
    assert unseal(struct.pack("<I", kind) + sealed[4:], b) is TransportDrop.WRONG_TYPE


def test_unknown_index() -> None:
    a, b = pair()
    sealed = transport.seal(a, ipv4_of_size(60), mtu=1420)
    assert unseal(sealed[:4] + struct.pack("<I", 0x23) + sealed[8:], b) \
        is TransportDrop.UNKNOWN_INDEX


def test_every_flipped_bit_fails_authentication_and_leaves_the_window_alone() -> None:
    a, b = pair()
    sealed = transport.seal(a, ipv4_of_size(40), mtu=1420)
    for bit in range(8 * 8, 8 * len(sealed)):  # the counter, the ciphertext and the tag
        forged = bytearray(sealed)
        forged[bit // 8] ^= 1 << (bit % 8)
        assert unseal(bytes(forged), b) is TransportDrop.DECRYPT_FAILED
    # None of the forgeries (some with huge counters) moved the window: the real one passes.
    assert isinstance(unseal(sealed, b), Opened)


def test_replay_is_dropped() -> None:
    a, b = pair()
    first = transport.seal(a, ipv4_of_size(60), mtu=1420)
    second = transport.seal(a, ipv4_of_size(60), mtu=1420)
    assert isinstance(unseal(second, b), Opened)
    assert isinstance(unseal(first, b), Opened)  # reordering within the window is fine
    assert unseal(first, b) is TransportDrop.REPLAYED
    assert unseal(second, b) is TransportDrop.REPLAYED


def test_expired_keypair() -> None:
    a, b = pair()
    sealed = transport.seal(a, ipv4_of_size(60), mtu=1420)
    assert unseal(sealed, b, now=T0 + 180 * S) is TransportDrop.KEY_EXPIRED
    assert isinstance(unseal(sealed, b, now=T0 + 180 * S - 1), Opened)


def test_wiped_keypair() -> None:
    a, b = pair()
    sealed = transport.seal(a, ipv4_of_size(60), mtu=1420)
    b.wipe()
    assert unseal(sealed, b) is TransportDrop.KEY_EXPIRED


def test_counter_at_the_limit_is_refused_on_both_sides() -> None:
    a, b = pair()
    timing = Timing(reject_after_messages=3)
    for _ in range(3):
        sealed = transport.seal(a, b"", mtu=1420, limit=3)
        assert isinstance(transport.unseal(sealed, lookup_for(b), T0, timing), Opened)
    assert not a.usable_for_sending(T0, timing)
    with pytest.raises(Exception, match="cannot send"):
        transport.seal(a, b"", mtu=1420, limit=3)
    # A peer that ignores the limit is refused by the replay filter.
    forged = transport.seal(a, b"", mtu=1420, limit=4)
    assert transport.unseal(forged, lookup_for(b), T0, timing) is TransportDrop.REPLAYED


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_are_dropped_not_raised(data: bytes) -> None:
    _, b = pair()
    assert isinstance(unseal(data, b), TransportDrop)
    # The same bytes behind a valid header reach the AEAD, which refuses them.
    assert isinstance(unseal(struct.pack("<II", 4, b.local_index) + data, b), TransportDrop)


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=0, max_size=80), st.data())
def test_mutated_messages_are_dropped_or_exact(payload: bytes, data: st.DataObject) -> None:
    a, b = pair()
    sealed = bytearray(transport.seal(a, payload, mtu=1420))
    edits = data.draw(st.lists(st.tuples(st.integers(0, len(sealed) - 1), st.integers(0, 255)),
                               max_size=4))
    for pos, value in edits:
        sealed[pos] = value
    cut = data.draw(st.integers(0, len(sealed)))
    result = unseal(bytes(sealed[:cut]), b)
    if isinstance(result, Opened):
        # Only the untouched message (or one whose edits changed nothing) opens.
        assert result.plaintext == payload + bytes(transport.padding_length(len(payload), 1420))
    else:
        assert isinstance(result, TransportDrop)
