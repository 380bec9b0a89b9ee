"""The long run: two pywg daemons at full rate for many minutes, their memory sampled.

    python -m bench.memory [--minutes 10] [--interval 10] [--impl NAME=BINARY] [--out DIR]

One tunnel between two namespaces (bench.target), iperf3 --bidir through it for the whole
run, so that both daemons seal and open at full rate at once, with a short UDP flood at
1372-byte and at 64-byte payloads every few minutes on top (the paths that queue and stage
the most). Every `--interval` seconds it records each daemon's resident set size
(/proc/PID/status VmRSS) and the bytes moved. Bounded pools show as a flat line once warmed
up: the report compares the last third of the run with the first sample after warm-up.

Not part of `make test`: it takes as long as it is told to. Needs root.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench import sysstat
from bench.target import IPERF_PORT, Target
from tests.harness import procs
from tests.harness.impls import Impl, available

WARMUP_S = 30.0
UDP_EVERY_S = 120.0
UDP_SECONDS = 10


@dataclass
class Sample:
    t_s: float
    rss_kib: list[int | None]
    gbytes: float


@dataclass
class Run:
    impl: str
    minutes: float
    samples: list[Sample] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _interface_bytes(topo: Target) -> float:
    """Bytes the tunnel interface in namespace A has sent and received, in GB."""
    counters = sysstat.net_dev_of(topo.pids[0]).get(topo.daemons[0].ifname)
    return (counters.rx_bytes + counters.tx_bytes) / 1e9 if counters else 0.0


def _udp_flood(topo: Target, payload: int) -> None:
    procs.run(topo.exec_a("iperf3", "-c", topo.server_addr, "-p", str(IPERF_PORT + 1),
                          "-u", "-b", "0", "-l", str(payload), "-t", str(UDP_SECONDS)),
              UDP_SECONDS + 30, check=False)


def measure(impl: Impl, minutes: float, interval: float, logdir: Path) -> Run:
    run = Run(impl.name, minutes)
    # A fresh tag per run, as bench.runner does: a run killed before its cleanup must not
    # block the next one with namespaces of the same name.
    topo = Target(f"{impl.name}-{impl.name}", f"m{os.urandom(3).hex()[:5]}", impl, impl, logdir)
    try:
        topo.setup()
        udp_server = procs.start(topo.exec_b("iperf3", "-s", "-p", str(IPERF_PORT + 1)),
                                 logdir / "iperf3-udp.log")
        seconds = int(minutes * 60)
        stream = procs.start(topo.exec_a(
            "iperf3", "-c", topo.server_addr, "-p", str(IPERF_PORT), "--bidir",
            "-t", str(seconds), "-J"), logdir / "iperf3-bidir.json")
        start = time.monotonic()
        next_udp = start + UDP_EVERY_S
        payloads = [1372, 64]
        while stream.poll() is None:
            time.sleep(interval)
            now = time.monotonic()
            topo.check_alive()
            run.samples.append(Sample(now - start, [sysstat.rss_kib(p) for p in topo.pids],
                                      _interface_bytes(topo)))
            print(f"{now - start:6.0f} s  RSS {run.samples[-1].rss_kib} KiB  "
                  f"{run.samples[-1].gbytes:8.1f} GB", flush=True)
            if now >= next_udp and now - start < seconds - UDP_SECONDS - interval:
                _udp_flood(topo, payloads[0])
                payloads.reverse()
                next_udp = time.monotonic() + UDP_EVERY_S
        procs.stop(udp_server)
    finally:
        topo.teardown()
    return run


def report(run: Run) -> str:
    """A markdown table of the samples and the verdict on growth."""
    lines = [f"## Memory over {run.minutes:g} minutes at full rate: {run.impl}", "",
             "| time (s) | RSS A (MiB) | RSS B (MiB) | GB through A |", "|---|---|---|---|"]
    for s in run.samples:
        rss = ["-" if r is None else f"{r / 1024:.1f}" for r in s.rss_kib]
        lines.append(f"| {s.t_s:.0f} | {rss[0]} | {rss[1]} | {s.gbytes:.1f} |")
    warm = [s for s in run.samples if s.t_s >= WARMUP_S]
    if len(warm) >= 3:
        # Pools fill while traffic first reaches them (the first UDP flood touches the most),
        # so the test of boundedness is the second half: flat there, or still climbing.
        half = len(warm) // 2
        for side in (0, 1):
            first = warm[0].rss_kib[side] or 0
            middle = warm[half].rss_kib[side] or 0
            last = max(s.rss_kib[side] or 0 for s in warm[half:])
            lines.append("")
            lines.append(f"Side {'AB'[side]}: {first / 1024:.1f} MiB after warm-up, "
                         f"{middle / 1024:.1f} MiB at {warm[half].t_s:.0f} s, at most "
                         f"{last / 1024:.1f} MiB after that ({(last - middle) / 1024:+.1f} MiB "
                         "over the second half).")
    return "\n".join(lines + [""] + [f"- {n}" for n in run.notes])


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.memory", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between samples")
    parser.add_argument("--impl", default="pywg",
                        help="implementation name (as `python -m bench --list` shows)")
    parser.add_argument("--out", type=Path, default=None, help="directory for logs and report")
    args = parser.parse_args(argv)
    if not procs.is_root():
        print("bench.memory: needs root (network namespaces)", file=sys.stderr)
        return 2
    impls, notes = available()
    chosen = next((i for i in impls if i.name == args.impl), None)
    if chosen is None:
        print(f"bench.memory: no implementation {args.impl!r}: {notes}", file=sys.stderr)
        return 2
    out = args.out or Path(f"bench/results/memory-{time.strftime('%Y%m%d-%H%M%S')}")
    out.mkdir(parents=True, exist_ok=True)
    procs.install_handlers()
    try:
        run = measure(chosen, args.minutes, args.interval, out)
    finally:
        procs.cleanup()
    text = report(run)
    (out / "memory.md").write_text(text + "\n")
    (out / "memory.json").write_text(json.dumps(
        [{"t_s": s.t_s, "rss_kib": s.rss_kib, "gbytes": s.gbytes} for s in run.samples]))
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
