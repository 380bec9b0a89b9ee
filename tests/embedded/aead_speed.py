"""Seal and open throughput of every AEAD backend this CPU runs, as JSON on stdout.

Run inside an emulated system by `make test-embedded` for bench/RESULTS.md: under qemu the
figures describe the emulator's translation of each backend's code (NEON instructions
become helper calls), not a real device's speed; they are recorded as such.
"""

from __future__ import annotations

import importlib
import json
import os
import platform
import sys

from pywg._driver import datapath

# The test-only module with the benchmark hook (make test-embedded cross-builds it).
sys.path.insert(0, os.environ.get("PYWG_TEST_FFI_DIR", "build/wgdp-test"))
_test_module = importlib.import_module("_wgdp_test")
ffi, lib = _test_module.ffi, _test_module.lib

SIZE = 1420  # a full-MTU WireGuard payload
TARGET_S = 0.2
REPEATS = 3


def _once(name: bytes, is_open: int) -> float:
    elapsed = ffi.new("uint64_t *")
    iterations = 16
    while True:
        rc = lib.wg_aead_bench(name, is_open, SIZE, iterations, elapsed)
        if rc != 0:
            raise OSError(-rc, f"wg_aead_bench {name!r}")
        if elapsed[0] >= TARGET_S * 1e9 or iterations >= 1 << 24:
            return float(SIZE * 8 * iterations / elapsed[0])
        iterations *= 2


def _gbps(name: bytes, is_open: int) -> float:
    # The best of a few: on a shared machine the slower runs measure the neighbours.
    return max(_once(name, is_open) for _ in range(REPEATS))


def _register_sodium() -> None:
    # The test module is a second copy of the C: libsodium is offered to it as the driver
    # offers it to pywg._wgdp (datapath.init_aead).
    import nacl._sodium as nacl_sodium

    pointers = [ffi.cast("void *", int(nacl_sodium.ffi.cast("uintptr_t", nacl_sodium.ffi.addressof(
        nacl_sodium.lib, f"crypto_aead_chacha20poly1305_ietf_{op}crypt")))) for op in ("en", "de")]
    if lib.wg_aead_register_sodium(*pointers) != 0:
        raise OSError("wg_aead_register_sodium")


def main() -> None:
    chosen = datapath.init_aead()
    _register_sodium()
    out: dict[str, object] = {"machine": platform.machine(), "selected": chosen, "bytes": SIZE}
    for name, rc in datapath.aead_backends():
        if rc == 0 and lib.wg_aead_status(name.encode()) == 0:
            out[name] = {"seal_gbps": round(_gbps(name.encode(), 0), 4),
                         "open_gbps": round(_gbps(name.encode(), 1), 4)}
    json.dump(out, sys.stdout)
    print()


if __name__ == "__main__":
    main()
