"""Two in-process HandshakeCores: complete handshakes both ways, and every rejection.

The keys each side derives are checked against each other and by sealing on one side and
opening on the other; rejections are checked by their typed drop reasons. Each side is a
tests/support/handshake.py Side: the core with peer records and receiver indices kept as the
driver and the data plane keep them.
"""

import hashlib
import random
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nacl.bindings import (
    crypto_aead_chacha20poly1305_ietf_decrypt,
    crypto_aead_chacha20poly1305_ietf_encrypt,
    crypto_aead_xchacha20poly1305_ietf_encrypt,
)

from pywg._protocol import crypto, messages
from pywg._protocol.cookie import CookieGenerator
from pywg._protocol.errors import DropReason, LocalProtocolError
from pywg._protocol.handshake import (
    CookieConsumed,
    Drop,
    InstallSession,
    SendHandshakeResponse,
    UpdateEndpoint,
)
from pywg._protocol.messages import MessageInitiation, MessageResponse
from tests.support.handshake import Side

S = 1_000_000_000
MS = 1_000_000
WALL = 1_700_000_000 * S


class Pair:
    """Peers A and B that know each other, with a shared clock (monotonic and wall)."""

    def __init__(self, psk_a=None, psk_b=None, seed=1):
        rng = random.Random(seed).randbytes
        self.a = Side(crypto.generate_private_key(rng), rng)
        self.b = Side(crypto.generate_private_key(rng), rng)
        self.a.add_peer(self.b.public_key, psk_a)
        self.b.add_peer(self.a.public_key, psk_b)
        self.now = S
        self.wall = WALL

    def tick(self, ns):
        self.now += ns
        self.wall += ns

    def initiation(self):
        return self.a.initiation(self.b.public_key, self.now, self.wall)

    def to_b(self, packet):
        return self.b.receive(packet, self.now)

    def to_a(self, packet):
        return self.a.receive(packet, self.now)

    def handshake(self):
        """A initiates, B answers, A consumes: returns (A's session, B's session)."""
        accepted = self.to_b(self.initiation())
        assert [type(x) for x in accepted] == [UpdateEndpoint, InstallSession,
                                               SendHandshakeResponse], accepted
        done = self.to_a(accepted[2].packet)
        assert [type(x) for x in done] == [UpdateEndpoint, InstallSession], done
        return done[1].session, accepted[1].session


def _drop(actions):
    assert len(actions) == 1 and isinstance(actions[0], Drop), actions
    return actions[0].reason


def _check_sessions(initiator, responder):
    assert initiator.initiator and not responder.initiator
    assert initiator.send_key == responder.receive_key
    assert initiator.receive_key == responder.send_key
    assert initiator.send_key != initiator.receive_key
    assert (initiator.local_index, initiator.remote_index) == (
        responder.remote_index, responder.local_index)
    # What one seals, the other opens (counter 0, empty AD: a transport keepalive).
    sealed = crypto_aead_chacha20poly1305_ietf_encrypt(b"ping", b"", bytes(12),
                                                       bytes(initiator.send_key))
    assert crypto_aead_chacha20poly1305_ietf_decrypt(
        sealed, b"", bytes(12), bytes(responder.receive_key)) == b"ping"
    sealed = crypto_aead_chacha20poly1305_ietf_encrypt(b"pong", b"", bytes(12),
                                                       bytes(responder.send_key))
    assert crypto_aead_chacha20poly1305_ietf_decrypt(
        sealed, b"", bytes(12), bytes(initiator.receive_key)) == b"pong"


# ---- handshakes that succeed ----------------------------------------------------------------

@pytest.mark.parametrize("psk", [None, b"\x77" * 32], ids=["no-psk", "psk"])
def test_handshake_completes_and_keys_match(psk):
    pair = Pair(psk, psk)
    init = pair.initiation()
    assert len(init) == 148
    accepted = pair.to_b(init)
    assert accepted[0] == UpdateEndpoint(pair.a.public_key)
    response = accepted[2]
    assert response.peer == pair.a.public_key and len(response.packet) == 92
    done = pair.to_a(response.packet)
    assert done[0] == UpdateEndpoint(pair.b.public_key)
    a_session, b_session = done[1].session, accepted[1].session
    _check_sessions(a_session, b_session)
    assert a_session.peer == pair.b.public_key and b_session.peer == pair.a.public_key
    assert a_session.birth_ns == b_session.birth_ns == pair.now
    # Each side's keypair took the index its handshake message carried.
    assert MessageInitiation.from_bytes(init).sender == a_session.local_index
    assert MessageResponse.from_bytes(response.packet).sender == b_session.local_index


