"""A handshake flood against a pywg responder while a real peer keeps its session: the
flood comes from a third namespace, as fast as one process there can send, from one source
address or from 200; the peer (pywg or Debian's wireguard-go) has a TCP stream running to
pywg and re-handshakes with it throughout.

    a (pywg) ====== b (the real peer)        link 0: the tunnel
        \\======= f (the flood)              link 1: initiations with a valid mac1

Times are scaled on the pywg side (PYWG_TIMING_SCALE), so that a rekey falls due every few
seconds: pywg initiated the session and renews it, wireguard-go answers. Without the front
line in C, each flood message went up to Python and the real peer's handshake drowned with
them; now the flood meets mac1 and cookie replies in the receive thread, and what the real
peer sends (with its cookie) gets through. Expected, while the flood lasts:
- handshakes keep completing at the rekey cadence (never more than REKEY_AFTER_TIME + 2 s
  apart, to the second `wg show` resolves),
- the TCP stream moves bytes in every one-second interval,
- `wg show` on the flooded side answers every time it is asked.
"""

from __future__ import annotations

import base64
import itertools
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import files, flood, netns
from tests.harness.impls import PYWG
from tests.harness.probes import ping
from tests.harness.skips import require_impls, require_root, require_tools
from tests.harness.topology import Topology

SCALE = 0.03  # rekey every 3.6 s, reject after 5.4 s
REKEY_S = 120 * SCALE
FLOOD_S = 12.0
STREAM_S = FLOOD_S + 4
MANY_SOURCES = 200


@pytest.fixture
def workdir() -> Iterator[Path]:
    require_root()
    require_tools("wg", "ping", "iperf3")
    with files.workdir("flood") as d:
        yield d


def build(t: Topology, peer_impl: str) -> None:
    a, b, f = t.add_node("a"), t.add_node("b"), t.add_node("f")
    t.add_link(a, b)
    t.add_link(a, f)
    t.peerings.append((a, b))
    (peer,) = require_impls(peer_impl)
    scaled = {"PYWG_TIMING_SCALE": str(SCALE)}
    t.start_daemon(a, PYWG, env=scaled)
    t.start_daemon(b, peer, env=scaled if peer.name == PYWG.name else {})
    t.configure()
    ping(a.ns, b.inner4)  # a initiates: the session is a's to renew


def flood_sources(t: Topology, many: bool) -> list[str]:
    """f's own address, or MANY_SOURCES addresses of 10.73.0.0/16 that f may bind (nonlocal)
    and a routes back over link 1, so the cookie replies go somewhere real."""
    f, a = t.nodes["f"], t.nodes["a"]
    if not many:
        return [f.outer4]
    netns.run(f.ns, ["sysctl", "-q", "-w", "net.ipv4.ip_nonlocal_bind=1"])
    netns.run(f.ns, ["ip", "route", "add", "10.73.0.0/16", "dev", f.veth])
    netns.run(a.ns, ["ip", "route", "add", "10.73.0.0/16", "via", f.outer4])
    return [f"10.73.{i // 250}.{i % 250 + 1}" for i in range(MANY_SOURCES)]


def handshake_times(t: Topology) -> int:
    """a's latest handshake with b (Unix seconds), read with `wg show` (which must answer)."""
    a, b = t.nodes["a"], t.nodes["b"]
    out = a.daemon.wg("show", a.ifname, "latest-handshakes").stdout
    for line in out.splitlines():
        key, stamp = line.split()
        if key == b.daemon.keys.public:
            return int(stamp)
    raise AssertionError(f"b missing from `wg show latest-handshakes`: {out!r}")


@pytest.mark.parametrize("many", [False, True], ids=["one-source", "many-sources"])
@pytest.mark.parametrize("peer_impl", ["pywg", "wggo"])
def test_a_flood_neither_locks_out_nor_stalls_a_real_peer(workdir: Path, peer_impl: str,
                                                           many: bool) -> None:
    with Topology("flood", workdir) as t:
        build(t, peer_impl)
        a, b, f = t.nodes["a"], t.nodes["b"], t.nodes["f"]
        sources = flood_sources(t, many)
        server = subprocess.Popen(netns.exec_argv(a.ns, ["iperf3", "-s", "-1", "-B", a.inner4]),
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(0.5)
            client = subprocess.Popen(netns.exec_argv(b.ns, [
                "iperf3", "-c", a.inner4, "-t", str(STREAM_S), "-i", "1", "-J"]),
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            time.sleep(2)
            flooder = flood.start(f.ns, (a.links[1].addr4(0), a.port),
                                  base64.b64decode(a.daemon.keys.public), sources, FLOOD_S)
            seen = []
            deadline = time.monotonic() + FLOOD_S
            while time.monotonic() < deadline:
                seen.append(handshake_times(t))  # `wg show` answers, flood or not
                time.sleep(0.5)
            sent = flood.finish(flooder, timeout=30)
            out, err = client.communicate(timeout=STREAM_S + 30)
        finally:
            server.kill()
            server.wait()
    assert client.returncode == 0, err
    assert sent["sent"] / sent["seconds"] > 10_000, sent  # a flood, not a trickle
    completed = sorted(set(seen))
    assert len(completed) >= 2, f"handshakes during the flood: {completed}"
    gaps = [y - x for x, y in itertools.pairwise(completed)]
    assert max(gaps) <= REKEY_S + 2 + 1, f"handshakes at {completed}"
    intervals = json.loads(out)["intervals"]
    moved = [i["sum"]["bytes"] for i in intervals]
    assert all(n > 0 for n in moved), f"bytes per second of the stream: {moved}"
