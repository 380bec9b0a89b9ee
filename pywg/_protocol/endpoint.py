"""Where a datagram came from or goes to: an IP address and a UDP port.

The one endpoint value of the Python side: the configuration's (`wg set ... endpoint`), the
UAPI's and the protocol core's. Printed as the UAPI spells it: IPv4 `a.b.c.d:port`, IPv6
`[addr]:port`; an IPv6 address keeps its scope (`fe80::1%eth0`, needed to reach a link-local
peer) and an IPv4-mapped address stays IPv6, as wireguard-go keeps both. (The data plane's
view, with the sticky source address, is pywg._driver.datapath.Endpoint.)
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass

__all__ = ["Endpoint", "IPAddress", "format_ip", "format_packed"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def format_ip(ip: IPAddress) -> str:
    """An address as Go's netip prints it: Python agrees except on IPv4-mapped IPv6."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        scope = f"%{ip.scope_id}" if ip.scope_id else ""
        return f"::ffff:{ip.ipv4_mapped}{scope}"
    return str(ip)


def format_packed(packed: bytes) -> str:
    """A packed address (4 or 16 bytes) as Go's netip prints it, fast: inet_ntop agrees with
    netip (RFC 5952, IPv4-mapped as ::ffff:a.b.c.d) except on the old IPv4-compatible form
    (::a.b.c.d), which netip writes in hex."""
    if len(packed) == 4:
        return socket.inet_ntop(socket.AF_INET, packed)
    if packed[:12] == _TWELVE_ZEROS:
        return format_ip(ipaddress.IPv6Address(packed))
    return socket.inet_ntop(socket.AF_INET6, packed)


_TWELVE_ZEROS = bytes(12)


@dataclass(frozen=True, slots=True)
class Endpoint:
    ip: IPAddress
    port: int

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 0xFFFF:
            raise ValueError(f"not a UDP port: {self.port}")

    def to_bytes(self) -> bytes:
        """The address then the port, big endian: what a cookie is a MAC of."""
        return self.ip.packed + self.port.to_bytes(2, "big")

    def __str__(self) -> str:
        if isinstance(self.ip, ipaddress.IPv6Address):
            return f"[{format_ip(self.ip)}]:{self.port}"
        return f"{self.ip}:{self.port}"
