"""`pywg selftest`: known-answer checks of the crypto this machine will run, in a second.

Meant for a device that got pywg from a wheel built elsewhere (a router): it proves that
the C data plane's ChaCha20-Poly1305 backends and the handshake's primitives give the
published answers on this CPU, and says which backend the data plane would choose.

- The C backends: each one's start-up self-test (csrc/crypto/aead.c: RFC 8439's vectors,
  tags computed by libsodium, agreement with the portable code, forgeries refused), the
  same gate the daemon applies before it uses one.
- The handshake: one Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s exchange from the cacophony
  vectors through the C message steps of pywg._crypto (initiation, response, handshake
  hash and a transport message, byte for byte: X25519, BLAKE2s, HKDF and
  ChaCha20-Poly1305), WireGuard's initial chaining key and hash as wireguard-go has them,
  and the XChaCha20-Poly1305 vector of draft-irtf-cfrg-xchacha-03 (cookie replies).
"""

from __future__ import annotations

import errno
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from pywg import __version__

h = bytes.fromhex


@dataclass(frozen=True)
class NoiseVector:
    protocol: bytes
    prologue: bytes
    psk: bytes
    init_static: bytes
    init_ephemeral: bytes
    resp_static: bytes
    resp_static_public: bytes
    hash: bytes
    payloads: tuple[bytes, ...]
    messages: tuple[bytes, ...]  # initiation, response, first transport message


@dataclass(frozen=True)
class KdfVector:
    chaining_key: bytes
    hash: bytes


@dataclass(frozen=True)
class XAeadVector:
    key: bytes
    nonce: bytes
    aad: bytes
    plaintext: bytes
    sealed: bytes  # ciphertext || tag


# cacophony's Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s vector (tests/data has it whole).
NOISE = NoiseVector(
    protocol=b"Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s",
    prologue=h("4a6f686e2047616c74"),
    psk=h("54686973206973206d7920417573747269616e20706572737065637469766521"),
    init_static=h("e61ef9919cde45dd5f82166404bd08e38bceb5dfdfded0a34c8df7ed542214d1"),
    init_ephemeral=h("893e28b9dc6ca8d611ab664754b8ceb7bac5117349a4439a6b0569da977c464a"),
    resp_static=h("4a3acbfdb163dec651dfa3194dece676d437029c62a408b4c5ea9114246e4893"),
    resp_static_public=h("31e0303fd6418d2f8c0e78b91f22e8caed0fbe48656dcf4767e4834f701b8f62"),
    hash=h("f5191b875290abcd41347ac3622d9679688a7e980229cb937ef748336cfde0e5"),
    payloads=(h("4c756477696720766f6e204d69736573"), h("4d757272617920526f746862617264"),
              h("462e20412e20486179656b")),
    messages=(
        h("ca35def5ae56cec33dc2036731ab14896bc4c75dbb07a61f879f8e3afa4c7944001e21de9f98dd"
          "d8e2ad57527207feb56253c9c94a9e496782ecfcb2a75fbcaf1b52948cc48daefe660c62119ab5"
          "000980c84831215f2441eba616548e832985464cf17e51ee93109008399a21f7e13f"),
        h("95ebc60d2b1fa672c1f46a8aa265ef51bfe38e7ccb39ec5be34069f144808843cb765f2caef075"
          "1b8f007572dab0322217755c0632f365717edbf34d33e87a"),
        h("8153ca9833bc3c1b91a7e66e5f4d4f5b59bf9e64c2f20d15f0bba7"),
    ),
)

# The initial chaining key and hash every WireGuard handshake starts from, as wireguard-go
# has them. (The KDF chain itself runs in C inside the Noise steps, which the cacophony
# exchange above checks end to end.)
KDF = KdfVector(
    chaining_key=h("60e26daef327efc02ec335e2a025d2d016eb4206f87277f52d38d1988b78cd36"),
    hash=h("2211b361081ac566691243db458ad5322d9c6c662293e8b70ee19c65ba079ef3"),
)

# draft-irtf-cfrg-xchacha-03 Appendix A.3.1.
XCHACHA = XAeadVector(
    key=h("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f"),
    nonce=h("404142434445464748494a4b4c4d4e4f5051525354555657"),
    aad=h("50515253c0c1c2c3c4c5c6c7"),
    plaintext=b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip "
              b"for the future, sunscreen would be it.",
    sealed=h("bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb731c7f1b0b4a"
             "a6440bf3a82f4eda7e39ae64c6708c54c216cb96b72e1213b4522f8c9ba40db5d945b11b69"
             "b982c1bb9e3f3fac2bc369488f76b2383565d3fff921f9664c97637da9768812f615c68b13"
             "b52ec0875924c1c7987947deafd8780acf49"),
)


class Mismatch(Exception):
    """A computed value differs from the published one (not an assert: -O keeps it)."""


def _expect(ok: bool, what: str) -> None:
    if not ok:
        raise Mismatch(what)


@dataclass(frozen=True)
class Result:
    name: str
    ok: bool
    detail: str


def _seal(key: bytes, counter: int, plaintext: bytes) -> bytes:
    """A transport message's ChaCha20-Poly1305 (empty associated data), libsodium's."""
    from nacl._sodium import ffi, lib

    out = ffi.new("unsigned char[]", len(plaintext) + 16)
    nonce = bytes(4) + counter.to_bytes(8, "little")
    lib.crypto_aead_chacha20poly1305_ietf_encrypt(out, ffi.NULL, plaintext, len(plaintext),
                                                  b"", 0, ffi.NULL, nonce, key)
    return bytes(ffi.buffer(out))


