"""Micro-benchmarks of pywg's C data plane, through benchmark hooks in _wgdp_test.

The loops run in C (a Python loop would time cffi's ~0.3 us call, not the code), so they need
hooks, which the shipped pywg._wgdp leaves out: `make build` builds them, over the same C,
into the test-only module _wgdp_test (csrc/build_ffi_test.py, in build/wgdp-test or
PYWG_TEST_FFI_DIR). A hook is used only when that module exports it with exactly the
signature in HOOKS; otherwise its figures are reported "not available", with the reason.

AEAD (csrc/wg_dp.h, csrc/wg_dp_test.h): `wg_aead_register_sodium` (libsodium's functions,
taken from pynacl, so the "sodium" backend is measured too), `wg_aead_init`,
`wg_aead_backends` (every compiled-in name), `wg_aead_status` (usable on this CPU?),
`wg_aead_name` (the one the data plane selected) and `wg_aead_bench`, which seals or opens
one packet `iterations` times in a C loop and reports the elapsed nanoseconds.

Allowed-IPs: `wg_allowedips_bench(family, prefixes, lookups, seed, *elapsed_ns)`, which
builds a table of `prefixes` random prefixes of family 4 or 6 and times `lookups` lookups of
random addresses; `wg_allowedips_bench_build(family, prefixes, seed, *elapsed_ns,
*heap_bytes)` times building the same table and says how much heap it holds (0: unknown).
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

TEST_MODULE = "_wgdp_test"
TEST_MODULE_DIR = os.environ.get("PYWG_TEST_FFI_DIR") or str(
    Path(__file__).resolve().parents[1] / "build" / "wgdp-test")

AEAD_SIZES = (64, 1420)
MAX_BACKENDS = 16
CALIBRATION_ITERATIONS = 1000
SEED = 1
HOOKS = {
    "wg_aead_register_sodium": "int(*)(void *, void *)",
    "wg_aead_init": "int(*)()",
    "wg_aead_backends": "int(*)(char * *, size_t)",
    "wg_aead_status": "int(*)(char *)",
    "wg_aead_name": "char *(*)()",
    "wg_aead_bench": "int(*)(char *, int, size_t, uint64_t, uint64_t *)",
    "wg_allowedips_bench": "int(*)(int, size_t, uint64_t, uint64_t, uint64_t *)",
    "wg_allowedips_bench_build": "int(*)(int, size_t, uint64_t, uint64_t *, uint64_t *)",
}
AEAD_HOOKS = ("wg_aead_init", "wg_aead_backends", "wg_aead_status", "wg_aead_bench")
SODIUM_FUNCTIONS = ("crypto_aead_chacha20poly1305_ietf_encrypt",
                    "crypto_aead_chacha20poly1305_ietf_decrypt")

Figures = dict[str, float]


@dataclass
class Hooks:
    """The hooks _wgdp_test offers; `missing` says why each absent one is absent."""

    ffi: Any = None
    lib: Any = None
    present: set[str] = field(default_factory=set)
    missing: dict[str, str] = field(default_factory=dict)


def _normalise(cname: str) -> str:
    # cffi drops `const`, spells bool as _Bool and (void) as ().
    return (cname.replace("const ", "").replace("(void)", "()").replace("bool", "_Bool")
            .replace("__Bool", "_Bool"))


def find_hooks(module: ModuleType | None = None) -> Hooks:
    hooks = Hooks()
    if module is None:
        try:
            if TEST_MODULE_DIR not in sys.path:
                sys.path.insert(0, TEST_MODULE_DIR)
            module = importlib.import_module(TEST_MODULE)
        except ImportError as exc:
            hooks.missing = {name: f"{TEST_MODULE} not importable ({exc}): make build"
                             for name in HOOKS}
            return hooks
    hooks.ffi, hooks.lib = module.ffi, module.lib
    for name, want in HOOKS.items():
        try:
            got = _normalise(hooks.ffi.typeof(hooks.ffi.addressof(hooks.lib, name)).cname)
        except (AttributeError, TypeError, KeyError):
            hooks.missing[name] = f"{TEST_MODULE} has no {name}"
            continue
        if got != _normalise(want):
            hooks.missing[name] = f"{name} has signature {got}, expected {want}"
        else:
            hooks.present.add(name)
    return hooks


def _register_sodium(hooks: Hooks) -> str:
    """Hands pynacl's libsodium AEAD to the C code, as the daemon does; "" or why not."""
    if "wg_aead_register_sodium" not in hooks.present:
        return hooks.missing["wg_aead_register_sodium"]
    try:
        import nacl._sodium as nacl_sodium
        import nacl.bindings
    except ImportError as exc:
        return f"pynacl's libsodium is not importable ({exc})"
    nacl.bindings.sodium_init()  # before it, libsodium runs its generic code
    addresses = [hooks.ffi.cast("void *", int(nacl_sodium.ffi.cast(
        "uintptr_t", nacl_sodium.ffi.addressof(nacl_sodium.lib, name))))
        for name in SODIUM_FUNCTIONS]
    rc = int(hooks.lib.wg_aead_register_sodium(*addresses))
    return "" if rc == 0 else f"wg_aead_register_sodium: error {rc}"


