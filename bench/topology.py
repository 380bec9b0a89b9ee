"""A measured path: a veth pair with nothing on it, or with a WireGuard daemon on each side.

Daemons are started as `ip netns exec NS BINARY -f IFNAME`; `ip netns exec` execs, so the
PID we hold is the daemon's own, which is what /proc/PID/stat and perf need. The UAPI socket
directory /var/run/wireguard is shared by every namespace, so interface names carry the
run's random suffix and `wg` is run from the root namespace (it finds the socket by name).
"""

from __future__ import annotations

import base64
import os
import stat
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import nacl.public

from bench import procs
from bench.impls import Impl
from bench.netns import OUTER_A, OUTER_B, NetnsPair, ip

UAPI_DIR = Path("/var/run/wireguard")
LISTEN_PORT = 51820
INNER_A = "10.202.0.1"
INNER_B = "10.202.0.2"
INNER_PREFIX = 24
TUNNEL_MTU = 1420
IPERF_PORT = 5201
DAEMON_START_TIMEOUT_S = 15.0
SETCONF_TIMEOUT_S = 120.0
# A first ping can be lost while the handshake completes; retry within this budget.
WARMUP_BUDGET_S = 12.0


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def keypair() -> tuple[bytes, bytes]:
    """A fresh X25519 (private, public) pair. Bench keys are throwaway and never printed."""
    key = nacl.public.PrivateKey.generate()
    return bytes(key), bytes(key.public_key)


def _log_tail(path: Path, lines: int = 5) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        text = ""
    return " | ".join(text.strip().splitlines()[-lines:]) or "(no output)"


@dataclass
class Daemon:
    """One implementation's daemon serving one interface in one namespace."""

    impl: Impl
    ifname: str
    netns: str
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise procs.BenchError(f"{self.ifname}: daemon not started")
        return self.proc.pid

    def start(self) -> None:
        cmd = ["ip", "netns", "exec", self.netns, *self.impl.daemon_cmd(self.ifname)]
        self.proc = procs.start(cmd, self.log)
        sock = UAPI_DIR / f"{self.ifname}.sock"
        ready = procs.wait_for(lambda: sock.exists() or not self.alive(), DAEMON_START_TIMEOUT_S)
        if not ready or not self.alive():
            exited = self.proc.poll()
            self.stop()
            why = f"exited ({exited})" if ready else f"no {sock} after " \
                f"{DAEMON_START_TIMEOUT_S:.0f} s"
            raise procs.BenchError(f"{self.impl.name} on {self.ifname}: {why}; "
                                   f"log: {_log_tail(self.log)}")
        ip("-n", self.netns, "link", "set", self.ifname, "mtu", str(TUNNEL_MTU), "up")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def why_dead(self) -> str:
        code = self.proc.returncode if self.proc is not None else None
        return f"{self.impl.name} on {self.ifname} exited ({code}); log: {_log_tail(self.log)}"

    def setconf(self, config: str) -> float:
        """Applies a wg(8) configuration through the UAPI; returns the seconds it took."""
        return setconf(self.ifname, config)

    def stop(self) -> None:
        if self.proc is not None:
            procs.stop(self.proc)


def setconf(ifname: str, config: str) -> float:
    with tempfile.TemporaryDirectory(prefix="pwbench-") as tmp:
        path = Path(tmp) / "wg.conf"
        # The file holds a private key: create it readable by its owner only.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, stat.S_IRUSR | stat.S_IWUSR)
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(config)
        started = time.perf_counter()
        procs.run(["wg", "setconf", ifname, str(path)], SETCONF_TIMEOUT_S)
        return time.perf_counter() - started


def tunnel_config(private: bytes, peer_public: bytes, endpoint: str, allowed: str) -> str:
    return (f"[Interface]\nPrivateKey = {b64(private)}\nListenPort = {LISTEN_PORT}\n\n"
            f"[Peer]\nPublicKey = {b64(peer_public)}\nEndpoint = {endpoint}:{LISTEN_PORT}\n"
            f"AllowedIPs = {allowed}/32\n")


@dataclass
class Topology:
    """A netns pair, optionally with a daemon per side, and an iperf3 server in ns B."""

    name: str
    tag: str
    left: Impl | None
    right: Impl | None
    logdir: Path
    pair: NetnsPair = field(init=False)
    daemons: list[Daemon] = field(default_factory=list)
    iperf: subprocess.Popen[bytes] | None = None
    error: str = ""

    def __post_init__(self) -> None:
        self.pair = NetnsPair(self.tag)

    @property
    def tunnel(self) -> bool:
        return self.left is not None and self.right is not None

    @property
    def server_addr(self) -> str:
        return INNER_B if self.tunnel else OUTER_B

    @property
    def pids(self) -> list[int]:
        return [d.pid for d in self.daemons]

    def setup(self) -> None:
        self.pair.create()
        if self.left is not None and self.right is not None:
            self._start_tunnel(self.left, self.right)
        self._warm_up()
        self.start_iperf_server()

    def _start_tunnel(self, left: Impl, right: Impl) -> None:
        a = Daemon(left, f"wga{self.tag}", self.pair.name_a, self.logdir / f"wga{self.tag}.log")
        b = Daemon(right, f"wgb{self.tag}", self.pair.name_b, self.logdir / f"wgb{self.tag}.log")
        for d in (a, b):
            d.start()
            self.daemons.append(d)
        priv_a, pub_a = keypair()
        priv_b, pub_b = keypair()
        a.setconf(tunnel_config(priv_a, pub_b, OUTER_B, INNER_B))
        b.setconf(tunnel_config(priv_b, pub_a, OUTER_A, INNER_A))
        ip("-n", self.pair.name_a, "addr", "add", f"{INNER_A}/{INNER_PREFIX}", "dev", a.ifname)
        ip("-n", self.pair.name_b, "addr", "add", f"{INNER_B}/{INNER_PREFIX}", "dev", b.ifname)

    def _warm_up(self) -> None:
        """Pings until one answer comes back: proves the path works and completes the handshake."""
        deadline = time.monotonic() + WARMUP_BUDGET_S
        while time.monotonic() < deadline:
            done = procs.run(self.pair.exec_a("ping", "-c", "1", "-W", "1", "-n",
                                              self.server_addr), 5.0, check=False)
            if done.returncode == 0:
                return
            self.check_alive()
        raise procs.BenchError(f"{self.name}: no ping reply within {WARMUP_BUDGET_S:.0f} s")

    def start_iperf_server(self) -> None:
        if self.iperf is not None:
            procs.stop(self.iperf)
        self.iperf = procs.start(self.pair.exec_b("iperf3", "-s", "-p", str(IPERF_PORT)),
                                 self.logdir / f"iperf3-{self.tag}.log")
        pid = self.iperf.pid
        if not procs.wait_for(lambda: _listening(pid, IPERF_PORT), 10.0):
            raise procs.BenchError(f"{self.name}: iperf3 server did not start listening")

    def check_alive(self) -> None:
        for d in self.daemons:
            if not d.alive():
                raise procs.BenchError(d.why_dead())

    def teardown(self) -> None:
        if self.iperf is not None:
            procs.stop(self.iperf)
            self.iperf = None
        for d in self.daemons:
            d.stop()


def _listening(pid: int, port: int) -> bool:
    """Whether the namespace of pid has a TCP socket listening on port (state 0A)."""
    want = f":{port:04X}"
    for table in ("tcp", "tcp6"):
        try:
            with open(f"/proc/{pid}/net/{table}", encoding="ascii") as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        if any(r.split()[1].endswith(want) and r.split()[3] == "0A" for r in rows):
            return True
    return False
