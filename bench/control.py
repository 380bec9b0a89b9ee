"""Control-plane figures: handshakes a responder completes, cookie replies under a flood,
and the time and memory to take a configuration of thousands of peers through the UAPI.

Every measurement gets a freshly started daemon (so one figure's state never leaks into the
next) in ns b of a netns pair (tests/harness) kept for the whole run; the load generator runs
in ns a. Keys here are raw X25519 bytes made in-process: the load generator needs thousands.
Configurations are generated once per run and given to every implementation unchanged.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import nacl.public

from bench import sysstat
from bench.target import LABEL
from tests.harness import daemons, links, netns, procs, topology, wg
from tests.harness.daemons import Daemon
from tests.harness.impls import REPO, Impl
from tests.harness.topology import TUNNEL_MTU, Topology

# Peers of the big configurations get one /32 each from here (a /9: room for 8M peers).
CONFIG_PEER_NET = ipaddress.IPv4Network("10.128.0.0/9")
HS_WINDOW = 32
HS_TIMEOUT_S = 1.0
HS_SLACK_S = 60.0
LISTEN_PORT = 51820

Figures = dict[str, float]


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def keypair() -> tuple[bytes, bytes]:
    """A fresh X25519 (private, public) pair. Bench keys are throwaway and never printed."""
    key = nacl.public.PrivateKey.generate()
    return bytes(key), bytes(key.public_key)


def big_config(private: bytes, peers: list[bytes]) -> str:
    """A wg(8) configuration with one peer per public key, each allowed one /32."""
    lines = ["[Interface]", f"PrivateKey = {b64(private)}", f"ListenPort = {LISTEN_PORT}"]
    base = int(CONFIG_PEER_NET.network_address)
    for i, public in enumerate(peers):
        lines += ["", "[Peer]", f"PublicKey = {b64(public)}",
                  f"AllowedIPs = {ipaddress.IPv4Address(base + i + 1)}/32"]
    return "\n".join(lines) + "\n"


@dataclass
class ControlBench:
    """The netns pair and generated material for the control-plane figures of one run."""

    tag: str
    logdir: Path
    net: Topology | None = None
    namespaces: list[str] = field(default_factory=list)
    configs: dict[int, str] = field(default_factory=dict)
    starts: int = 0

    def setup(self) -> None:
        self.net = topology.pair(LABEL, self.logdir, self.tag)
        self.namespaces = self.net.namespaces()

    def teardown(self) -> None:
        if self.net is not None:
            self.net.close()

    @property
    def pair(self) -> Topology:
        if self.net is None:
            raise procs.HarnessError("control-plane namespaces: not set up")
        return self.net

    def _daemon(self, impl: Impl) -> Daemon:
        """A fresh daemon in ns b, its interface up (as a tunnel's would be), unconfigured."""
        self.starts += 1
        ns = self.pair.b.ns
        daemon = daemons.start(impl, ns, f"wgc{self.starts}{self.tag}"[:netns.IFNAME_MAX],
                               self.logdir, foreground=True)
        links.configure(ns, daemon.ifname, mtu=TUNNEL_MTU)
        return daemon

    def config_of(self, size: int) -> str:
        if size not in self.configs:
            # Any 32 bytes are a usable X25519 public key, and these peers never handshake.
            self.configs[size] = big_config(keypair()[0], [os.urandom(32) for _ in range(size)])
        return self.configs[size]

    def apply_config(self, impl: Impl, size: int) -> Figures:
        """Seconds for `wg setconf` of `size` peers on a running daemon; RSS around it."""
        config = self.config_of(size)
        daemon = self._daemon(impl)
        try:
            idle = sysstat.rss_kib(daemon.pid)
            seconds = wg.setconf(None, daemon.ifname, config)
            after = sysstat.rss_kib(daemon.pid)
            if not daemon.alive():
                raise procs.HarnessError(daemon.why_dead())
        finally:
            daemon.stop()
        out: Figures = {f"config{size}_apply_s": seconds}
        if idle is not None and after is not None:
            out["rss_fresh_kib"] = float(idle)
            out[f"config{size}_rss_kib"] = float(after)
        return out

    def handshakes(self, impl: Impl, peers: int, count: int, duration: float,
                   flood_count: int, flood_duration: float) -> Figures:
        """Runs the load generator against a fresh responder that knows all its peers."""
        privates: list[bytes] = []
        publics: list[bytes] = []
        for _ in range(peers):
            private, public = keypair()
            privates.append(private)
            publics.append(public)
        responder_private, responder_public = keypair()
        daemon = self._daemon(impl)
        try:
            wg.setconf(None, daemon.ifname, big_config(responder_private, publics))
            result = self._generate(responder_public, privates, count, duration,
                                    flood_count, flood_duration)
            rss = sysstat.rss_kib(daemon.pid)
            if not daemon.alive():
                raise procs.HarnessError(daemon.why_dead())
        finally:
            daemon.stop()
        return _handshake_figures(result, rss)

    def _generate(self, responder_public: bytes, privates: list[bytes], count: int,
                  duration: float, flood_count: int, flood_duration: float) -> dict[str, object]:
        spec = {"host": self.pair.b.outer4, "port": LISTEN_PORT,
                "responder_public": responder_public.hex(),
                "peer_privates": [k.hex() for k in privates],
                "closed": {"count": count, "window": HS_WINDOW, "duration": duration,
                           "timeout": HS_TIMEOUT_S},
                "flood": {"count": flood_count, "duration": flood_duration}}
        cmd = netns.exec_argv(self.pair.a.ns, ["env", f"PYTHONPATH={REPO}", sys.executable,
                                               "-m", "bench.hsload"])
        done = procs.run(cmd, duration + flood_duration + HS_SLACK_S, input=json.dumps(spec))
        try:
            result = json.loads(done.stdout)
        except json.JSONDecodeError as exc:
            raise procs.HarnessError(f"hsload printed no JSON: {done.stderr[-300:]}") from exc
        if not isinstance(result, dict):
            raise procs.HarnessError("hsload output is not an object")
        return result


def _num(section: object, key: str) -> float:
    value = section.get(key, 0.0) if isinstance(section, dict) else 0.0
    return float(value) if isinstance(value, int | float) else 0.0


def _handshake_figures(result: dict[str, object], rss: int | None) -> Figures:
    closed, flood = result.get("closed"), result.get("flood")
    out: Figures = {
        "hs_per_s": _num(closed, "handshakes_per_s"),
        "hs_lost": _num(closed, "lost"),
        "hs_bad_replies": _num(closed, "bad"),
        "hs_spacing_waits": _num(closed, "peer_spacing_waits"),
    }
    if flood is not None:
        out.update({
            "flood_sent_per_s": _num(flood, "sent_per_s"),
            "flood_hs_per_s": _num(flood, "handshakes_per_s"),
            "flood_cookies_per_s": _num(flood, "cookies_per_s"),
        })
    if rss is not None:
        out["hs_rss_kib"] = float(rss)
    return out
