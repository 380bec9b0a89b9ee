"""The Noise_IKpsk2 message steps (C, through crypto.py) against the cacophony vectors, byte
for byte (both handshake messages, the handshake hash and the transport messages after
Split), from either side; then WireGuard's per-peer handshake verbs (noise.py), single and
batched. X25519 and ChaCha20-Poly1305 oracles are libsodium's, called directly."""

import errno
import json
from pathlib import Path

import pytest
from nacl.bindings import (
    crypto_aead_chacha20poly1305_ietf_decrypt,
    crypto_aead_chacha20poly1305_ietf_encrypt,
    crypto_scalarmult,
)

from pywg._constants import CONSTRUCTION, IDENTIFIER
from pywg._protocol import crypto, noise, tai64n
from pywg._protocol.errors import (
    DecryptError,
    DropReason,
    LocalProtocolError,
    RemoteProtocolError,
)
from pywg._protocol.noise import Handshake, HandshakeState, StaticIdentity

DATA = Path(__file__).parent.parent / "data"
VECTORS = json.loads((DATA / "noise-ikpsk2-vectors.json").read_text())["vectors"]
KDF = json.loads((DATA / "wireguard-kdf-vectors.json").read_text())
h = bytes.fromhex
S = 1_000_000_000


def _chain(v, side):
    return noise.initial_chain(v["protocol_name"].encode(), h(v[f"{side}_prologue"]))


def _seal(key, nonce, payload):
    return crypto_aead_chacha20poly1305_ietf_encrypt(payload, b"", bytes(4) + nonce.to_bytes(
        8, "little"), bytes(key))


def _open(key, nonce, ciphertext):
    return crypto_aead_chacha20poly1305_ietf_decrypt(ciphertext, b"", bytes(4) + nonce.to_bytes(
        8, "little"), bytes(key))


@pytest.mark.parametrize("v", VECTORS, ids=lambda v: v["source"])
def test_vectors_from_the_initiator_side(v):
    msgs = v["messages"]
    i_static, r_public = h(v["init_static"]), h(v["init_remote_static"])
    assert crypto.public_key(h(v["resp_static"])) == r_public
    chain, first = crypto.write_initiation(
        _chain(v, "init"), ephemeral_private=h(v["init_ephemeral"]),
        local_static_public=crypto.public_key(i_static), remote_static=r_public,
        static_static=crypto_scalarmult(i_static, r_public), payload=h(msgs[0]["payload"]))
    assert first == h(msgs[0]["ciphertext"])
    chain, payload = crypto.read_response(
        chain, ephemeral_private=h(v["init_ephemeral"]), local_static_private=i_static,
        preshared_key=h(v["init_psks"][0]), message=h(msgs[1]["ciphertext"]))
    assert payload == h(msgs[1]["payload"])
    assert chain[32:] == h(v["handshake_hash"])
    _check_transport(v, *crypto.split(chain))


@pytest.mark.parametrize("v", VECTORS, ids=lambda v: v["source"])
def test_vectors_from_the_responder_side(v):
    msgs = v["messages"]
    r_static = h(v["resp_static"])
    first = h(msgs[0]["ciphertext"])
    chain, remote_static = crypto.read_initiation_static(
        _chain(v, "resp"), local_static_private=r_static,
        local_static_public=crypto.public_key(r_static), message=first)
    assert remote_static == crypto.public_key(h(v["init_static"]))
    chain, payload = crypto.read_initiation_payload(
        chain, static_static=crypto_scalarmult(r_static, remote_static),
        encrypted_payload=first[80:])
    assert payload == h(msgs[0]["payload"])
    chain, second = crypto.write_response(
        chain, ephemeral_private=h(v["resp_ephemeral"]), remote_ephemeral=first[:32],
        remote_static=remote_static, preshared_key=h(v["resp_psks"][0]),
        payload=h(msgs[1]["payload"]))
    assert second == h(msgs[1]["ciphertext"])
    assert chain[32:] == h(v["handshake_hash"])
    _check_transport(v, *crypto.split(chain))


