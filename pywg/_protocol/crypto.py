"""WireGuard's cryptography for the protocol core (whitepaper 5.4; protocol-notes.md 1.2).

The Noise handshake's message steps are C: csrc/crypto/noise.c in the cffi module
pywg._crypto (csrc/crypto/wg_crypto.h), which only this module imports. One call does one
step (the hashing, the key derivation chain, the AEAD and the X25519 of one message), or the
same step over a batch of messages, which the C side spreads over every core (cffi releases
the GIL meanwhile). Each step takes the symmetric state as one 64-byte chain (chaining key,
then hash) and returns the new one; the rules around the steps stay in noise.py.

X25519 in C is libsodium's (pynacl's bundled copy), handed over at import; so is its
ChaCha20-Poly1305, as one more AEAD backend to choose from (csrc/crypto/aead.h). Here in
Python remain what is off the hot path: hashlib's BLAKE2s for one-off hashes (the initial
chain, the mac1 and cookie keys) and the keyed BLAKE2s of mac1, mac2 and cookies
(cookie.py); pynacl's X25519 for a static identity's public key; XChaCha20-Poly1305 for
cookie replies.

pynacl and cffi take immutable `bytes` or buffers: keys held in a wipeable `bytearray` are
passed as buffers, never copied; every long-lived secret in the core is a `bytearray` that
its owner zeroes (`wipe`). What C writes lands in bytearrays the caller owns.

Failures that can only come from the network (a tag that does not verify, an all-zero
Diffie-Hellman result) raise `RemoteProtocolError` subclasses; wrong argument sizes are the
caller's bug and raise `LocalProtocolError`.
"""

from __future__ import annotations

import atexit
import errno
import hashlib
import hmac
import os
from collections.abc import Callable, Sequence
from typing import Any

from nacl._sodium import ffi as _sodium_ffi
from nacl._sodium import lib as _sodium_lib

from pywg._constants import (
    COOKIE_LEN,
    COOKIE_NONCE_LEN,
    NOISE_AUTHTAG_LEN,
    NOISE_HASH_LEN,
    NOISE_PUBLIC_KEY_LEN,
    NOISE_SYMMETRIC_KEY_LEN,
)
from pywg._crypto import ffi as _ffi
from pywg._crypto import lib as _lib
from pywg._protocol.errors import (
    DecryptError,
    DropReason,
    LocalProtocolError,
    ProtocolError,
    RemoteProtocolError,
)

__all__ = [
    "CHAIN_LEN",
    "Buffer",
    "Rng",
    "blake2s",
    "clamp",
    "constant_time_eq",
    "error",
    "generate_private_key",
    "generate_private_keys",
    "is_zero",
    "mac",
    "public_key",
    "random_bytes",
    "read_initiation_payload",
    "read_initiation_static",
    "read_initiations_payload",
    "read_initiations_static",
    "read_response",
    "split",
    "static_statics",
    "wipe",
    "workers",
    "write_initiation",
    "write_response",
    "write_responses",
    "xaead_decrypt",
    "xaead_encrypt",
]

Buffer = bytes | bytearray | memoryview
# A source of random bytes: rng(n) returns n bytes. Injected so tests are reproducible.
Rng = Callable[[int], bytes]

# The symmetric state of a handshake as the C steps take it: chaining key, then hash.
CHAIN_LEN = 2 * NOISE_HASH_LEN
_KEY = NOISE_PUBLIC_KEY_LEN
_TAG = NOISE_AUTHTAG_LEN
_ENCRYPTED_STATIC_LEN = _KEY + _TAG
# A response as the batch makes it: the ephemeral key and the encrypted empty payload.
_RESPONSE_BODY_LEN = _KEY + _TAG
_SODIUM_FUNCTIONS = ("crypto_scalarmult", "crypto_scalarmult_base",
                     "crypto_aead_chacha20poly1305_ietf_encrypt",
                     "crypto_aead_chacha20poly1305_ietf_decrypt")


