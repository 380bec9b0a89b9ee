"""WireGuard's cryptographic primitives (whitepaper 5.4; protocol-notes.md 1.2).

BLAKE2s comes from hashlib (libsodium has only BLAKE2b); X25519 and the two ChaCha20-Poly1305
AEADs come from libsodium through pynacl's bindings, which take only immutable `bytes`, so keys
held in a wipeable `bytearray` are passed as short-lived copies: Python cannot wipe those, but
every long-lived secret in the core is a `bytearray` that its owner zeroes (`wipe`).

Failures that can only come from the network (a tag that does not verify, an all-zero
Diffie-Hellman result) raise `RemoteProtocolError` subclasses; wrong argument sizes are the
caller's bug and raise `LocalProtocolError`.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Callable

import nacl.bindings as sodium
import nacl.exceptions

from pywg._constants import (
    AEAD_NONCE_LEN,
    COOKIE_LEN,
    COOKIE_NONCE_LEN,
    NOISE_HASH_LEN,
    NOISE_PUBLIC_KEY_LEN,
    NOISE_SYMMETRIC_KEY_LEN,
)
from pywg._protocol.errors import DecryptError, DropReason, LocalProtocolError, RemoteProtocolError

__all__ = [
    "Buffer",
    "Rng",
    "aead_decrypt",
    "aead_encrypt",
    "blake2s",
    "clamp",
    "constant_time_eq",
    "dh",
    "generate_private_key",
    "hmac_blake2s",
    "is_zero",
    "kdf1",
    "kdf2",
    "kdf3",
    "mac",
    "public_key",
    "random_bytes",
    "wipe",
    "xaead_decrypt",
    "xaead_encrypt",
]

Buffer = bytes | bytearray | memoryview
# A source of random bytes: rng(n) returns n bytes. Injected so tests are reproducible.
Rng = Callable[[int], bytes]

sodium.sodium_init()


def random_bytes(n: int) -> bytes:
    """The default Rng: the kernel's CSPRNG."""
    return os.urandom(n)


def blake2s(*parts: Buffer) -> bytes:
    """HASH(a || b || ...): BLAKE2s with a 32-byte digest."""
    h = hashlib.blake2s(digest_size=NOISE_HASH_LEN)
    for part in parts:
        h.update(part)
    return h.digest()


def mac(key: Buffer, data: Buffer) -> bytes:
    """MAC(key, data): keyed BLAKE2s with a 16-byte digest (not HMAC): mac1, mac2, cookies."""
    return hashlib.blake2s(data, digest_size=COOKIE_LEN, key=key).digest()


def hmac_blake2s(key: Buffer, data: Buffer) -> bytes:
    """HMAC(key, data) over BLAKE2s-256 (block size 64): only the KDF uses it."""
    return hmac.digest(key, data, hashlib.blake2s)


def _kdf(key: Buffer, data: Buffer, n: int) -> tuple[bytearray, ...]:
    # HKDF with an empty info: prk = HMAC(key, data); T(i) = HMAC(prk, T(i-1) || i).
    prk = hmac_blake2s(key, data)
    out: list[bytearray] = []
    previous = b""
    for i in range(1, n + 1):
        previous = hmac_blake2s(prk, previous + bytes((i,)))
        out.append(bytearray(previous))
    return tuple(out)


def kdf1(key: Buffer, data: Buffer) -> bytearray:
    """KDF1: the first HKDF output (a new chaining key)."""
    return _kdf(key, data, 1)[0]


def kdf2(key: Buffer, data: Buffer) -> tuple[bytearray, bytearray]:
    """KDF2: the first two HKDF outputs."""
    t1, t2 = _kdf(key, data, 2)
    return t1, t2


def kdf3(key: Buffer, data: Buffer) -> tuple[bytearray, bytearray, bytearray]:
    """KDF3: the first three HKDF outputs."""
    t1, t2, t3 = _kdf(key, data, 3)
    return t1, t2, t3


def _check_len(name: str, value: Buffer, size: int) -> None:
    if len(value) != size:
        raise LocalProtocolError(f"{name} must be {size} bytes, not {len(value)}")


def _nonce(counter: int) -> bytes:
    # 32 zero bits then the 64-bit counter, little endian (RFC 8439 as WireGuard uses it).
    if not 0 <= counter < 1 << 64:
        raise LocalProtocolError(f"AEAD counter out of range: {counter}")
    return bytes(AEAD_NONCE_LEN - 8) + counter.to_bytes(8, "little")


