"""A soak across rekeys: two pywg daemons whose every protocol time is cut by 24
(PYWG_TIMING_SCALE), so that a rekey happens every 5 s, carry continuous TCP traffic both
ways (iperf3 --bidir, 20 Mbit/s each way) and a ping every 10 ms in each direction for
SOAK_MINUTES (`make soak`: MINUTES, default 10; `make test`: 24 s).

What must hold:
- not one ping lost, in either direction, across every rekey;
- no valid packet dropped as a replay (pywg_drop_replay stays 0 on both sides), nor as
  expired or unknown;
- at least one rekey per REKEY_AFTER_TIME of the run (50 or more in ten minutes), seen as
  new latest-handshake times;
- resident memory flat over the second half (within RSS_SLACK_KIB of where it stood at the
  half-way mark), and no growth in file descriptors or threads from the first sample on.

Set SOAK_RECORD=FILE to keep the samples (time, RSS and fds of each side, handshakes seen)
as JSON.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pytest

from tests.harness import files, netns, topology
from tests.harness.daemons import Daemon
from tests.harness.impls import Impl
from tests.harness.probes import ping
from tests.harness.skips import require_impls, require_root, require_tools
from tests.harness.topology import Topology

SCALE = 1 / 24
REKEY_AFTER_S = 120 * SCALE
MINUTES = float(os.environ.get("SOAK_MINUTES", "0.4"))
SAMPLE_S = 2.0
PING_INTERVAL_S = 0.01
IPERF_PORT = 5311
RATE = "20M"
RSS_SLACK_KIB = 1024
DROPS_NEVER = ("pywg_drop_replay", "pywg_drop_expired", "pywg_drop_unknown_index",
               "pywg_drop_decrypt")


@dataclass
class Sample:
    t_s: float
    rss_kib: list[int]
    fds: list[int]
    threads: list[int]
    handshake: int


@dataclass
class Report:
    minutes: float
    samples: list[Sample] = field(default_factory=list)
    pings: dict[str, tuple[int, int]] = field(default_factory=dict)  # sent, received
    rekeys: int = 0
    drops: list[dict[str, int]] = field(default_factory=list)
    iperf_gbytes: float = 0.0


@pytest.fixture
def tunnel() -> Iterator[Topology]:
    require_root()
    require_tools("wg", "ping", "iperf3")
    impls: list[Impl] = require_impls("pywg", "pywg")
    with files.workdir("soak") as work, topology.tunnel(
            (impls[0], impls[1]), "soak", work, env={"PYWG_TIMING_SCALE": f"{SCALE:.6f}"}) as t:
        yield t


def _status(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def _sample(t: Topology, start: float, daemons: list[Daemon]) -> Sample:
    a, b = t.sides()
    pids = [d.pid for d in daemons]
    return Sample(round(time.monotonic() - start, 1), [_status(p, "VmRSS") for p in pids],
                  [len(os.listdir(f"/proc/{p}/fd")) for p in pids],
                  [_status(p, "Threads") for p in pids],
                  a.daemon.dump().peers[b.daemon.keys.public].latest_handshake)


def _pinger(ns: str, dest: str, seconds: float) -> subprocess.Popen[str]:
    count = int(seconds / PING_INTERVAL_S)
    return subprocess.Popen(netns.exec_argv(ns, [
        "ping", "-n", "-q", "-i", str(PING_INTERVAL_S), "-c", str(count), "-W", "2", dest]),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _ping_result(proc: subprocess.Popen[str], seconds: float) -> tuple[int, int]:
    out, _ = proc.communicate(timeout=seconds + 60)
    found = re.search(r"(\d+) packets transmitted, (\d+) received", out)
    assert found, out
    return int(found.group(1)), int(found.group(2))


def _run(t: Topology, seconds: float) -> Report:
    a, b = t.sides()
    daemons = [a.daemon, b.daemon]
    report = Report(MINUTES)
    server = subprocess.Popen(netns.exec_argv(b.ns, ["iperf3", "-s", "-1", "-B", b.inner4,
                                                     "-p", str(IPERF_PORT)]),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        client = subprocess.Popen(netns.exec_argv(a.ns, [
            "iperf3", "-c", b.inner4, "-p", str(IPERF_PORT), "--bidir", "-b", RATE,
            "-t", str(int(seconds) + 2), "-J"]),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        pingers = {"a->b": _pinger(a.ns, b.inner4, seconds),
                   "b->a": _pinger(b.ns, a.inner4, seconds)}
        start = time.monotonic()
        seen: set[int] = set()
        while time.monotonic() - start < seconds:
            sample = _sample(t, start, daemons)
            report.samples.append(sample)
            seen.add(sample.handshake)
            time.sleep(SAMPLE_S)
        report.pings = {k: _ping_result(p, seconds) for k, p in pingers.items()}
        out, err = client.communicate(timeout=seconds + 60)
        assert client.returncode == 0, err
        end = json.loads(out)["end"]
        report.iperf_gbytes = round((end["sum_sent"]["bytes"] +
                                     end["sum_sent_bidir_reverse"]["bytes"]) / 1e9, 2)
    finally:
        server.kill()
        server.wait()
    report.rekeys = len(seen - {0}) - 1  # the first handshake is not a rekey
    report.drops = [{k: int(v) for k, v in d.uapi_get().items() if k.startswith("pywg_drop")}
                    for d in daemons]
    return report


def _summary(r: Report) -> str:
    half = [s for s in r.samples if s.t_s >= r.samples[-1].t_s / 2]
    growth = [max(s.rss_kib[i] for s in half) - half[0].rss_kib[i] for i in (0, 1)]
    nonzero = [{k: v for k, v in d.items() if v} for d in r.drops]
    return (f"soak {r.minutes} min: {r.rekeys} rekeys; pings (sent, received) {r.pings}; "
            f"{r.iperf_gbytes} GB by iperf3; RSS (KiB) first {r.samples[0].rss_kib}, "
            f"half-way {half[0].rss_kib}, last {r.samples[-1].rss_kib}, growth over the second "
            f"half {growth}; fds {r.samples[0].fds} -> {r.samples[-1].fds}; threads "
            f"{r.samples[0].threads} -> {r.samples[-1].threads}; non-zero drops {nonzero}")


def test_soak_across_rekeys(tunnel: Topology) -> None:
    a, b = tunnel.sides()
    ping(a.ns, b.inner4)
    seconds = MINUTES * 60
    report = _run(tunnel, seconds)
    print(_summary(report))
    record = os.environ.get("SOAK_RECORD")
    if record:
        Path(record).write_text(json.dumps(asdict(report)) + "\n")
    for way, (sent, received) in report.pings.items():
        assert sent > 0 and received == sent, f"{way}: {sent - received} of {sent} pings lost"
    for side, drops in zip("ab", report.drops, strict=True):
        for key in DROPS_NEVER:
            assert drops.get(key, 0) == 0, f"{side}: {key} = {drops[key]}"
    assert report.rekeys >= int(seconds / REKEY_AFTER_S) - 1, f"{report.rekeys} rekeys"
    half = [s for s in report.samples if s.t_s >= report.samples[-1].t_s / 2]
    for i, side in enumerate("ab"):
        growth = max(s.rss_kib[i] for s in half) - half[0].rss_kib[i]
        assert growth <= RSS_SLACK_KIB, f"{side}: RSS grew {growth} KiB over the second half"
        assert report.samples[-1].fds[i] <= report.samples[0].fds[i], f"{side}: fds grew"
        assert report.samples[-1].threads[i] <= report.samples[0].threads[i], \
            f"{side}: threads grew"
