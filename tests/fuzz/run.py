"""Runs the libFuzzer drivers `make fuzz` builds (build/fuzz/bin/TARGET) and sums them up.

Each target runs over its working corpus (build/fuzz/corpus/TARGET, which grows), its kept
corpus (tests/fuzz/corpus/TARGET) and its kept crash inputs (tests/fuzz/crashes/TARGET, every
one a regression test), for --seconds or --runs. With --kept-only (make fuzz-smoke) new inputs
go to a scratch directory, so a short run never changes the working corpus. What crashes or
times out is written to build/fuzz/crashes/TARGET/; the table at the end gives each target's
executions, time, rate, coverage, corpus and outcome, and the exit status is 1 if any target
failed. --runs with --max-seconds bounds a campaign (make fuzz-campaign): each target runs
until it has executed --runs inputs or --max-seconds have passed, whichever comes first;
--record appends the table, with the machine, its load and the build, to a Markdown file.

Usage: run.py (--seconds N | --runs N [--max-seconds S]) [--kept-only] [--record FILE] TARGET...
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / "build" / "fuzz" / "bin"
WORK = ROOT / "build" / "fuzz" / "corpus"
FOUND = ROOT / "build" / "fuzz" / "crashes"
KEPT = ROOT / "tests" / "fuzz" / "corpus"
CRASHES = ROOT / "tests" / "fuzz" / "crashes"
BUILD = "libFuzzer, ASan + UBSan, clang -O1 (build/fuzz/bin)"

# Longest input per target: what one input needs to say (a batch of datagrams, a super-packet
# of up to 64 KB for the TUN read path). The AEAD is fuzzed with messages of up to 4 KB (every
# backend's gear changes lie below 1 KB; an input of 64 KB costs sixteen times one of 4 KB for
# the same paths); its kept seeds of 4,096 and 65,535 bytes run whole where the kept inputs
# alone run (make fuzz-smoke, with KEPT_MAX_LEN) and in make fuzz-regress.
MAX_LEN = {"aead": 4096 + 41 + 32, "offload": 66000, "gro": 16384, "udpgro": 16384,
           "receive": 16384, "x25519": 1 + 8 * 64}
KEPT_MAX_LEN = {"aead": 70000}
DEFAULT_MAX_LEN = 4096
# libFuzzer's per-input energy scaled by execution time (AFL's performance score: an input ten
# times slower than the average is picked a tenth as often, a fast one up to three times as
# often), for the targets whose inputs differ in cost by orders of magnitude: an offload input
# may cut a 64 KB super-packet into 65,535 segments, a noise input run one handshake step or
# forty. What each input checks is unchanged; the slow ones still run, less often.
EXTRA_FLAGS = {"noise": ["-entropic_scale_per_exec_time=1"],
               "offload": ["-entropic_scale_per_exec_time=1"]}


@dataclass
class Result:
    """One target's run, as libFuzzer's log tells it."""

    executions: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0            # the fuzzer's own user + system time
    cov: int = 0
    ft: int = 0
    corpus: str = ""
    outcome: str = "ok"

    @property
    def rate(self) -> float:
        return self.executions / self.seconds if self.seconds else 0.0

    @property
    def cpu_rate(self) -> float:
        """Executions per second of CPU: the target's own speed, whatever else ran."""
        return self.executions / self.cpu_seconds if self.cpu_seconds else 0.0


def parse_log(text: str) -> Result:
    """Executions, coverage and corpus from a libFuzzer log (-print_final_stats=1)."""
    result = Result()
    runs = re.findall(r"stat::number_of_executed_units: (\d+)", text)
    if runs:
        result.executions = int(runs[-1])
    else:
        # Killed or crashed before the final stats: the last status line's count.
        counts = re.findall(r"^#(\d+)\s", text, re.MULTILINE)
        result.executions = int(counts[-1]) if counts else 0
    status = re.findall(r"cov: (\d+) ft: (\d+) corp: (\d+/\S+)", text)
    if status:
        cov, ft, corpus = status[-1]
        result.cov, result.ft, result.corpus = int(cov), int(ft), corpus
    return result


def finding(text: str) -> str:
    """The first line that says what went wrong, for the table."""
    for pattern in (r"check failed: .*", r"runtime error: .*", r"ERROR: \w+Sanitizer: [^\n]*",
                    r"ERROR: libFuzzer: [^\n]*"):
        found = re.search(pattern, text)
        if found:
            return found.group(0).strip()[:160]
    return "no message"


