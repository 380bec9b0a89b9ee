"""Daemons: one implementation serving one interface in one namespace, started as wg-quick
(background) or a supervisor (foreground, `-f`) starts it, stopped leaving nothing behind.

A background daemon re-execs itself, so the PID that was started is gone; its processes are
found by their command line instead, which names both the implementation and the interface,
and the interface name is unique to this run: a process naming both is ours, and only ours
are ever signalled. The output goes to a log file, never a pipe: a re-exec'd child may hold
a pipe open for ever.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.harness import links, netns, procs, wait, wg
from tests.harness.impls import Impl
from tests.harness.wg import Dump, KeyPair

SOCKET_DIR = Path("/var/run/wireguard")
UAPI_TIMEOUT_S = 10.0
START_TIMEOUT_S = 20.0
EXIT_TIMEOUT_S = 10.0
LOG_TAIL_LINES = 5
# Variables that change how an implementation starts: never inherited from whoever runs us.
CONTRACT_ENV = ("WG_TUN_FD", "WG_UAPI_FD", "WG_PROCESS_FOREGROUND", "LOG_LEVEL",
                "PYWG_TIMING_SCALE")


def socket_path(ifname: str) -> Path:
    return SOCKET_DIR / f"{ifname}.sock"


def clean_env(**extra: str) -> dict[str, str]:
    """Our environment without the contract's variables (PYWG_DISABLE_OFFLOADS, PYWG_AEAD
    and the like pass through: a whole run may ask for them), plus extra."""
    env = {k: v for k, v in os.environ.items() if k not in CONTRACT_ENV}
    env.update(extra)
    return env


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


def daemon_pids(impl: Impl, ifname: str) -> list[int]:
    """The processes of impl serving ifname, found by their command line."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        argv = _cmdline(int(entry.name))
        if ifname in argv[1:] and impl.process_names & {os.path.basename(a) for a in argv}:
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
    start_result: subprocess.CompletedProcess[str] | None = None  # background only
    keys: KeyPair = field(default_factory=KeyPair.generate)
    _forget: Callable[[], None] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.link_ns = self.link_ns or self.ns
        # The backstop, should whoever made it never stop it: `procs.cleanup()` will.
        self._forget = procs.defer(f"daemon {self.ifname}", self.stop)

    def pids(self) -> list[int]:
        return daemon_pids(self.impl, self.ifname)

    @property
    def pid(self) -> int:
        """The daemon's PID (for /proc and perf): the started one in the foreground."""
        if self.proc is not None:
            return self.proc.pid
        found = self.pids()
        if len(found) != 1:
            raise procs.HarnessError(f"{self.ifname}: {len(found)} processes, not one")
        return found[0]

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def alive(self) -> bool:
        # In the foreground the process started is the daemon: it neither forks nor re-execs.
        if self.proc is not None:
            return self.proc.poll() is None
        return any(pid_alive(p) for p in self.pids())

    def why_dead(self) -> str:
        code = self.proc.returncode if self.proc is not None else None
        tail = " | ".join(self.log().strip().splitlines()[-LOG_TAIL_LINES:]) or "(no output)"
        return f"{self.impl.name} on {self.ifname} exited ({code}); log: {tail}"

    def wg(self, *args: str, check: bool = True, input: str | None = None,
           quiet: bool = False) -> subprocess.CompletedProcess[str]:
        return wg.wg(self.link_ns, *args, check=check, input=input, quiet=quiet)

    def dump(self) -> Dump:
        return wg.dump(self.link_ns, self.ifname)

    def set_private_key(self) -> None:
        wg.set_private_key(self.link_ns, self.ifname, self.keys)

    def uapi_get(self) -> dict[str, str]:
        """The device's own keys (those before the first peer) of a raw UAPI `get`, where
        pywg adds its pywg_* counters, which wg(8) does not show."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(UAPI_TIMEOUT_S)
            s.connect(str(socket_path(self.ifname)))
            s.sendall(b"get=1\n\n")
            reply = b""
            while not reply.endswith(b"\n\n"):
                chunk = s.recv(1 << 16)
                if not chunk:
                    break
                reply += chunk
        keys: dict[str, str] = {}
        for line in reply.decode().splitlines():
            key, _, value = line.partition("=")
            if key == "public_key":
                break
            keys[key] = value
        return keys

    def answers(self) -> bool:
        """Whether its UAPI socket exists and `wg show` gets an answer through it."""
        return socket_path(self.ifname).exists() and self.wg(
            "show", self.ifname, check=False, quiet=True).returncode == 0

    def wait_exit(self, timeout: float = EXIT_TIMEOUT_S) -> bool:
        def gone() -> bool:
            if self.proc is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.proc.wait(timeout=wait.POLL_S)
            return not self.alive() and (self.proc is None or self.proc.poll() is not None)

        return bool(wait.poll(gone, timeout))

    def leftovers(self) -> list[str]:
        """What of this daemon is still there: processes, its socket, its interface."""
        left = [f"process {p}" for p in self.pids() if pid_alive(p)]
        if socket_path(self.ifname).exists():
            left.append(f"socket {socket_path(self.ifname)}")
        if links.exists(self.link_ns, self.ifname):
            left.append(f"interface {self.ifname} in {self.link_ns}")
        return left

    def stop(self) -> None:
        """Delete the interface, let the daemon exit, then make sure it has."""
        netns.run(self.link_ns, ["ip", "link", "del", "dev", self.ifname], check=False)
        if not self.wait_exit():
            for sig in (signal.SIGTERM, signal.SIGKILL):
                for pid in self.pids():
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, sig)
                if self.wait_exit():
                    break
        if self.proc is not None:
            procs.stop(self.proc)
        if not self.alive():
            # Only our own, uniquely named socket, and only once nobody serves it.
            with contextlib.suppress(FileNotFoundError):
                socket_path(self.ifname).unlink()
        if self._forget is not None:
            self._forget()
            self._forget = None


def start(impl: Impl, ns: str, ifname: str, logdir: Path, *, foreground: bool = False,
          flag: str = "-f", env: dict[str, str] | None = None,
          wait_ready: bool = True) -> Daemon:
    """Starts impl for interface ifname in namespace ns; returns once `wg` reaches it.

    Background (the default, as wg-quick starts it): the command must return 0 with the TUN
    and the socket ready. Foreground: the process keeps running, and keeps its PID (`ip
    netns exec` execs). Either way the wait for the socket is bounded.
    """
    logdir.mkdir(parents=True, exist_ok=True)
    log_path = logdir / f"{ifname}.log"
    argv = netns.exec_argv(ns, [*impl.argv, *([flag] if foreground else []), ifname])
    full_env = clean_env(**(env or {}))
    procs.announce(argv)
    if foreground:
        proc = procs.start(argv, log_path, env=full_env)
        daemon = Daemon(impl, ns, ifname, log_path, proc=proc)
    else:
        with open(log_path, "ab") as log:
            done = subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT, env=full_env,
                                  stdin=subprocess.DEVNULL, timeout=START_TIMEOUT_S,
                                  check=False)
        daemon = Daemon(impl, ns, ifname, log_path,
                        start_result=subprocess.CompletedProcess(argv, done.returncode))
    if wait_ready:
        _wait_ready(daemon)
    return daemon


def _wait_ready(daemon: Daemon) -> None:
    try:
        result = daemon.start_result
        if result is not None and result.returncode != 0:
            raise procs.HarnessError(f"`{' '.join(result.args)}` exited {result.returncode}:"
                                     f"\n{daemon.log()}")

        def ready() -> bool:
            if daemon.proc is not None and daemon.proc.poll() is not None:
                raise procs.HarnessError(daemon.why_dead())
            return daemon.answers()

        wait.wait_for(ready, f"{daemon.impl.name} to serve {daemon.ifname}", START_TIMEOUT_S)
    except BaseException:
        daemon.stop()
        raise


@contextlib.contextmanager
def running(impl: Impl, ns: str, ifname: str, logdir: Path, **kwargs: object,
            ) -> Iterator[Daemon]:
    """A started daemon for the body; its log printed if the body fails (pytest shows what
    a failed test printed), and stopped whatever happens."""
    d = start(impl, ns, ifname, logdir, **kwargs)  # type: ignore[arg-type]
    try:
        yield d
    except BaseException:
        print(f"---- {impl.name} {ifname} log ----\n{d.log()}")
        raise
    finally:
        d.stop()