@pytest.mark.parametrize("v", VECTORS, ids=lambda v: v["source"])
def test_vectors_through_the_batch_steps(v):
    """The responder's batch steps (what receive_batch uses) over several copies of the
    vector's first message, among forgeries, give the vector's bytes for every copy."""
    msgs = v["messages"]
    r_static = h(v["resp_static"])
    good = h(msgs[0]["ciphertext"])
    forged = bytearray(good)
    forged[40] ^= 1  # inside the encrypted static
    bodies = [good, bytes(forged), good, good]
    rcs, chains, statics = crypto.read_initiations_static(
        _chain(v, "resp"), r_static, crypto.public_key(r_static), bodies)
    assert rcs == [0, -errno.EBADMSG, 0, 0]
    assert chains[1] == bytes(64) and statics[1] == bytes(32)  # nothing of a failure
    remote_static = statics[0]
    ok = [0, 2, 3]
    [secret] = crypto.static_statics(r_static, [remote_static])
    rcs, chains2, payloads = crypto.read_initiations_payload(
        [chains[i] for i in ok], [secret] * 3, [bodies[i] for i in ok], 80, len(good) - 80)
    assert rcs == [0] * 3 and payloads == [h(msgs[0]["payload"])] * 3
    # write_responses takes an empty payload only (WireGuard's); the vector's is not, so
    # compare its keys with the single steps' on the same chain and ephemeral.
    chain = chains2[0]
    single, _ = crypto.write_response(
        chain, ephemeral_private=h(v["resp_ephemeral"]), remote_ephemeral=good[:32],
        remote_static=remote_static, preshared_key=h(v["resp_psks"][0]), payload=b"")
    [rc], [body], [first_key], [second_key] = crypto.write_responses(
        [chain], [h(v["resp_ephemeral"])], [good[:32]], [remote_static], [h(v["resp_psks"][0])])
    assert rc == 0 and body[:32] == h(msgs[1]["ciphertext"])[:32]
    assert (first_key, second_key) == crypto.split(single)


def _check_transport(v, first_key, second_key):
    # After the handshake the vectors alternate initiator -> responder and back, each
    # direction counting its own nonces from 0.
    for i, msg in enumerate(v["messages"][2:]):
        key, nonce = (first_key if i % 2 == 0 else second_key), i // 2
        payload, ciphertext = h(msg["payload"]), h(msg["ciphertext"])
        assert _seal(key, nonce, payload) == ciphertext
        assert _open(key, nonce, ciphertext) == payload


def test_a_changed_prologue_breaks_the_handshake():
    v = VECTORS[0]
    first = h(v["messages"][0]["ciphertext"])
    chain = noise.initial_chain(v["protocol_name"].encode(), b"John Galt!")
    with pytest.raises(DecryptError):
        crypto.read_initiation_static(chain, local_static_private=h(v["resp_static"]),
                                      local_static_public=crypto.public_key(h(v["resp_static"])),
                                      message=first)


def test_short_protocol_names_are_padded_not_hashed():
    assert noise.initial_chain(b"Noise_NN", b"")[:32] == b"Noise_NN" + bytes(24)


def test_wireguards_initial_chain():
    """Ci0 = HASH(CONSTRUCTION), Hi0 = HASH(Ci0 || IDENTIFIER), as wireguard-go has them."""
    expected = KDF["constants"]
    assert h(expected["initial_chaining_key"]) + h(expected["initial_hash"]) == noise.INITIAL_CHAIN
    assert noise.initial_chain(CONSTRUCTION, IDENTIFIER) == noise.INITIAL_CHAIN


