"""Puts the test-only C module _wgdp_test (csrc/build_ffi_test.py) on sys.path.

It holds the test and benchmark hooks of csrc/wg_dp_test.h, which the shipped pywg._wgdp
leaves out; `make build` builds it in build/wgdp-test, `make asan` a sanitized one that it
names with PYWG_TEST_FFI_DIR.
"""

import os
import sys
from pathlib import Path

TEST_FFI_DIR = os.environ.get("PYWG_TEST_FFI_DIR") or str(
    Path(__file__).resolve().parents[1] / "build" / "wgdp-test")
if TEST_FFI_DIR not in sys.path:
    sys.path.insert(0, TEST_FFI_DIR)
