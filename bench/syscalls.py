"""Packets per syscall on each path of a tunnel, for any implementation, counted by perf.

While one TCP stream runs A->B, `perf stat` counts the I/O system calls of both daemons (all
their threads) through the kernel's syscall tracepoints, and /proc/PID/net/dev gives the bytes
the kernel moved on each interface in the same window. The four data-direction paths:

    A: TUN read (read, readv)  ->  UDP send (sendmsg, sendmmsg, sendto)
    B: UDP recv (recvmsg, recvmmsg, recvfrom)  ->  TUN write (write, writev)

Packets are counted as full-size equivalents, bytes / bytes of one full packet on that path
(1420 on the TUN; 1494 on the veth: 1420 + 32 WireGuard + 8 UDP + 20 IP + 14 Ethernet), so
that offloads (one TSO or GSO superpacket = one kernel "packet") compare fairly with
one-packet-per-call paths. The window opens after the stream has left slow start, and ACKs
travel the other direction, through calls not counted here.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench import sysstat
from bench.target import Target
from bench.traffic import Figures, background_stream
from tests.harness import procs
from tests.harness.topology import TUNNEL_MTU

WG_OVERHEAD = 32
VETH_FRAME = TUNNEL_MTU + WG_OVERHEAD + 8 + 20 + 14

PATHS: dict[str, tuple[str, ...]] = {
    "tun_read": ("read", "readv"),
    "udp_send": ("sendmsg", "sendmmsg", "sendto"),
    "udp_recv": ("recvmsg", "recvmmsg", "recvfrom"),
    "tun_write": ("write", "writev"),
}
# Counted and kept in the JSON too, so an io_uring data plane does not look like zero calls.
EXTRA = ("io_uring_enter",)


def perf_path() -> str | None:
    return shutil.which("perf")


@dataclass(frozen=True)
class Snapshot:
    """A namespace's interface counters and its UDP receive errors (queue overflows)."""

    devices: dict[str, sysstat.IfCounters]
    udp_in_errors: int


@dataclass(frozen=True)
class Window:
    counts: dict[int, dict[str, int]]  # pid -> syscall -> count
    before: dict[int, Snapshot]
    after: dict[int, Snapshot]


def _events() -> list[str]:
    names = [n for calls in PATHS.values() for n in calls] + list(EXTRA)
    return [f"syscalls:sys_enter_{n}" for n in names]


def parse_perf(text: str, tids: dict[int, int]) -> dict[int, dict[str, int]]:
    """`perf stat --per-thread -x,` output -> pid -> syscall -> count (thread ids mapped)."""
    counts: dict[int, dict[str, int]] = {}
    for line in text.splitlines():
        cols = line.split(",")
        if len(cols) < 4 or not cols[3].startswith("syscalls:sys_enter_"):
            continue
        tid_text = cols[0].rpartition("-")[2]
        pid = tids.get(int(tid_text)) if sysstat.is_count(tid_text) else None
        if pid is None or not sysstat.is_count(cols[1]):
            continue  # a thread that ended before the mapping, or "<not counted>" (0 runs)
        call = cols[3].removeprefix("syscalls:sys_enter_")
        counts.setdefault(pid, {}).setdefault(call, 0)
        counts[pid][call] += int(cols[1])
    return counts


def _thread_map(pids: list[int]) -> dict[int, int]:
    out: dict[int, int] = {}
    for pid in pids:
        try:
            out.update({int(t.name): pid for t in Path(f"/proc/{pid}/task").iterdir()})
        except OSError:
            continue
    return out


def _snapshot_script(pids: list[int], path: Path) -> str:
    files = " ".join(f"/proc/{p}/net/{f}" for p in pids for f in ("dev", "snmp"))
    return f"for f in {files}; do echo @@$f; cat $f; done > {path}"


def _parse_snapshots(text: str, pids: list[int]) -> dict[int, Snapshot]:
    devices: dict[int, dict[str, sysstat.IfCounters]] = {}
    udp_errors: dict[int, int] = {}
    for chunk in text.split("@@")[1:]:
        header, _, body = chunk.partition("\n")
        parts = header.split("/")  # /proc/PID/net/FILE
        pid = int(parts[2])
        if parts[-1] == "dev":
            devices[pid] = sysstat.parse_net_dev(body)
        else:
            udp_errors[pid] = sysstat.udp_in_errors(body)
    return {pid: Snapshot(devices.get(pid, {}), udp_errors.get(pid, 0)) for pid in pids}