def _init() -> None:
    """Hand libsodium's functions to the C side, once, after sodium_init (without which
    libsodium runs its slowest code paths). libsodium is reached through pynacl's cffi module
    (nacl._sodium), not its Python bindings (nacl.bindings), which cost an idle daemon about
    1.4 MiB for functions it never calls."""
    if _sodium_lib.sodium_init() < 0:
        raise ImportError("libsodium failed to initialise")
    pointers = [_ffi.cast("void *", int(_sodium_ffi.cast(
        "uintptr_t", _sodium_ffi.addressof(_sodium_lib, name)))) for name in _SODIUM_FUNCTIONS]
    rc = _lib.wg_crypto_init(*pointers)
    if rc < 0:
        raise OSError(-rc, f"handshake crypto: {os.strerror(-rc)}")
    if _lib.WG_NOISE_CHAIN_LEN != CHAIN_LEN or _lib.WG_NOISE_KEY_LEN != _KEY:
        raise ImportError("csrc/crypto/wg_crypto.h disagrees with pywg._constants")


_init()
# The pool's threads are joined before the interpreter goes.
atexit.register(_lib.wg_crypto_stop)


def random_bytes(n: int) -> bytes:
    """The default Rng: the kernel's CSPRNG."""
    return os.urandom(n)


def blake2s(*parts: Buffer) -> bytes:
    """HASH(a || b || ...): BLAKE2s with a 32-byte digest, for one-off hashes."""
    h = hashlib.blake2s(digest_size=NOISE_HASH_LEN)
    for part in parts:
        h.update(part)
    return h.digest()


def mac(key: Buffer, data: Buffer) -> bytes:
    """MAC(key, data): keyed BLAKE2s with a 16-byte digest (not HMAC): mac1, mac2, cookies."""
    return hashlib.blake2s(data, digest_size=COOKIE_LEN, key=key).digest()


def _check_len(name: str, value: Buffer, size: int) -> None:
    if len(value) != size:
        raise LocalProtocolError(f"{name} must be {size} bytes, not {len(value)}")


def xaead_encrypt(key: Buffer, nonce: Buffer, plaintext: Buffer, ad: Buffer) -> bytes:
    """XChaCha20-Poly1305 with a 24-byte nonce (only the cookie reply uses it)."""
    _check_len("XAEAD key", key, NOISE_SYMMETRIC_KEY_LEN)
    _check_len("XAEAD nonce", nonce, COOKIE_NONCE_LEN)
    message, data = bytes(plaintext), bytes(ad)
    out = _sodium_ffi.new("unsigned char[]", len(message) + _TAG)
    _sodium_lib.crypto_aead_xchacha20poly1305_ietf_encrypt(
        out, _sodium_ffi.NULL, message, len(message), data, len(data), _sodium_ffi.NULL,
        bytes(nonce), bytes(key))
    return bytes(_sodium_ffi.buffer(out))


def xaead_decrypt(key: Buffer, nonce: Buffer, ciphertext: Buffer, ad: Buffer) -> bytes:
    """Open an XChaCha20-Poly1305 box; raises DecryptError if the tag does not verify."""
    _check_len("XAEAD key", key, NOISE_SYMMETRIC_KEY_LEN)
    _check_len("XAEAD nonce", nonce, COOKIE_NONCE_LEN)
    sealed, data = bytes(ciphertext), bytes(ad)
    if len(sealed) < _TAG:
        raise DecryptError()
    out = _sodium_ffi.new("unsigned char[]", max(len(sealed) - _TAG, 1))
    if _sodium_lib.crypto_aead_xchacha20poly1305_ietf_decrypt(
            out, _sodium_ffi.NULL, _sodium_ffi.NULL, sealed, len(sealed), data, len(data),
            bytes(nonce), bytes(key)) != 0:
        raise DecryptError()
    return bytes(_sodium_ffi.buffer(out, len(sealed) - _TAG))


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


def generate_private_keys(n: int, rng: Rng = random_bytes) -> list[bytearray]:
    """`n` fresh, clamped X25519 private keys from one draw of the Rng (a batch of responses
    needs one each: one getrandom call instead of n)."""
    if n <= 0:
        return []
    drawn = bytearray(rng(n * NOISE_PUBLIC_KEY_LEN))
    try:
        _check_len("random private keys", drawn, n * NOISE_PUBLIC_KEY_LEN)
        return [clamp(key) for key in _secret_pieces(drawn, NOISE_PUBLIC_KEY_LEN, n)]
    finally:
        wipe(drawn)


