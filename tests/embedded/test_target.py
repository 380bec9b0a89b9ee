"""Checks that run inside the emulated systems of `make test-embedded` (skipped elsewhere).

The driver tells each run which CPU qemu emulates and which backend that CPU must get
(PYWG_EXPECT_AEAD: "neon" on aarch64 and on an armv7 with NEON, "sodium", the next in
line, on an armv7 without); the kernel's hardware capabilities, read here through libc's
getauxval, are the independent word on what the CPU has.
"""

import ctypes
import errno
import importlib
import os
import platform
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

EXPECT = os.environ.get("PYWG_EXPECT_AEAD", "")
pytestmark = pytest.mark.skipif(not EXPECT, reason="runs in make test-embedded's targets")

AT_HWCAP = 16
HWCAP_ARM_NEON = 1 << 12  # arch/arm/include/uapi/asm/hwcap.h
HWCAP_AARCH64_ASIMD = 1 << 1  # arch/arm64/include/uapi/asm/hwcap.h


def _hwcap() -> int:
    libc = ctypes.CDLL(None)
    libc.getauxval.restype = ctypes.c_ulong
    libc.getauxval.argtypes = [ctypes.c_ulong]
    return int(libc.getauxval(AT_HWCAP))


def test_pywg_comes_from_the_wheel() -> None:
    import pywg

    _wgdp = importlib.import_module("pywg._wgdp")

    site = Path(sysconfig.get_paths()["purelib"])
    assert Path(pywg.__file__).is_relative_to(site)
    assert Path(str(_wgdp.__file__)).name == "_wgdp.abi3.so"


def test_the_cpu_gets_the_backend_it_should() -> None:
    from pywg._driver import datapath

    assert datapath.init_aead() == EXPECT
    status = dict(datapath.aead_backends())
    machine = platform.machine()
    if machine == "aarch64":
        assert _hwcap() & HWCAP_AARCH64_ASIMD
        assert status["neon"] == 0
    elif machine.startswith("armv7"):
        has_neon = bool(_hwcap() & HWCAP_ARM_NEON)
        assert has_neon == (EXPECT == "neon")
        assert status["neon"] == (0 if has_neon else -errno.ENOTSUP)
        assert status["portable32"] == -errno.ENOTSUP  # portable is the 32-bit code here
    assert status["portable"] == 0
    assert status["sodium"] == 0


def test_selftest_command_names_it() -> None:
    # The `pywg` command pip installed from the wheel's entry point, as a user runs it.
    command = Path(sys.executable).parent / "pywg"
    proc = subprocess.run([command, "selftest"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"data plane AEAD backend: {EXPECT}" in proc.stdout.splitlines()


def test_neon_refused_where_the_cpu_lacks_it() -> None:
    if EXPECT == "neon":
        pytest.skip("this CPU has NEON")
    env = dict(os.environ, PYWG_AEAD="neon")
    proc = subprocess.run([sys.executable, "-m", "pywg", "selftest"], capture_output=True,
                          text=True, timeout=300, env=env)
    assert proc.returncode == 1
    assert "AEAD backend neon: not on this CPU" in proc.stderr
