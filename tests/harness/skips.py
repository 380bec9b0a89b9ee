"""For pytest: skip a test, saying why, when this machine lacks what it needs.

The only module of the harness that imports pytest: bench and the demo never load it.
"""

from __future__ import annotations

import os
import shutil

import pytest

from tests.harness import impls
from tests.harness.impls import Impl


def require_root() -> None:
    """Skip unless this can create namespaces and TUNs."""
    if os.geteuid() != 0:
        pytest.skip("needs root (network namespaces, /dev/net/tun)")
    if not os.path.exists("/dev/net/tun"):
        pytest.skip("needs /dev/net/tun")
    if shutil.which("ip") is None:
        pytest.skip("needs iproute2 (`ip`)")


def require_tools(*names: str) -> None:
    missing = [n for n in names if shutil.which(n) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (make test installs them as root)")


def require_impls(*names: str) -> list[Impl]:
    """The implementations named, or a skip naming the first that is missing and why."""
    found = []
    for name in names:
        impl = impls.get(name)
        if isinstance(impl, str):
            pytest.skip(impl)
        found.append(impl)
    return found