def check_noise() -> str:
    """The initiator's side of the cacophony exchange through the C steps (pywg._crypto);
    raises Mismatch."""
    from pywg._protocol import crypto, noise
    from pywg._protocol.errors import ProtocolError

    v = NOISE
    remote = crypto.public_key(v.resp_static)
    _expect(remote == v.resp_static_public, "X25519 public key")
    (static_static,) = crypto.static_statics(v.init_static, [remote])
    _expect(static_static is not None, "static-static secret")
    assert static_static is not None  # for the type checker; _expect raised otherwise
    try:
        chain, first = crypto.write_initiation(
            noise.initial_chain(v.protocol, v.prologue), ephemeral_private=v.init_ephemeral,
            local_static_public=crypto.public_key(v.init_static), remote_static=remote,
            static_static=static_static, payload=v.payloads[0])
        _expect(first == v.messages[0], "initiation")
        chain, payload = crypto.read_response(
            chain, ephemeral_private=v.init_ephemeral, local_static_private=v.init_static,
            preshared_key=v.psk, message=v.messages[1])
    except ProtocolError as e:
        raise Mismatch(f"handshake step refused the vector: {e!r}") from e
    _expect(payload == v.payloads[1], "response")
    _expect(bytes(chain[32:]) == v.hash, "handshake hash")
    send, _ = crypto.split(chain)
    _expect(_seal(bytes(send), 0, v.payloads[2]) == v.messages[2], "transport")
    return "cacophony vector: initiation, response, hash, transport message"


def check_kdf() -> str:
    from pywg._protocol import noise

    _expect(KDF.chaining_key + KDF.hash == noise.INITIAL_CHAIN, "initial chain")
    return "wireguard-go's initial chaining key and hash"


def check_xchacha() -> str:
    from pywg._protocol import crypto

    v = XCHACHA
    _expect(crypto.xaead_encrypt(v.key, v.nonce, v.plaintext, v.aad) == v.sealed, "seal")
    _expect(crypto.xaead_decrypt(v.key, v.nonce, v.sealed, v.aad) == v.plaintext, "open")
    return "draft-irtf-cfrg-xchacha-03 A.3.1"


def check_x25519_batches() -> str:
    """A batch as large as a busy responder's through the engine the batches use, against
    libsodium's X25519 one at a time (pynacl), and RFC 7748's Alice and Bob."""
    from nacl.bindings import crypto_scalarmult

    from pywg._protocol import crypto

    alice = bytes.fromhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
    bob_public = bytes.fromhex("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f")
    shared = bytes.fromhex("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742")
    publics = [bob_public] + [crypto.public_key(bytes([i + 1]) * 32) for i in range(15)]
    got = crypto.static_statics(alice, publics)
    _expect(got[0] is not None and bytes(got[0]) == shared, "RFC 7748 6.1")
    for public, secret in zip(publics, got, strict=True):
        _expect(secret is not None and bytes(secret) == crypto_scalarmult(alice, public),
                "a batch of 16 against libsodium")
    return f"engine {crypto.x25519_engine()}: RFC 7748 6.1, 16 at once against libsodium"


def _status_text(rc: int) -> str:
    if rc == 0:
        return "passed"
    if rc == -errno.ENOTSUP:
        return "not on this CPU"
    return f"FAILED ({os.strerror(-rc) if rc < 0 else rc})"


def check_aead() -> tuple[list[Result], str]:
    """Every C backend's self-test, and the one the data plane selects."""
    from pywg._driver import datapath

    chosen = datapath.init_aead()
    results = []
    for name, rc in datapath.aead_backends():
        note = " (selected)" if name == chosen else ""
        results.append(Result(f"aead {name}", rc in (0, -errno.ENOTSUP),
                              _status_text(rc) + note))
    return results, chosen


def _run(name: str, check: Callable[[], str]) -> Result:
    try:
        return Result(name, True, f"passed ({check()})")
    except Mismatch as e:
        return Result(name, False, f"FAILED: {e}")


def run_all() -> tuple[list[Result], str]:
    results, chosen = check_aead()
    results += [_run("noise ikpsk2", check_noise), _run("kdf", check_kdf),
                _run("xchacha20poly1305", check_xchacha),
                _run("x25519 batches", check_x25519_batches)]
    return results, chosen


def main() -> int:
    start = time.monotonic()
    print(f"pywg {__version__} selftest on {platform.machine()}, Python "
          f"{platform.python_version()}")
    try:
        results, chosen = run_all()
    except OSError as e:
        # wg_aead_init selected nothing: PYWG_AEAD names a backend that is unknown, cannot
        # run here or failed, or (never expected) not even the portable code passed.
        wanted = os.environ.get("PYWG_AEAD")
        why = {errno.ENOENT: "no such backend", errno.ENOTSUP: "not on this CPU",
               errno.EIO: "failed its self-test"}.get(e.errno or 0, str(e))
        print(f"pywg selftest: AEAD backend {wanted or '(automatic)'}: {why}", file=sys.stderr)
        return 1
    width = max(len(r.name) for r in results)
    for r in results:
        print(f"  {r.name:<{width}}  {r.detail}")
    failed = [r.name for r in results if not r.ok]
    print(f"data plane AEAD backend: {chosen}")
    took = time.monotonic() - start
    if failed:
        print(f"FAILED: {', '.join(failed)} ({took:.2f} s)")
        return 1
    print(f"all checks passed ({took:.2f} s)")
    return 0
