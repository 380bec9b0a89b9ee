"""`make test-embedded`: pywg from its wheels, tested inside emulated Debian systems.

For each emulated target, at the same time (one core each), in a fresh copy of its cached
root file system with the dependency wheels already installed (rootfs.with_deps):
1. the pywg wheel installed with the target's pip from the wheelhouse and nothing else,
   while the C self-tests, the AEAD fuzz harness and the test-only cffi module are
   cross-compiled (cached, keyed by a hash of csrc/);
2. for each of the target's CPU models (targets.py; QEMU_CPU), the models of one target
   at the same time, each in its own copy of the tests:
   - the C self-tests and the AEAD fuzz harness (standalone driver);
   - pytest on the tests that matter on a device (on_device.py says which and why),
     among them the installed `pywg selftest`;
   - seal/open throughput of every backend that CPU runs (emulated: for the record only);
3. then, under the machine's namespace lock, test_tunnel.py: the emulated daemon against a
   native wireguard-go, ping and 10 MB each way.
A summary (timings, idle RSS, AEAD figures) goes to build/embedded/summary.json; each
target's full output to build/embedded/<target>/log.txt.
"""

from __future__ import annotations

import concurrent.futures
import fcntl
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests.embedded import rootfs, wheels
from tests.embedded.host import BUILD, CACHE, ROOT, log, need_root, prune, run, tools_venv, tree_key
from tests.embedded.on_device import CPU_TESTS, DEVICE_TESTS
from tests.embedded.targets import Cpu, Target
from tests.embedded.wheels import WHEELHOUSE, build_env

FUZZ_SECONDS = float(os.environ.get("PYWG_EMBEDDED_FUZZ_SECONDS", "20"))
LOCK = Path("/tmp/pywg-netns.lock")
IN_TARGET = "/root/pywg-tests"
CFLAGS = ["-std=gnu11", "-O2", "-g", "-Wall", "-Wextra", "-Werror", "-Icsrc"]


@dataclass
class Report:
    target: str
    steps: list[tuple[str, float]] = field(default_factory=list)
    figures: dict[str, object] = field(default_factory=dict)
    failed: str = ""


class Step:
    """Runs one step of one target, timing it and keeping its output in the target's log."""

    def __init__(self, target: Target, report: Report) -> None:
        self.target, self.report = target, report
        self.logfile = BUILD / target.name / "log.txt"
        self.lock = threading.Lock()

    @contextmanager
    def __call__(self, what: str) -> Iterator[None]:
        start = time.monotonic()
        try:
            yield
        except Exception as e:
            self.report.failed = f"{what}: {e}"
            raise
        took = time.monotonic() - start
        self.report.steps.append((what, round(took, 1)))
        log(f"{self.target.name}: {what}: ok ({took:.0f} s)")

    def write(self, text: str) -> None:
        with self.lock, self.logfile.open("a") as f:
            f.write(text)


def _c_sources() -> list[str]:
    files = sorted(str(p.relative_to(ROOT)) for p in [*ROOT.glob("csrc/*.c"),
                                                       *ROOT.glob("csrc/*/*.c")])
    return [f for f in files if "/selftest/" not in f and "/fuzz/" not in f]


def cross_compile(target: Target) -> Path:
    """For `target`: the C self-tests, the AEAD fuzz harness and the test-only cffi module
    (_wgdp_test: the hooks the tests call, never shipped), in the cache under a hash of
    the C sources and of how they are built."""
    key = tree_key("csrc", "tests/embedded/sysroot.py", "tests/embedded/targets.py",
                   extra=f"{target.name} {target.cc} {' '.join(CFLAGS)}")
    cached = CACHE / "bin" / target.name / key
    if cached.exists():
        return cached
    out = cached.with_name(f"{key}.partial")
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    dp = _c_sources()
    crypto = [f for f in dp if f.startswith("csrc/crypto/")]
    run([target.cc, *CFLAGS, "-o", out / "selftest", *dp,
         *sorted(str(p.relative_to(ROOT)) for p in ROOT.glob("csrc/selftest/*.c")), "-pthread"],
        cwd=ROOT, capture=True)
    run([target.cc, *CFLAGS, "-o", out / "aead_fuzz", "csrc/fuzz/aead_fuzz.c",
         "csrc/fuzz/standalone.c", *crypto, "-pthread"], cwd=ROOT, capture=True)
    # The same cross environment as the wheel's, so the module is built for the target.
    run([tools_venv(), "csrc/build_ffi_test.py", out / "wgdp-test"], env=build_env(target),
        cwd=ROOT, capture=True)
    for leftover in (out / "wgdp-test").glob("*.[co]"):
        leftover.unlink()
    out.rename(cached)
    prune(cached.parent, keep=6)
    return cached


def dependency_wheels(target: Target) -> list[Path]:
    """Every wheel of the target's wheelhouse but pywg's: its dependencies and the tests'."""
    return sorted(w for folder in (target.name, f"{target.name}-test")
                  for w in (WHEELHOUSE / folder).glob("*.whl")
                  if not w.name.startswith("pywg-"))


