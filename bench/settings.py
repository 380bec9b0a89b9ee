"""How much the suite measures: scales (full, quick, tiny) and the figure groups.

On a 2-core machine a full run takes about 5 minutes with wireguard-go alone and about 13 with
pywg as well (five topologies), plus the gateway and scale groups (see --help); `--quick`
about two minutes; `--scale tiny` a few seconds per topology (it only exercises the
machinery: its numbers mean nothing).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from decimal import Decimal

# Figure groups, in the order a repetition runs them.
DATA_GROUPS = ("tcp", "udp", "pps", "ping", "syscalls")
GATEWAY_GROUPS = ("gateway",)
CONTROL_GROUPS = ("handshake", "config")
SCALE_GROUPS = ("scale",)
MICRO_GROUPS = ("micro",)
GROUPS = DATA_GROUPS + GATEWAY_GROUPS + CONTROL_GROUPS + SCALE_GROUPS + MICRO_GROUPS

# The gateway figure: one gateway namespace and this many clients, a peer each.
GATEWAY_CLIENTS = 8
# The largest peer count --scale-peers takes: the kernel's limit per interface (2^20).
MAX_SCALE_PEERS = 1 << 20


@dataclass(frozen=True)
class Scale:
    runs: int
    duration_s: int            # each iperf3 run
    iperf_bytes: str           # if set, each iperf3 run sends this much instead (iperf3 -n)
    ping_count: int
    ping_interval_s: float
    syscall_window_s: float    # perf counting window inside a TCP stream
    hs_peers: int              # distinct initiators the responder knows
    hs_count: int              # initiations in the closed-loop phase (its upper bound)
    hs_duration_s: float
    flood_count: int           # distinct initiations cycled by the flood
    flood_duration_s: float
    config_sizes: tuple[int, ...]
    allowedips_sizes: tuple[int, ...]
    micro_target_s: float      # duration of each timed C loop
    gateway_directions: tuple[str, ...]  # "up" (clients -> gateway), "down" (iperf3 -R)
    scale_peers: tuple[int, ...]  # peer counts of the scale group
    scale_idle_s: float        # the window over which a configured daemon's idle CPU is read
    scale_storm_s: float       # the keepalive storm's window (bench/keepalive.py)
    scale_runs: int            # repetitions of the scale group (its steps are long)

    def with_overrides(self, runs: int | None, duration_s: int | None,
                       scale_peers: tuple[int, ...] | None = None) -> Scale:
        return dataclasses.replace(
            self, runs=self.runs if runs is None else runs,
            duration_s=self.duration_s if duration_s is None else duration_s,
            scale_peers=self.scale_peers if scale_peers is None else scale_peers,
            scale_runs=min(self.scale_runs, self.runs if runs is None else runs))


SCALES: dict[str, Scale] = {
    "full": Scale(runs=3, duration_s=5, iperf_bytes="", ping_count=200, ping_interval_s=0.01,
                  syscall_window_s=2.0, hs_peers=1024, hs_count=10000, hs_duration_s=3.0,
                  flood_count=2000, flood_duration_s=2.0, config_sizes=(1000, 10000),
                  allowedips_sizes=(10000, 100000, 1000000), micro_target_s=0.2,
                  gateway_directions=("up", "down"),
                  scale_peers=(10_000, 100_000, 250_000), scale_idle_s=10.0, scale_storm_s=20.0,
                  scale_runs=1),
    "quick": Scale(runs=1, duration_s=1, iperf_bytes="", ping_count=50, ping_interval_s=0.01,
                   syscall_window_s=0.5, hs_peers=512, hs_count=3000, hs_duration_s=1.0,
                   flood_count=1000, flood_duration_s=1.0, config_sizes=(1000, 10000),
                   allowedips_sizes=(10000, 100000, 1000000), micro_target_s=0.05,
                   gateway_directions=("up",),
                   scale_peers=(10_000,), scale_idle_s=1.0, scale_storm_s=3.0,
                   scale_runs=1),
    "tiny": Scale(runs=1, duration_s=1, iperf_bytes="8M", ping_count=5, ping_interval_s=0.01,
                  syscall_window_s=0.3, hs_peers=64, hs_count=64, hs_duration_s=1.0,
                  flood_count=20, flood_duration_s=0.5, config_sizes=(100,),
                  allowedips_sizes=(1000,), micro_target_s=0.005,
                  gateway_directions=("up",),
                  scale_peers=(100,), scale_idle_s=0.2, scale_storm_s=0.5,
                  scale_runs=1),
}

_COUNT = re.compile(r"(?P<number>[0-9]+(?:\.[0-9]+)?)(?P<suffix>[kKmM]?)")
_SUFFIX = {"": 1, "k": 1_000, "m": 1_000_000}


def parse_peer_counts(text: str) -> tuple[int, ...]:
    """"10k,100k,250k,1M" (commas or spaces; k = 1,000, M = 1,000,000) -> sorted counts, each
    from 1 to MAX_SCALE_PEERS; anything else is a ValueError saying what."""
    counts: set[int] = set()
    for item in re.split(r"[\s,]+", text.strip()):
        if not item:
            continue
        m = _COUNT.fullmatch(item)
        if m is None:
            raise ValueError(f"{item!r} is not a peer count (like 10000, 10k or 1M)")
        number = Decimal(m["number"]) * _SUFFIX[m["suffix"].lower()]
        if number != int(number) or not 1 <= number <= MAX_SCALE_PEERS:
            raise ValueError(f"{item!r}: peer counts are whole numbers from 1 to "
                             f"{MAX_SCALE_PEERS:,}")
        counts.add(int(number))
    if not counts:
        raise ValueError("no peer counts given")
    return tuple(sorted(counts))
