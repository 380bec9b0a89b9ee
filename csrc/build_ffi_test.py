"""Builds the test-only cffi module _wgdp_test: everything wg_dp.h declares plus the test
and benchmark hooks of wg_dp_test.h, over the same C as pywg._wgdp and wg_dp_test.c.

Never shipped (setup.py builds only pywg._wgdp). `make build` puts it in build/wgdp-test,
which tests/conftest.py and bench/micro.py add to sys.path (PYWG_TEST_FFI_DIR names
another directory: `make asan` builds a sanitized one). Usage: build_ffi_test.py [DIR].
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from build_ffi import HERE, ROOT, builder, sources

DEFAULT_DIR = os.path.join(ROOT, "build", "wgdp-test")


def main() -> None:
    out = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else DEFAULT_DIR)
    os.makedirs(out, exist_ok=True)
    # Absolute paths: cffi compiles in `out`.
    files = [os.path.join(ROOT, f) for f in sources(test=True)]
    ffi = builder("_wgdp_test", ["wg_dp.h", "wg_dp_test.h"], files, include_dir=HERE)
    ffi.compile(tmpdir=out, verbose=bool(os.environ.get("PYWG_VERBOSE")))


if __name__ == "__main__":
    main()
