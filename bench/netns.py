"""Two network namespaces joined by a veth pair: the wire every measurement runs over.

```
   ns A (name_a)                                ns B (name_b)
   veth_a 10.201.0.1/24  <---- veth pair ---->  veth_b 10.201.0.2/24   outer MTU 1500
   [tunnel 10.202.0.1]                          [tunnel 10.202.0.2]    MTU 1420 (topology.py)
```

Every pair has its own namespaces, so all pairs use the same addresses. Names carry the run's
random suffix, because other people run namespaces on this machine at the same time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bench import procs

OUTER_A = "10.201.0.1"
OUTER_B = "10.201.0.2"
OUTER_PREFIX = 24
OUTER_MTU = 1500
CMD_TIMEOUT_S = 10.0


def ip(*args: str) -> None:
    procs.run(["ip", *args], CMD_TIMEOUT_S)


@dataclass
class NetnsPair:
    """ns A and ns B joined by veth_a <-> veth_b; `create()` registers its own undo."""

    tag: str
    name_a: str = field(init=False)
    name_b: str = field(init=False)
    veth_a: str = field(init=False)
    veth_b: str = field(init=False)

    def __post_init__(self) -> None:
        self.name_a = f"pwbench-{self.tag}-a"
        self.name_b = f"pwbench-{self.tag}-b"
        # Interface names are limited to 15 bytes; tags are kept short for that.
        self.veth_a = f"va{self.tag}"
        self.veth_b = f"vb{self.tag}"

    def create(self) -> None:
        ip("netns", "add", self.name_a)
        procs.on_cleanup(f"netns {self.name_a}", lambda: _delete_netns(self.name_a))
        ip("netns", "add", self.name_b)
        procs.on_cleanup(f"netns {self.name_b}", lambda: _delete_netns(self.name_b))
        ip("link", "add", self.veth_a, "netns", self.name_a, "mtu", str(OUTER_MTU),
           "type", "veth", "peer", "name", self.veth_b, "netns", self.name_b,
           "mtu", str(OUTER_MTU))
        for ns, dev, addr in ((self.name_a, self.veth_a, OUTER_A),
                              (self.name_b, self.veth_b, OUTER_B)):
            ip("-n", ns, "addr", "add", f"{addr}/{OUTER_PREFIX}", "dev", dev)
            ip("-n", ns, "link", "set", dev, "up")
            ip("-n", ns, "link", "set", "lo", "up")

    def exec_a(self, *cmd: str) -> list[str]:
        return ["ip", "netns", "exec", self.name_a, *cmd]

    def exec_b(self, *cmd: str) -> list[str]:
        return ["ip", "netns", "exec", self.name_b, *cmd]


def _delete_netns(name: str) -> None:
    # Deleting the namespace also deletes the veth end inside it, and with it the peer end.
    procs.run(["ip", "netns", "delete", name], CMD_TIMEOUT_S, check=False)