def public_key(private: Buffer) -> bytes:
    """The X25519 public key of a private key (libsodium clamps the scalar itself)."""
    _check_len("private key", private, NOISE_PUBLIC_KEY_LEN)
    out = _sodium_ffi.new("unsigned char[]", NOISE_PUBLIC_KEY_LEN)
    if _sodium_lib.crypto_scalarmult_base(out, bytes(private)) != 0:
        raise LocalProtocolError("X25519 of the private key failed")
    return bytes(_sodium_ffi.buffer(out))


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


def x25519_engine() -> str:
    """What computes the handshake batches' X25519: "ifma" (eight at a time with AVX-512
    IFMA) or "sodium" (libsodium, one at a time)."""
    name: bytes = _ffi.string(_lib.wg_crypto_x25519_engine())
    return name.decode()


def workers() -> int:
    """Threads a batch step runs on, the caller's included (the usable cores)."""
    return int(_lib.wg_crypto_workers())


# ---- the C steps -----------------------------------------------------------------------------

def _ptr(buf: Buffer) -> Any:
    # cffi takes bytes as they are; a bytearray or memoryview as a buffer, without a copy.
    return buf if isinstance(buf, bytes) else _ffi.from_buffer("uint8_t[]", buf)


def _key(name: str, value: Buffer) -> Any:
    _check_len(name, value, _KEY)
    return _ptr(value)


def _chain(chain: Buffer) -> Any:
    _check_len("chain", chain, CHAIN_LEN)
    return _ptr(chain)


def error(rc: int) -> ProtocolError:
    """The exception for a step's negative result."""
    if rc == -errno.EBADMSG:
        return DecryptError()
    if rc == -errno.EINVAL:
        return RemoteProtocolError(DropReason.BAD_DH, "all-zero shared secret")
    return LocalProtocolError(f"handshake crypto: {os.strerror(-rc)}")


def _check(rc: int) -> None:
    if rc != 0:
        raise error(rc)


def write_initiation(chain: Buffer, *, ephemeral_private: Buffer, local_static_public: Buffer,
                     remote_static: Buffer, static_static: Buffer, payload: Buffer,
                     ) -> tuple[bytearray, bytes]:
    """-> e, es, s, ss, payload, from the chain before the pre-message "<- s" (which this
    mixes). Returns (chain, e || encrypted static || encrypted payload)."""
    chain_out = bytearray(CHAIN_LEN)
    message = bytearray(_KEY + _ENCRYPTED_STATIC_LEN + len(payload) + _TAG)
    _check(_lib.wg_noise_write_initiation(
        _ptr(chain_out), _ptr(message), _chain(chain), _key("ephemeral key", ephemeral_private),
        _key("static public key", local_static_public), _key("peer key", remote_static),
        _key("static-static secret", static_static), _ptr(payload), len(payload)))
    return chain_out, bytes(message)


def read_initiation_static(chain: Buffer, *, local_static_private: Buffer,
                           local_static_public: Buffer, message: Buffer,
                           ) -> tuple[bytearray, bytes]:
    """The responder's first half of message 1 (<- s, e, es, s), from a message that starts
    with e and the encrypted static. Returns (chain, the initiator's static key)."""
    if len(message) < _KEY + _ENCRYPTED_STATIC_LEN:
        raise LocalProtocolError("an initiation's e and static are 80 bytes")
    chain_out, static = bytearray(CHAIN_LEN), bytearray(_KEY)
    _check(_lib.wg_noise_read_initiation_static(
        _ptr(chain_out), _ptr(static), _chain(chain), _key("private key", local_static_private),
        _key("public key", local_static_public), _ptr(message)))
    return chain_out, bytes(static)


def read_initiation_payload(chain: Buffer, *, static_static: Buffer, encrypted_payload: Buffer,
                            ) -> tuple[bytearray, bytes]:
    """The second half (ss, payload). Returns (chain, payload)."""
    if len(encrypted_payload) < _TAG:
        raise DecryptError("shorter than its tag")
    chain_out, payload = bytearray(CHAIN_LEN), bytearray(len(encrypted_payload) - _TAG)
    _check(_lib.wg_noise_read_initiation_payload(
        _ptr(chain_out), _ptr(payload), _chain(chain),
        _key("static-static secret", static_static), _ptr(encrypted_payload),
        len(encrypted_payload)))
    return chain_out, bytes(payload)


