"""The Noise_IKpsk2 steps against the cacophony vectors, byte for byte (both handshake
messages, the handshake hash and the transport messages after Split), then WireGuard's
per-peer handshake verbs."""

import json
from pathlib import Path

import pytest

from pywg._protocol import crypto, noise, tai64n
from pywg._protocol.errors import DropReason, LocalProtocolError, RemoteProtocolError
from pywg._protocol.noise import Handshake, HandshakeState, StaticIdentity, SymmetricState

DATA = Path(__file__).parent.parent / "data"
VECTORS = json.loads((DATA / "noise-ikpsk2-vectors.json").read_text())["vectors"]
h = bytes.fromhex
S = 1_000_000_000


def _initial(v, side):
    # Pre-message "<- s": both sides mix the responder's static public key.
    sym = SymmetricState.initialize(v["protocol_name"].encode(), h(v[f"{side}_prologue"]))
    sym.mix_hash(crypto.public_key(h(v["resp_static"])))
    return sym


@pytest.mark.parametrize("v", VECTORS, ids=lambda v: v["source"])
def test_vectors_from_the_initiator_side(v):
    msgs = v["messages"]
    i_static, r_public = h(v["init_static"]), h(v["init_remote_static"])
    assert crypto.public_key(h(v["resp_static"])) == r_public
    sym = _initial(v, "init")
    e, s, payload = noise.write_initiation(
        sym, ephemeral_private=h(v["init_ephemeral"]),
        local_static_public=crypto.public_key(i_static), remote_static=r_public,
        static_static=crypto.dh(i_static, r_public), payload=h(msgs[0]["payload"]))
    assert e + s + payload == h(msgs[0]["ciphertext"])
    reply = h(msgs[1]["ciphertext"])
    got = noise.read_response(
        sym, ephemeral_private=h(v["init_ephemeral"]), local_static_private=i_static,
        remote_ephemeral=reply[:32], preshared_key=h(v["init_psks"][0]),
        encrypted_payload=reply[32:])
    assert got == h(msgs[1]["payload"])
    assert sym.hash == h(v["handshake_hash"])
    _check_transport(v, *sym.split(), initiator=True)


@pytest.mark.parametrize("v", VECTORS, ids=lambda v: v["source"])
def test_vectors_from_the_responder_side(v):
    msgs = v["messages"]
    r_static = h(v["resp_static"])
    sym = _initial(v, "resp")
    first = h(msgs[0]["ciphertext"])
    remote_static = noise.read_initiation_static(
        sym, local_static_private=r_static, ephemeral=first[:32], encrypted_static=first[32:80])
    assert remote_static == crypto.public_key(h(v["init_static"]))
    payload = noise.read_initiation_payload(
        sym, static_static=crypto.dh(r_static, remote_static), encrypted_payload=first[80:])
    assert payload == h(msgs[0]["payload"])
    e, encrypted = noise.write_response(
        sym, ephemeral_private=h(v["resp_ephemeral"]), remote_ephemeral=first[:32],
        remote_static=remote_static, preshared_key=h(v["resp_psks"][0]),
        payload=h(msgs[1]["payload"]))
    assert e + encrypted == h(msgs[1]["ciphertext"])
    assert sym.hash == h(v["handshake_hash"])
    _check_transport(v, *sym.split(), initiator=False)


def _check_transport(v, first_key, second_key, *, initiator):
    # After the handshake the vectors alternate initiator -> responder and back, each
    # direction counting its own nonces from 0.
    for i, msg in enumerate(v["messages"][2:]):
        key, nonce = (first_key if i % 2 == 0 else second_key), i // 2
        payload, ciphertext = h(msg["payload"]), h(msg["ciphertext"])
        assert crypto.aead_encrypt(key, nonce, payload, b"") == ciphertext
        assert crypto.aead_decrypt(key, nonce, ciphertext, b"") == payload


def test_a_changed_prologue_breaks_the_handshake():
    v = VECTORS[0]
    sym = SymmetricState.initialize(v["protocol_name"].encode(), b"John Galt!")
    sym.mix_hash(crypto.public_key(h(v["resp_static"])))
    first = h(v["messages"][0]["ciphertext"])
    with pytest.raises(RemoteProtocolError):
        noise.read_initiation_static(sym, local_static_private=h(v["resp_static"]),
                                     ephemeral=first[:32], encrypted_static=first[32:80])


def test_short_protocol_names_are_padded_not_hashed():
    sym = SymmetricState.initialize(b"Noise_NN", b"")
    assert sym.chaining_key == b"Noise_NN" + bytes(24)


# ---- WireGuard's handshake verbs ----------------------------------------------------------

