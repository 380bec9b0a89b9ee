"""The scale figures: one daemon given tens or hundreds of thousands of peers at once.

For each peer count (10k, 100k and 250k by default; --scale-peers) and implementation, a
freshly started daemon in a namespace of its own, its interface up, is given a
configuration file with `wg setconf` from the root namespace, as a user would. Each peer has
a real X25519 public key (bench/peerkeys.py) and two allowed IPs, an IPv4 /32 and an IPv6
/128. Measured, every step bounded in time:

- the seconds `wg setconf` takes, and per peer;
- the daemon's resident memory before and after, and per peer above the idle figure;
- the seconds `wg show IFACE dump` takes (its output goes to a file and is counted);
- the daemon's own CPU time over a window of idleness with every peer configured;
- then the keepalive storm (bench/keepalive.py): every peer given an endpoint that never
  answers and a persistent keepalive, whether the initiations keep up and `wg set` answers.

A daemon that refuses the configuration (wireguard-go stops at 65,536 peers; so does pywg
today, refusing the whole file) is a result, not a failure: the figures say "refused",
after how long, and how many peers the daemon kept. A daemon that dies, or a step that
overruns its time, is a failure: reported, and that implementation's larger counts skipped.
"""

from __future__ import annotations

import base64
import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from bench import keepalive, peerkeys, sysstat
from bench.target import LABEL
from tests.harness import daemons, files, links, netns, procs
from tests.harness.daemons import Daemon
from tests.harness.impls import Impl
from tests.harness.topology import TUNNEL_MTU

Figures = dict[str, float]
LISTEN_PORT = 51820
# Peer i gets 10.128.0.0/9 + i + 1 (room for 8M) and fd80::/96 + i + 1.
PEER_NET4 = (10 << 24) | (128 << 16)
# Bounds on each step: generous (several times today's slowest), but never unbounded.
SETCONF_BASE_S = 30.0
SETCONF_PER_PEER_S = 1e-3
DUMP_BASE_S = 30.0
DUMP_PER_PEER_S = 2e-4
IDLE_SETTLE_S = 1.0
WRITE_CHUNK = 10_000
READ_CHUNK = 1 << 20
STDERR_CHARS = 200


def setconf_timeout(peers: int) -> float:
    return SETCONF_BASE_S + peers * SETCONF_PER_PEER_S


def dump_timeout(peers: int) -> float:
    return DUMP_BASE_S + peers * DUMP_PER_PEER_S


def peer_lines(index: int, public_b64: str) -> str:
    """One [Peer] section: peer `index` (from 0), its key and its two allowed IPs."""
    n4 = PEER_NET4 + index + 1
    n6 = index + 1
    return (f"\n[Peer]\nPublicKey = {public_b64}\nAllowedIPs = "
            f"{n4 >> 24}.{(n4 >> 16) & 255}.{(n4 >> 8) & 255}.{n4 & 255}/32, "
            f"fd80::{n6 >> 16:x}:{n6 & 0xFFFF:x}/128\n")


def write_config(path: Path, private: bytes, publics: list[bytes]) -> Path:
    """A wg(8) configuration file (owner-only: it holds a private key) of one peer per key."""
    files.write_private(path, f"[Interface]\nPrivateKey = {_b64(private)}\n"
                              f"ListenPort = {LISTEN_PORT}\n")
    with path.open("a", encoding="ascii") as f:
        for start in range(0, len(publics), WRITE_CHUNK):
            f.write("".join(peer_lines(i, _b64(k)) for i, k in
                            enumerate(publics[start:start + WRITE_CHUNK], start)))
    return path


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def count_lines(path: Path) -> int:
    """Newline-terminated lines in a file, read in chunks (a dump can be 100 MB)."""
    lines = 0
    with path.open("rb") as f:
        while chunk := f.read(READ_CHUNK):
            lines += chunk.count(b"\n")
    return lines


def dump_peers(lines: int) -> int:
    """Peers in `wg show IFACE dump` output of `lines` lines: the first is the interface."""
    return max(0, lines - 1)


@dataclass(frozen=True)
class Measured:
    """What one configured daemon showed; `figures()` turns it into the report's keys."""

    peers: int
    setconf_s: float
    rss_idle_kib: int | None
    rss_kib: int | None
    dump_s: float
    dump_peers: int
    idle_cpu_s: float
    idle_window_s: float
    rss_rest_kib: int | None

    def figures(self) -> Figures:
        p = f"scale{self.peers}"
        out: Figures = {
            f"{p}_setconf_s": self.setconf_s,
            f"{p}_setconf_us_per_peer": self.setconf_s / self.peers * 1e6,
            f"{p}_dump_s": self.dump_s,
            f"{p}_dump_us_per_peer": self.dump_s / self.peers * 1e6,
            f"{p}_dump_peers": float(self.dump_peers),
        }
        if self.idle_window_s > 0:
            out[f"{p}_idle_cpu_pct"] = 100.0 * self.idle_cpu_s / self.idle_window_s
        if self.rss_kib is not None:
            out[f"{p}_rss_kib"] = float(self.rss_kib)
            if self.rss_idle_kib is not None:
                out[f"{p}_rss_idle_kib"] = float(self.rss_idle_kib)
                out[f"{p}_rss_per_peer_kib"] = (self.rss_kib - self.rss_idle_kib) / self.peers
        if self.rss_rest_kib is not None:
            out[f"{p}_rss_rest_kib"] = float(self.rss_rest_kib)
        return out