def write_response(chain: Buffer, *, ephemeral_private: Buffer, remote_ephemeral: Buffer,
                   remote_static: Buffer, preshared_key: Buffer, payload: Buffer,
                   ) -> tuple[bytearray, bytes]:
    """<- e, ee, se, psk, payload. Returns (chain, e || encrypted payload)."""
    chain_out, message = bytearray(CHAIN_LEN), bytearray(_KEY + len(payload) + _TAG)
    _check(_lib.wg_noise_write_response(
        _ptr(chain_out), _ptr(message), _chain(chain), _key("ephemeral key", ephemeral_private),
        _key("peer ephemeral key", remote_ephemeral), _key("peer key", remote_static),
        _key("preshared key", preshared_key), _ptr(payload), len(payload)))
    return chain_out, bytes(message)


def read_response(chain: Buffer, *, ephemeral_private: Buffer, local_static_private: Buffer,
                  preshared_key: Buffer, message: Buffer) -> tuple[bytearray, bytes]:
    """The initiator reads message 2 (e, ee, se, psk, payload), e then the encrypted payload.
    Returns (chain, payload)."""
    if len(message) < _KEY + _TAG:
        raise DecryptError("shorter than its tag")
    chain_out, payload = bytearray(CHAIN_LEN), bytearray(len(message) - _KEY - _TAG)
    _check(_lib.wg_noise_read_response(
        _ptr(chain_out), _ptr(payload), _chain(chain), _key("ephemeral key", ephemeral_private),
        _key("private key", local_static_private), _key("preshared key", preshared_key),
        _ptr(message), len(message) - _KEY))
    return chain_out, bytes(payload)


def split(chain: Buffer) -> tuple[bytearray, bytearray]:
    """(initiator-to-responder key, responder-to-initiator key) = KDF2(chaining key, "")."""
    keys = bytearray(2 * _KEY)
    _check(_lib.wg_noise_split(_ptr(keys), _chain(chain)))
    first, second = keys[:_KEY], keys[_KEY:]
    wipe(keys)
    return first, second


# ---- batches: one step over many messages, on every core ------------------------------------
#
# Written for few Python operations per message: a batch is joined into one buffer, C writes
# into one buffer per output, and the results are sliced out once.

def _joined(name: str, items: Sequence[Buffer], size: int) -> bytes:
    joined = b"".join(items)
    if len(joined) != size * len(items) or any(len(item) != size for item in items):
        raise LocalProtocolError(f"every {name} must be {size} bytes")
    return joined


def _joined_secret(name: str, items: Sequence[Buffer], size: int) -> bytearray:
    # A bytearray, so the caller can wipe the copy.
    joined = bytearray().join(items)
    if len(joined) != size * len(items) or any(len(item) != size for item in items):
        wipe(joined)
        raise LocalProtocolError(f"every {name} must be {size} bytes")
    return joined


def _out(buf: bytearray) -> Any:
    return _ffi.from_buffer("uint8_t[]", buf)


def _pieces(buf: bytes, size: int, n: int) -> list[bytes]:
    return [buf[i:i + size] for i in range(0, n * size, size)]


def _secret_pieces(buf: bytearray, size: int, n: int) -> list[bytearray]:
    out = [buf[i:i + size] for i in range(0, n * size, size)]
    wipe(buf)
    return out


def static_statics(private: Buffer, publics: Sequence[bytes]) -> list[bytearray | None]:
    """X25519(private, each public key): the static-static secrets of peers; None where the
    peer's key is of small order."""
    n = len(publics)
    if not n:
        return []
    secrets, rcs = bytearray(n * _KEY), _ffi.new("int[]", n)
    _check(_lib.wg_noise_static_statics(n, _out(secrets), rcs, _key("private key", private),
                                        _joined("peer key", publics, _KEY)))
    return [s if rc == 0 else None
            for rc, s in zip(_ffi.unpack(rcs, n), _secret_pieces(secrets, _KEY, n), strict=True)]


