"""Plumbing for the interoperability suite: implementations, daemons, `wg`, bounded waits.

An *implementation* is a command that keeps the contract of `wireguard-go IFNAME` (issue 4):
Debian's wireguard-go, and pywg once its daemon exists. Everything here drives them only
from outside, as a user would: their command line, `ip`, `wg` and the UAPI socket.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import pytest

T = TypeVar("T")

SOCKET_DIR = Path("/var/run/wireguard")
START_TIMEOUT_S = 20.0
EXIT_TIMEOUT_S = 10.0
CMD_TIMEOUT_S = 20.0
POLL_S = 0.05
# Variables that change how an implementation starts: never inherited from the test run.
_CONTRACT_ENV = ("WG_TUN_FD", "WG_UAPI_FD", "WG_PROCESS_FOREGROUND", "LOG_LEVEL",
                 "PYWG_TIMING_SCALE")


# ---- implementations -------------------------------------------------------------------------

@dataclass(frozen=True)
class Impl:
    name: str                    # "wggo" or "pywg": the id in test names
    argv: tuple[str, ...]        # the command; IFNAME (and -f) are appended
    process_names: frozenset[str]  # basenames of argv entries that mark its processes

    def command(self) -> str:
        """One word naming the command, for WG_QUICK_USERSPACE_IMPLEMENTATION."""
        return self.argv[0]


def _pywg_argv() -> tuple[str, ...]:
    # PYWG_INTEROP_COMMAND points the suite at another pywg command (one word, as
    # wg-quick needs), e.g. an installed one.
    override = os.environ.get("PYWG_INTEROP_COMMAND")
    if override:
        return (override,)
    script = Path(sys.executable).with_name("pywg")
    if script.exists():
        return (str(script),)
    return (sys.executable, "-m", "pywg")


WGGO = Impl("wggo", ("wireguard-go",), frozenset({"wireguard-go"}))
PYWG = Impl("pywg", _pywg_argv(), frozenset({"pywg"}))
IMPLS = {impl.name: impl for impl in (WGGO, PYWG)}
# (a, b): a runs in the first namespace, b in the second; both roles for every pairing.
PAIRS = [("wggo", "wggo"), ("wggo", "pywg"), ("pywg", "wggo"), ("pywg", "pywg")]


@functools.cache
def unavailable_reason(name: str) -> str | None:
    """Why implementation `name` cannot run here, or None when it can.

    pywg counts as present once its command line advertises the daemon mode of the contract
    (`[-f|--foreground] IFNAME`): from then on its tests run, and fail if it misbehaves.
    """
    impl = IMPLS[name]
    if impl is WGGO:
        return None if _which("wireguard-go") else "wireguard-go is not installed"
    try:
        out = subprocess.run([*impl.argv, "--help"], capture_output=True, text=True,
                             timeout=CMD_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"`pywg --help` failed: {e}"
    if "--foreground" not in out.stdout + out.stderr:
        return ("the pywg daemon does not exist yet: `pywg --help` does not offer "
                "`[-f|--foreground] IFNAME` (issue 4)")
    return None


def require_impls(*names: str) -> None:
    for name in names:
        reason = unavailable_reason(name)
        if reason:
            pytest.skip(f"{name}: {reason}")


def _which(cmd: str) -> bool:
    return any(os.access(Path(d) / cmd, os.X_OK) for d in os.environ.get("PATH", "").split(":"))


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _CONTRACT_ENV}
    env.update(extra)
    return env


# ---- bounded waiting -------------------------------------------------------------------------

def wait_for(predicate: Callable[[], T], what: str, timeout: float = 10.0,
             interval: float = POLL_S) -> T:
    """Poll `predicate` until it returns something truthy; fail saying `what` otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


# ---- running things in namespaces ------------------------------------------------------------

def run(ns: str | None, argv: Sequence[str], *, check: bool = True, input: str | None = None,
        timeout: float = CMD_TIMEOUT_S, env: dict[str, str] | None = None,
        ) -> subprocess.CompletedProcess[str]:
    full = ["ip", "netns", "exec", ns, *argv] if ns else list(argv)
    done = subprocess.run(full, capture_output=True, text=True, input=input, timeout=timeout,
                          env=env)
    if check and done.returncode != 0:
        pytest.fail(f"`{' '.join(full)}` exited {done.returncode}: {done.stderr.strip()}")
    return done