def refused_figures(peers: int, after_s: float, kept: int) -> Figures:
    p = f"scale{peers}"
    return {f"{p}_refused": 1.0, f"{p}_refused_after_s": after_s, f"{p}_kept_peers": float(kept)}


@dataclass
class ScaleBench:
    """A namespace, the keys and the configuration files of one run's scale figures."""

    tag: str
    logdir: Path
    note: Callable[[str], None] = field(default=lambda _text: None)
    remark: Callable[[str], None] = field(default=lambda _text: None)
    ns: str = ""
    keys: list[bytes] = field(default_factory=list)
    configs: dict[int, Path] = field(default_factory=dict)
    storm_configs: dict[int, Path] = field(default_factory=dict)
    starts: int = 0
    _stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)
    _dir: Path | None = None

    @property
    def namespaces(self) -> list[str]:
        return [self.ns] if self.ns else []

    def setup(self, max_peers: int) -> None:
        self.ns = self._stack.enter_context(netns.namespace(name=f"{LABEL}-{self.tag}-scale"))
        self._dir = self._stack.enter_context(files.workdir("scale"))
        self.keys = peerkeys.public_keys(max_peers, self.note)

    def teardown(self) -> None:
        self._stack.close()

    def config_of(self, peers: int) -> Path:
        if self._dir is None or len(self.keys) < peers:
            raise procs.HarnessError("scale: not set up for this many peers")
        if peers not in self.configs:
            self.note(f"    writing the configuration of {peers:,} peers")
            self.configs[peers] = write_config(self._dir / f"peers{peers}.conf",
                                               os.urandom(peerkeys.KEY_LEN),
                                               self.keys[:peers])
        return self.configs[peers]

    def _daemon(self, impl: Impl) -> Daemon:
        self.starts += 1
        daemon = daemons.start(impl, self.ns, f"wgs{self.starts}{self.tag}"[:netns.IFNAME_MAX],
                               self.logdir, foreground=True)
        links.configure(self.ns, daemon.ifname, mtu=TUNNEL_MTU)
        return daemon

    def storm_config_of(self, peers: int) -> Path:
        if self._dir is None or len(self.keys) < peers:
            raise procs.HarnessError("scale: not set up for this many peers")
        if peers not in self.storm_configs:
            self.storm_configs[peers] = keepalive.write_config(
                self._dir / f"storm{peers}.conf", self.keys[:peers])
        return self.storm_configs[peers]

    def measure(self, impl: Impl, peers: int, idle_s: float, storm_s: float = 0.0) -> Figures:
        config = self.config_of(peers)
        daemon = self._daemon(impl)
        try:
            figures = self._measure(daemon, config, peers, idle_s)
            if storm_s > 0 and f"scale{peers}_refused" not in figures:
                figures |= self._storm(daemon, peers, storm_s)
            return figures
        finally:
            daemon.stop()

    def _alive(self, daemon: Daemon, step: str) -> None:
        if not daemon.alive():
            raise procs.HarnessError(f"died during {step}: {daemon.why_dead()}")

    def _measure(self, daemon: Daemon, config: Path, peers: int, idle_s: float) -> Figures:
        pid = daemon.pid
        rss_idle = sysstat.rss_kib(pid)
        started = time.perf_counter()
        done = procs.run(["wg", "setconf", daemon.ifname, str(config)],
                         setconf_timeout(peers), check=False)
        setconf_s = time.perf_counter() - started
        self._alive(daemon, f"wg setconf of {peers:,} peers")
        if done.returncode != 0:
            return self._refused(daemon, peers, setconf_s, done.returncode, done.stderr)
        rss = sysstat.rss_kib(pid)
        self.note(f"    wg setconf: {setconf_s:.2f} s ({setconf_s / peers * 1e6:.0f} µs a "
                  f"peer), RSS {_mib(rss)}")
        dump_s, shown = self._dump(daemon, peers)
        if shown != peers:
            self.remark(f"scale: {daemon.impl.name}'s dump after setconf of {peers:,} peers "
                        f"showed {shown:,}")
        self.note(f"    wg show dump: {dump_s:.2f} s ({shown:,} peers); idle for "
                  f"{idle_s:g} s")
        time.sleep(min(IDLE_SETTLE_S, idle_s))
        cpu_before = sysstat.process_cpu_s(pid)
        time.sleep(idle_s)
        idle_cpu = sysstat.process_cpu_s(pid) - cpu_before
        self._alive(daemon, "the idle window")
        measured = Measured(peers, setconf_s, rss_idle, rss, dump_s, shown, idle_cpu, idle_s,
                            sysstat.rss_kib(pid))
        self.note(f"    idle CPU: {100 * idle_cpu / idle_s:.2f}% of a core")
        return measured.figures()

    def _storm(self, daemon: Daemon, peers: int, window_s: float) -> Figures:
        config = self.storm_config_of(peers)
        self.note(f"    keepalive storm: {peers:,} endpoints and keepalives, {window_s:g} s")
        with keepalive.Storm(self.ns, daemon.ifname, config, self.keys[0]) as storm:
            before_storm, _ = keepalive.read_counts(self.ns)
            addconf_s = storm.start(peers)
            self._alive(daemon, "wg addconf of the keepalive storm")
            sent_before, keepalives_before = keepalive.read_counts(self.ns)
            cpu_before = sysstat.process_cpu_s(daemon.pid)
            started = time.perf_counter()
            probes = storm.probes(window_s)
            window = time.perf_counter() - started
            cpu = sysstat.process_cpu_s(daemon.pid) - cpu_before
            sent, keepalives = keepalive.read_counts(self.ns)
        self._alive(daemon, "the keepalive storm")
        figures = keepalive.window_figures(f"scale{peers}", peers, window, sent - sent_before,
                                           keepalives - keepalives_before, cpu, probes)
        figures[f"scale{peers}_ka_addconf_s"] = addconf_s
        # Every peer's first initiation, from wg addconf on (the JSON keeps it: a check).
        figures[f"scale{peers}_ka_initiations_total"] = float(sent - before_storm)
        self.note(f"    wg addconf {addconf_s:.2f} s; "
                  f"{figures[f'scale{peers}_ka_initiations_per_s']:,.0f} initiations/s "
                  f"({figures[f'scale{peers}_ka_owed_pct']:.0f}% of owed), CPU "
                  f"{figures[f'scale{peers}_ka_cpu_pct']:.0f}%, wg set up to "
                  f"{figures.get(f'scale{peers}_ka_set_max_ms', 0):.0f} ms")
        return figures

    def _dump(self, daemon: Daemon, peers: int) -> tuple[float, int]:
        """Seconds `wg show IFACE dump` takes, output to a file; and the peers it listed."""
        assert self._dir is not None
        out = self._dir / "dump.txt"
        try:
            with out.open("wb") as sink:
                os.chmod(out, files.PRIVATE_FILE_MODE)  # its first line is the private key
                started = time.perf_counter()
                code = _run_to(["wg", "show", daemon.ifname, "dump"], sink,
                               dump_timeout(peers))
                seconds = time.perf_counter() - started
            if code != 0:
                raise procs.HarnessError(f"`wg show {daemon.ifname} dump` exited {code}")
            return seconds, dump_peers(count_lines(out))
        finally:
            out.unlink(missing_ok=True)

    def _refused(self, daemon: Daemon, peers: int, after_s: float, code: int,
                 stderr: str) -> Figures:
        _, kept = self._dump(daemon, peers)
        why = refusal_text(code, stderr)
        self.note(f"    refused after {after_s:.2f} s ({why}); kept {kept:,} peers")
        self.remark(f"scale: {daemon.impl.name} refused {peers:,} peers (wg setconf {why}) "
                    f"and kept {kept:,}")
        return refused_figures(peers, after_s, kept)


def refusal_text(code: int, stderr: str) -> str:
    """How `wg setconf` failed, in a few words: its exit status and the start of what it
    said. wireguard-go closes the socket on an error, and wg, still writing, dies of SIGPIPE."""
    said = " ".join(stderr.split())[:STDERR_CHARS]
    if code < 0:
        try:
            status = f"killed by {signal.Signals(-code).name}"
        except ValueError:
            status = f"killed by signal {-code}"
    else:
        status = f"exited {code}"
    return f"{status}: {said}" if said else status


def _run_to(cmd: list[str], sink: IO[bytes], timeout: float) -> int:
    """Runs cmd with its output into sink (not through Python: its speed is what is timed),
    bounded by timeout; returns its exit code."""
    try:
        return subprocess.run(cmd, stdout=sink, stderr=subprocess.DEVNULL,
                              stdin=subprocess.DEVNULL, timeout=timeout, check=False).returncode
    except subprocess.TimeoutExpired as exc:
        raise procs.CommandError(f"`{' '.join(cmd)}`: no exit after {timeout:.0f} s") from exc


def _mib(kib: int | None) -> str:
    return "unknown" if kib is None else f"{kib / 1024:.0f} MiB"
