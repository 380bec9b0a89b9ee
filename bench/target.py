"""A measured path: two namespaces joined by a veth (tests/harness's pair), with nothing on
it or with a WireGuard daemon on each side, and an iperf3 server in ns B.

```
   ns a                                         ns b
   veth 10.71.0.1/24   <---- veth pair ---->    veth 10.71.0.2/24     outer MTU 1500
   [tunnel 10.72.0.1]                           [tunnel 10.72.0.2]    MTU 1420
```

Daemons run in the foreground (`BINARY -f IFNAME`): the PID we hold is the daemon's own,
which is what /proc/PID/stat and perf need. Every target has its own namespaces, so all
use the same addresses; names carry the run's random tag.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from tests.harness import netns, procs, topology, wait
from tests.harness.daemons import Daemon
from tests.harness.impls import Impl
from tests.harness.probes import listening
from tests.harness.topology import Topology

LABEL = "pwbench"
IPERF_PORT = 5201
IPERF_START_TIMEOUT_S = 10.0
# A first ping can be lost while the handshake completes; retry within this budget.
WARMUP_BUDGET_S = 12.0


@dataclass
class Target:
    """A netns pair, optionally with a daemon per side, and an iperf3 server in ns b."""

    name: str
    tag: str
    left: Impl | None
    right: Impl | None
    logdir: Path
    net: Topology | None = None
    iperf: subprocess.Popen[bytes] | None = None
    error: str = ""
    namespaces: list[str] = field(default_factory=list)

    @property
    def tunnel(self) -> bool:
        return self.left is not None and self.right is not None

    @property
    def pair(self) -> Topology:
        if self.net is None:
            raise procs.HarnessError(f"{self.name}: not set up")
        return self.net

    @property
    def server_addr(self) -> str:
        b = self.pair.b
        return b.inner4 if self.tunnel else b.outer4

    @property
    def daemons(self) -> list[Daemon]:
        return self.net.daemons() if self.net is not None else []

    @property
    def pids(self) -> list[int]:
        return [d.pid for d in self.daemons]

    def exec_a(self, *cmd: str) -> list[str]:
        return netns.exec_argv(self.pair.a.ns, cmd)

    def exec_b(self, *cmd: str) -> list[str]:
        return netns.exec_argv(self.pair.b.ns, cmd)

    def setup(self) -> None:
        self.net = topology.pair(LABEL, self.logdir, self.tag)
        self.namespaces = self.net.namespaces()
        if self.left is not None and self.right is not None:
            for node, impl in ((self.net.a, self.left), (self.net.b, self.right)):
                self.net.start_daemon(node, impl, foreground=True)
            self.net.configure()
        self._warm_up()
        self.start_iperf_server()

    def _warm_up(self) -> None:
        """Pings until one answer comes back: proves the path works and completes the handshake."""
        def answered() -> bool:
            done = procs.run(self.exec_a("ping", "-c", "1", "-W", "1", "-n", self.server_addr),
                             5.0, check=False)
            if done.returncode != 0:
                self.check_alive()
            return done.returncode == 0

        if not wait.poll(answered, WARMUP_BUDGET_S, interval=0.0):
            raise procs.HarnessError(f"{self.name}: no ping reply within "
                                     f"{WARMUP_BUDGET_S:.0f} s")

    def start_iperf_server(self) -> None:
        if self.iperf is not None:
            procs.stop(self.iperf)
        self.iperf = procs.start(self.exec_b("iperf3", "-s", "-p", str(IPERF_PORT)),
                                 self.logdir / f"iperf3-{self.tag}.log")
        pid = self.iperf.pid
        if not wait.poll(lambda: listening(pid, IPERF_PORT), IPERF_START_TIMEOUT_S):
            raise procs.HarnessError(f"{self.name}: iperf3 server did not start listening")

    def check_alive(self) -> None:
        for d in self.daemons:
            if not d.alive():
                raise procs.HarnessError(d.why_dead())

    def teardown(self) -> None:
        if self.iperf is not None:
            procs.stop(self.iperf)
            self.iperf = None
        if self.net is not None:
            self.net.close()