def _pair(psk=None):
    i, r = StaticIdentity(crypto.generate_private_key()), StaticIdentity(
        crypto.generate_private_key())
    hi, hr = Handshake(remote_static=r.public_key), Handshake(remote_static=i.public_key)
    for hs, me in ((hi, i), (hr, r)):
        hs.precompute(me)
        hs.set_preshared_key(psk)
    return i, r, hi, hr


def _initiate(i, hi, wall_ns=1_700_000_000 * S, index=7):
    return noise.create_initiation(hi, i, sender_index=index,
                                   timestamp=tai64n.from_wall_ns(wall_ns),
                                   ephemeral_private=crypto.generate_private_key())


@pytest.mark.parametrize("psk", [None, b"\x42" * 32])
def test_full_handshake_and_wiping(psk):
    i, r, hi, hr = _pair(psk)
    init = _initiate(i, hi)
    assert hi.state is HandshakeState.CREATED_INITIATION
    got = noise.consume_initiation(init, r, lambda k: hr if k == i.public_key else None, S)
    assert got is hr and hr.state is HandshakeState.CONSUMED_INITIATION
    resp = noise.create_response(hr, sender_index=9,
                                 ephemeral_private=crypto.generate_private_key())
    assert resp.receiver == 7
    sym_r = hr.sym
    session_r = noise.begin_session(hr, 2 * S)
    assert sym_r is not None and crypto.is_zero(sym_r.chaining_key)  # wiped, not just dropped
    assert hr.state is HandshakeState.ZEROED and hr.sym is None
    noise.consume_response(resp, i, hi)
    session_i = noise.begin_session(hi, 3 * S)
    assert session_i.send_key == session_r.receive_key
    assert session_i.receive_key == session_r.send_key
    assert (session_i.local_index, session_i.remote_index) == (7, 9)
    assert (session_r.local_index, session_r.remote_index) == (9, 7)
    assert session_i.initiator and not session_r.initiator
    assert session_r.birth_ns == 2 * S and session_r.peer == i.public_key
    assert "send_key" not in repr(session_i)
    session_i.wipe()
    assert crypto.is_zero(session_i.send_key) and crypto.is_zero(session_i.receive_key)


def test_mismatched_psk_fails_at_the_response():
    i, r, hi, hr = _pair()
    hr.set_preshared_key(b"\x01" * 32)
    noise.consume_initiation(_initiate(i, hi), r, lambda k: hr, S)
    resp = noise.create_response(hr, sender_index=9,
                                 ephemeral_private=crypto.generate_private_key())
    with pytest.raises(RemoteProtocolError) as e:
        noise.consume_response(resp, i, hi)
    assert e.value.reason is DropReason.DECRYPT_FAILED
    assert hi.state is HandshakeState.CREATED_INITIATION  # untouched: a real response may come


def test_failed_consumption_leaves_the_responder_untouched():
    i, r, hi, hr = _pair()
    noise.consume_initiation(_initiate(i, hi, wall_ns=10 * S), r, lambda k: hr, S)
    before = (hr.state, bytes(hr.sym.hash), hr.latest_timestamp)
    with pytest.raises(RemoteProtocolError) as e:
        noise.consume_initiation(_initiate(i, hi, wall_ns=9 * S), r, lambda k: hr, 2 * S)
    assert e.value.reason is DropReason.STALE_TIMESTAMP
    assert (hr.state, bytes(hr.sym.hash), hr.latest_timestamp) == before


def test_verbs_refuse_the_wrong_state():
    i, r, hi, hr = _pair()
    with pytest.raises(LocalProtocolError):
        noise.create_response(hr, sender_index=1, ephemeral_private=bytearray(32))
    with pytest.raises(LocalProtocolError):
        noise.begin_session(hr, 0)
    init = _initiate(i, hi)
    noise.consume_initiation(init, r, lambda k: hr, S)
    resp = noise.create_response(hr, sender_index=9,
                                 ephemeral_private=crypto.generate_private_key())
    hi.clear()
    with pytest.raises(RemoteProtocolError) as e:
        noise.consume_response(resp, i, hi)
    assert e.value.reason is DropReason.WRONG_STATE


def test_a_low_order_peer_key_cannot_initiate():
    i = StaticIdentity(crypto.generate_private_key())
    hs = Handshake(remote_static=bytes(32))
    hs.precompute(i)
    assert crypto.is_zero(hs.static_static)
    with pytest.raises(LocalProtocolError):
        _initiate(i, hs)


def test_no_private_key_means_no_static_static():
    hs = Handshake(remote_static=crypto.public_key(crypto.generate_private_key()))
    hs.precompute(None)
    assert crypto.is_zero(hs.static_static)
    with pytest.raises(LocalProtocolError):
        hs.set_preshared_key(b"short")
