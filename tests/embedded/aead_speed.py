"""Seal and open throughput of every AEAD backend this CPU runs, as JSON on stdout.

Run inside an emulated system by `make test-embedded` for bench/RESULTS.md: under qemu the
figures describe the emulator's translation of each backend's code (NEON instructions
become helper calls), not a real device's speed; they are recorded as such.
"""

from __future__ import annotations

import json
import platform
import sys

from pywg._wgdp import ffi, lib

from pywg._driver import datapath

SIZE = 1420  # a full-MTU WireGuard payload
TARGET_S = 0.5


def _gbps(name: bytes, is_open: int) -> float:
    elapsed = ffi.new("uint64_t *")
    iterations = 16
    while True:
        rc = lib.wg_aead_bench(name, is_open, SIZE, iterations, elapsed)
        if rc != 0:
            raise OSError(-rc, f"wg_aead_bench {name!r}")
        if elapsed[0] >= TARGET_S * 1e9 or iterations >= 1 << 24:
            return SIZE * 8 * iterations / elapsed[0]
        iterations *= 2


def main() -> None:
    chosen = datapath.init_aead()
    out: dict[str, object] = {"machine": platform.machine(), "selected": chosen, "bytes": SIZE}
    for name, rc in datapath.aead_backends():
        if rc == 0:
            out[name] = {"seal_gbps": round(_gbps(name.encode(), 0), 4),
                         "open_gbps": round(_gbps(name.encode(), 1), 4)}
    json.dump(out, sys.stdout)
    print()


if __name__ == "__main__":
    main()
