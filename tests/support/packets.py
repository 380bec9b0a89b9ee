"""Real inner IP packets for tests: headers with correct lengths (and IPv4 checksums)."""

from __future__ import annotations

import ipaddress
import struct

IPV4_HEADER = struct.Struct("!BBHHHBBH4s4s")
IPV6_HEADER = struct.Struct("!IHBB16s16s")
UDP = 17


def _checksum(header: bytes) -> int:
    total = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ipv4(src: str, dst: str, payload: bytes = b"", *, proto: int = UDP, ttl: int = 64) -> bytes:
    """An IPv4 packet (20-byte header, no options) around `payload`."""
    total = IPV4_HEADER.size + len(payload)
    fields = [0x45, 0, total, 0, 0, ttl, proto, 0,
              ipaddress.IPv4Address(src).packed, ipaddress.IPv4Address(dst).packed]
    header = IPV4_HEADER.pack(*fields)
    fields[7] = _checksum(header)
    return IPV4_HEADER.pack(*fields) + payload


def ipv6(src: str, dst: str, payload: bytes = b"", *, next_header: int = UDP,
         hop_limit: int = 64) -> bytes:
    """An IPv6 packet (40-byte header) around `payload`."""
    header = IPV6_HEADER.pack(6 << 28, len(payload), next_header, hop_limit,
                              ipaddress.IPv6Address(src).packed,
                              ipaddress.IPv6Address(dst).packed)
    return header + payload


def ipv4_of_size(size: int, src: str = "10.0.0.1", dst: str = "10.0.0.2") -> bytes:
    return ipv4(src, dst, bytes(i & 0xFF for i in range(size - IPV4_HEADER.size)))


def ipv6_of_size(size: int, src: str = "fd00::1", dst: str = "fd00::2") -> bytes:
    return ipv6(src, dst, bytes(i & 0xFF for i in range(size - IPV6_HEADER.size)))


def source(packet: bytes) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    if packet[0] >> 4 == 4:
        return ipaddress.IPv4Address(packet[12:16])
    return ipaddress.IPv6Address(packet[8:24])


def destination(packet: bytes) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    if packet[0] >> 4 == 4:
        return ipaddress.IPv4Address(packet[16:20])
    return ipaddress.IPv6Address(packet[24:40])
