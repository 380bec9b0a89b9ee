"""Shared set-up for the tests of the C data plane through cffi."""

import ctypes
import gc
import os

import pytest


def pytest_sessionstart(session: pytest.Session) -> None:
    # `make asan` and `make tsan` run these tests against a sanitized build in build/asan or
    # build/tsan; make sure that is what got imported, or the run would prove nothing.
    sanitized = os.environ.get("PYWG_EXPECT_SANITIZED")
    if sanitized:
        import _wgdp_test as hooks  # the test-only module: tests/conftest.py
        import pywg._crypto as handshake_crypto
        import pywg._wgdp as mod

        build = "tsan" if sanitized == "tsan" else "asan"
        for module, where in ((mod, f"build/{build}/"), (handshake_crypto, f"build/{build}/"),
                              (hooks, f"build/{build}-test/")):
            if where not in (module.__file__ or ""):
                raise pytest.UsageError(f"expected the sanitized build, imported {module.__file__}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # `make asan` looks for leaks here, while the interpreter is still whole (with
    # PYTHONMALLOC=malloc every Python object is a heap block that LeakSanitizer scans, so
    # what is still in use is reachable): a block nothing points to any more is a leak, and
    # the report names where it was allocated. At exit (leak_check_at_exit=0) nobody looks:
    # the interpreter's finalization and the commands the tests run (ip, sysctl) leave
    # memory behind by design.
    if os.environ.get("PYWG_LEAK_CHECK") != "1":
        return
    gc.collect()
    check = ctypes.CDLL(None).__lsan_do_recoverable_leak_check
    if check() != 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        print("\nLeakSanitizer found leaks (the report is above)")
