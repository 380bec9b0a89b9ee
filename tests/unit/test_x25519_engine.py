"""The handshake batches' X25519 engine (csrc/crypto/x25519-ifma.c, eight at a time with
AVX-512 IFMA where the core has it) against libsodium's X25519 through pynacl, one at a
time: every batch size around the engine's groups of eight, points of small order among
them, and the engine chosen from what /proc/cpuinfo says the CPU has."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from nacl.bindings import crypto_scalarmult

from pywg._protocol import crypto

REPO = Path(__file__).resolve().parents[2]
SIZES = (1, 2, 3, 7, 8, 9, 16, 17, 24, 33)
ORDER_ONE = bytes(32)


def _cpu_has_ifma() -> bool:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines()
                  if line.startswith("flags")), [])
    return {"avx512f", "avx512dq", "avx512ifma"} <= set(flags)


def _check_batches(seed: int) -> None:
    rng = random.Random(seed)
    for n in SIZES:
        private = rng.randbytes(32)
        publics = [rng.randbytes(32) for _ in range(n)]
        publics[n // 2] = ORDER_ONE
        got = crypto.static_statics(private, publics)
        for public, secret in zip(publics, got, strict=True):
            if public == ORDER_ONE:
                assert secret is None
            else:
                assert secret is not None and bytes(secret) == crypto_scalarmult(private, public)


def test_batches_match_libsodium():
    _check_batches(seed=25519)


def test_the_engine_is_ifma_exactly_where_the_cpu_has_it():
    assert crypto.x25519_engine() == ("ifma" if _cpu_has_ifma() else "sodium")


@pytest.mark.parametrize("wanted", ["sodium", "ifma"])
def test_either_engine_on_request_matches_libsodium(wanted):
    """PYWG_X25519=sodium keeps libsodium alone; anything else lets the engine run where it can."""
    script = ("import sys; from pywg._protocol import crypto; "
              "from tests.unit.test_x25519_engine import _check_batches; "
              "_check_batches(seed=7); print(crypto.x25519_engine())")
    env = dict(os.environ, PYWG_X25519=wanted)
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120, check=True)
    expected = "ifma" if wanted == "ifma" and _cpu_has_ifma() else "sodium"
    assert done.stdout.split()[-1] == expected
