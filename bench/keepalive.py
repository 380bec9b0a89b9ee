"""The keepalive storm: every configured peer of a scale daemon given an endpoint and a
persistent keepalive at once, none of them answering.

Turning a persistent keepalive on sends a keepalive at once; with no session that needs a
handshake, so every peer starts initiating and, unanswered, retries every REKEY_TIMEOUT
(5 s plus up to a third of a second of jitter) for 90 s. The timers of all peers owe the
wire about peers / 5.17 initiations a second: the question is whether the daemon keeps
up and whether a `wg set` still gets its answer meanwhile. (Each initiation costs two X25519
and some hashing: past a few tens of thousands of peers no 2-core machine keeps up, and a
daemon that falls behind must spread the backlog, not stop answering.)

The endpoints are one address on the daemon's own loopback, where nothing listens, and an
nftables counter in the daemon's namespace counts the initiations (148 bytes: 156 with the
UDP header) and keepalives (32 bytes: 40) that leave for it. Measured over a window that
starts once `wg addconf` has returned:

- initiations sent a second, and that as a percentage of what the timers owe;
- the daemon's CPU over the window;
- the longest and the median time a one-line `wg set` took, asked every half second.
"""

from __future__ import annotations

import base64
import re
import statistics
import time
from pathlib import Path

from tests.harness import netns, procs

Figures = dict[str, float]
SINK = "127.0.0.2"
SINK_PORT = 9  # discard: nothing listens, nothing answers
KEEPALIVE_S = 25
# What the timers owe while unanswered: one initiation per REKEY_TIMEOUT plus its mean jitter.
RETRY_INTERVAL_S = 5.0 + 0.333 / 2
INITIATION_WIRE_BYTES = 148 + 8
KEEPALIVE_WIRE_BYTES = 32 + 8
PROBE_INTERVAL_S = 0.5
PROBE_TIMEOUT_S = 60.0
TABLE = "pywgbench_keepalive"
ADDCONF_BASE_S = 30.0
ADDCONF_PER_PEER_S = 1e-3


def write_config(path: Path, publics: list[bytes]) -> Path:
    """A `wg addconf` file that gives each existing peer the sink endpoint and a keepalive."""
    with path.open("w", encoding="ascii") as f:
        for key in publics:
            f.write(f"[Peer]\nPublicKey = {base64.b64encode(key).decode('ascii')}\n"
                    f"Endpoint = {SINK}:{SINK_PORT}\nPersistentKeepalive = {KEEPALIVE_S}\n\n")
    return path


def count_rules() -> str:
    return (f"table ip {TABLE} {{\n chain out {{\n  type filter hook output priority 0;\n"
            f"  ip daddr {SINK} udp length {INITIATION_WIRE_BYTES} counter\n"
            f"  ip daddr {SINK} udp length {KEEPALIVE_WIRE_BYTES} counter\n }}\n}}\n")


def read_counts(ns: str) -> tuple[int, int]:
    """(initiations, keepalives) counted so far in the namespace."""
    listed = netns.run(ns, ["nft", "list", "table", "ip", TABLE]).stdout
    counts = [int(m) for m in re.findall(r"counter packets (\d+)", listed)]
    if len(counts) != 2:
        raise procs.HarnessError(f"keepalive: unexpected nft listing: {listed[:200]!r}")
    return counts[0], counts[1]


def window_figures(prefix: str, peers: int, window_s: float, initiations: int,
                   keepalives: int, cpu_s: float, probes_s: list[float]) -> Figures:
    owed = peers * window_s / RETRY_INTERVAL_S
    out: Figures = {
        f"{prefix}_ka_initiations_per_s": initiations / window_s,
        f"{prefix}_ka_keepalives_per_s": keepalives / window_s,
        f"{prefix}_ka_owed_pct": 100.0 * initiations / owed if owed else 0.0,
        f"{prefix}_ka_cpu_pct": 100.0 * cpu_s / window_s,
    }
    if probes_s:
        out[f"{prefix}_ka_set_max_ms"] = 1e3 * max(probes_s)
        out[f"{prefix}_ka_set_p50_ms"] = 1e3 * statistics.median(probes_s)
    return out


class Storm:
    """One storm against one configured daemon: `start` it, then `measure` a window."""

    def __init__(self, ns: str, ifname: str, config: Path, probe_key: bytes) -> None:
        self.ns, self.ifname, self.config = ns, ifname, config
        self.probe = base64.b64encode(probe_key).decode("ascii")

    def __enter__(self) -> Storm:
        netns.run(self.ns, ["nft", "-f", "-"], input=count_rules())
        return self

    def __exit__(self, *_: object) -> None:
        netns.run(self.ns, ["nft", "delete", "table", "ip", TABLE], check=False)

    def start(self, peers: int) -> float:
        """wg addconf of every peer's endpoint and keepalive; returns the seconds it took."""
        started = time.perf_counter()
        procs.run(["wg", "addconf", self.ifname, str(self.config)],
                  ADDCONF_BASE_S + peers * ADDCONF_PER_PEER_S)
        return time.perf_counter() - started

    def probe_set(self) -> float:
        """Seconds a one-line `wg set` takes: it waits for its turn at the UAPI socket."""
        started = time.perf_counter()
        procs.run(["wg", "set", self.ifname, "peer", self.probe, "persistent-keepalive",
                   str(KEEPALIVE_S)], PROBE_TIMEOUT_S, quiet=True)
        return time.perf_counter() - started

    def probes(self, window_s: float) -> list[float]:
        """`wg set` every PROBE_INTERVAL_S for window_s; each one's duration."""
        taken: list[float] = []
        end = time.perf_counter() + window_s
        while (now := time.perf_counter()) < end:
            taken.append(self.probe_set())
            time.sleep(max(0.0, min(PROBE_INTERVAL_S - (time.perf_counter() - now),
                                    end - time.perf_counter())))
        return taken

