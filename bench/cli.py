"""`python -m bench`: measure WireGuard implementations side by side (see --help)."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

from bench import history, report
from bench.progress import Progress
from bench.report import NEWEST
from bench.runner import Results, Runner, topology_specs
from bench.settings import GATEWAY_CLIENTS, GROUPS, SCALES, parse_peer_counts
from tests.harness import impls, procs

RESULTS_DIR = Path(__file__).resolve().parent / "results"
TOOLS = ("ip", "iperf3", "wg", "ping")

EPILOG = f"""
implementations:
  wggo   Debian's wireguard-go (the baseline of every ratio), if installed
  pywg   this checkout's pywg (.venv/bin/pywg), if it exists and runs
  more:  WG_IMPLS="name=/path/to/binary,..." adds any daemon with wireguard-go's
         command line (`BINARY -f IFNAME`, UAPI socket, configured by `wg`); one
         named {NEWEST} (the newest wireguard-go) gets ratio columns of its own

figure groups (--figures), in the order each repetition runs them:
  tcp        TCP throughput, 1 and 4 streams, both directions, with CPU per GB
  udp        UDP throughput and loss at 1372-byte payloads (iperf3 -u -b 0)
  pps        UDP packets per second delivered at 64-byte payloads
  ping       ping RTT p50/p99, idle and under one TCP stream
  syscalls   packets per syscall on each path (needs perf)
  gateway    one gateway, {GATEWAY_CLIENTS} clients (one TCP stream each, all at once): aggregate
             throughput, CPU per GB, and the ceiling the rest of the system leaves any
             gateway; the clients run one implementation for every gateway ({NEWEST}
             when present, else wggo; --gateway-clients)
  handshake  handshakes/s a responder completes; cookie replies under a flood
  config     time and RSS to apply configurations of many peers through the UAPI
  scale      wg setconf time, RSS, wg show dump time and idle CPU with 10k, 100k and 250k
             peers (--scale-peers; once per run, 10k only with --quick); a refusal
             (wireguard-go: past 65,536 peers) is reported as one, with what was kept;
             then the keepalive storm: every peer given an endpoint that never answers
             and a persistent keepalive (initiations sent, CPU, `wg set` latency)
  micro      AEAD and allowed-IPs loops in pywg's C extension (needs its bench hooks)