def test_handshake_the_other_way_and_repeated():
    pair = Pair()
    sessions = []
    for _ in range(3):
        init = pair.b.initiation(pair.a.public_key, pair.now, pair.wall)
        accepted = pair.to_a(init)
        done = pair.to_b(accepted[2].packet)
        _check_sessions(done[1].session, accepted[1].session)
        sessions.append(done[1].session)
        pair.tick(S)
    assert len({bytes(s.send_key) for s in sessions}) == 3  # fresh keys every time


def test_psk_mismatch_fails_at_the_initiator():
    pair = Pair(b"\x01" * 32, b"\x02" * 32)
    accepted = pair.to_b(pair.initiation())  # the psk only enters with the response
    assert _drop(pair.to_a(accepted[2].packet)) is DropReason.DECRYPT_FAILED
    pair.a.peers[pair.b.public_key].handshake.set_preshared_key(b"\x02" * 32)
    pair.tick(S)
    _check_sessions(*pair.handshake())
    pair.b.peers[pair.a.public_key].handshake.set_preshared_key(None)
    pair.a.peers[pair.b.public_key].handshake.set_preshared_key(bytes(32))  # zeros: no psk
    pair.tick(S)
    _check_sessions(*pair.handshake())


def test_a_new_initiation_supersedes_the_pending_one():
    pair = Pair()
    first = pair.initiation()
    pair.tick(S)
    second = pair.initiation()
    first_index = MessageInitiation.from_bytes(first).sender
    assert first_index not in pair.a.indices  # released
    accepted = pair.to_b(second)
    assert accepted[2].packet and len(pair.to_a(accepted[2].packet)) == 2
    # The response to the first initiation can no longer complete anything.
    pair.tick(S)
    late = pair.to_b(first)
    assert _drop(late) is DropReason.STALE_TIMESTAMP


def test_simultaneous_initiations_cross():
    # As in the kernel and wireguard-go: answering the other's initiation abandons our own,
    # so each response names an index that is gone; each side keeps a responder session
    # for the other's initiation, and the timers' retry settles it.
    pair = Pair()
    from_a = pair.initiation()
    from_b = pair.b.initiation(pair.a.public_key, pair.now, pair.wall)
    at_b, at_a = pair.to_b(from_a), pair.to_a(from_b)
    assert not at_b[1].session.initiator and not at_a[1].session.initiator
    assert _drop(pair.to_a(at_b[2].packet)) is DropReason.UNKNOWN_INDEX
    assert _drop(pair.to_b(at_a[2].packet)) is DropReason.UNKNOWN_INDEX
    pair.tick(S)
    _check_sessions(*pair.handshake())


# ---- rejections -----------------------------------------------------------------------------

def test_replayed_initiation_is_dropped():
    pair = Pair()
    init = pair.initiation()
    assert len(pair.to_b(init)) == 3
    pair.tick(S)
    assert _drop(pair.to_b(init)) is DropReason.STALE_TIMESTAMP


def test_stale_timestamp_is_dropped():
    pair = Pair()
    pair.to_b(pair.initiation())
    pair.tick(S)
    old = pair.a.initiation(pair.b.public_key, pair.now, pair.wall - 10 * S)
    assert _drop(pair.to_b(old)) is DropReason.STALE_TIMESTAMP
    # The same whitened timestamp (1 ns later rounds down to it) is not newer either.
    same = pair.a.initiation(pair.b.public_key, pair.now, pair.wall - S + 1)
    assert _drop(pair.to_b(same)) is DropReason.STALE_TIMESTAMP
    newer = pair.a.initiation(pair.b.public_key, pair.now, pair.wall)
    assert len(pair.to_b(newer)) == 3


def test_second_initiation_within_20_ms_is_dropped():
    pair = Pair()
    assert len(pair.to_b(pair.initiation())) == 3
    pair.now += 20 * MS  # exactly 20 ms later: still too soon
    pair.wall += 100 * MS  # a newer timestamp, so only the rate limit applies
    assert _drop(pair.to_b(pair.initiation())) is DropReason.INITIATION_FLOOD
    pair.now += 1
    pair.wall += 100 * MS
    assert len(pair.to_b(pair.initiation())) == 3


@pytest.mark.parametrize("change", [-1, 1, 100])
def test_truncated_and_oversized_messages(change):
    pair = Pair()
    init = pair.initiation()
    response = pair.to_b(init)[2].packet
    for packet, deliver in ((init, pair.to_b), (response, pair.to_a)):
        bad = packet[:change] if change < 0 else packet + bytes(change)
        assert _drop(deliver(bad)) is DropReason.MALFORMED


@pytest.mark.parametrize("header", [b"\x00\0\0\0", b"\x05\0\0\0", b"\x01\0\0\x80", b"\xff"])
def test_unknown_types(header):
    pair = Pair()
    init = pair.initiation()
    assert _drop(pair.to_b(header + init[len(header):])) is DropReason.MALFORMED


