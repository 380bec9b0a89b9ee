"""Fixtures of the interoperability suite: every test runs against real implementations
(Debian's wireguard-go, and pywg once its daemon exists) in namespaces it creates."""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

from tests.integration.interop import harness, topology
from tests.integration.interop.harness import IMPLS, PAIRS, Impl
from tests.support.netns import namespace, require_root, require_tools


def pytest_report_header(config: pytest.Config) -> str:
    """Which offloads pywg daemons run with: the harness passes PYWG_DISABLE_OFFLOADS on, so
    `PYWG_DISABLE_OFFLOADS=all pytest tests/integration/interop` runs the suite without."""
    off = os.environ.get("PYWG_DISABLE_OFFLOADS", "").strip()
    return f"pywg offloads: {'disabled: ' + off if off else 'on (PYWG_DISABLE_OFFLOADS unset)'}"


def _pair_id(pair: tuple[str, str]) -> str:
    return f"{pair[0]}-{pair[1]}"


@pytest.fixture(scope="module", params=PAIRS, ids=_pair_id)
def pair(request: pytest.FixtureRequest) -> tuple[str, str]:
    require_root()
    require_tools("wg", "ping")
    harness.require_impls(*request.param)
    return request.param  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def tunnel(pair: tuple[str, str]) -> Iterator[topology.Tunnel]:
    """One tunnel per pair for a whole module: tests reconfigure peers as they need."""
    with topology.tunnel(pair, "tunnel") as t:
        yield t


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None],
                              ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """When a test on a module's shared tunnel fails, show what each side knew (`wg show`:
    endpoint, latest handshake, transfer) and its log: the fixture outlives the test, so
    the daemons' own failure output would come too late, or never."""
    report = yield
    tunnel = getattr(item, "funcargs", {}).get("tunnel")
    if call.when != "call" or not report.failed or not isinstance(tunnel, topology.Tunnel):
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
    harness.require_impls(request.param)
    return IMPLS[request.param]


@pytest.fixture
def workdir() -> Iterator[Path]:
    with harness.workdir("t") as d:
        yield d


@pytest.fixture(scope="module")
def scratch_ns() -> Iterator[str]:
    """A namespace shared by a module's single-daemon tests (names are unique anyway)."""
    require_root()
    with namespace("is") as ns:
        yield ns
