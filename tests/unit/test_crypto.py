"""The primitives against published known answers (wireguard-go's KDF tests, RFC 7748,
RFC 8439, the XChaCha20 draft) and their failure modes."""

import json
from pathlib import Path

import pytest

from pywg._protocol import crypto, noise
from pywg._protocol.errors import DecryptError, DropReason, LocalProtocolError, RemoteProtocolError

DATA = Path(__file__).parent.parent / "data"
KDF = json.loads((DATA / "wireguard-kdf-vectors.json").read_text())
AEAD = json.loads((DATA / "aead-vectors.json").read_text())
h = bytes.fromhex


@pytest.mark.parametrize("case", KDF["cases"], ids=lambda c: c["key"] or "empty")
def test_kdf_matches_wireguard_go(case):
    key, data = h(case["key"]), h(case["input"])
    t0, t1, t2 = h(case["t0"]), h(case["t1"]), h(case["t2"])
    assert crypto.kdf1(key, data) == t0
    assert crypto.kdf2(key, data) == (t0, t1)
    assert crypto.kdf3(key, data) == (t0, t1, t2)


def test_initial_chaining_key_and_hash():
    expected = KDF["constants"]
    assert h(expected["initial_chaining_key"]) == noise.INITIAL_CHAINING_KEY
    assert h(expected["initial_hash"]) == noise.INITIAL_HASH


def _chacha_vector():
    v = AEAD["chacha20poly1305"]
    nonce = h(v["nonce"])
    assert nonce[:4] == bytes(4)  # WireGuard's nonce form: the counter is the last 8 bytes
    counter = int.from_bytes(nonce[4:], "little")
    return v, h(v["key"]), counter


def test_aead_rfc8439_vector_both_ways():
    v, key, counter = _chacha_vector()
    sealed = h(v["ciphertext"]) + h(v["tag"])
    assert crypto.aead_encrypt(key, counter, h(v["plaintext"]), h(v["aad"])) == sealed
    assert crypto.aead_decrypt(bytearray(key), counter, sealed, h(v["aad"])) == h(v["plaintext"])


@pytest.mark.parametrize("change", ["tag", "ciphertext", "aad", "counter", "key"])
def test_aead_rejects_any_change(change):
    v, key, counter = _chacha_vector()
    sealed, aad = bytearray(h(v["ciphertext"]) + h(v["tag"])), h(v["aad"])
    if change == "tag":
        sealed[-1] ^= 1
    elif change == "ciphertext":
        sealed[0] ^= 0x80
    elif change == "aad":
        aad = aad[:-1]
    elif change == "counter":
        counter += 1
    else:
        key = bytes(32)
    with pytest.raises(DecryptError) as e:
        crypto.aead_decrypt(key, counter, sealed, aad)
    assert e.value.reason is DropReason.DECRYPT_FAILED


def test_xaead_draft_vector_both_ways():
    v = AEAD["xchacha20poly1305"]
    key, nonce, aad, plaintext = h(v["key"]), h(v["nonce"]), h(v["aad"]), h(v["plaintext"])
    sealed = h(v["ciphertext"]) + h(v["tag"])
    assert crypto.xaead_encrypt(key, nonce, plaintext, aad) == sealed
    assert crypto.xaead_decrypt(key, nonce, sealed, aad) == plaintext
    with pytest.raises(DecryptError):
        crypto.xaead_decrypt(key, nonce, sealed, aad + b"x")


def test_aead_counter_and_key_sizes_are_checked():
    with pytest.raises(LocalProtocolError):
        crypto.aead_encrypt(bytes(32), 1 << 64, b"", b"")
    with pytest.raises(LocalProtocolError):
        crypto.aead_encrypt(bytes(31), 0, b"", b"")
    with pytest.raises(LocalProtocolError):
        crypto.xaead_encrypt(bytes(32), bytes(12), b"", b"")


# RFC 7748 section 6.1.
ALICE_PRIVATE = h("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
ALICE_PUBLIC = h("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
BOB_PRIVATE = h("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb")
BOB_PUBLIC = h("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f")
SHARED = h("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742")


def test_x25519_rfc7748_vector():
    assert crypto.public_key(ALICE_PRIVATE) == ALICE_PUBLIC
    assert crypto.public_key(BOB_PRIVATE) == BOB_PUBLIC
    assert crypto.dh(ALICE_PRIVATE, BOB_PUBLIC) == SHARED
    assert crypto.dh(bytearray(BOB_PRIVATE), ALICE_PUBLIC) == SHARED


# Points of small order (u-coordinates): X25519 with them is all zero whatever the scalar.
LOW_ORDER_POINTS = [
    bytes(32),
    (1).to_bytes(32, "little"),
    h("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
    h("5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157"),
    ((1 << 255) - 19 - 1).to_bytes(32, "little"),  # p - 1
    ((1 << 255) - 19).to_bytes(32, "little"),  # p, a non-canonical 0
]


@pytest.mark.parametrize("point", LOW_ORDER_POINTS, ids=lambda p: p.hex()[:8])
def test_dh_with_a_low_order_point_is_refused(point):
    with pytest.raises(RemoteProtocolError) as e:
        crypto.dh(ALICE_PRIVATE, point)
    assert e.value.reason is DropReason.BAD_DH


def test_generated_keys_are_clamped_and_use_the_rng():
    key = crypto.generate_private_key(lambda n: b"\xff" * n)
    assert key[0] == 0xF8 and key[31] == 0x7F and key[1:31] == b"\xff" * 30
    key = crypto.generate_private_key(lambda n: bytes(n))
    assert key[0] == 0 and key[31] == 0x40
    assert len({bytes(crypto.generate_private_key()) for _ in range(8)}) == 8


def test_helpers():
    assert crypto.constant_time_eq(b"abc", bytearray(b"abc"))
    assert not crypto.constant_time_eq(b"abc", b"abd")
    assert crypto.is_zero(bytearray(16)) and not crypto.is_zero(b"\0" * 15 + b"\1")
    secret = bytearray(b"secret")
    crypto.wipe(secret)
    assert secret == bytes(6)
    assert len(crypto.mac(b"k" * 32, b"data")) == 16
    assert crypto.blake2s(b"a", b"bc") == crypto.blake2s(b"abc")
