"""cffi build script: compiles csrc/*.c into the extension module pywg._wgdp.

API mode, out of line, as the cffi documentation recommends. The cdef is
csrc/wg_dp.h itself, minus the preprocessor lines cffi cannot parse, so the
header stays the single description of the boundary. Build-only: not shipped.

PYWG_SANITIZE=1 builds with AddressSanitizer and UndefinedBehaviorSanitizer
(make asan); PYWG_CFLAGS adds flags (cross-compiles, -march for experiments).
"""

import glob
import os
import re

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def _cdef_text() -> str:
    with open(os.path.join(HERE, "wg_dp.h"), encoding="utf-8") as f:
        text = f.read()
    return re.sub(r"^#(pragma|include|if|ifdef|ifndef|endif|else).*$", "", text, flags=re.M)


def _sources() -> list[str]:
    files = sorted(glob.glob(os.path.join(HERE, "*.c")) + glob.glob(os.path.join(HERE, "*", "*.c")))
    # Self-test drivers have their own main(); they build as a separate program.
    files = [f for f in files if "/selftest/" not in f and "/fuzz/" not in f]
    return [os.path.relpath(f, ROOT) for f in files]


def _cflags() -> list[str]:
    flags = ["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Werror", "-fvisibility=hidden",
             "-Wno-unused-parameter"]
    if os.environ.get("PYWG_SANITIZE") == "1":
        flags += ["-O1", "-g", "-fno-omit-frame-pointer", "-fsanitize=address,undefined",
                  "-fno-sanitize-recover=undefined"]
    flags += os.environ.get("PYWG_CFLAGS", "").split()
    return flags


def _ldflags() -> list[str]:
    flags = ["-pthread"]
    if os.environ.get("PYWG_SANITIZE") == "1":
        flags += ["-fsanitize=address,undefined"]
    return flags


ffibuilder = FFI()
ffibuilder.cdef(_cdef_text())
ffibuilder.set_source(
    "pywg._wgdp",
    '#include "wg_dp.h"\n',
    sources=_sources(),
    include_dirs=[os.path.relpath(HERE, ROOT)],
    extra_compile_args=_cflags(),
    extra_link_args=_ldflags(),
    libraries=["pthread"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