def wg(ns: str, *args: str, check: bool = True, input: str | None = None,
       ) -> subprocess.CompletedProcess[str]:
    return run(ns, ["wg", *args], check=check, input=input)


def link_exists(ns: str, ifname: str) -> bool:
    return run(ns, ["ip", "link", "show", "dev", ifname], check=False).returncode == 0


def socket_path(ifname: str) -> Path:
    return SOCKET_DIR / f"{ifname}.sock"


def sysfs_counter(ns: str, ifname: str, name: str) -> int:
    out = run(ns, ["cat", f"/sys/class/net/{ifname}/statistics/{name}"]).stdout
    return int(out)


def ping(ns: str, dest: str, *, count: int = 3, source: str | None = None,
         check: bool = True, deadline: int = 0) -> bool:
    """True when every echo got its reply; bounded by `deadline` seconds (count + 4 if 0)."""
    argv = ["ping", "-n", "-q", "-c", str(count), "-i", "0.2", "-W", "2",
            "-w", str(deadline or count + 4)]
    if source:
        argv += ["-I", source]
    done = run(ns, [*argv, dest], check=False, timeout=count + 10)
    if check and done.returncode != 0:
        pytest.fail(f"ping {dest} from {ns} failed: {done.stdout.strip()} {done.stderr.strip()}")
    return done.returncode == 0


# ---- keys ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class KeyPair:
    private: str
    public: str

    @staticmethod
    def generate() -> KeyPair:
        private = run(None, ["wg", "genkey"]).stdout.strip()
        public = run(None, ["wg", "pubkey"], input=private + "\n").stdout.strip()
        return KeyPair(private, public)


def genpsk() -> str:
    return run(None, ["wg", "genpsk"]).stdout.strip()


def key_forms(b64: str) -> list[str]:
    """Every textual form a key could leak in: base64, and hex in both cases."""
    raw = base64.b64decode(b64)
    return [b64, raw.hex(), raw.hex().upper()]


# ---- `wg show dump` ------------------------------------------------------------------------

@dataclass(frozen=True)
class PeerDump:
    public_key: str
    preshared_key: str
    endpoint: str
    allowed_ips: str
    latest_handshake: int
    rx: int
    tx: int
    persistent_keepalive: str


@dataclass(frozen=True)
class Dump:
    private_key: str
    public_key: str
    listen_port: int
    fwmark: str
    peers: dict[str, PeerDump]
    text: str


def parse_dump(text: str) -> Dump:
    lines = [line.split("\t") for line in text.strip("\n").split("\n")]
    private, public, port, fwmark = lines[0]
    peers = {}
    for f in lines[1:]:
        peers[f[0]] = PeerDump(f[0], f[1], f[2], f[3], int(f[4]), int(f[5]), int(f[6]), f[7])
    return Dump(private, public, int(port), fwmark, peers, text)


def dump(ns: str, ifname: str) -> Dump:
    return parse_dump(wg(ns, "show", ifname, "dump").stdout)


# ---- daemons ---------------------------------------------------------------------------------

def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


def daemon_pids(impl: Impl, ifname: str) -> list[int]:
    """The processes of `impl` serving `ifname`, found by their command line.

    A background daemon re-execs itself, so the PID we started is gone; the interface name
    is unique to one test, so a process naming both the implementation and it is ours.
    """
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        argv = _cmdline(int(entry.name))
        if ifname not in argv[1:]:
            continue
        names = {os.path.basename(a) for a in argv}
        if impl.process_names & names or (impl is PYWG and "pywg" in argv):
            pids.append(int(entry.name))
    return sorted(pids)


def pid_alive(pid: int) -> bool:
    # A zombie still has a /proc entry; its state letter tells it has exited.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


