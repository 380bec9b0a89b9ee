"""Runs the Python fuzz targets (tests/fuzz/python/test_fuzz_*.py) for a while each, and sums
them up as tests/fuzz/run.py does the C ones.

Each target runs in a process of its own, driven by one of two engines:
- atheris (if it is installed): libFuzzer's coverage-guided search over pywg's bytecode,
  feeding the target's hypothesis strategies through hypothesis's fuzz_one_input. The
  working corpus is build/fuzz/corpus/py-NAME; an input that fails is written to
  build/fuzz/crashes/py-NAME/ (replay it with --replay NAME FILE, then keep it as an
  @example of the target).
- hypothesis alone: the target run again and again with fresh random inputs.
The table at the end gives each target's inputs, time and outcome; the exit status is 1 if
any target failed. As root, the target that drives a real Device runs in a network
namespace of its own, so the ports its inputs ask for are nobody else's.

Usage: run.py --seconds N [--engine auto|atheris|hypothesis] [TARGET...]
       run.py --replay TARGET FILE...
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]
WORK = ROOT / "build" / "fuzz" / "corpus"
FOUND = ROOT / "build" / "fuzz" / "crashes"
MODULES = sorted(p.stem for p in Path(__file__).parent.glob("test_fuzz_*.py"))
CHUNK_EXAMPLES = 500  # inputs per hypothesis run when hypothesis drives
INPUT_TIMEOUT_S = 30  # one input that takes longer is a finding (libFuzzer's -timeout)
MAX_LEN = 8192  # bytes of hypothesis choices per input
OWN_NETNS = {"py-uapi-device"}  # targets that bind sockets where their inputs say


def _targets(instrument: bool = False) -> dict[str, Any]:
    """Import the target modules (under atheris's instrumentation if asked) and return the
    registry they filled."""
    sys.path.insert(0, str(ROOT))
    if instrument:
        import atheris  # type: ignore[import-untyped,import-not-found,unused-ignore]

        with atheris.instrument_imports(include=["pywg"]):
            for name in MODULES:
                importlib.import_module(f"tests.fuzz.python.{name}")
    else:
        for name in MODULES:
            importlib.import_module(f"tests.fuzz.python.{name}")
    from tests.fuzz.python.common import TARGETS
    return TARGETS


def _have_atheris() -> bool:
    try:
        import atheris  # type: ignore[import-untyped,import-not-found,unused-ignore]  # noqa: F401
    except ImportError:
        return False
    return True


# ---- one target, in its own process ----------------------------------------------------------

def _one_atheris(name: str, seconds: int) -> None:
    import atheris  # type: ignore[import-untyped,import-not-found,unused-ignore]

    test = _targets(instrument=True)[name]
    corpus = WORK / name
    crashes = FOUND / name
    corpus.mkdir(parents=True, exist_ok=True)
    crashes.mkdir(parents=True, exist_ok=True)
    from tests.fuzz.python.common import EXECUTED

    # libFuzzer ends the process with exit(): what ran is written down as it goes (the
    # inputs hypothesis could not make an example of are counted by libFuzzer, not here).
    tally = crashes / "examples"
    fuzz_one_input = test.hypothesis.fuzz_one_input
    last = [0.0]

    def one_input(data: bytes) -> None:
        try:
            fuzz_one_input(data)
        finally:
            now = time.monotonic()
            if now - last[0] >= 1.0:
                last[0] = now
                tally.write_text(str(EXECUTED[name]))

    argv = [sys.argv[0], f"-max_total_time={seconds}", "-print_final_stats=1",
            f"-timeout={INPUT_TIMEOUT_S}", f"-max_len={MAX_LEN}", "-len_control=0",
            f"-artifact_prefix={crashes}/", str(corpus)]
    atheris.Setup(argv, one_input)
    atheris.Fuzz()  # exits the process


def _one_hypothesis(name: str, seconds: int) -> None:
    test = _targets()[name]
    from tests.fuzz.python.common import EXECUTED
    deadline = time.monotonic() + seconds
    failed = False
    try:
        while time.monotonic() < deadline:
            test()
    except Exception:
        import traceback

        traceback.print_exc()
        failed = True
    print(json.dumps({"executed": EXECUTED[name]}), flush=True)
    sys.exit(1 if failed else 0)


def _replay(name: str, files: list[str]) -> int:
    test = _targets()[name]
    for path in files:
        print(f"replaying {path}", flush=True)
        test.hypothesis.fuzz_one_input(Path(path).read_bytes())
    return 0


# ---- the driver ------------------------------------------------------------------------------

def _command(name: str, seconds: int, engine: str) -> list[str]:
    cmd = [sys.executable, __file__, "--one", name, "--seconds", str(seconds), "--engine", engine]
    if name in OWN_NETNS and os.geteuid() == 0 and shutil.which("unshare"):
        cmd = ["unshare", "--net", "--", *cmd]
    return cmd


def _executions(name: str, engine: str, output: str) -> tuple[int, int]:
    """(inputs tried, examples the target ran): libFuzzer's inputs include those that
    hypothesis could make no example of."""
    if engine == "atheris":
        found = re.findall(r"stat::number_of_executed_units: (\d+)", output)
        tally = FOUND / name / "examples"
        examples = int(tally.read_text()) if tally.exists() else 0
        return (int(found[-1]) if found else 0), examples
    found = re.findall(r'\{"executed": (\d+)\}', output)
    examples = int(found[-1]) if found else 0
    return examples, examples


def run_target(name: str, seconds: int, engine: str) -> tuple[int, int, float, str]:
    """Runs one target; returns (inputs, examples, seconds, outcome)."""
    FOUND.joinpath(name).mkdir(parents=True, exist_ok=True)
    FOUND.joinpath(name, "examples").unlink(missing_ok=True)
    # The examples per hypothesis run; the long runs never replay a database.
    env = dict(os.environ, PYWG_FUZZ_EXAMPLES=str(CHUNK_EXAMPLES))
    start = time.monotonic()
    proc = subprocess.run(_command(name, seconds, engine), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, errors="replace", check=False,
                          env=env, cwd=ROOT)
    elapsed = time.monotonic() - start
    log = FOUND / name / "last-run.log"
    log.write_text(proc.stdout)
    inputs, examples = _executions(name, engine, proc.stdout)
    if proc.returncode == 0:
        return inputs, examples, elapsed, "ok"
    artifact = re.findall(r"Test unit written to (\S+)", proc.stdout)
    sys.stdout.write(proc.stdout[-6000:])
    where = artifact[-1] if artifact else log
    return inputs, examples, elapsed, f"FAILED (exit {proc.returncode}): {where}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int)
    parser.add_argument("--engine", choices=["auto", "atheris", "hypothesis"], default="auto")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--replay", nargs="+", metavar=("TARGET", "FILE"))
    parser.add_argument("targets", nargs="*")
    args = parser.parse_args()
    engine = args.engine
    if engine == "auto":
        engine = "atheris" if _have_atheris() else "hypothesis"
    if args.replay:
        return _replay(args.replay[0], args.replay[1:])
    if args.seconds is None:
        parser.error("--seconds is required")
    if args.one:
        if engine == "atheris":
            _one_atheris(args.one, args.seconds)
        _one_hypothesis(args.one, args.seconds)
    names = args.targets or sorted(_targets())
    print(f"fuzz (Python, {engine}): {len(names)} targets, {args.seconds} s each", flush=True)
    rows = []
    for name in names:
        print(f"fuzz: {name} ...", flush=True)
        rows.append((name, *run_target(name, args.seconds, engine)))
    print(f"\n{'target':<20} {'inputs':>10} {'examples':>10} {'seconds':>8} {'ex/s':>6}  outcome")
    for name, inputs, examples, seconds, outcome in rows:
        rate = examples / seconds if seconds else 0.0
        print(f"{name:<20} {inputs:>10} {examples:>10} {seconds:>8.1f} {rate:>6.0f}  {outcome}")
    return 0 if all(row[4] == "ok" for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
