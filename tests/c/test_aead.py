"""The C ChaCha20-Poly1305 backends against RFC 8439 and against libsodium.

Every backend this machine can run is checked: the RFC's AEAD vectors, the
ChaCha20 vectors that an AEAD ciphertext contains (block counter 1), and a
differential test against libsodium (pynacl) on random keys, WireGuard
nonces (4 zero bytes and a little-endian counter) and lengths up to 65535.
"""

import errno
import json
import os
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest
from _wgdp_test import ffi, lib  # the test-only module: tests/conftest.py
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nacl import bindings as sodium

ROOT = Path(__file__).parents[2]
VECTORS = json.loads((ROOT / "tests" / "data" / "rfc8439-vectors.json").read_text())
TAG = 16


def _register_sodium() -> None:
    import nacl._sodium as nacl_sodium

    sodium.sodium_init()  # without it libsodium runs its generic code
    addr = [
        ffi.cast("void *", int(nacl_sodium.ffi.cast("uintptr_t", nacl_sodium.ffi.addressof(
            nacl_sodium.lib, name))))
        for name in ("crypto_aead_chacha20poly1305_ietf_encrypt",
                     "crypto_aead_chacha20poly1305_ietf_decrypt")
    ]
    assert lib.wg_aead_register_sodium(addr[0], addr[1]) == 0


_register_sodium()
assert lib.wg_aead_init() == 0


def _all_names() -> list[str]:
    names = ffi.new("const char *[16]")
    n = lib.wg_aead_backends(names, 16)
    return [ffi.string(names[i]).decode() for i in range(n)]


NAMES = _all_names()


@pytest.fixture(params=NAMES)
def backend(request: pytest.FixtureRequest) -> bytes:
    name = request.param
    rc = lib.wg_aead_status(name.encode())
    if rc == -errno.ENOTSUP:
        pytest.skip(f"{name}: not usable on this machine")
    assert rc == 0, f"{name} failed its start-up self-test ({rc})"
    return name.encode()


def seal(name: bytes | None, pt: bytes, nonce: bytes, key: bytes, ad: bytes = b"") -> bytes:
    out = ffi.new("uint8_t[]", len(pt) + TAG)
    rc = lib.wg_aead_seal_with(name or ffi.NULL, out, pt, len(pt), ad, len(ad), nonce, key)
    assert rc == 0
    return bytes(ffi.buffer(out))


def open_(name: bytes | None, ct: bytes, nonce: bytes, key: bytes, ad: bytes = b"",
          fill: int = 0xA5) -> tuple[int, bytes]:
    out = ffi.new("uint8_t[]", max(len(ct) - TAG, 1))
    ffi.memmove(out, bytes([fill]) * len(out), len(out))
    rc = lib.wg_aead_open_with(name or ffi.NULL, out, ct, len(ct), ad, len(ad), nonce, key)
    return rc, bytes(ffi.buffer(out))[: max(len(ct) - TAG, 0)]


def wg_nonce(counter: int) -> bytes:
    return bytes(4) + counter.to_bytes(8, "little")


def test_names_are_stable_and_one_is_selected() -> None:
    assert NAMES[-2:] == ["portable", "portable32"]
    assert {"sodium", "portable"} <= set(NAMES)
    if sys.byteorder == "little" and os.uname().machine == "x86_64":
        assert NAMES[:2] == ["avx512", "avx2"]
    if sys.byteorder == "little" and os.uname().machine in ("aarch64", "armv7l"):
        assert NAMES[0] == "neon"
    assert ffi.string(lib.wg_aead_name()).decode() in NAMES
    assert lib.wg_aead_status(b"portable") == 0
    assert lib.wg_aead_status(b"sodium") == 0
    assert lib.wg_aead_status(b"no-such") == -errno.ENOENT
    assert lib.wg_aead_select(b"no-such") == -errno.ENOENT


def test_c_vectors_match_the_json() -> None:
    """csrc/crypto/rfc8439.h is the same data as tests/data/rfc8439-vectors.json."""
    header = (ROOT / "csrc" / "crypto" / "rfc8439.h").read_text()
    joined = re.sub(r'"\s*\n\s*"', "", header)
    for group in ("chacha20", "poly1305", "poly1305_key_gen", "aead"):
        for vector in VECTORS[group]:
            assert f'.section = "{vector["section"]}"' in joined
            for field, value in vector.items():
                if field not in ("section", "counter") and value:
                    assert f'.{field} = "{value}"' in joined, (vector["section"], field)


def test_rfc8439_aead(backend: bytes) -> None:
    for v in VECTORS["aead"]:
        key, nonce, ad = (bytes.fromhex(v[k]) for k in ("key", "nonce", "aad"))
        pt, ct = bytes.fromhex(v["plaintext"]), bytes.fromhex(v["ciphertext"] + v["tag"])
        assert seal(backend, pt, nonce, key, ad) == ct, v["section"]
        assert open_(backend, ct, nonce, key, ad) == (0, pt), v["section"]