Results go to {RESULTS_DIR}/<timestamp>/: results.json, results.md, PNG plots, logs/.
`--record` keeps the JSON in bench/history/ and adds the tables to bench/RESULTS.md;
`python -m bench.report JSON` draws the markdown and the plots again from a JSON.
Needs root (network namespaces). Cleans up its namespaces and processes on exit and Ctrl-C.
"""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Benchmark WireGuard implementations side by side in network namespaces.",
        epilog=EPILOG)
    p.add_argument("--quick", action="store_true",
                   help="short run (1 repetition, 1 s per iperf3 run): under 2 minutes")
    p.add_argument("--scale", choices=sorted(SCALES), default=None,
                   help="full (default: 3 repetitions; about 5 minutes for wireguard-go "
                        "alone, 13 with pywg, and for three implementations about 2 more for "
                        "the gateway and 3 for the scale group), quick, or tiny "
                        "(only exercises the machinery)")
    p.add_argument("--runs", type=int, default=None, help="repetitions of each figure")
    p.add_argument("--duration", type=int, default=None, metavar="S",
                   help="seconds per iperf3 run")
    p.add_argument("--figures", default=",".join(GROUPS), metavar="LIST",
                   help="comma-separated figure groups (default: all; see below)")
    p.add_argument("--impls", default="", metavar="LIST",
                   help="comma-separated implementation names (default: all available)")
    p.add_argument("--gateway-clients", default="", metavar="NAME",
                   help=f"the implementation every gateway's clients run (default: {NEWEST} "
                        "if available, else wggo)")
    p.add_argument("--scale-peers", default="", metavar="LIST",
                   help="peer counts of the scale group, e.g. 10k,100k,250k,1M "
                        "(default: the scale's)")
    p.add_argument("--out", type=Path, default=None, metavar="DIR",
                   help="output directory (default: bench/results/<timestamp>)")
    p.add_argument("--record", action="store_true",
                   help="add this run's tables to bench/RESULTS.md and its JSON to "
                        "bench/history/")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    p.add_argument("--list", action="store_true",
                   help="list the implementations found, and exit")
    args = p.parse_args(argv)
    if args.quick and args.scale not in (None, "quick"):
        p.error("--quick and --scale disagree")
    args.scale = "quick" if args.quick else (args.scale or "full")
    groups = tuple(g.strip() for g in args.figures.split(",") if g.strip())
    unknown = [g for g in groups if g not in GROUPS]
    if unknown or not groups:
        p.error(f"unknown figure group(s) {unknown}; choose from {', '.join(GROUPS)}")
    args.groups = tuple(g for g in GROUPS if g in groups)
    if (args.runs is not None and args.runs < 1) or (args.duration is not None
                                                     and args.duration < 1):
        p.error("--runs and --duration must be at least 1")
    try:
        args.scale_peers = parse_peer_counts(args.scale_peers) if args.scale_peers else None
    except ValueError as exc:
        p.error(f"--scale-peers: {exc}")
    return args


def select_impls(wanted: str) -> tuple[list[impls.Impl], list[str]]:
    found, notes = impls.available()
    if not wanted:
        return found, notes
    names = [n.strip() for n in wanted.split(",") if n.strip()]
    by_name = {i.name: i for i in found}
    notes += [f"--impls: {n} is not available" for n in names if n not in by_name]
    return [by_name[n] for n in names if n in by_name], notes


def gateway_clients(wanted: str, chosen: list[impls.Impl]) -> tuple[impls.Impl | None, str]:
    """The implementation the gateway's clients run: `wanted`, else the newest wireguard-go,
    else Debian's, else the first chosen; looked up among all available, chosen or not.
    Returns it (None if there is none) and a complaint, if any."""
    found, _ = impls.available()
    by_name = {i.name: i for i in found + chosen}
    if wanted:
        impl = by_name.get(wanted)
        return impl, "" if impl else f"--gateway-clients: {wanted} is not available"
    for name in (NEWEST, impls.BASELINE):
        if name in by_name:
            return by_name[name], ""
    return (chosen[0] if chosen else None), ""


def _preflight(args: argparse.Namespace) -> str:
    if not procs.is_root():
        return "needs root (it creates network namespaces); run it as root or with sudo"
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        return f"missing tools: {', '.join(missing)} (make deps installs them on Debian)"
    return ""


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    chosen, notes = select_impls(args.impls)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    if args.list:
        for i in chosen:
            print(f"{i.name:12} {impls.version(i)}  ({i.binary})")
        return 0
    problem = _preflight(args)
    if problem:
        print(f"bench: {problem}", file=sys.stderr)
        return 2
    scale = SCALES[args.scale].with_overrides(args.runs, args.duration, args.scale_peers)
    clients, complaint = gateway_clients(args.gateway_clients, chosen)
    if complaint:
        print(f"bench: {complaint}", file=sys.stderr)
        return 2
    started = time.time()
    load_at_start = os.getloadavg()[0]
    outdir = args.out or RESULTS_DIR / time.strftime("%Y%m%d-%H%M%S", time.gmtime(started))
    results = Results(notes=list(notes))
    runner = Runner(scale, args.groups, chosen, outdir / "logs", results, clients)
    code = run(runner, results)
    versions = {i.name: impls.version(i) for i in chosen}
    if clients is not None and "gateway" in args.groups:
        versions.setdefault(clients.name, impls.version(clients))
    doc = report.build_document(results, chosen,
                                [(n, a.name if a else "", b.name if b else "")
                                 for n, a, b in topology_specs(chosen)],
                                args.scale, scale, args.groups, started, time.time(),
                                runner.netns_names(), load_at_start, versions,
                                gateway_clients=clients)
    report.write(doc, outdir, plots=not args.no_plots)
    print(report.render_markdown(doc))
    print(f"bench: results in {outdir}", file=sys.stderr)
    if args.record and code == 0:
        print(f"bench: recorded in {history.record(outdir)}", file=sys.stderr)
    return code


def run(runner: Runner, results: Results) -> int:
    """Sets up, measures and tears down; returns the exit code (130 if interrupted)."""
    procs.install_handlers()
    code = 0
    try:
        progress = Progress(*runner.setup_estimate())
        runner.setup(progress)
        tasks = runner.plan()
        progress = Progress(len(tasks), sum(t.estimate_s for t in tasks))
        runner.execute(tasks, progress)
    except KeyboardInterrupt as exc:
        results.notes.append(f"interrupted ({str(exc) or 'Ctrl-C'}): partial results")
        code = 130
    except procs.HarnessError as exc:
        results.notes.append(f"stopped: {exc}")
        print(f"bench: {exc}", file=sys.stderr)
        code = 1
    finally:
        runner.finish()
        for failure in procs.cleanup():
            results.notes.append(f"clean-up: {failure}")
    return code