def test_transport_messages_are_not_ours():
    pair = Pair()
    keepalive = messages.MessageTransport(1, 0, bytes(16)).to_bytes()
    assert _drop(pair.to_b(keepalive)) is DropReason.DATA_MESSAGE


def _remac(packet, receiver_public):
    return CookieGenerator(receiver_public).add_macs(packet, 0)


def test_unknown_receiver_index():
    pair = Pair()
    response = MessageResponse.from_bytes(pair.to_b(pair.initiation())[2].packet)
    bogus = MessageResponse(response.sender, response.receiver ^ 1, response.ephemeral,
                            response.encrypted_nothing)
    assert _drop(pair.to_a(_remac(bogus.to_bytes(), pair.a.public_key))) is \
        DropReason.UNKNOWN_INDEX
    cookie = messages.MessageCookieReply(12345, bytes(24), bytes(32)).to_bytes()
    assert _drop(pair.to_a(cookie)) is DropReason.UNKNOWN_INDEX


def test_response_delivered_twice():
    pair = Pair()
    response = pair.to_b(pair.initiation())[2].packet
    assert len(pair.to_a(response)) == 2
    assert _drop(pair.to_a(response)) is DropReason.UNKNOWN_INDEX


def test_tampered_response_leaves_the_handshake_pending():
    pair = Pair()
    response = MessageResponse.from_bytes(pair.to_b(pair.initiation())[2].packet)
    tampered = MessageResponse(response.sender, response.receiver, response.ephemeral,
                               bytes(16))
    assert _drop(pair.to_a(_remac(tampered.to_bytes(), pair.a.public_key))) is \
        DropReason.DECRYPT_FAILED
    assert len(pair.to_a(_remac(response.to_bytes(), pair.a.public_key))) == 2


def test_a_peer_not_configured_is_dropped():
    pair = Pair()
    stranger = Side(crypto.generate_private_key(), random.Random(3).randbytes)
    stranger.add_peer(pair.b.public_key)
    init = stranger.initiation(pair.b.public_key, pair.now, pair.wall)
    assert _drop(pair.to_b(init)) is DropReason.UNKNOWN_PEER
    del pair.b.peers[pair.a.public_key]
    assert _drop(pair.to_b(pair.initiation())) is DropReason.UNKNOWN_PEER


def test_tampered_static_or_timestamp_fails_to_decrypt():
    pair = Pair()
    original = MessageInitiation.from_bytes(pair.initiation())
    for part in ("encrypted_static", "encrypted_timestamp"):
        value = bytearray(getattr(original, part))
        value[0] ^= 1
        parts = {f: getattr(original, f) for f in
                  ("sender", "ephemeral", "encrypted_static", "encrypted_timestamp")}
        parts[part] = bytes(value)
        forged = _remac(MessageInitiation(**parts).to_bytes(), pair.b.public_key)
        assert _drop(pair.to_b(forged)) is DropReason.DECRYPT_FAILED