def count_window(pids: list[int], seconds: float, perf: str) -> Window:
    """Counts the I/O syscalls of pids for `seconds`, with interface counters around it."""
    with tempfile.TemporaryDirectory(prefix="pwbench-perf-") as tmp:
        out, before, after = (Path(tmp) / n for n in ("perf.csv", "before", "after"))
        workload = (f"{_snapshot_script(pids, before)}; sleep {seconds:.2f}; "
                    f"{_snapshot_script(pids, after)}")
        tids_start = _thread_map(pids)
        procs.run([perf, "stat", "--per-thread", "-x,", "-o", str(out), "-e",
                   ",".join(_events()), "-p", ",".join(map(str, pids)), "--",
                   "sh", "-c", workload], seconds + 30)
        tids = {**tids_start, **_thread_map(pids)}
        return Window(parse_perf(out.read_text(), tids),
                      _parse_snapshots(before.read_text(), pids),
                      _parse_snapshots(after.read_text(), pids))


def _path_figures(name: str, calls: int, nbytes: int, full: int, out: Figures) -> None:
    if calls <= 0:
        return
    out[f"sys_{name}_calls"] = float(calls)
    out[f"sys_{name}_pkts_per_call"] = nbytes / full / calls


def figures_from(window: Window, pid_a: int, pid_b: int, if_a: str, if_b: str,
                 veth_a: str, veth_b: str) -> Figures:
    def calls(pid: int, path: str) -> int:
        got = window.counts.get(pid, {})
        return sum(got.get(n, 0) for n in PATHS[path])

    def delta(pid: int, dev: str, attr: str) -> int:
        after, before = window.after.get(pid), window.before.get(pid)
        if after is None or before is None:
            return 0
        a, b = after.devices.get(dev), before.devices.get(dev)
        return getattr(a, attr) - getattr(b, attr) if a and b else 0

    def dropped(pid: int) -> int:
        after, before = window.after.get(pid), window.before.get(pid)
        return after.udp_in_errors - before.udp_in_errors if after and before else 0

    out: Figures = {}
    # The kernel "transmits" into a TUN what the daemon reads, and "receives" what it writes.
    _path_figures("tun_read", calls(pid_a, "tun_read"), delta(pid_a, if_a, "tx_bytes"),
                  TUNNEL_MTU, out)
    _path_figures("udp_send", calls(pid_a, "udp_send"), delta(pid_a, veth_a, "tx_bytes"),
                  VETH_FRAME, out)
    # Datagrams the socket's queue dropped reached the veth but never the daemon; in the
    # data direction they are full-size.
    received = delta(pid_b, veth_b, "rx_bytes") - dropped(pid_b) * VETH_FRAME
    _path_figures("udp_recv", calls(pid_b, "udp_recv"), received, VETH_FRAME, out)
    _path_figures("tun_write", calls(pid_b, "tun_write"), delta(pid_b, if_b, "rx_bytes"),
                  TUNNEL_MTU, out)
    for pid, side in ((pid_a, "a"), (pid_b, "b")):
        for extra in EXTRA:
            if window.counts.get(pid, {}).get(extra):
                out[f"sys_{side}_{extra}_calls"] = float(window.counts[pid][extra])
    return out


def measure(topo: Target, seconds: float) -> Figures:
    """Packets per syscall on the four paths while one TCP stream runs A->B."""
    perf = perf_path()
    if perf is None or len(topo.daemons) != 2:
        return {}
    a, b = topo.daemons
    # perf needs a moment to attach before its window opens, and the stream must outlast it.
    with background_stream(topo, seconds + 1):
        window = count_window([a.pid, b.pid], seconds, perf)
    topo.check_alive()
    return figures_from(window, a.pid, b.pid, a.ifname, b.ifname,
                        topo.pair.a.veth, topo.pair.b.veth)
