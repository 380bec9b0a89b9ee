"""Cryptokey routing's table, by longest prefix match: the reference for csrc/allowedips.c.

Deliberately simple (one dict per prefix length, probed from the longest down) so that it
is obviously right; the C version is the fast one. It also lists each owner's prefixes in
the order they were given, a prefix given again moved to the end (as `wg show` lists them,
from the kernel's and wireguard-go's per-peer lists).
"""

from __future__ import annotations

import ipaddress
from typing import Generic, TypeVar

T = TypeVar("T")
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class AllowedIPs(Generic[T]):
    def __init__(self) -> None:
        # (IP version, prefix length) -> {network address as an int: value}
        self._tables: dict[tuple[int, int], dict[int, T]] = {}
        self._given: dict[Network, T] = {}  # every prefix, in the order given

    def insert(self, network: str | Network, value: T) -> None:
        """Map `network` (host bits are cleared, as `wg` does) to `value`, replacing any."""
        net = ipaddress.ip_network(network, strict=False)
        self._tables.setdefault((net.version, net.prefixlen), {})[int(net.network_address)] = value
        self._given.pop(net, None)
        self._given[net] = value

    def lookup(self, address: str | Address) -> T | None:
        addr = ipaddress.ip_address(address)
        bits = addr.max_prefixlen
        for prefixlen in range(bits, -1, -1):
            table = self._tables.get((addr.version, prefixlen))
            if table is None:
                continue
            host_bits = bits - prefixlen
            value = table.get(int(addr) >> host_bits << host_bits)
            if value is not None:
                return value
        return None

    def remove(self, network: str | Network) -> None:
        """Forget `network` (host bits cleared), if present."""
        net = ipaddress.ip_network(network, strict=False)
        self._tables.get((net.version, net.prefixlen), {}).pop(int(net.network_address), None)
        self._given.pop(net, None)

    def remove_by_value(self, value: T) -> None:
        for table in self._tables.values():
            for key in [k for k, v in table.items() if v == value]:
                del table[key]
        self._given = {n: v for n, v in self._given.items() if v != value}

    def owner(self, network: str | Network) -> T | None:
        """The value of exactly `network` (host bits cleared)."""
        return self._given.get(ipaddress.ip_network(network, strict=False))

    def listed(self, value: T) -> list[Network]:
        """The prefixes of `value`, in the order given."""
        return [n for n, v in self._given.items() if v == value]

    def __len__(self) -> int:
        return len(self._given)