def install(target: Target, root: Path, step: Step) -> None:
    """pywg's wheel into the target's venv with its pip: --no-index, the wheelhouse only.
    pip resolves pywg's requirements against what the cached root file system has
    installed from the same wheelhouse (rootfs.with_deps), and fails if one is missing."""
    shutil.copytree(WHEELHOUSE / target.name, root / "wheelhouse" / target.name)
    # --no-compile: pywg's modules are byte-compiled on import, only those a test imports.
    out = rootfs.in_target(root, [f"{rootfs.VENV}/bin/pip", "install", "--no-index",
                                  "--no-compile", "--disable-pip-version-check", "--find-links",
                                  f"/wheelhouse/{target.name}", "pywg"],
                           capture=True)
    step.write(out)
    if "Successfully installed pywg-" not in out:
        raise RuntimeError(f"pip did not install pywg's wheel:\n{out[-2000:]}")


def _tests_dir(cpu: Cpu) -> str:
    return f"{IN_TARGET}-{cpu.label}"


def copy_tests(root: Path, bins: Path, cpu: Cpu) -> None:
    """The tests and what they read (csrc's headers, the vectors), not pywg's source; one
    copy per CPU model, as they run at the same time (pytest's and hypothesis' files)."""
    dest = root / _tests_dir(cpu).lstrip("/")
    shutil.copytree(ROOT / "tests", dest / "tests",
                    ignore=shutil.ignore_patterns("__pycache__", ".hypothesis"))
    shutil.copytree(ROOT / "csrc", dest / "csrc", ignore=shutil.ignore_patterns("*.o"))
    shutil.copy(ROOT / "pyproject.toml", dest / "pyproject.toml")
    shutil.copytree(bins, dest / "bin")


def _cpu_env(cpu: Cpu) -> dict[str, str]:
    env = {"PYWG_EXPECT_AEAD": cpu.expect_aead,
           "PYWG_TEST_FFI_DIR": f"{_tests_dir(cpu)}/bin/wgdp-test"}
    if cpu.qemu_cpu:
        env["QEMU_CPU"] = cpu.qemu_cpu
    return env