def read_initiations_static(chain: Buffer, local_static_private: Buffer,
                            local_static_public: Buffer, bodies: Sequence[bytes],
                            ) -> tuple[list[int], list[bytearray], list[bytes]]:
    """read_initiation_static over initiation bodies (e || encrypted static || encrypted
    timestamp, all the same size): each one's 0 or -errno, chain, initiator's static key."""
    n = len(bodies)
    if not n:
        return [], [], []
    stride = len(bodies[0])
    if stride < _KEY + _ENCRYPTED_STATIC_LEN:
        raise LocalProtocolError("an initiation's e and static are 80 bytes")
    chains, statics, rcs = bytearray(n * CHAIN_LEN), bytearray(n * _KEY), _ffi.new("int[]", n)
    _check(_lib.wg_noise_read_initiations_static(
        n, _out(chains), _out(statics), rcs, _chain(chain),
        _key("private key", local_static_private), _key("public key", local_static_public),
        _joined("initiation body", bodies, stride), stride))
    return (_ffi.unpack(rcs, n), _secret_pieces(chains, CHAIN_LEN, n),
            _pieces(bytes(statics), _KEY, n))


def read_initiations_payload(chains: Sequence[Buffer], static_statics: Sequence[Buffer],
                             bodies: Sequence[bytes], offset: int, encrypted_len: int,
                             ) -> tuple[list[int], list[bytearray], list[bytes]]:
    """read_initiation_payload over n: the encrypted payload of body i is at `offset`, all
    `encrypted_len` long. Each one's 0 or -errno, chain, payload."""
    n = len(bodies)
    if not n:
        return [], [], []
    stride = len(bodies[0])
    if encrypted_len < _TAG or offset + encrypted_len > stride or len(chains) != n \
            or len(static_statics) != n:
        raise LocalProtocolError("inconsistent batch")
    size = encrypted_len - _TAG
    out, payloads, rcs = bytearray(n * CHAIN_LEN), bytearray(n * size), _ffi.new("int[]", n)
    joined = _joined("initiation body", bodies, stride)
    secrets = (_joined_secret("chain", chains, CHAIN_LEN),
               _joined_secret("static-static secret", static_statics, _KEY))
    try:
        _check(_lib.wg_noise_read_initiations_payload(
            n, _out(out), _out(payloads), rcs, _out(secrets[0]), _out(secrets[1]),
            _ffi.from_buffer("uint8_t[]", joined) + offset, stride, encrypted_len))
    finally:
        wipe(*secrets)
    return (_ffi.unpack(rcs, n), _secret_pieces(out, CHAIN_LEN, n),
            _pieces(bytes(payloads), size, n))


def write_responses(chains: Sequence[Buffer], ephemeral_privates: Sequence[Buffer],
                    remote_ephemerals: Sequence[bytes], remote_statics: Sequence[bytes],
                    preshared_keys: Sequence[Buffer],
                    ) -> tuple[list[int], list[bytes], list[bytearray], list[bytearray]]:
    """write_response with an empty payload, then split, over n: each one's 0 or -errno,
    e || encrypted nothing, initiator-to-responder key, responder-to-initiator key."""
    n = len(chains)
    if not n:
        return [], [], [], []
    if not (len(ephemeral_privates) == len(remote_ephemerals) == len(remote_statics)
            == len(preshared_keys) == n):
        raise LocalProtocolError("inconsistent batch")
    messages, keys, rcs = bytearray(n * _RESPONSE_BODY_LEN), bytearray(n * 2 * _KEY), \
        _ffi.new("int[]", n)
    secrets = (_joined_secret("chain", chains, CHAIN_LEN),
               _joined_secret("ephemeral key", ephemeral_privates, _KEY),
               _joined_secret("preshared key", preshared_keys, _KEY))
    try:
        _check(_lib.wg_noise_write_responses(
            n, _out(messages), _out(keys), rcs, _out(secrets[0]), _out(secrets[1]),
            _joined("peer ephemeral key", remote_ephemerals, _KEY),
            _joined("peer key", remote_statics, _KEY), _out(secrets[2])))
    finally:
        wipe(*secrets)
    # The two keys of message i are pieces 2i and 2i + 1.
    both = _secret_pieces(keys, _KEY, 2 * n)
    return (_ffi.unpack(rcs, n), _pieces(bytes(messages), _RESPONSE_BODY_LEN, n), both[0::2],
            both[1::2])
