"""Fixtures of the interoperability suite: every test runs against real implementations
(Debian's wireguard-go and pywg) in namespaces it creates, through tests/harness."""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

from tests.harness import files, netns, topology
from tests.harness.impls import PYWG, WGGO, Impl
from tests.harness.skips import require_impls, require_root, require_tools
from tests.harness.topology import Topology

IMPLS = {impl.name: impl for impl in (WGGO, PYWG)}
# (a, b): a runs in the first namespace, b in the second; both roles for every pairing.
PAIRS = [("wggo", "wggo"), ("wggo", "pywg"), ("pywg", "wggo"), ("pywg", "pywg")]


def pytest_report_header(config: pytest.Config) -> str:
    """Which offloads pywg daemons run with: the harness passes PYWG_DISABLE_OFFLOADS on, so
    `PYWG_DISABLE_OFFLOADS=all pytest tests/integration/interop` runs the suite without."""
    off = os.environ.get("PYWG_DISABLE_OFFLOADS", "").strip()
    return f"pywg offloads: {'disabled: ' + off if off else 'on (PYWG_DISABLE_OFFLOADS unset)'}"


def _pair_id(pair: tuple[str, str]) -> str:
    return f"{pair[0]}-{pair[1]}"


@pytest.fixture(scope="module", params=PAIRS, ids=_pair_id)
def pair(request: pytest.FixtureRequest) -> tuple[Impl, Impl]:
    require_root()
    require_tools("wg", "ping")
    a, b = require_impls(*request.param)
    return a, b


@pytest.fixture(scope="module")
def tunnel(pair: tuple[Impl, Impl]) -> Iterator[Topology]:
    """One tunnel per pair for a whole module: tests reconfigure peers as they need."""
    with files.workdir("tunnel") as work, topology.tunnel(pair, "interop", work) as t:
        yield t


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None],
                              ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """When a test on a module's shared tunnel fails, show what each side knew (`wg show`:
    endpoint, latest handshake, transfer) and its log: the fixture outlives the test, so
    the daemons' own failure output would come too late, or never."""
    report = yield
    tunnel = getattr(item, "funcargs", {}).get("tunnel")
    if call.when != "call" or not report.failed or not isinstance(tunnel, Topology):
        return report
    for side in tunnel.sides():
        d = side.daemon
        shown = d.wg("show", d.ifname, check=False)
        report.sections.append((f"{d.impl.name} {d.ifname} (ns {side.ns})",
                                f"{shown.stdout}{shown.stderr}\n---- log ----\n{d.log()}"))
    return report


@pytest.fixture(params=sorted(IMPLS))
def impl(request: pytest.FixtureRequest) -> Impl:
    require_root()
    require_tools("wg")
    return require_impls(request.param)[0]


@pytest.fixture
def workdir() -> Iterator[Path]:
    with files.workdir("t") as d:
        yield d


@pytest.fixture(scope="module")
def scratch_ns() -> Iterator[str]:
    """A namespace shared by a module's single-daemon tests (names are unique anyway)."""
    require_root()
    with netns.namespace("is") as ns:
        yield ns
