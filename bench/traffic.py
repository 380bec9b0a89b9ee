"""Data-plane figures through one topology: iperf3 TCP and UDP, ping RTT, CPU per GB moved.

Traffic always starts in ns A (the iperf3 client) towards ns B (the server): "fwd" is A->B,
"rev" (iperf3 -R) is B->A. Every iperf3 run is bracketed by CPU snapshots so that each
throughput figure comes with what it cost: whole-system busy seconds and the daemons' own
seconds, per GB received.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from bench import sysstat
from bench.target import IPERF_PORT, Target
from tests.harness import procs, wait

UDP_PAYLOAD = 1372  # 1372 + 8 + 20 = 1400 bytes of IP packet: fits the 1420 tunnel MTU
PPS_PAYLOAD = 64
# iperf3's own start-up and end-of-test exchange, on top of the test duration.
IPERF_SLACK_S = 20.0
CONNECT_TIMEOUT_MS = 3000
SETTLE_S = 0.5

Figures = dict[str, float]


@dataclass
class CpuWindow:
    """CPU seconds spent between `begin()` and `end()`: the whole system, and given PIDs."""

    pids: list[int]
    system_s: float = 0.0
    daemons_s: float = 0.0

    def begin(self) -> None:
        self.system_s = -sysstat.system_busy_s()
        self.daemons_s = -sum(sysstat.process_cpu_s(p) for p in self.pids)

    def end(self) -> None:
        self.system_s += sysstat.system_busy_s()
        self.daemons_s += sum(sysstat.process_cpu_s(p) for p in self.pids)

    def per_gb(self, nbytes: int, prefix: str, out: Figures) -> None:
        if nbytes <= 0:
            return
        gb = nbytes / 1e9
        out[f"{prefix}_cpu_sys_s_per_gb"] = self.system_s / gb
        if self.pids:
            out[f"{prefix}_cpu_daemons_s_per_gb"] = self.daemons_s / gb


@dataclass(frozen=True)
class Length:
    """How long an iperf3 run lasts: `seconds`, or until `nbytes` (iperf3 -n) are sent."""

    seconds: int
    nbytes: str = ""

    def args(self) -> list[str]:
        return ["-n", self.nbytes] if self.nbytes else ["-t", str(self.seconds)]

    def timeout(self) -> float:
        return (0 if self.nbytes else self.seconds) + IPERF_SLACK_S


def iperf_cmd(topo: Target, length: Length, *extra: str) -> list[str]:
    return topo.exec_a("iperf3", "-c", topo.server_addr, "-p", str(IPERF_PORT),
                       *length.args(), "-J", "--connect-timeout",
                       str(CONNECT_TIMEOUT_MS), *extra)


def parse_iperf(text: str) -> dict[str, Any]:
    """iperf3 -J output -> its `end` section; raises HarnessError on iperf3's own errors."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise procs.HarnessError(f"iperf3 printed no JSON: {text[:200]!r}") from exc
    if not isinstance(doc, dict):
        raise procs.HarnessError("iperf3 JSON is not an object")
    if doc.get("error"):
        raise procs.HarnessError(f"iperf3: {doc['error']}")
    end = doc.get("end")
    if not isinstance(end, dict):
        raise procs.HarnessError("iperf3 JSON has no 'end' section")
    return end


def run_iperf(topo: Target, length: Length, *extra: str) -> tuple[dict[str, Any], CpuWindow]:
    """One iperf3 client run with CPU accounting; restarts the server and retries once."""
    for attempt in (1, 2):
        window = CpuWindow(topo.pids)
        window.begin()
        done = procs.run(iperf_cmd(topo, length, *extra), length.timeout(), check=False)
        window.end()
        try:
            return parse_iperf(done.stdout), window
        except procs.HarnessError:
            topo.check_alive()
            if attempt == 2:
                raise
            # A failed test can leave the server "busy": give the next try a fresh one.
            topo.start_iperf_server()
    raise AssertionError("unreachable")


def section(end: dict[str, Any], *names: str) -> dict[str, Any]:
    """The first of the named summaries present in iperf3's `end` section."""
    for name in names:
        found = end.get(name)
        if isinstance(found, dict):
            return found
    raise procs.HarnessError(f"iperf3 JSON has none of {', '.join(names)}")