LOW_ORDER = [bytes(32), (1).to_bytes(32, "little"),
             bytes.fromhex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800")]


@pytest.mark.parametrize("point", LOW_ORDER, ids=lambda p: p.hex()[:8])
def test_all_zero_dh_is_rejected(point):
    pair = Pair()
    original = MessageInitiation.from_bytes(pair.initiation())
    forged = MessageInitiation(original.sender, point, original.encrypted_static,
                               original.encrypted_timestamp)
    assert _drop(pair.to_b(_remac(forged.to_bytes(), pair.b.public_key))) is DropReason.BAD_DH
    response = MessageResponse.from_bytes(pair.to_b(pair.initiation())[2].packet)
    forged_response = MessageResponse(response.sender, response.receiver, point,
                                      response.encrypted_nothing)
    assert _drop(pair.to_a(_remac(forged_response.to_bytes(), pair.a.public_key))) is \
        DropReason.BAD_DH
    # A peer configured with a low-order key can never be initiated to.
    pair.a.add_peer(point)
    with pytest.raises(LocalProtocolError):
        pair.a.initiation(point, pair.now, pair.wall)


def test_no_private_key():
    pair = Pair()
    init = pair.initiation()
    pair.b.set_private_key(None)
    assert pair.b.public_key is None
    assert _drop(pair.to_b(init)) is DropReason.NO_PRIVATE_KEY
    with pytest.raises(LocalProtocolError):
        pair.b.initiation(pair.a.public_key, pair.now, pair.wall)


# ---- keys and indices -----------------------------------------------------------------------

def test_a_new_private_key_works_once_every_peer_is_recomputed():
    pair = Pair()
    pair.initiation()
    del pair.b.peers[pair.a.public_key]
    pair.a.set_private_key(crypto.generate_private_key())
    pair.b.add_peer(pair.a.public_key)
    _check_sessions(*pair.handshake())  # works with the new static key


def test_a_response_to_a_superseded_initiation_is_dropped():
    pair = Pair()
    accepted = pair.to_b(pair.initiation())
    pair.tick(S)
    pair.initiation()  # a new initiation: the data plane would no longer route the
    # old response to this peer, and the handshake refuses it if it arrived anyway
    stale = pair.a.core.receive(accepted[2].packet, pair.a.peers[pair.b.public_key], pair.now)
    assert _drop(stale) is DropReason.UNKNOWN_INDEX


def test_a_cleared_handshake_takes_no_response():
    pair = Pair()
    accepted = pair.to_b(pair.initiation())
    record = pair.a.peers[pair.b.public_key]
    record.handshake.clear()
    stale = pair.a.core.receive(accepted[2].packet, record, pair.now)
    assert _drop(stale) is DropReason.WRONG_STATE


# ---- nothing escapes receive ----------------------------------------------------------------

def _cookie_reply(sent, maker_public):
    """The cookie reply the receiver of `sent` (whose public key is `maker_public`) makes
    under load (whitepaper 5.4.7)."""
    key = hashlib.blake2s(b"cookie--" + maker_public).digest()
    nonce = bytes(range(24))
    mac1 = sent[len(sent) - 32:len(sent) - 16]
    sealed = crypto_aead_xchacha20poly1305_ietf_encrypt(bytes(16), mac1, nonce, key)
    sender = struct.unpack_from("<I", sent, 4)[0]
    return struct.pack("<II", 3, sender) + nonce + sealed


def test_cookie_replies_to_an_initiation_and_to_a_response_are_taken_once():
    pair = Pair()
    init = pair.initiation()
    reply = _cookie_reply(init, pair.b.public_key)
    assert pair.to_a(reply) == (CookieConsumed(pair.b.public_key),)
    assert _drop(pair.to_a(reply)) is DropReason.UNEXPECTED_COOKIE
    # A reply to B's response names the index B's new keypair took over: still B's.
    accepted = pair.to_b(pair.initiation())
    reply = _cookie_reply(accepted[2].packet, pair.a.public_key)
    assert pair.to_b(reply) == (CookieConsumed(pair.a.public_key),)
    assert _drop(pair.to_b(_cookie_reply(init, pair.a.public_key))) is DropReason.UNKNOWN_INDEX


FUZZ_PAIR = Pair(seed=7)
FUZZ_SAMPLES = [FUZZ_PAIR.initiation()]
FUZZ_SAMPLES.append(_cookie_reply(FUZZ_SAMPLES[0], FUZZ_PAIR.b.public_key))
FUZZ_PAIR.tick(S)
_second = FUZZ_PAIR.initiation()
FUZZ_SAMPLES.append(FUZZ_PAIR.to_b(_second)[2].packet)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=200), st.booleans())
def test_receive_never_raises_on_random_bytes(data, _):
    actions = FUZZ_PAIR.b.receive(data, FUZZ_PAIR.now)
    assert actions and all(not isinstance(a, InstallSession) for a in actions)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(range(3)), st.lists(st.tuples(st.integers(0, 147), st.integers(1, 255)),
                                           min_size=1, max_size=4), st.booleans())
def test_receive_never_raises_on_mutated_messages(which, flips, remac):
    packet = bytearray(FUZZ_SAMPLES[which])
    for offset, bits in flips:
        packet[offset % len(packet)] ^= bits
    data = bytes(packet)
    if remac and len(data) in (148, 92):
        # A valid mac1 lets the mutation reach the Noise code.
        data = _remac(data, FUZZ_PAIR.a.public_key if len(data) == 92 else FUZZ_PAIR.b.public_key)
    for core in (FUZZ_PAIR.a, FUZZ_PAIR.b):
        actions = core.receive(data, FUZZ_PAIR.now)
        assert actions
        # Only an unchanged body (everything before the macs, but for the sender index,
        # which Noise does not authenticate) may be accepted.
        body, sample = data[:-32], FUZZ_SAMPLES[which][:-32]
        if body[:4] + body[8:] != sample[:4] + sample[8:]:
            assert not any(isinstance(a, InstallSession | SendHandshakeResponse)
                           for a in actions)


def test_malformed_type_field_variants_are_dropped():
    pair = Pair()
    init = pair.initiation()
    for top in range(1, 4):
        raw = bytearray(init)
        raw[top] = 1
        assert _drop(pair.to_b(bytes(raw))) is DropReason.MALFORMED
    assert struct.unpack_from("<I", init)[0] == 1
