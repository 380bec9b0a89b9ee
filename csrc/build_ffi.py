"""cffi build script: compiles csrc/*.c into the extension module pywg._wgdp (the handshake's
cryptography in csrc/crypto/ goes to pywg._crypto instead: csrc/build_crypto.py).

API mode, out of line, as the cffi documentation recommends. The cdef is
csrc/wg_dp.h itself, minus the preprocessor lines cffi cannot parse, so the
header stays the single description of the boundary. Build-only: not shipped.
csrc/build_ffi_test.py builds the test-only module from the same pieces.

PYWG_SANITIZE=1 builds with AddressSanitizer and UndefinedBehaviorSanitizer
(make asan), PYWG_SANITIZE=thread with ThreadSanitizer (make tsan); PYWG_CFLAGS
adds flags (cross-compiles, -march for experiments).
"""

import glob
import os
import re

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
# The test hooks that live nowhere else (wg_dp_test.h); only the test module has them.
TEST_ONLY = "wg_dp_test.c"
# The handshake's steps, batches and their threads: only in pywg._crypto (build_crypto.py).
HANDSHAKE_ONLY = ("crypto/noise.c", "crypto/wg_crypto.c", "crypto/workers.c", "crypto/x25519.c",
                  "crypto/x25519-ifma.c")


def _cdef_text(header: str) -> str:
    with open(os.path.join(HERE, header), encoding="utf-8") as f:
        text = f.read()
    return re.sub(r"^#(pragma|include|if|ifdef|ifndef|endif|else).*$", "", text, flags=re.M)


def sources(test: bool = False) -> list[str]:
    files = sorted(glob.glob(os.path.join(HERE, "*.c")) + glob.glob(os.path.join(HERE, "*", "*.c")))
    # Self-test drivers have their own main(); they build as a separate program.
    files = [f for f in files if "/selftest/" not in f and "/fuzz/" not in f]
    if not test:
        files = [f for f in files if os.path.basename(f) != TEST_ONLY]
    files = [f for f in files if os.path.relpath(f, HERE) not in HANDSHAKE_ONLY]
    return [os.path.relpath(f, ROOT) for f in files]


def crypto_sources() -> list[str]:
    """The sources of pywg._crypto: everything in csrc/crypto/ (BLAKE2s, the AEAD backends,
    X25519's borrowed functions, the Noise steps, the workers)."""
    return sorted(os.path.relpath(f, ROOT) for f in glob.glob(os.path.join(HERE, "crypto", "*.c")))


def _cflags() -> list[str]:
    flags = ["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Werror", "-fvisibility=hidden",
             "-Wno-unused-parameter"]
    sanitize = os.environ.get("PYWG_SANITIZE")
    if sanitize == "1":
        flags += ["-O1", "-g", "-fno-omit-frame-pointer", "-fsanitize=address,undefined",
                  "-fno-sanitize-recover=undefined"]
    elif sanitize == "thread":
        flags += ["-O1", "-g", "-fno-omit-frame-pointer", "-fsanitize=thread"]
    flags += os.environ.get("PYWG_CFLAGS", "").split()
    return flags


def _ldflags() -> list[str]:
    flags = ["-pthread"]
    sanitize = os.environ.get("PYWG_SANITIZE")
    if sanitize == "1":
        flags += ["-fsanitize=address,undefined"]
    elif sanitize == "thread":
        flags += ["-fsanitize=thread"]
    return flags


def _headers() -> list[str]:
    """Every header under csrc/: setuptools rebuilds a module only when a file it is told
    about is newer, and a change to a header alone must rebuild too."""
    found = glob.glob(os.path.join(HERE, "*.h")) + glob.glob(os.path.join(HERE, "*", "*.h"))
    return sorted(os.path.relpath(f, ROOT) for f in found)


def builder(module: str, headers: list[str], files: list[str],
            include_dir: str = os.path.relpath(HERE, ROOT)) -> FFI:
    """A module whose cdef is `headers` (the last one is #included) over `files`."""
    ffi = FFI()
    ffi.cdef("".join(_cdef_text(h) for h in headers))
    ffi.set_source(
        module,
        f'#include "{headers[-1]}"\n',
        sources=files,
        depends=_headers(),
        include_dirs=[include_dir],
        extra_compile_args=_cflags(),
        extra_link_args=_ldflags(),
        libraries=["pthread"],
    )
    return ffi


ffibuilder = builder("pywg._wgdp", ["wg_dp.h"], sources())

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
