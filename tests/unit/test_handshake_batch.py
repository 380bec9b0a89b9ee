"""`HandshakeCore.receive_batch` against `receive`: the same actions, byte for byte, and the
same state left behind, for mixed batches (valid, replayed, forged, unknown peer, the same
peer twice, responses and cookie replies among initiations), and for random ones; malformed
messages never make it raise. (mac1, mac2 and the rate limit are the data plane's front
line's: what comes here passed them.)

Two copies of one world are built from one seed (keys, indices and randomness all seeded),
so every random byte the cores draw is the same in both, and each copy takes the same
datagrams: one `receive` at a time, or all in one `receive_batch`. The data plane names the
peer of a response or cookie reply before Python sees it, so both get those peers up front.
"""

from __future__ import annotations

import hashlib
import random
import struct
from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nacl.bindings import crypto_aead_xchacha20poly1305_ietf_encrypt

from pywg._protocol import crypto, messages
from pywg._protocol.cookie import CookieGenerator
from pywg._protocol.handshake import Action, Drop, InstallSession
from pywg._protocol.messages import MessageInitiation
from pywg._protocol.noise import Session
from tests.support.handshake import Record, Side

S = 1_000_000_000
MS = 1_000_000
WALL = 1_700_000_000 * S
PEERS = 6


@dataclass
class World:
    responder: Side
    peers: list[Side]
    stranger: Side
    now: int = S
    wall: int = WALL

    def tick(self, ns: int) -> None:
        self.now += ns
        self.wall += ns

    def initiation(self, who: Side, wall: int | None = None) -> bytes:
        assert self.responder.public_key is not None
        return who.initiation(self.responder.public_key, self.now,
                              self.wall if wall is None else wall)



def _fields(obj: object) -> dict[str, object]:
    """An object's state, whether it keeps it in a __dict__ or in slots."""
    names = getattr(type(obj), "__slots__", None) or vars(obj)
    return {name: getattr(obj, name, None) for name in names}

def world(seed: int) -> World:
    rng = random.Random(seed).randbytes
    responder = Side(crypto.generate_private_key(rng), rng)
    peers = [Side(crypto.generate_private_key(rng), rng) for _ in range(PEERS)]
    stranger = Side(crypto.generate_private_key(rng), rng)
    assert responder.public_key is not None
    for peer in peers:
        assert peer.public_key is not None
        responder.add_peer(peer.public_key)
        peer.add_peer(responder.public_key)
    stranger.add_peer(responder.public_key)
    return World(responder, peers, stranger)


def plain(actions: tuple[Action, ...]) -> list[object]:
    """Actions as comparable values (a Session compares by identity)."""
    out: list[object] = []
    for action in actions:
        if isinstance(action, InstallSession):
            s: Session = action.session
            out.append(("session", s.peer, s.local_index, s.remote_index, bytes(s.send_key),
                        bytes(s.receive_key), s.initiator, s.birth_ns))
        else:
            out.append(action)
    return out


def state(side: Side) -> list[object]:
    """What the core left in its peer records: handshakes and cookie generators."""
    out: list[object] = []
    for key, record in sorted(side.peers.items()):
        hs = record.handshake
        out.append((key, hs.state, bytes(hs.chain), bytes(hs.local_ephemeral),
                    hs.remote_ephemeral, hs.local_index, hs.remote_index, hs.latest_timestamp,
                    hs.last_initiation_consumption_ns, _fields(record.cookie)))
    return out


def deliver(side: Side, datagrams: list[bytes], now: int, batch: bool) -> list[list[object]]:
    items = [(d, side.peer_for(d)) for d in datagrams]
    if batch:
        results = side.core.receive_batch(items, now)
    else:
        results = [side.core.receive(d, p, now) for d, p in items]
    return [plain(r) for r in results]


def cookie_reply(sent: bytes, maker_public: bytes) -> bytes:
    """The cookie reply the receiver of `sent` makes under load (whitepaper 5.4.7)."""
    key = hashlib.blake2s(b"cookie--" + maker_public).digest()
    nonce = bytes(range(24))
    mac1 = sent[len(sent) - 32:len(sent) - 16]
    sealed = crypto_aead_xchacha20poly1305_ietf_encrypt(bytes(16), mac1, nonce, key)
    return struct.pack("<II", 3, struct.unpack_from("<I", sent, 4)[0]) + nonce + sealed


def _remac(packet: bytes, receiver_public: bytes) -> bytes:
    return CookieGenerator(receiver_public).add_macs(packet, 0)


def mixed_batch(w: World) -> list[bytes]:
    """A batch with one of everything, built the same way in every copy of a world."""
    r, p = w.responder, w.peers
    assert r.public_key is not None
    # Before the batch: p3 completed a handshake (its old initiation will be a replay); the
    # responder initiated to p4 (whose response comes in the batch) and to p5 (who answers
    # with a cookie reply, as under load).
    old = w.initiation(p[3])
    deliver(r, [old], w.now, batch=False)
    to_p4 = r.initiation(p[4].public_key or b"", w.now, w.wall)
    response = p[4].receive(to_p4, w.now)[2]
    to_p5 = r.initiation(p[5].public_key or b"", w.now, w.wall)
    reply = cookie_reply(to_p5, p[5].public_key or b"")
    w.tick(S)
    original = MessageInitiation.from_bytes(w.initiation(p[2], w.wall - MS))
    forged_static = _remac(MessageInitiation(
        original.sender, original.ephemeral, bytes([original.encrypted_static[0] ^ 1])
        + original.encrypted_static[1:], original.encrypted_timestamp).to_bytes(), r.public_key)
    low_order = _remac(MessageInitiation(
        original.sender, bytes(32), original.encrypted_static,
        original.encrypted_timestamp).to_bytes(), r.public_key)
    return [
        w.initiation(p[0]),
        w.initiation(p[1]),
        old,                                        # replayed: stale
        forged_static,                              # decrypt fails
        w.initiation(w.stranger),                   # unknown peer
        w.initiation(p[0], w.wall + 100 * MS),      # p0 again, newer: the 20 ms rule
        getattr(response, "packet", b""),           # p4's response: a session for us
        w.initiation(p[2]),                         # valid, after a response
        w.initiation(p[5]),                         # p5 initiates: our answer replaces the
        reply,                                      # mac1 its cookie reply was sealed to
        b"\x01\0\0\0" + bytes(20),                  # malformed
        messages.MessageTransport(1, 0, bytes(16)).to_bytes(),
        low_order,                                  # small-order ephemeral key
        w.initiation(p[1], w.wall + 200 * MS),      # p1 again
        w.initiation(p[4]),                         # p4 initiates too, after its response
    ]