def aead_encrypt(key: Buffer, counter: int, plaintext: Buffer, ad: Buffer) -> bytes:
    """ChaCha20-Poly1305 (IETF): ciphertext || 16-byte tag."""
    _check_len("AEAD key", key, NOISE_SYMMETRIC_KEY_LEN)
    return sodium.crypto_aead_chacha20poly1305_ietf_encrypt(
        bytes(plaintext), bytes(ad), _nonce(counter), bytes(key)
    )


def aead_decrypt(key: Buffer, counter: int, ciphertext: Buffer, ad: Buffer) -> bytes:
    """Open a ChaCha20-Poly1305 (IETF) box; raises DecryptError if the tag does not verify."""
    _check_len("AEAD key", key, NOISE_SYMMETRIC_KEY_LEN)
    try:
        return sodium.crypto_aead_chacha20poly1305_ietf_decrypt(
            bytes(ciphertext), bytes(ad), _nonce(counter), bytes(key)
        )
    except nacl.exceptions.CryptoError as e:
        raise DecryptError() from e


def xaead_encrypt(key: Buffer, nonce: Buffer, plaintext: Buffer, ad: Buffer) -> bytes:
    """XChaCha20-Poly1305 with a 24-byte nonce (only the cookie reply uses it)."""
    _check_len("XAEAD key", key, NOISE_SYMMETRIC_KEY_LEN)
    _check_len("XAEAD nonce", nonce, COOKIE_NONCE_LEN)
    return sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(
        bytes(plaintext), bytes(ad), bytes(nonce), bytes(key)
    )


def xaead_decrypt(key: Buffer, nonce: Buffer, ciphertext: Buffer, ad: Buffer) -> bytes:
    """Open an XChaCha20-Poly1305 box; raises DecryptError if the tag does not verify."""
    _check_len("XAEAD key", key, NOISE_SYMMETRIC_KEY_LEN)
    _check_len("XAEAD nonce", nonce, COOKIE_NONCE_LEN)
    try:
        return sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(
            bytes(ciphertext), bytes(ad), bytes(nonce), bytes(key)
        )
    except nacl.exceptions.CryptoError as e:
        raise DecryptError() from e


def clamp(key: bytearray) -> bytearray:
    """Clamp an X25519 private key in place (and return it), as `wg genkey` does."""
    key[0] &= 248
    key[31] = (key[31] & 127) | 64
    return key


def generate_private_key(rng: Rng = random_bytes) -> bytearray:
    """A fresh, clamped X25519 private key."""
    key = bytearray(rng(NOISE_PUBLIC_KEY_LEN))
    _check_len("random private key", key, NOISE_PUBLIC_KEY_LEN)
    return clamp(key)


def public_key(private: Buffer) -> bytes:
    """The X25519 public key of a private key (libsodium clamps the scalar itself)."""
    _check_len("private key", private, NOISE_PUBLIC_KEY_LEN)
    return sodium.crypto_scalarmult_base(bytes(private))


def dh(private: Buffer, public: Buffer) -> bytearray:
    """X25519(private, public); an all-zero result (a low-order public key) raises BAD_DH."""
    _check_len("private key", private, NOISE_PUBLIC_KEY_LEN)
    _check_len("public key", public, NOISE_PUBLIC_KEY_LEN)
    try:
        # libsodium itself refuses small-order points and all-zero results.
        shared = bytearray(sodium.crypto_scalarmult(bytes(private), bytes(public)))
    except nacl.exceptions.CryptoError as e:
        raise RemoteProtocolError(DropReason.BAD_DH, "low-order public key") from e
    if is_zero(shared):
        raise RemoteProtocolError(DropReason.BAD_DH, "all-zero shared secret")
    return shared


def constant_time_eq(a: Buffer, b: Buffer) -> bool:
    """Equality that takes the same time wherever the inputs differ (for MACs and keys)."""
    return hmac.compare_digest(a, b)


def is_zero(data: Buffer) -> bool:
    """Whether every byte is zero, in time independent of where a non-zero byte is."""
    return hmac.compare_digest(bytes(data), bytes(len(data)))


def wipe(*buffers: bytearray) -> None:
    """Overwrite secrets with zeros in place."""
    for buf in buffers:
        buf[:] = bytes(len(buf))