def run_target(name: str, budget: list[str], kept_only: bool) -> Result:
    """Runs one target; returns what its log says."""
    FOUND.joinpath(name).mkdir(parents=True, exist_ok=True)
    max_len = (KEPT_MAX_LEN if kept_only else MAX_LEN).get(name, MAX_LEN.get(name, DEFAULT_MAX_LEN))
    with tempfile.TemporaryDirectory(prefix=f"fuzz-{name}-") as scratch:
        work = Path(scratch) if kept_only else WORK / name
        work.mkdir(parents=True, exist_ok=True)
        dirs = [work] + [d for d in (KEPT / name, CRASHES / name) if d.is_dir()]
        cmd = [str(BIN / name), *budget, "-print_final_stats=1", "-timeout=20",
               f"-max_len={max_len}", *EXTRA_FLAGS.get(name, []),
               f"-artifact_prefix={FOUND / name}/", *map(str, dirs)]
        start, cpu = time.monotonic(), children_cpu()
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              errors="replace", check=False)
        seconds, cpu = time.monotonic() - start, children_cpu() - cpu
    log = FOUND / name / "last-run.log"
    log.write_text(proc.stdout)
    result = parse_log(proc.stdout)
    result.seconds, result.cpu_seconds = seconds, cpu
    if proc.returncode != 0:
        artifact = re.findall(r"Test unit written to (\S+)", proc.stdout)
        where = artifact[-1] if artifact else str(log)
        sys.stdout.write(proc.stdout[-6000:])
        result.outcome = f"FAILED (exit {proc.returncode}): {finding(proc.stdout)}: {where}"
    return result


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def load() -> str:
    return "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def record(path: Path, rows: list[tuple[str, Result]], runs: int | None, started: str,
           load_before: str) -> None:
    """Appends the campaign's table to a Markdown file."""
    cpu = platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    names = [line.split(":", 1)[1].strip() for line in
             (cpuinfo.read_text().splitlines() if cpuinfo.exists() else [])
             if line.startswith("model name")]
    if names:
        cpu = names[0]
    goal = f" Goal: {runs:,} executions a target." if runs else ""
    lines = [
        f"### Fuzz campaign, {started} UTC",
        "",
        f"Machine: {cpu}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}; "
        f"load average {load_before} at the start, {load()} at the end. Build: {BUILD}.{goal}",
        "",
        "| target | executions | seconds | exec/s | exec/CPU-s | cov / ft | corpus | outcome |",
        "|---|---:|---:|---:|---:|---|---|---|",
    ]
    for name, r in rows:
        lines.append(f"| {name} | {r.executions:,} | {r.seconds:,.0f} | {r.rate:,.0f} | "
                     f"{r.cpu_rate:,.0f} | {r.cov} / {r.ft} | {r.corpus} | {r.outcome} |")
    with path.open("a") as out:
        out.write("\n".join(lines) + "\n\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    budget = parser.add_mutually_exclusive_group(required=True)
    budget.add_argument("--seconds", type=int)
    budget.add_argument("--runs", type=int)
    parser.add_argument("--max-seconds", type=int, help="with --runs: a bound on each target")
    parser.add_argument("--kept-only", action="store_true")
    parser.add_argument("--record", type=Path, help="append the table to this Markdown file")
    parser.add_argument("targets", nargs="+")
    args = parser.parse_args()
    limit = [f"-max_total_time={args.seconds}"] if args.seconds else [f"-runs={args.runs}"]
    if args.runs and args.max_seconds:
        limit.append(f"-max_total_time={args.max_seconds}")
    started = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M")
    load_before = load()
    rows = []
    for name in args.targets:
        print(f"fuzz: {name} ...", flush=True)
        rows.append((name, run_target(name, limit, args.kept_only)))
    print(f"\n{'target':<12} {'executions':>12} {'seconds':>9} {'exec/s':>9} {'exec/CPU-s':>10}"
          f" {'cov/ft':>11} {'corpus':>13}  outcome")
    for name, r in rows:
        print(f"{name:<12} {r.executions:>12} {r.seconds:>9.1f} {r.rate:>9.0f} {r.cpu_rate:>10.0f}"
              f" {f'{r.cov}/{r.ft}':>11} {r.corpus:>13}  {r.outcome}")
    if args.record:
        record(args.record, rows, args.runs, started, load_before)
    return 0 if all(r.outcome == "ok" for _, r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
