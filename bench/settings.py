"""How much the suite measures: scales (full, quick, tiny) and the figure groups.

On a 2-core machine a full run takes about 5 minutes with wireguard-go alone and about 13 with
pywg as well (five topologies); `--quick` under 2 minutes; `--scale tiny` a few seconds per
topology (it only exercises the machinery: its numbers mean nothing).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

# Figure groups, in the order a repetition runs them.
DATA_GROUPS = ("tcp", "udp", "pps", "ping", "syscalls")
CONTROL_GROUPS = ("handshake", "config")
MICRO_GROUPS = ("micro",)
GROUPS = DATA_GROUPS + CONTROL_GROUPS + MICRO_GROUPS


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

    def with_overrides(self, runs: int | None, duration_s: int | None) -> Scale:
        return dataclasses.replace(
            self, runs=self.runs if runs is None else runs,
            duration_s=self.duration_s if duration_s is None else duration_s)


SCALES: dict[str, Scale] = {
    "full": Scale(runs=3, duration_s=5, iperf_bytes="", ping_count=200, ping_interval_s=0.01,
                  syscall_window_s=2.0, hs_peers=1024, hs_count=10000, hs_duration_s=3.0,
                  flood_count=2000, flood_duration_s=2.0, config_sizes=(1000, 10000),
                  allowedips_sizes=(10000, 100000), micro_target_s=0.2),
    "quick": Scale(runs=1, duration_s=1, iperf_bytes="", ping_count=50, ping_interval_s=0.01,
                   syscall_window_s=0.5, hs_peers=512, hs_count=3000, hs_duration_s=1.0,
                   flood_count=1000, flood_duration_s=1.0, config_sizes=(1000, 10000),
                   allowedips_sizes=(10000, 100000), micro_target_s=0.05),
    "tiny": Scale(runs=1, duration_s=1, iperf_bytes="8M", ping_count=5, ping_interval_s=0.01,
                  syscall_window_s=0.3, hs_peers=64, hs_count=64, hs_duration_s=1.0,
                  flood_count=20, flood_duration_s=0.5, config_sizes=(100,),
                  allowedips_sizes=(1000,), micro_target_s=0.005),
}