def test_rfc8439_chacha20_through_the_aead(backend: bytes) -> None:
    # An AEAD's ciphertext is ChaCha20 from block counter 1.
    vectors = [v for v in VECTORS["chacha20"] if v["counter"] == 1]
    assert len(vectors) >= 3
    for v in vectors:
        key, nonce = bytes.fromhex(v["key"]), bytes.fromhex(v["nonce"])
        got = seal(backend, bytes.fromhex(v["plaintext"]), nonce, key)
        assert got[:-TAG].hex() == v["ciphertext"], v["section"]


def _case(seed: int, length: int, ad_len: int) -> tuple[bytes, int, bytes, bytes]:
    rnd = random.Random(seed)
    return rnd.randbytes(32), rnd.getrandbits(64), rnd.randbytes(length), rnd.randbytes(ad_len)


FIXTURE_OK = [HealthCheck.function_scoped_fixture]  # the backend fixture is constant per test
LENGTHS = st.one_of(st.integers(0, 1600), st.integers(0, 65535), st.sampled_from([65535, 65534]))


@settings(max_examples=40, deadline=None, suppress_health_check=FIXTURE_OK)
@given(seed=st.integers(0, 2**64), length=LENGTHS, ad_len=st.sampled_from([0, 0, 1, 13, 16, 40]))
def test_against_libsodium(backend: bytes, seed: int, length: int, ad_len: int) -> None:
    key, counter, pt, ad = _case(seed, length, ad_len)
    nonce = wg_nonce(counter)
    expected = sodium.crypto_aead_chacha20poly1305_ietf_encrypt(pt, ad, nonce, key)
    assert seal(backend, pt, nonce, key, ad) == expected
    assert open_(backend, expected, nonce, key, ad) == (0, pt)
    assert sodium.crypto_aead_chacha20poly1305_ietf_decrypt(expected, ad, nonce, key) == pt


@settings(max_examples=30, deadline=None, suppress_health_check=FIXTURE_OK)
@given(seed=st.integers(0, 2**64), length=st.integers(0, 3000), data=st.data())
def test_tampering_is_rejected_and_output_wiped(backend: bytes, seed: int, length: int,
                                                data: st.DataObject) -> None:
    key, counter, pt, _ = _case(seed, length, 0)
    nonce = wg_nonce(counter)
    ct = bytearray(seal(backend, pt, nonce, key))
    at = data.draw(st.integers(0, len(ct) - 1))
    ct[at] ^= 1 << data.draw(st.integers(0, 7))
    assert open_(backend, bytes(ct), nonce, key) == (-errno.EBADMSG, bytes(length))
    ct[at] = seal(backend, pt, nonce, key)[at]
    assert open_(backend, bytes(ct), wg_nonce(counter ^ 1), key) == (-errno.EBADMSG, bytes(length))
    assert open_(backend, bytes(ct), nonce, key, b"x") == (-errno.EBADMSG, bytes(length))
    assert open_(backend, bytes(ct), nonce, key) == (0, pt)


def test_too_short_to_hold_a_tag(backend: bytes) -> None:
    key = bytes(32)
    for n in range(TAG):
        assert open_(backend, bytes(n), wg_nonce(0), key)[0] == -errno.EBADMSG


def test_in_place(backend: bytes) -> None:
    key, counter, pt, _ = _case(7, 1420, 0)
    nonce = wg_nonce(counter)
    buf = ffi.new("uint8_t[]", len(pt) + TAG)
    ffi.memmove(buf, pt, len(pt))
    assert lib.wg_aead_seal_with(backend, buf, buf, len(pt), ffi.NULL, 0, nonce, key) == 0
    assert bytes(buf) == sodium.crypto_aead_chacha20poly1305_ietf_encrypt(pt, None, nonce, key)
    assert lib.wg_aead_open_with(backend, buf, buf, len(buf), ffi.NULL, 0, nonce, key) == 0
    assert bytes(buf)[: len(pt)] == pt


def test_bench_hook_runs(backend: bytes) -> None:
    elapsed = ffi.new("uint64_t *")
    for is_open in (0, 1):
        assert lib.wg_aead_bench(backend, is_open, 1420, 10, elapsed) == 0
    assert lib.wg_aead_bench(b"no-such", 0, 64, 1, elapsed) == -errno.ENOENT


def _init_in_child(value: str) -> str:
    code = ("from pywg._wgdp import ffi, lib; rc = lib.wg_aead_init(); "
            "print(rc, ffi.string(lib.wg_aead_name()).decode() if rc == 0 else '')")
    env = dict(os.environ, PYWG_AEAD=value)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=60, check=True)
    return out.stdout.strip()


def test_environment_variable_names_the_backend() -> None:
    assert _init_in_child("portable") == "0 portable"
    # On 32-bit machines "portable" is the 26-bit code already and "portable32" stands down.
    wide = sys.maxsize > 2**32
    assert _init_in_child("portable32") == ("0 portable32" if wide else f"{-errno.ENOTSUP}")
    assert _init_in_child("bogus") == f"{-errno.ENOENT}"
    # Nothing registered libsodium in the child.
    assert _init_in_child("sodium") == f"{-errno.ENOTSUP}"
