"""The gateway figure: one gateway serving 8 clients, one TCP stream each, all at once.

```
   ns c1  tunnel 10.72.0.2  ─┐
   ns c2  tunnel 10.72.0.3  ─┼── a veth each ──  ns hub  tunnel 10.72.0.1, 8 peers,
   ...                       │                          8 iperf3 servers (ports 5201-5208)
   ns c8  tunnel 10.72.0.9  ─┘
```

tests/harness's star topology. The gateway (hub) runs the implementation measured; every
client runs one and the same implementation whatever the gateway (the newest wireguard-go
when present, else Debian's; --gateway-clients), so that only the gateway differs. "up" is
every client sending to the gateway, "down" (iperf3 -R) the gateway sending to every client;
each client runs its own iperf3, all started together, for as long as the two-peer
throughput figures run. Figures: the sum of the streams' rates, the slowest stream, and per
GB received the whole system's busy CPU time, the gateway daemon's own and the clients'.

On a machine whose cores the clients share with the gateway, the clients' own cost caps the
aggregate whatever the gateway: the "ceiling" is what all the cores could carry at the CPU per
GB that was not the gateway daemon's, the aggregate of a gateway that cost nothing. A gateway
ratio can only reach a two-peer margin where that ceiling leaves room for it.
"""

from __future__ import annotations

import contextlib
import functools
import os
import statistics
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import sysstat, traffic
from bench.target import IPERF_PORT, LABEL, WARMUP_BUDGET_S
from tests.harness import netns, procs, topology, wait
from tests.harness.daemons import Daemon
from tests.harness.impls import Impl
from tests.harness.probes import listening
from tests.harness.topology import Node, Topology

Figures = dict[str, float]
IPERF_START_TIMEOUT_S = 10.0
BITS_PER_BYTE = 8


def gateway_figures(ends: list[dict[str, Any]], system_s: float, gateway_s: float,
                    clients_s: float, prefix: str, cores: int = 0) -> Figures:
    """iperf3 `end` sections of the streams run at once, and the CPU seconds spent meanwhile
    (whole system, gateway daemon, client daemons), -> the figures under prefix; with the
    machine's `cores`, also the ceiling that the rest of the system leaves a gateway."""
    if not ends:
        raise procs.HarnessError("gateway: no streams")
    rates = []
    nbytes = 0
    retransmits = 0.0
    for end in ends:
        received = traffic.section(end, "sum_received")
        rates.append(traffic.number(received, "bits_per_second") / 1e9)
        nbytes += int(traffic.number(received, "bytes"))
        retransmits += traffic.number(traffic.section(end, "sum_sent"), "retransmits", 0)
    out: Figures = {
        f"{prefix}_gbps": sum(rates),
        f"{prefix}_stream_min_gbps": min(rates),
        f"{prefix}_stream_max_gbps": max(rates),
        f"{prefix}_stream_median_gbps": statistics.median(rates),
        f"{prefix}_retransmits": retransmits,
    }
    if nbytes > 0:
        gb = nbytes / 1e9
        out[f"{prefix}_cpu_sys_s_per_gb"] = system_s / gb
        out[f"{prefix}_cpu_gateway_s_per_gb"] = gateway_s / gb
        out[f"{prefix}_cpu_clients_s_per_gb"] = clients_s / gb
        rest_s_per_gb = (system_s - gateway_s) / gb
        if cores > 0 and rest_s_per_gb > 0:
            out[f"{prefix}_ceiling_gbps"] = cores / rest_s_per_gb * BITS_PER_BYTE
    return out