@dataclass
class Daemon:
    """One running implementation serving one interface; `stop()` always cleans up."""

    impl: Impl
    ns: str              # where it was started (its UDP socket lives here)
    ifname: str
    log_path: Path
    link_ns: str = ""    # where the interface is now (moves with `ip link set netns`)
    proc: subprocess.Popen[bytes] | None = None  # foreground only
    start_result: subprocess.CompletedProcess[str] | None = None
    keys: KeyPair = field(default_factory=KeyPair.generate)

    def __post_init__(self) -> None:
        self.link_ns = self.link_ns or self.ns

    def pids(self) -> list[int]:
        return daemon_pids(self.impl, self.ifname)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def alive(self) -> bool:
        return any(pid_alive(p) for p in self.pids())

    def wg(self, *args: str, check: bool = True, input: str | None = None,
           ) -> subprocess.CompletedProcess[str]:
        return wg(self.link_ns, *args, check=check, input=input)

    def dump(self) -> Dump:
        return dump(self.link_ns, self.ifname)

    def set_private_key(self) -> None:
        self.wg("set", self.ifname, "private-key", "/dev/stdin", input=self.keys.private + "\n")

    def wait_exit(self, timeout: float = EXIT_TIMEOUT_S) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.proc.wait(timeout=POLL_S)
            if not self.alive() and (self.proc is None or self.proc.poll() is not None):
                return True
            time.sleep(POLL_S)
        return False

    def stop(self) -> None:
        """Delete the interface, let the daemon exit, then make sure it has."""
        run(self.link_ns, ["ip", "link", "del", "dev", self.ifname], check=False)
        if not self.wait_exit():
            for sig in (signal.SIGTERM, signal.SIGKILL):
                for pid in self.pids():
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, sig)
                if self.wait_exit():
                    break
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=EXIT_TIMEOUT_S)
        if not self.alive():
            # Only our own, uniquely named socket, and only once nobody serves it.
            with contextlib.suppress(FileNotFoundError):
                socket_path(self.ifname).unlink()


def ifname(prefix: str) -> str:
    """A unique interface name: wgA1b2c3d4 (at most 15 bytes)."""
    return f"{prefix}{secrets.token_hex(4)}"[:15]


def start_daemon(impl: Impl, ns: str, name: str, workdir: Path, *, foreground: bool = False,
                 flag: str = "-f", env: dict[str, str] | None = None,
                 wait_ready: bool = True) -> Daemon:
    """Start `impl` for interface `name` in namespace `ns`, as wg-quick would.

    Background (the default): the command must return 0 with the TUN and the socket ready.
    Foreground: the process keeps running; we wait (bounded) until `wg show` answers.
    The output goes to a file, never a pipe: a re-exec'd child may keep a pipe open.
    """
    log_path = workdir / f"{name}.log"
    argv = ["ip", "netns", "exec", ns, *impl.argv, *([flag] if foreground else []), name]
    full_env = clean_env(**(env or {}))
    with open(log_path, "ab") as log:
        if foreground:
            proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=full_env,
                                    stdin=subprocess.DEVNULL)
            daemon = Daemon(impl, ns, name, log_path, proc=proc)
        else:
            done = subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT, env=full_env,
                                  stdin=subprocess.DEVNULL, timeout=START_TIMEOUT_S)
            daemon = Daemon(impl, ns, name, log_path,
                            start_result=subprocess.CompletedProcess(argv, done.returncode))
    if not wait_ready:
        return daemon
    if daemon.start_result is not None and daemon.start_result.returncode != 0:
        daemon.stop()
        pytest.fail(f"`{' '.join(argv)}` exited {daemon.start_result.returncode}:\n"
                    f"{daemon.log()}")
    try:
        wait_for(lambda: _answers(daemon), f"{impl.name} to serve {name}", START_TIMEOUT_S)
    except BaseException:
        daemon.stop()
        raise
    return daemon


def _answers(daemon: Daemon) -> bool:
    if daemon.proc is not None and daemon.proc.poll() is not None:
        pytest.fail(f"{daemon.impl.name} exited {daemon.proc.returncode}:\n{daemon.log()}")
    return daemon.wg("show", daemon.ifname, check=False).returncode == 0


@contextlib.contextmanager
def daemon(impl: Impl, ns: str, name: str, workdir: Path, **kwargs: object,
           ) -> Iterator[Daemon]:
    d = start_daemon(impl, ns, name, workdir, **kwargs)  # type: ignore[arg-type]
    try:
        yield d
    except BaseException:
        print(f"---- {impl.name} {name} log ----\n{d.log()}")  # shown when a test fails
        raise
    finally:
        d.stop()


@contextlib.contextmanager
def workdir(name: str) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix=f"interop-{name}-") as d:
        path = Path(d)
        path.chmod(0o700)
        yield path
