"""Runs the libFuzzer drivers `make fuzz` builds (build/fuzz/bin/TARGET) and sums them up.

Each target runs over its working corpus (build/fuzz/corpus/TARGET, which grows), its kept
corpus (tests/fuzz/corpus/TARGET) and its kept crash inputs (tests/fuzz/crashes/TARGET, every
one a regression test), for --seconds or --runs. With --kept-only (make fuzz-smoke) new inputs
go to a scratch directory, so a short run never changes the working corpus. What crashes or
times out is written to build/fuzz/crashes/TARGET/; the table at the end gives each target's
executions, time and outcome, and the exit status is 1 if any target failed.

Usage: run.py (--seconds N | --runs N) [--kept-only] TARGET...
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / "build" / "fuzz" / "bin"
WORK = ROOT / "build" / "fuzz" / "corpus"
FOUND = ROOT / "build" / "fuzz" / "crashes"
KEPT = ROOT / "tests" / "fuzz" / "corpus"
CRASHES = ROOT / "tests" / "fuzz" / "crashes"

# Longest input per target: what one input needs to say (a batch of datagrams, a super-packet
# of up to 64 KB for the TUN read path, an AEAD message of up to 70,000 bytes).
MAX_LEN = {"aead": 70000, "offload": 66000, "gro": 16384, "udpgro": 16384, "receive": 16384}
DEFAULT_MAX_LEN = 4096


def run_target(name: str, budget: list[str], kept_only: bool) -> tuple[int, float, str]:
    """Runs one target; returns (executions, seconds, outcome)."""
    FOUND.joinpath(name).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"fuzz-{name}-") as scratch:
        work = Path(scratch) if kept_only else WORK / name
        work.mkdir(parents=True, exist_ok=True)
        dirs = [work] + [d for d in (KEPT / name, CRASHES / name) if d.is_dir()]
        cmd = [str(BIN / name), *budget, "-print_final_stats=1", "-timeout=20",
               f"-max_len={MAX_LEN.get(name, DEFAULT_MAX_LEN)}",
               f"-artifact_prefix={FOUND / name}/", *map(str, dirs)]
        start = time.monotonic()
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              errors="replace", check=False)
        seconds = time.monotonic() - start
    log = FOUND / name / "last-run.log"
    log.write_text(proc.stdout)
    runs = re.findall(r"stat::number_of_executed_units: (\d+)", proc.stdout)
    executions = int(runs[-1]) if runs else 0
    if proc.returncode == 0:
        return executions, seconds, "ok"
    artifact = re.findall(r"Test unit written to (\S+)", proc.stdout)
    where = artifact[-1] if artifact else str(log)
    sys.stdout.write(proc.stdout[-6000:])
    return executions, seconds, f"FAILED (exit {proc.returncode}): {where}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    budget = parser.add_mutually_exclusive_group(required=True)
    budget.add_argument("--seconds", type=int)
    budget.add_argument("--runs", type=int)
    parser.add_argument("--kept-only", action="store_true")
    parser.add_argument("targets", nargs="+")
    args = parser.parse_args()
    limit = [f"-max_total_time={args.seconds}"] if args.seconds else [f"-runs={args.runs}"]
    rows = []
    for name in args.targets:
        print(f"fuzz: {name} ...", flush=True)
        rows.append((name, *run_target(name, limit, args.kept_only)))
    print(f"\n{'target':<12} {'executions':>12} {'seconds':>9} {'exec/s':>9}  outcome")
    for name, executions, seconds, outcome in rows:
        rate = executions / seconds if seconds else 0.0
        print(f"{name:<12} {executions:>12} {seconds:>9.1f} {rate:>9.0f}  {outcome}")
    return 0 if all(row[3] == "ok" for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