def aead_backends(hooks: Hooks) -> tuple[list[str], list[str]]:
    """The backends this CPU can run (initialising the AEAD layer), and notes on the rest."""
    missing = [hooks.missing[h] for h in AEAD_HOOKS if h not in hooks.present]
    if missing:
        return [], missing
    notes = []
    why = _register_sodium(hooks)
    if why:
        notes.append(f"aead sodium: {why}")
    rc = int(hooks.lib.wg_aead_init())
    if rc != 0:
        return [], notes + [f"wg_aead_init: error {rc}"]
    names = hooks.ffi.new("char *[]", MAX_BACKENDS)
    count = int(hooks.lib.wg_aead_backends(names, MAX_BACKENDS))
    usable: list[str] = []
    for i in range(max(0, min(count, MAX_BACKENDS))):
        name = hooks.ffi.string(names[i]).decode("ascii", "replace")
        status = int(hooks.lib.wg_aead_status(names[i]))
        if status == 0:
            usable.append(name)
        else:
            notes.append(f"aead {name}: not measured (status {status})")
    if "wg_aead_name" in hooks.present and hooks.lib.wg_aead_name() != hooks.ffi.NULL:
        selected = hooks.ffi.string(hooks.lib.wg_aead_name()).decode("ascii", "replace")
        notes.append(f"aead: the data plane selects {selected}")
    return usable, notes


Timed = Callable[[int, Any], int]  # (iterations, uint64_t *elapsed_ns) -> 0 or -errno


def _timed(hooks: Hooks, call: Timed, iterations: int) -> tuple[int, int]:
    elapsed = hooks.ffi.new("uint64_t *")
    rc = int(call(iterations, elapsed))
    return rc, int(elapsed[0])


def measure(hooks: Hooks, call: Timed, target_s: float) -> tuple[int, float]:
    """Calibrates the iteration count so the timed call lasts about target_s; returns
    (0 or -errno, nanoseconds per iteration)."""
    rc, ns = _timed(hooks, call, CALIBRATION_ITERATIONS)
    if rc != 0:
        return rc, 0.0
    iterations = max(CALIBRATION_ITERATIONS,
                     int(target_s * 1e9 * CALIBRATION_ITERATIONS / max(ns, 1)))
    rc, ns = _timed(hooks, call, iterations)
    return rc, ns / iterations


def aead(hooks: Hooks, target_s: float) -> tuple[Figures, list[str]]:
    """ns per packet and Gbit/s for seal and open at each size, for every usable backend."""
    out: Figures = {}
    backends, notes = aead_backends(hooks)
    if not backends:
        return out, notes
    bench = hooks.lib.wg_aead_bench
    for backend in backends:
        name = hooks.ffi.new("char[]", backend.encode("ascii"))
        for size in AEAD_SIZES:
            for is_open, op in ((0, "seal"), (1, "open")):
                def call(n: int, elapsed: Any, b: Any = name, o: int = is_open,
                         s: int = size) -> int:
                    return int(bench(b, o, s, n, elapsed))

                rc, per = measure(hooks, call, target_s)
                if rc != 0:
                    notes.append(f"aead {backend} {op} {size}: error {rc}")
                    continue
                out[f"aead_{backend}_{op}{size}_ns"] = per
                out[f"aead_{backend}_{op}{size}_gbps"] = size * 8 / per
    return out, notes


def allowedips(hooks: Hooks, sizes: tuple[int, ...], target_s: float) -> tuple[Figures, list[str]]:
    """Millions of destination lookups per second with each table size, IPv4 and IPv6; and
    where the build hook is there, ns per insert and heap bytes per prefix."""
    out: Figures = {}
    if "wg_allowedips_bench" not in hooks.present:
        return out, [hooks.missing["wg_allowedips_bench"]]
    notes: list[str] = []
    bench = hooks.lib.wg_allowedips_bench
    for family in (4, 6):
        for size in sizes:
            def call(n: int, elapsed: Any, f: int = family, s: int = size) -> int:
                return int(bench(f, s, n, SEED, elapsed))

            rc, per = measure(hooks, call, target_s)
            if rc != 0:
                notes.append(f"allowedips v{family} {size}: error {rc}")
                continue
            out[f"allowedips_v{family}_{size}_mlps"] = 1e3 / per
            out.update(_allowedips_build(hooks, family, size, notes))
    if "wg_allowedips_bench_build" not in hooks.present:
        notes.append(hooks.missing["wg_allowedips_bench_build"])
    return out, notes


def _allowedips_build(hooks: Hooks, family: int, size: int, notes: list[str]) -> Figures:
    if "wg_allowedips_bench_build" not in hooks.present or size == 0:
        return {}
    elapsed, heap = hooks.ffi.new("uint64_t *"), hooks.ffi.new("uint64_t *")
    rc = int(hooks.lib.wg_allowedips_bench_build(family, size, SEED, elapsed, heap))
    if rc != 0:
        notes.append(f"allowedips v{family} {size} build: error {rc}")
        return {}
    out = {f"allowedips_v{family}_{size}_insert_ns": int(elapsed[0]) / size}
    if int(heap[0]) > 0:
        out[f"allowedips_v{family}_{size}_bytes"] = int(heap[0]) / size
    return out
