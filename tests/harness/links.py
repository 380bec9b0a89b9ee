"""Links: veth pairs between namespaces, and the addresses, MTU and counters of any interface.

A veth needs no undo of its own: deleting either namespace deletes both ends.
"""

from __future__ import annotations

from tests.harness import netns

OUTER_MTU = 1500


def configure(ns: str, dev: str, *prefixes: str, mtu: int | None = None) -> None:
    """Adds each address ("10.0.0.1/24", "fd00::1/64") to dev, sets its MTU, brings it up.

    IPv6 addresses skip duplicate address detection, so they are usable at once.
    """
    for prefix in prefixes:
        if ":" in prefix:
            netns.run(ns, ["ip", "-6", "addr", "add", prefix, "dev", dev, "nodad"])
        else:
            netns.run(ns, ["ip", "addr", "add", prefix, "dev", dev])
    if mtu is not None:
        netns.run(ns, ["ip", "link", "set", "dev", dev, "mtu", str(mtu)])
    netns.run(ns, ["ip", "link", "set", "dev", dev, "up"])


def veth_pair(ns_a: str, ns_b: str, addrs_a: tuple[str, ...] = ("10.99.0.1/24", "fd99::1/64"),
              addrs_b: tuple[str, ...] = ("10.99.0.2/24", "fd99::2/64"), *,
              names: tuple[str, str] | None = None, mtu: int = OUTER_MTU) -> tuple[str, str]:
    """A veth pair joining ns_a and ns_b, addressed and up; returns the two ends' names."""
    a, b = names or (netns.unique("va"), netns.unique("vb"))
    netns.run(None, ["ip", "link", "add", a, "netns", ns_a, "mtu", str(mtu), "type", "veth",
                     "peer", "name", b, "netns", ns_b, "mtu", str(mtu)])
    configure(ns_a, a, *addrs_a)
    configure(ns_b, b, *addrs_b)
    return a, b


def exists(ns: str, dev: str) -> bool:
    return netns.run(ns, ["ip", "link", "show", "dev", dev], check=False,
                     quiet=True).returncode == 0


def mtu(ns: str, dev: str) -> int:
    return int(netns.run(ns, ["cat", f"/sys/class/net/{dev}/mtu"]).stdout)


def set_mtu(ns: str, dev: str, value: int, *, check: bool = True) -> None:
    netns.run(ns, ["ip", "link", "set", "dev", dev, "mtu", str(value)], check=check)


def counter(ns: str, dev: str, name: str) -> int:
    """One of the interface's statistics (rx_packets, tx_bytes, ...), as the kernel counts."""
    return int(netns.run(ns, ["cat", f"/sys/class/net/{dev}/statistics/{name}"]).stdout)