def number(summary: dict[str, Any], key: str, default: float | None = None) -> float:
    value = summary.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise procs.HarnessError(f"iperf3 JSON: {key} is {value!r}, not a number")
    return float(value)


def tcp(topo: Target, length: Length, streams: int, reverse: bool) -> Figures:
    extra = ["-P", str(streams)] + (["-R"] if reverse else [])
    end, window = run_iperf(topo, length, *extra)
    return tcp_figures(end, window, f"tcp{streams}_{'rev' if reverse else 'fwd'}")


def tcp_figures(end: dict[str, Any], window: CpuWindow, prefix: str) -> Figures:
    received = section(end, "sum_received")
    out: Figures = {
        f"{prefix}_gbps": number(received, "bits_per_second") / 1e9,
        f"{prefix}_retransmits": number(section(end, "sum_sent"), "retransmits", 0),
    }
    window.per_gb(int(number(received, "bytes")), prefix, out)
    return out


def udp(topo: Target, length: Length, payload: int, prefix: str) -> Figures:
    end, window = run_iperf(topo, length, "-u", "-b", "0", "-l", str(payload))
    return udp_figures(end, window, payload, prefix)


def udp_figures(end: dict[str, Any], window: CpuWindow, payload: int, prefix: str) -> Figures:
    # iperf3 >= 3.10 reports the receiver's side separately; older ones only in `sum`.
    received = section(end, "sum_received", "sum")
    nbytes = int(number(received, "bytes"))
    seconds = number(received, "seconds")
    if seconds <= 0:
        raise procs.HarnessError("iperf3 UDP JSON: the receiver saw no time pass")
    sent = int(number(section(end, "sum_sent", "sum"), "packets", 0))
    delivered = nbytes // payload
    out: Figures = {
        f"{prefix}_gbps": nbytes * 8 / seconds / 1e9,
        f"{prefix}_kpps": delivered / seconds / 1e3,
        f"{prefix}_loss_pct": max(0.0, 100.0 * (1 - delivered / sent)) if sent else 100.0,
    }
    window.per_gb(nbytes, prefix, out)
    return out


_RTT = re.compile(r"time[=<]([0-9.]+) ms")


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def parse_ping(text: str) -> list[float]:
    return [float(m.group(1)) for m in _RTT.finditer(text)]


def ping(topo: Target, count: int, interval: float, prefix: str) -> Figures:
    deadline = math.ceil(count * interval + 3)
    done = procs.run(topo.exec_a("ping", "-n", "-c", str(count), "-i", f"{interval:g}",
                                 "-w", str(deadline), "-W", "1", topo.server_addr),
                     deadline + 10, check=False)
    rtts = parse_ping(done.stdout)
    if not rtts:
        topo.check_alive()
        raise procs.HarnessError(f"{topo.name}: no ping replies ({done.stderr.strip()[:200]})")
    return {f"{prefix}_p50_ms": percentile(rtts, 50), f"{prefix}_p99_ms": percentile(rtts, 99),
            f"{prefix}_loss_pct": 100.0 * (1 - len(rtts) / count)}


@contextlib.contextmanager
def background_stream(topo: Target, seconds: float) -> Iterator[None]:
    """One TCP stream A->B for about `seconds` (plus the settling time) around the body."""
    load_s = math.ceil(seconds + SETTLE_S + 1)
    load = procs.start(iperf_cmd(topo, Length(load_s)))
    try:
        # Let the stream leave slow start before measuring anything.
        wait.poll(lambda: load.poll() is not None, SETTLE_S)
        yield
    finally:
        # SIGINT makes the client end the test properly, so the server is ready for the next.
        if load.poll() is None:
            load.send_signal(signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            load.wait(timeout=IPERF_SLACK_S)
        procs.stop(load)


def ping_under_load(topo: Target, count: int, interval: float) -> Figures:
    """Ping while one TCP stream fills the path A->B (the pings share its queues)."""
    with background_stream(topo, count * interval + 1):
        return ping(topo, count, interval, "ping_load")
