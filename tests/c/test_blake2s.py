"""BLAKE2s in C (csrc/crypto/blake2s.c) against hashlib's, an independent implementation:
every digest and key length, random inputs across block boundaries, and HMAC-BLAKE2s
against Python's hmac module; plus the KDF vectors of wireguard-go's tests."""

import hashlib
import hmac
import json
from pathlib import Path

from _wgdp_test import ffi, lib  # the test-only module: tests/conftest.py
from hypothesis import given, settings
from hypothesis import strategies as st

KDF_VECTORS = json.loads(
    (Path(__file__).parents[1] / "data" / "wireguard-kdf-vectors.json").read_text())


def c_blake2s(data: bytes, outlen: int = 32, key: bytes = b"") -> bytes:
    out = ffi.new("uint8_t[]", outlen)
    lib.wg_blake2s(out, outlen, data, len(data), key or ffi.NULL, len(key))
    return bytes(out)


def c_hmac(key: bytes, data: bytes) -> bytes:
    out = ffi.new("uint8_t[32]")
    lib.wg_hmac_blake2s(out, key, len(key), data, len(data))
    return bytes(out)


def test_every_length_around_the_block_size() -> None:
    for n in range(0, 200):
        data = bytes(range(256))[:n]
        assert c_blake2s(data) == hashlib.blake2s(data).digest(), n


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600), st.integers(1, 32), st.binary(max_size=32))
def test_matches_hashlib(data: bytes, outlen: int, key: bytes) -> None:
    expected = hashlib.blake2s(data, digest_size=outlen, key=key).digest()
    assert c_blake2s(data, outlen, key) == expected


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=100), st.binary(max_size=300))
def test_hmac_matches_pythons(key: bytes, data: bytes) -> None:
    assert c_hmac(key, data) == hmac.new(key, data, hashlib.blake2s).digest()


def test_wireguard_kdf_vectors() -> None:
    """HKDF-BLAKE2s as Noise uses it (wireguard-go's kdf tests): prk = HMAC(key, input),
    t0 = HMAC(prk, 0x1), t1 = HMAC(prk, t0 || 0x2), t2 = HMAC(prk, t1 || 0x3)."""
    for case in KDF_VECTORS["cases"]:
        prk = c_hmac(bytes.fromhex(case["key"]), bytes.fromhex(case["input"]))
        t0 = c_hmac(prk, b"\x01")
        t1 = c_hmac(prk, t0 + b"\x02")
        t2 = c_hmac(prk, t1 + b"\x03")
        assert (t0.hex(), t1.hex(), t2.hex()) == (case["t0"], case["t1"], case["t2"])
