"""Readers for the kernel's accounting in /proc: CPU time, memory and interface counters.

CPU cost is counted twice on purpose. The whole system's busy time (/proc/stat) includes the
kernel's softirq work, iperf3 and everything the tunnel causes, so it is comparable with the
bare veth; the daemons' own time (/proc/PID/stat, all threads) is what the implementation
itself spends. Other processes on the machine also show in the first: compare in one run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

CLK_TCK = os.sysconf("SC_CLK_TCK")
# /proc/stat's cpu line: user nice system idle iowait irq softirq steal guest guest_nice.
# guest time is already inside user; idle and iowait are not busy.
_BUSY_FIELDS = (0, 1, 2, 5, 6, 7)


def system_busy_s() -> float:
    """Busy CPU seconds of the whole machine since boot, summed over all CPUs."""
    with open("/proc/stat", encoding="ascii") as f:
        for line in f:
            if line.startswith("cpu "):
                values = [int(v) for v in line.split()[1:]]
                return sum(values[i] for i in _BUSY_FIELDS if i < len(values)) / CLK_TCK
    raise OSError("no cpu line in /proc/stat")


def process_cpu_s(pid: int) -> float:
    """utime + stime of a process (all its threads), in seconds; 0.0 once it is gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            text = f.read()
    except OSError:
        return 0.0
    # The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    fields = text[text.rfind(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_kib(pid: int) -> int | None:
    """Resident set size in KiB (VmRSS), or None if the process is gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def is_count(text: str) -> bool:
    # str.isdigit() alone accepts digits int() refuses, such as superscripts.
    return text.isascii() and text.isdigit()


@dataclass(frozen=True)
class IfCounters:
    rx_bytes: int
    rx_packets: int
    tx_bytes: int
    tx_packets: int


def parse_net_dev(text: str) -> dict[str, IfCounters]:
    """Parses /proc/net/dev: interface name -> byte and packet counters."""
    out: dict[str, IfCounters] = {}
    for line in text.splitlines()[2:]:
        name, sep, rest = line.partition(":")
        values = rest.split()
        if not sep or len(values) < 10 or not all(is_count(v) for v in values[:10]):
            continue  # a header or a malformed line
        out[name.strip()] = IfCounters(int(values[0]), int(values[1]),
                                       int(values[8]), int(values[9]))
    return out


def net_dev_of(pid: int) -> dict[str, IfCounters]:
    """The interface counters of the network namespace process pid lives in."""
    with open(f"/proc/{pid}/net/dev", encoding="ascii") as f:
        return parse_net_dev(f.read())


def udp_in_errors(snmp: str) -> int:
    """Udp InErrors from /proc/net/snmp: datagrams dropped before any socket read them."""
    lines = [line.split() for line in snmp.splitlines() if line.startswith("Udp:")]
    if len(lines) < 2 or "InErrors" not in lines[0]:
        return 0
    at = lines[0].index("InErrors")
    value = lines[1][at] if at < len(lines[1]) else ""
    return int(value) if is_count(value) else 0