def test_a_mixed_batch_gives_what_one_at_a_time_gives():
    one, two = world(11), world(11)
    batch_one, batch_two = mixed_batch(one), mixed_batch(two)
    assert batch_one == batch_two  # the copies are the same world
    sequential = deliver(one.responder, batch_one, one.now, batch=False)
    batched = deliver(two.responder, batch_two, two.now, batch=True)
    assert batched == sequential
    assert state(two.responder) == state(one.responder)
    # What the batch is for: the kinds of outcome it meets, each where it belongs.
    kinds = [r[0].reason.name if isinstance(r[0], Drop) else type(r[0]).__name__
             if not isinstance(r[0], tuple) else r[0][0] for r in batched]
    assert kinds == ["UpdateEndpoint", "UpdateEndpoint", "STALE_TIMESTAMP", "DECRYPT_FAILED",
                     "UNKNOWN_PEER", "INITIATION_FLOOD", "UpdateEndpoint", "UpdateEndpoint",
                     "UpdateEndpoint", "DECRYPT_FAILED", "MALFORMED", "DATA_MESSAGE", "BAD_DH",
                     "INITIATION_FLOOD", "UpdateEndpoint"]
    responses = [r[2] for r in batched if len(r) == 3]
    assert len(responses) == 5  # p0, p1, p2, p4, p5 answered


def test_a_cookie_reply_before_our_answer_is_taken():
    """The same cookie reply ahead of its sender's initiation: taken, then the answer."""
    one, two = world(13), world(13)
    outcomes = []
    for w, batch in ((one, False), (two, True)):
        peer = w.peers[1]
        sent = w.responder.initiation(peer.public_key or b"", w.now, w.wall)
        w.tick(S)
        datagrams = [w.initiation(w.peers[0]), cookie_reply(sent, peer.public_key or b""),
                     w.initiation(peer)]
        outcomes.append(deliver(w.responder, datagrams, w.now, batch=batch))
    assert outcomes[1] == outcomes[0]
    assert [type(r[0]).__name__ for r in outcomes[1]] == ["UpdateEndpoint", "CookieConsumed",
                                                          "UpdateEndpoint"]
    assert state(two.responder) == state(one.responder)


def test_the_answers_complete_handshakes():
    """The batch's responses complete the initiators' handshakes with matching keys."""
    w = world(5)
    packets = [w.initiation(peer) for peer in w.peers]
    results = w.responder.core.receive_batch([(d, None) for d in packets], w.now)
    for peer, actions in zip(w.peers, results, strict=True):
        assert len(actions) == 3, actions
        responder_session = actions[1].session
        done = peer.receive(actions[2].packet, w.now)
        initiator_session = done[1].session
        assert bytes(initiator_session.send_key) == bytes(responder_session.receive_key)
        assert bytes(initiator_session.receive_key) == bytes(responder_session.send_key)


def test_an_empty_batch():
    assert world(1).responder.core.receive_batch([], S) == []


# ---- random batches ---------------------------------------------------------------------------

TEMPLATE = world(23)
SAMPLES: list[bytes] = []
for _round in range(2):
    for _peer in [*TEMPLATE.peers, TEMPLATE.stranger]:
        SAMPLES.append(TEMPLATE.initiation(_peer))
    TEMPLATE.tick(S)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(
    st.tuples(st.sampled_from(range(len(SAMPLES))),
              st.lists(st.tuples(st.integers(0, 147), st.integers(1, 255)), max_size=3),
              st.booleans()),
    st.binary(max_size=160)), max_size=20))
def test_random_batches_never_raise_and_match(picks):
    datagrams = []
    for pick in picks:
        if isinstance(pick, bytes):
            datagrams.append(pick)
            continue
        which, flips, remac = pick
        packet = bytearray(SAMPLES[which])
        for offset, bits in flips:
            packet[offset] ^= bits
        data = bytes(packet)
        if remac and len(data) == 148 and TEMPLATE.responder.public_key:
            data = _remac(data, TEMPLATE.responder.public_key)
        datagrams.append(data)
    one, two = world(23), world(23)
    now = TEMPLATE.now
    sequential = deliver(one.responder, datagrams, now, batch=False)
    batched = deliver(two.responder, datagrams, now, batch=True)
    assert batched == sequential
    assert all(batched)
    assert state(two.responder) == state(one.responder)


def test_a_record_with_a_wrong_peer_is_just_a_drop():
    """A response whose peer the caller names wrongly: dropped in the batch as alone."""
    w = world(3)
    stray = Record(w.peers[0].public_key or b"")
    junk = messages.MessageResponse(1, 2, bytes(32), bytes(16)).to_bytes()
    got = w.responder.core.receive_batch([(junk, stray)], w.now)
    assert len(got) == 1 and isinstance(got[0][0], Drop)
