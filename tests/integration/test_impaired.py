"""Loss, duplication, reordering and delay between two pywg peers (tests/harness/impair.py: an
impairment relay in the middle of a chain), each alone and all together:

- a TCP transfer arrives intact (its sha256 at both ends);
- every duplicated data message is dropped as a replay and counted: each side's
  pywg_drop_replay grows by the number of copies of data messages nftables sent it (a copy
  of a data message is nothing but a replay), less only the datagrams its kernel dropped on
  arrival (veth backlog, UDP receive buffer): when a busy machine drops an original, its
  copy is the first to arrive, and no replay. Both counts start after the first ping; a
  keepalive in flight as either is read may fall on one side of the line only (EDGE);
- rekeys across the impaired link complete: every protocol time is cut by 20
  (PYWG_TIMING_SCALE=0.05, a rekey every 6 s, REKEY_TIMEOUT 250 ms, longer than the slowest
  round trip), and a transfer paced to last longer than that sees a new handshake.

The impairments are 5% loss, 5% duplication, 25% reordering, 50 ms +/- 20 ms of delay each
way. Both ends use BBR, which does not read random loss as congestion: the point is the
tunnel, not TCP's patience. `make test` moves 8 MB per impairment and 16 MB for all of
them together (paced over 7 s); `make long` moves 100 MB in every case.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.harness import files, netns, topology
from tests.harness.impair import Impaired, Impairment, impaired
from tests.harness.impls import Impl
from tests.harness.probes import ping
from tests.harness.skips import require_impls, require_root, require_tools
from tests.harness.topology import Node, Topology
from tests.harness.transfer import transfer

MB = 1 << 20
SCALE = "0.05"
REKEY_AFTER_S = 120 * 0.05
PACED_S = REKEY_AFTER_S + 1.0
TIMEOUT_S = 300.0
LOSS = Impairment(loss=0.05)
DUPLICATION = Impairment(duplicate=0.05)
REORDERING = Impairment(reorder=0.25)
DELAY = Impairment(delay_ms=50, jitter_ms=20)
TOGETHER = Impairment(loss=0.05, duplicate=0.05, reorder=0.25, delay_ms=50, jitter_ms=20)
EDGE = 2  # messages in flight as the counts start or end (keepalives every 0.5 s)
ALONE = {"loss": LOSS, "duplication": DUPLICATION, "reordering": REORDERING, "delay": DELAY}


@dataclass
class Link:
    t: Topology
    ends: dict[str, tuple[str, str]]  # side -> (mid's veth towards it, its address)

    @property
    def mid(self) -> Node:
        return self.t.nodes["mid"]

    def impaired(self, imp: Impairment) -> contextlib.AbstractContextManager[Impaired]:
        return impaired(self.mid.ns, f"imp{self.t.tag}", self.ends, imp)


@pytest.fixture(scope="module")
def link() -> Iterator[Link]:
    require_root()
    require_tools("wg", "ping", "nft")
    impls: list[Impl] = require_impls("pywg", "pywg")
    with files.workdir("impair") as work, topology.chain("imp", work) as t:
        a, b, mid = t.a, t.b, t.nodes["mid"]
        for node, impl in zip((a, b), impls, strict=True):
            t.start_daemon(node, impl, env={"PYWG_TIMING_SCALE": SCALE})
            netns.run(node.ns, ["sysctl", "-q", "-w", "net.ipv4.tcp_congestion_control=bbr"],
                      check=False)
        t.configure()
        yield Link(t, {"a": (mid.links[0].devs[1], a.outer4),
                       "b": (mid.links[1].devs[0], b.outer4)})


def _replays(node: Node) -> int:
    return int(node.daemon.uapi_get().get("pywg_drop_replay", "0"))


def _dev_counts(ns: str) -> dict[str, list[int]]:
    text = netns.run(ns, ["cat", "/proc/net/dev"], quiet=True).stdout
    rows = (line.partition(":") for line in text.splitlines()[2:])
    return {name.strip(): [int(v) for v in rest.split()] for name, _, rest in rows}


def _arrival_losses(link: Link, node: Node) -> int:
    """Datagrams lost between nftables' dup in mid and pywg's socket on node: mid's veth
    towards node dropping on transmit, node's interfaces dropping on receive, and node's UDP
    receive errors. Each can eat an original whose copy then arrives first."""
    snmp = netns.run(node.ns, ["cat", "/proc/net/snmp"], quiet=True).stdout
    rows = [line.split() for line in snmp.splitlines() if line.startswith("Udp:")]
    udp = int(rows[1][rows[0].index("InErrors")])
    rx_drops = sum(c[3] for c in _dev_counts(node.ns).values())
    tx_drops = _dev_counts(link.mid.ns)[link.ends[node.name][0]][11]
    return udp + rx_drops + tx_drops


def _handshake(link: Link) -> int:
    a, b = link.t.sides()
    return a.daemon.dump().peers[b.daemon.keys.public].latest_handshake


def _check(link: Link, imp: Impairment, nbytes: int, paced_s: float = 0.0) -> None:
    a, b = link.t.sides()
    with link.impaired(imp) as state:
        ping(a.ns, b.inner4, count=3)
        copies0 = state.counts()
        replays = {n.name: _replays(n) for n in (a, b)}
        losses = {n.name: _arrival_losses(link, n) for n in (a, b)}
        handshake = _handshake(link)
        started = time.monotonic()
        with transfer(a.ns, b.ns, b.inner4, nbytes, seconds=paced_s) as t:
            sent, received = t.finish(timeout=TIMEOUT_S)
        took = time.monotonic() - started
        counts = state.counts()
    assert sent["bytes"] == nbytes and received == sent, "the transfer arrived changed"
    for node in (a, b):
        key = f"dup-data-to-{node.name}"
        copies = counts.get(key, 0) - copies0.get(key, 0)
        dropped = _replays(node) - replays[node.name]
        lost = _arrival_losses(link, node) - losses[node.name]
        assert copies - lost - EDGE <= dropped <= copies + EDGE, \
            f"{node.name}: {dropped} replays dropped, {copies} copies of data messages " \
            f"sent to it, {lost} datagrams lost on arrival"
    if imp.duplicate:
        assert counts.get("dup-data-to-b", 0) > 0, "the duplication did not happen"
    if imp.loss:
        assert counts.get("loss-to-b", 0) > 0, "the loss did not happen"
    if imp.reorder:
        assert state.relay_counts.get("reordered", 0) > 0, "the reordering did not happen"
    if took > REKEY_AFTER_S + 1:
        assert _handshake(link) > handshake, f"no handshake completed in {took:.0f} s"


@pytest.mark.parametrize("name", sorted(ALONE))
def test_each_impairment_alone(link: Link, name: str) -> None:
    _check(link, ALONE[name], 8 * MB)


def test_all_impairments_together(link: Link) -> None:
    _check(link, TOGETHER, 16 * MB, paced_s=PACED_S)


@pytest.mark.long
@pytest.mark.parametrize("name", [*sorted(ALONE), "together"])
def test_100mb_through_each_impairment(link: Link, name: str) -> None:
    _check(link, ALONE.get(name, TOGETHER), 100 * MB, paced_s=PACED_S)