@dataclass
class Gateway:
    """A star with `impl` at the hub and `clients` everywhere else; iperf3 servers at the hub."""

    impl: Impl
    clients: Impl
    count: int
    tag: str
    logdir: Path
    net: Topology | None = None
    servers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    namespaces: list[str] = field(default_factory=list)

    @property
    def star(self) -> Topology:
        if self.net is None:
            raise procs.HarnessError(f"gateway {self.impl.name}: not set up")
        return self.net

    @property
    def hub(self) -> Node:
        return self.star.nodes["hub"]

    def client_nodes(self) -> list[Node]:
        return [n for n in self.star.nodes.values() if n.name != "hub"]

    @property
    def gateway_daemon(self) -> Daemon:
        return self.hub.daemon

    def setup(self) -> None:
        self.net = topology.star(LABEL, self.logdir, self.count, self.tag)
        self.namespaces = self.net.namespaces()
        self.net.start_daemon(self.hub, self.impl, foreground=True)
        for node in self.client_nodes():
            self.net.start_daemon(node, self.clients, foreground=True)
        self.net.configure()
        for node in self.client_nodes():
            self._warm_up(node)
        self.start_servers()

    def _warm_up(self, node: Node) -> None:
        """Pings the gateway from node until it answers (which completes their handshake)."""
        def answered() -> bool:
            done = procs.run(netns.exec_argv(node.ns, ["ping", "-c", "1", "-W", "1", "-n",
                                                       self.hub.inner4]), 5.0, check=False)
            if done.returncode != 0:
                self.check_alive()
            return done.returncode == 0

        if not wait.poll(answered, WARMUP_BUDGET_S, interval=0.0):
            raise procs.HarnessError(f"gateway {self.impl.name}: {node.name} got no ping "
                                     f"reply within {WARMUP_BUDGET_S:.0f} s")

    def start_servers(self) -> None:
        self.stop_servers()
        for i in range(self.count):
            port = IPERF_PORT + i
            server = procs.start(netns.exec_argv(self.hub.ns, ["iperf3", "-s", "-p", str(port)]),
                                 self.logdir / f"iperf3-gw-{self.tag}-{i}.log")
            self.servers.append(server)
            if not wait.poll(functools.partial(listening, server.pid, port),
                             IPERF_START_TIMEOUT_S):
                raise procs.HarnessError(f"gateway {self.impl.name}: iperf3 server on port "
                                         f"{port} did not start listening")

    def stop_servers(self) -> None:
        for server in self.servers:
            procs.stop(server)
        self.servers.clear()

    def check_alive(self) -> None:
        for d in self.star.daemons():
            if not d.alive():
                raise procs.HarnessError(d.why_dead())

    def teardown(self) -> None:
        self.stop_servers()
        if self.net is not None:
            self.net.close()

    # ---- the measurement --------------------------------------------------------------

    def measure(self, length: traffic.Length, direction: str) -> Figures:
        """All clients' streams at once, `direction` "up" or "down"; retried once with fresh
        servers should a stream fail (a failed test can leave a server busy)."""
        prefix = f"gw{self.count}_{direction}"
        for attempt in (1, 2):
            try:
                out = self._streams(length, direction == "down", prefix)
                rss = sysstat.rss_kib(self.gateway_daemon.pid)
                if rss is not None:
                    out[f"gw{self.count}_rss_kib"] = float(rss)
                return out
            except procs.HarnessError:
                self.check_alive()
                if attempt == 2:
                    raise
                self.start_servers()
        raise AssertionError("unreachable")

    def _streams(self, length: traffic.Length, reverse: bool, prefix: str) -> Figures:
        gateway_pid = self.gateway_daemon.pid
        client_pids = [n.daemon.pid for n in self.client_nodes()]
        outputs = [self.logdir / f"gw-{self.tag}-{prefix}-{n.name}.json"
                   for n in self.client_nodes()]
        for path in outputs:
            path.unlink(missing_ok=True)  # iperf3 appends to its --logfile
        system = -sysstat.system_busy_s()
        gateway = -sysstat.process_cpu_s(gateway_pid)
        clients = -sum(sysstat.process_cpu_s(p) for p in client_pids)
        streams = [procs.start(netns.exec_argv(node.ns, [
            "iperf3", "-c", self.hub.inner4, "-p", str(IPERF_PORT + i), *length.args(), "-J",
            "--connect-timeout", str(traffic.CONNECT_TIMEOUT_MS), "--logfile", str(out),
            *(["-R"] if reverse else [])]), self.logdir / f"gw-{self.tag}-iperf3.log")
            for i, (node, out) in enumerate(zip(self.client_nodes(), outputs, strict=True))]
        try:
            _wait_all(streams, length.timeout())
        finally:
            for p in streams:
                procs.stop(p)
        system += sysstat.system_busy_s()
        gateway += sysstat.process_cpu_s(gateway_pid)
        clients += sum(sysstat.process_cpu_s(p) for p in client_pids)
        ends = [traffic.parse_iperf(_read(path)) for path in outputs]
        return gateway_figures(ends, system, gateway, clients, prefix, os.cpu_count() or 0)


def _wait_all(started: list[subprocess.Popen[bytes]], timeout: float) -> None:
    """Waits for every process, all within one timeout; a HarnessError if any overruns."""
    def done() -> bool:
        return all(p.poll() is not None for p in started)

    if not wait.poll(done, timeout):
        raise procs.HarnessError(f"gateway: iperf3 clients still running after {timeout:.0f} s")


def _read(path: Path) -> str:
    with contextlib.suppress(OSError):
        return path.read_text(encoding="utf-8", errors="replace")
    return ""
