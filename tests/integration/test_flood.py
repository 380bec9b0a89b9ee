"""A handshake flood against a pywg gateway while its real peers go on: the flood comes
from a third namespace, as fast as one process there can send, from one source address or
from 200; the peers are pywg or Debian's wireguard-go.

        b ====== a (pywg) ====== c          b streams TCP to a throughout
                    \\                       c loses its session and handshakes again
                     f (the flood)            f: initiations with a valid mac1, at full rate

Without the front line in C, each flood message went up to Python and a real peer's
handshake drowned with them for as long as the flood lasted. Now the flood meets mac1 and
cookie replies in the receive thread. The peer that handshakes again gets a cookie reply to
its first initiation (the gateway is under load) and completes with its next one, sent
REKEY_TIMEOUT later with mac2: that one must complete within 2 s of being sent. Meanwhile
b's TCP stream moves bytes in every one-second interval and `wg show` on the gateway answers
every time it is asked.
"""

from __future__ import annotations

import base64
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
from tests.harness.topology import Topology, add_peer

FLOOD_S = 10.0  # covers the lead-in, a cookie round and the completion, with room
STREAM_S = FLOOD_S + 4
MANY_SOURCES = 200
REKEY_TIMEOUT_S = 5
JITTER_S = 0.334
WITHIN_S = 2  # the handshake that carries the cookie completes this soon


@pytest.fixture
def workdir() -> Iterator[Path]:
    require_root()
    require_tools("wg", "ping", "iperf3")
    with files.workdir("flood") as d:
        yield d


def build(t: Topology, peer_impl: str) -> None:
    a, b, c, f = (t.add_node(name) for name in "abcf")
    for node in (b, c, f):
        t.add_link(a, node)
    t.peerings += [(a, b), (a, c)]
    (peer,) = require_impls(peer_impl)
    t.start_daemon(a, PYWG)
    t.start_daemon(b, peer)
    t.start_daemon(c, peer)
    t.configure(endpoints="bc")  # the peers dial the gateway
    ping(b.ns, a.inner4)


def flood_sources(t: Topology, many: bool) -> list[str]:
    """f's own address, or MANY_SOURCES more addresses of 10.73.0.0/16 on f's link, which a
    routes back to f, so that the cookie replies go somewhere real."""
    f, a = t.nodes["f"], t.nodes["a"]
    if not many:
        return [f.outer4]
    sources = [f"10.73.{i // 250}.{i % 250 + 1}" for i in range(MANY_SOURCES)]
    batch = "".join(f"addr add {s}/32 dev {f.veth}\n" for s in sources)
    netns.run(f.ns, ["ip", "-batch", "-"], input=batch)
    netns.run(a.ns, ["ip", "route", "add", "10.73.0.0/16", "via", f.outer4])
    return sources


def answers(t: Topology) -> None:
    """`wg show` on the gateway answers (the harness bounds the wait)."""
    a = t.nodes["a"]
    a.daemon.wg("show", a.ifname, "latest-handshakes")


# Where a real peer's initiation can be lost on the gateway during a flood, each costing it a
# REKEY_TIMEOUT: the kernel's UDP receive buffer (full while the receive thread is behind), and
# pywg's own front line (a full event ring, the rate limiter, a refused send, the core).
LOSS_COUNTERS = ("pywg_drop_event_overflow", "pywg_drop_handshake_ratelimit",
                 "pywg_drop_send_error", "pywg_drop_handshake")


def udp_receive_drops(ns: str) -> int:
    """The namespace's UDP datagrams dropped for a full receive buffer (RcvbufErrors of
    /proc/net/snmp: the kernel's count, whatever pywg saw)."""
    udp = [line.split() for line in netns.run(ns, ["cat", "/proc/net/snmp"]).stdout.splitlines()
           if line.startswith("Udp:")]
    names, values = udp[0], udp[1]
    return int(values[names.index("RcvbufErrors")])


def losses(t: Topology) -> dict[str, int]:
    """The gateway's counts of the places a datagram can be lost, to tell which one moved
    when a handshake took a retry more than the flood explains."""
    a = t.nodes["a"]
    counts = {key: int(value) for key, value in a.daemon.uapi_get().items()
              if key in LOSS_COUNTERS}
    counts["udp_rcvbuf_errors"] = udp_receive_drops(a.ns)
    return counts


def handshake_again(t: Topology) -> float:
    """c forgets its session with a (a fresh peer), then pings a: the seconds from its
    first initiation to the first echo reply, which needs the handshake."""
    a, c = t.nodes["a"], t.nodes["c"]
    add_peer(c, a, endpoint=a.endpoint(via=c))
    start = time.monotonic()
    # One echo, resent every 0.2 s until it is answered (-w: for at most 3 REKEY_TIMEOUTs).
    netns.run(c.ns, ["ping", "-n", "-q", "-c", "1", "-i", "0.2", "-w",
                     str(3 * REKEY_TIMEOUT_S), a.inner4], timeout=3 * REKEY_TIMEOUT_S + 10)
    return time.monotonic() - start


@pytest.mark.parametrize("many", [False, True], ids=["one-source", "many-sources"])
@pytest.mark.parametrize("peer_impl", ["pywg", "wggo"])
def test_a_flood_neither_locks_out_nor_stalls_real_peers(workdir: Path, peer_impl: str,
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
            flooder = flood.start(f.ns, (a.links[2].addr4(0), a.port),
                                  base64.b64decode(a.daemon.keys.public), sources, FLOOD_S)
            time.sleep(1)
            answers(t)
            before = losses(t)
            took = handshake_again(t)
            after = losses(t)
            while flooder.poll() is None:
                answers(t)
                time.sleep(0.5)
            sent = flood.finish(flooder, timeout=30)
            out, err = client.communicate(timeout=STREAM_S + 30)
        finally:
            server.kill()
            server.wait()
    assert client.returncode == 0, err
    moved = [i["sum"]["bytes"] for i in json.loads(out)["intervals"]]
    lost = {key: after[key] - before[key] for key in after}
    print(f"flood {sent['sent'] / sent['seconds']:.0f}/s; the handshake took {took:.1f} s; "
          f"b's stream, MB per second: {[round(n / 1e6, 1) for n in moved]}; "
          f"the gateway's loss counters during the handshake: {lost}")
    assert sent["sent"] / sent["seconds"] > 10_000, sent  # a flood, not a trickle
    # One cookie round, then the initiation with mac2 completes within WITHIN_S.
    assert took < REKEY_TIMEOUT_S + JITTER_S + WITHIN_S, \
        f"the handshake took {took:.1f} s; meanwhile the gateway's loss counters moved: {lost}"
    assert all(n > 0 for n in moved), f"bytes per second of b's stream: {moved}"
