"""Cryptokey routing's table, by longest prefix match: the reference for csrc/allowedips.c.

Deliberately simple (one dict per prefix length, probed from the longest down) so that it
is obviously right; the C version is the fast one.
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

    def insert(self, network: str | Network, value: T) -> None:
        """Map `network` (host bits are cleared, as `wg` does) to `value`, replacing any."""
        net = ipaddress.ip_network(network, strict=False)
        self._tables.setdefault((net.version, net.prefixlen), {})[int(net.network_address)] = value

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

    def remove_by_value(self, value: T) -> None:
        for table in self._tables.values():
            for key in [k for k, v in table.items() if v == value]:
                del table[key]
