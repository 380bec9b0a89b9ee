"""The primitives against published known answers (RFC 7748, the XChaCha20 draft) and their
failure modes. The Noise steps' KDF and AEAD are C: the self-tests (csrc/selftest/noise.c,
wireguard-go's KDF vectors), tests/c and tests/unit/test_noise.py (the Noise vectors)."""

import json
from pathlib import Path

import pytest

from pywg._protocol import crypto
from pywg._protocol.errors import DecryptError, LocalProtocolError

DATA = Path(__file__).parent.parent / "data"
AEAD = json.loads((DATA / "aead-vectors.json").read_text())
h = bytes.fromhex


def test_xaead_draft_vector_both_ways():
    v = AEAD["xchacha20poly1305"]
    key, nonce, aad, plaintext = h(v["key"]), h(v["nonce"]), h(v["aad"]), h(v["plaintext"])
    sealed = h(v["ciphertext"]) + h(v["tag"])
    assert crypto.xaead_encrypt(key, nonce, plaintext, aad) == sealed
    assert crypto.xaead_decrypt(key, nonce, sealed, aad) == plaintext
    with pytest.raises(DecryptError):
        crypto.xaead_decrypt(key, nonce, sealed, aad + b"x")


def test_xaead_key_and_nonce_sizes_are_checked():
    with pytest.raises(LocalProtocolError):
        crypto.xaead_encrypt(bytes(31), bytes(24), b"", b"")
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
    # Through the C side (libsodium's function, handed over), once each and in a batch.
    assert crypto.static_statics(ALICE_PRIVATE, [BOB_PUBLIC]) == [SHARED]
    assert crypto.static_statics(bytearray(BOB_PRIVATE), [ALICE_PUBLIC] * 5) == [SHARED] * 5


# Points of small order (u-coordinates): X25519 with them is all zero whatever the scalar.
LOW_ORDER_POINTS = [
    bytes(32),
    (1).to_bytes(32, "little"),
    h("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
    h("5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157"),
    ((1 << 255) - 19 - 1).to_bytes(32, "little"),  # p - 1
    ((1 << 255) - 19).to_bytes(32, "little"),  # p, a non-canonical 0
]


def test_dh_with_a_low_order_point_is_refused():
    got = crypto.static_statics(ALICE_PRIVATE, [*LOW_ORDER_POINTS, BOB_PUBLIC])
    assert got == [None] * len(LOW_ORDER_POINTS) + [SHARED]


def test_generated_keys_are_clamped_and_use_the_rng():
    key = crypto.generate_private_key(lambda n: b"\xff" * n)
    assert key[0] == 0xF8 and key[31] == 0x7F and key[1:31] == b"\xff" * 30
    key = crypto.generate_private_key(lambda n: bytes(n))
    assert key[0] == 0 and key[31] == 0x40
    assert len({bytes(crypto.generate_private_key()) for _ in range(8)}) == 8


def test_a_batch_of_keys_is_one_draw_split_and_clamped():
    draws: list[int] = []

    def rng(n: int) -> bytes:
        draws.append(n)
        return bytes(i % 256 for i in range(n))

    keys = crypto.generate_private_keys(3, rng)
    assert draws == [96]
    raw = rng(96)
    for i, key in enumerate(keys):
        assert key == crypto.clamp(bytearray(raw[32 * i:32 * i + 32]))
    assert crypto.generate_private_keys(0, rng) == [] and draws == [96, 96]
    # An Rng that gives too little is the caller's bug, not a short key.
    with pytest.raises(LocalProtocolError):
        crypto.generate_private_keys(2, lambda n: bytes(n - 1))
    assert len({bytes(k) for k in crypto.generate_private_keys(8)}) == 8


def test_helpers():
    assert crypto.constant_time_eq(b"abc", bytearray(b"abc"))
    assert not crypto.constant_time_eq(b"abc", b"abd")
    assert crypto.is_zero(bytearray(16)) and not crypto.is_zero(b"\0" * 15 + b"\1")
    secret = bytearray(b"secret")
    crypto.wipe(secret)
    assert secret == bytes(6)
    assert len(crypto.mac(b"k" * 32, b"data")) == 16
    assert crypto.blake2s(b"a", b"bc") == crypto.blake2s(b"abc")
