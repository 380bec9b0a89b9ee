"""Shared set-up for the tests of the C data plane through cffi."""

import os

import pytest


def pytest_sessionstart(session: pytest.Session) -> None:
    # `make asan` runs these tests against a sanitized build in build/asan;
    # make sure that is what got imported, or the run would prove nothing.
    if os.environ.get("PYWG_EXPECT_SANITIZED") == "1":
        import _wgdp_test as hooks  # the test-only module: tests/conftest.py
        import pywg._crypto as handshake_crypto
        import pywg._wgdp as mod

        for module, where in ((mod, "build/asan/"), (handshake_crypto, "build/asan/"),
                              (hooks, "build/asan-test/")):
            if where not in (module.__file__ or ""):
                raise pytest.UsageError(f"expected the sanitized build, imported {module.__file__}")