def test_steps_check_their_sizes():
    v = VECTORS[0]
    with pytest.raises(LocalProtocolError):
        crypto.split(bytes(63))
    with pytest.raises(LocalProtocolError):
        crypto.read_initiation_static(bytes(64), local_static_private=bytes(31),
                                      local_static_public=bytes(32), message=bytes(80))
    with pytest.raises(LocalProtocolError):
        crypto.read_initiation_static(bytes(64), local_static_private=h(v["resp_static"]),
                                      local_static_public=bytes(32), message=bytes(79))
    with pytest.raises(DecryptError):
        crypto.read_initiation_payload(bytes(64), static_static=b"\1" * 32,
                                       encrypted_payload=bytes(15))


# ---- WireGuard's handshake verbs ----------------------------------------------------------

def _pair(psk=None):
    i, r = StaticIdentity(crypto.generate_private_key()), StaticIdentity(
        crypto.generate_private_key())
    hi, hr = Handshake(remote_static=r.public_key), Handshake(remote_static=i.public_key)
    for hs in (hi, hr):
        hs.set_preshared_key(psk)
    return i, r, hi, hr


def _initiate(i, hi, wall_ns=1_700_000_000 * S, index=7):
    return noise.create_initiation(hi, i, sender_index=index,
                                   timestamp=tai64n.from_wall_ns(wall_ns),
                                   ephemeral_private=crypto.generate_private_key())


def _respond(hr, index=9, now=2 * S):
    return noise.respond(hr, sender_index=index, ephemeral_private=crypto.generate_private_key(),
                         now_ns=now)


@pytest.mark.parametrize("psk", [None, b"\x42" * 32])
def test_full_handshake_and_wiping(psk):
    i, r, hi, hr = _pair(psk)
    init = _initiate(i, hi)
    assert hi.state is HandshakeState.CREATED_INITIATION
    got = noise.consume_initiation(init, r, lambda k: hr if k == i.public_key else None, S)
    assert got is hr and hr.state is HandshakeState.CONSUMED_INITIATION
    chain_r = hr.chain
    ephemeral = crypto.generate_private_key()
    resp, session_r = noise.respond(hr, sender_index=9, ephemeral_private=ephemeral,
                                    now_ns=2 * S)
    assert resp.receiver == 7
    assert crypto.is_zero(chain_r) and crypto.is_zero(ephemeral)  # wiped, not just dropped
    assert hr.state is HandshakeState.ZEROED and not hr.chain
    noise.consume_response(resp, i, hi)
    session_i = noise.begin_session(hi, 3 * S)
    assert session_i.send_key == session_r.receive_key
    assert session_i.receive_key == session_r.send_key
    assert (session_i.local_index, session_i.remote_index) == (7, 9)
    assert (session_r.local_index, session_r.remote_index) == (9, 7)
    assert session_i.initiator and not session_r.initiator
    assert session_r.birth_ns == 2 * S and session_r.peer == i.public_key
    assert "send_key" not in repr(session_i)
    # The keys work as a transport's: sealed by one side, opened by the other.
    assert _open(session_r.receive_key, 0, _seal(session_i.send_key, 0, b"hi")) == b"hi"
    assert _open(session_i.receive_key, 5, _seal(session_r.send_key, 5, b"yo")) == b"yo"
    session_i.wipe()
    assert crypto.is_zero(session_i.send_key) and crypto.is_zero(session_i.receive_key)


def test_both_ways_with_the_same_two_handshakes():
    i, r, hi, hr = _pair(b"\x07" * 32)
    for wall, (initiator, responder, hs_i, hs_r) in enumerate(((i, r, hi, hr), (r, i, hr, hi))):
        init = _initiate(initiator, hs_i, wall_ns=(1_700_000_000 + wall) * S)
        got = noise.consume_initiation(init, responder, lambda k, hs=hs_r: hs, S)
        resp, session_r = _respond(got)
        noise.consume_response(resp, initiator, hs_i)
        session_i = noise.begin_session(hs_i, 3 * S)
        assert (session_i.send_key, session_i.receive_key) == (session_r.receive_key,
                                                               session_r.send_key)


