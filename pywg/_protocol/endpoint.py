"""Where a datagram came from or goes to: an IP address and a UDP port.

The core treats it as opaque except in two places: the cookie is a MAC over its bytes, and
the rate limiter keys on its IP. IPv4-mapped IPv6 addresses (what a dual-stack socket
reports for IPv4 peers) are stored as IPv4, so one host is one rate-limiter bucket however
the driver's socket is set up.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

__all__ = ["Endpoint", "IPAddress"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, slots=True)
class Endpoint:
    ip: IPAddress
    port: int

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 0xFFFF:
            raise ValueError(f"not a UDP port: {self.port}")
        if isinstance(self.ip, ipaddress.IPv6Address) and self.ip.ipv4_mapped is not None:
            object.__setattr__(self, "ip", self.ip.ipv4_mapped)

    @classmethod
    def from_sockaddr(cls, address: tuple[str, int] | tuple[str, int, int, int]) -> Endpoint:
        """From the address tuple `socket.recvfrom` returns (IPv4 or IPv6). A link-local
        IPv6 address keeps its scope ("fe80::1%eth0"): replies must leave by that link."""
        return cls(ipaddress.ip_address(address[0]), address[1])

    def to_bytes(self) -> bytes:
        """The address then the port, big endian: the cookie's input."""
        return self.ip.packed + self.port.to_bytes(2, "big")

    def __str__(self) -> str:
        if isinstance(self.ip, ipaddress.IPv6Address):
            return f"[{self.ip}]:{self.port}"
        return f"{self.ip}:{self.port}"