def test_cpu(target: Target, root: Path, cpu: Cpu, first: bool, step: Step,
             report: Report) -> None:
    env = _cpu_env(cpu)

    def target_run(what: str, argv: list[str], timeout: float = 1800) -> str:
        with step(f"{what} ({cpu.label} CPU)"):
            out = rootfs.in_target(root, argv, env=env, cwd=_tests_dir(cpu), capture=True,
                                   timeout=timeout)
            step.write(f"==== {what} ({cpu.label})\n{out}")
        return out

    target_run("C self-tests", ["bin/selftest"])
    target_run("AEAD fuzz", ["bin/aead_fuzz", str(FUZZ_SECONDS), str(int(time.time()))])
    tests = DEVICE_TESTS if first else CPU_TESTS
    target_run("pytest", ["python", "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          "--durations=15", *tests])
    speed = target_run("AEAD speed", ["python", "-m", "tests.embedded.aead_speed"])
    report.figures[f"aead_{cpu.label}"] = json.loads(speed.strip().splitlines()[-1])


def _holders(lockfile: Path) -> set[int]:
    inode = lockfile.stat().st_ino
    pids = set()
    for line in Path("/proc/locks").read_text().splitlines():
        parts = line.split()
        if len(parts) > 5 and parts[1] == "FLOCK" and parts[5].endswith(f":{inode}"):
            pids.add(int(parts[4]))
    return pids


def _ancestors() -> set[int]:
    pids, pid = set(), os.getpid()
    while pid > 1:
        pids.add(pid)
        stat = Path(f"/proc/{pid}/stat").read_text()
        pid = int(stat.rsplit(")", 1)[1].split()[1])
    return pids


@contextmanager
def netns_lock() -> Iterator[float]:
    """The machine's lock for namespace tests, unless a parent (flock(1)) holds it for us;
    yields the seconds spent waiting for it."""
    start = time.monotonic()
    with LOCK.open("a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not _holders(LOCK) & _ancestors():
                log(f"waiting for {LOCK} (another namespace test is running)")
                fcntl.flock(f, fcntl.LOCK_EX)
        yield time.monotonic() - start


def tunnel(target: Target, root: Path, step: Step, report: Report) -> None:
    results = BUILD / target.name / "tunnel.json"
    env = {"PYWG_EMBEDDED_ROOT": str(root), "PYWG_EMBEDDED_TARGET": target.name,
           "PYWG_EMBEDDED_RESULTS": str(results)}
    with step("tunnel to wireguard-go (ping, 10 MB each way)"):
        proc = run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                    "tests/embedded/test_tunnel.py"], env=env, cwd=ROOT, capture=True,
                   check=False, timeout=1800)
        step.write(f"==== tunnel\n{proc.stdout}")
        if proc.returncode != 0:
            raise RuntimeError(f"test_tunnel.py failed:\n{proc.stdout[-4000:]}")
    figures = json.loads(results.read_text())
    report.figures["tunnel"] = {k: v for k, v in figures.items() if k != "log_tail"}
    if figures.get("qemu_unimplemented"):
        log(f"{target.name}: qemu-user reported as unimplemented: "
            f"{'; '.join(figures['qemu_unimplemented'])}")


def prepare_and_test(target: Target, workdir: Path, report: Report) -> Path:
    """Everything but the tunnel; returns the prepared root file system."""
    (BUILD / target.name).mkdir(parents=True, exist_ok=True)
    (BUILD / target.name / "log.txt").write_text("")
    step = Step(target, report)
    # The cross compiler runs on this machine while the emulated pip installs.
    with concurrent.futures.ThreadPoolExecutor(1) as compiler:
        compiled = compiler.submit(cross_compile, target)
        with step("root file system with the dependencies (cached), a copy of it"):
            root = rootfs.overlay(rootfs.with_deps(target, dependency_wheels(target)),
                                  workdir, target.name)
        with step("pip install pywg from the wheelhouse"):
            install(target, root, step)
        with step("cross-compile the C self-tests, fuzz harness and test module"):
            bins = compiled.result()
    for cpu in target.cpus:
        copy_tests(root, bins, cpu)
    # A target's CPU models at once: on two cores, armv7's two runs and aarch64's one
    # share them better than one after the other.
    with concurrent.futures.ThreadPoolExecutor(len(target.cpus)) as pool:
        runs = [pool.submit(test_cpu, target, root, cpu, i == 0, step, report)
                for i, cpu in enumerate(target.cpus)]
        for done in runs:
            done.result()
    return root


def _summary(reports: list[Report], took: float, waited: float) -> dict[str, object]:
    return {"seconds": round(took, 1), "lock_wait_s": round(waited, 1),
            "targets": {r.target: {"steps": r.steps, "figures": r.figures, "failed": r.failed}
                        for r in reports}}


def _in_parallel(jobs: list[tuple[Target, Report]],
                 fn: Callable[[Target, Report], None]) -> list[Target]:
    """Runs fn for every target at once; returns the targets whose run raised nothing."""
    with concurrent.futures.ThreadPoolExecutor(max(1, len(jobs))) as pool:
        futures = {pool.submit(fn, t, r): (t, r) for t, r in jobs}
        ok = []
        for future, (target, report) in futures.items():
            error = future.exception()
            if error is None:
                ok.append(target)
            elif not report.failed:
                report.failed = f"{type(error).__name__}: {error}"
    return ok


def build(target: Target, report: Report) -> None:
    """`make test-embedded`'s own build of an emulated target's wheels (wheels.py), while
    its root file system is debootstrapped if not cached (mostly emulated dpkg: it
    overlaps well with native compiles)."""
    step = Step(target, report)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        debootstrapped = pool.submit(rootfs.tarball, target)
        with step("pywg wheel and wheelhouse"):
            wheels.target_wheels(target)
        with step("root file system (cached)"):
            debootstrapped.result()


def main(targets: list[Target], native_wheels: list[Target] | None = None) -> None:
    """The tests of the emulated `targets`. With native_wheels (`all`), their wheels are
    built first, each target's tests starting as soon as its own are ready, and the
    wheels of native_wheels (the build machine's, not tested here) meanwhile."""
    need_root("make test-embedded")
    building = native_wheels is not None
    for target in targets:
        if not building and not any((WHEELHOUSE / target.name).glob("pywg-*.whl")):
            raise SystemExit(f"no pywg wheel for {target.name}: run make wheels first")
    if building:
        BUILD.mkdir(parents=True, exist_ok=True)
        tools_venv()  # made once, before the targets' threads use it
    start = time.monotonic()
    reports = {t.name: Report(t.name) for t in targets}
    roots: dict[str, Path] = {}
    waited = 0.0
    workdir = Path(tempfile.mkdtemp(prefix="pywg-embedded-", dir="/var/tmp"))

    def phase1(target: Target, report: Report) -> None:
        if building:
            build(target, report)
        roots[target.name] = prepare_and_test(target, workdir, report)

    def phase2(target: Target, report: Report) -> None:
        tunnel(target, roots[target.name], Step(target, report), report)

    native = concurrent.futures.ThreadPoolExecutor(1)
    natives = [native.submit(wheels.target_wheels, t) for t in native_wheels or []]
    try:
        ready = _in_parallel([(t, reports[t.name]) for t in targets], phase1)
        for future in natives:
            future.result()
        if building:
            wheels.write_sizes()
        with netns_lock() as waited:
            _in_parallel([(t, reports[t.name]) for t in ready], phase2)
    finally:
        native.shutdown()
        rootfs.release(workdir)
        shutil.rmtree(workdir, ignore_errors=True)
    summary = _summary(list(reports.values()), time.monotonic() - start, waited)
    (BUILD / "summary.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary, indent=1))
    failed = [r for r in reports.values() if r.failed]
    for r in failed:
        log(f"{r.target}: FAILED: {r.failed[:6000]}\n"
            f"(the whole output: build/embedded/{r.target}/log.txt)")
    if failed:
        raise SystemExit(1)
    log(f"all targets passed in {time.monotonic() - start:.0f} s "
        f"({waited:.0f} s of it waiting for {LOCK})")