def test_mismatched_psk_fails_at_the_response():
    i, r, hi, hr = _pair()
    hr.set_preshared_key(b"\x01" * 32)
    noise.consume_initiation(_initiate(i, hi), r, lambda k: hr, S)
    resp, _ = _respond(hr)
    with pytest.raises(RemoteProtocolError) as e:
        noise.consume_response(resp, i, hi)
    assert e.value.reason is DropReason.DECRYPT_FAILED
    assert hi.state is HandshakeState.CREATED_INITIATION  # untouched: a real response may come


def test_failed_consumption_leaves_the_responder_untouched():
    i, r, hi, hr = _pair()
    noise.consume_initiation(_initiate(i, hi, wall_ns=10 * S), r, lambda k: hr, S)
    before = (hr.state, bytes(hr.chain), hr.latest_timestamp)
    with pytest.raises(RemoteProtocolError) as e:
        noise.consume_initiation(_initiate(i, hi, wall_ns=9 * S), r, lambda k: hr, 2 * S)
    assert e.value.reason is DropReason.STALE_TIMESTAMP
    assert (hr.state, bytes(hr.chain), hr.latest_timestamp) == before


def test_a_batch_of_initiations_meets_the_state_in_order():
    """Two initiations of one peer in one batch: the second meets the state the first left
    (20 ms flood rule); a replay of an older one is stale; a stranger is unknown."""
    i, r, hi, hr = _pair()
    stranger = StaticIdentity(crypto.generate_private_key())
    hs_stranger = Handshake(remote_static=r.public_key)
    older = _initiate(i, hi, wall_ns=5 * S)
    newer = _initiate(i, hi, wall_ns=6 * S, index=8)
    newest = _initiate(i, hi, wall_ns=7 * S, index=9)
    unknown = _initiate(stranger, hs_stranger, wall_ns=7 * S)
    got = noise.consume_initiations([newer, unknown, older, newest], r,
                                    lambda k: hr if k == i.public_key else None, S)
    assert got[0] is hr and hr.remote_index == 8
    assert [e.reason for e in got[1:]] == [DropReason.UNKNOWN_PEER, DropReason.STALE_TIMESTAMP,
                                            DropReason.INITIATION_FLOOD]


def test_verbs_refuse_the_wrong_state():
    i, r, hi, hr = _pair()
    with pytest.raises(LocalProtocolError):
        noise.respond(hr, sender_index=1, ephemeral_private=bytearray(32), now_ns=0)
    with pytest.raises(LocalProtocolError):
        noise.begin_session(hr, 0)
    init = _initiate(i, hi)
    noise.consume_initiation(init, r, lambda k: hr, S)
    resp, _ = _respond(hr)
    hi.clear()
    with pytest.raises(RemoteProtocolError) as e:
        noise.consume_response(resp, i, hi)
    assert e.value.reason is DropReason.WRONG_STATE


def test_a_low_order_peer_key_cannot_initiate():
    i = StaticIdentity(crypto.generate_private_key())
    hs = Handshake(remote_static=bytes(32))
    with pytest.raises(LocalProtocolError):
        _initiate(i, hs)
    assert crypto.is_zero(hs.static_static(i))


def test_the_static_static_secret_is_computed_at_the_first_handshake():
    i, r, hi, hr = _pair()
    assert hi.static_static(i) is None and hr.static_static(r) is None  # none at set-up
    noise.consume_initiation(_initiate(i, hi), r, lambda k: hr, S)
    expected = crypto_scalarmult(bytes(i.private_key), r.public_key)
    assert hi.static_static(i) == expected and hr.static_static(r) == expected
    # Another identity (a new private key) does not use the old secret...
    other = StaticIdentity(crypto.generate_private_key())
    assert hi.static_static(other) is None
    # ...and forgetting it wipes it.
    secret = hi.static_static(i)
    hi.forget_static_static()
    assert hi.static_static(i) is None and crypto.is_zero(secret)


def test_preshared_keys_are_checked():
    hs = Handshake(remote_static=crypto.public_key(crypto.generate_private_key()))
    with pytest.raises(LocalProtocolError):
        hs.set_preshared_key(b"short")
