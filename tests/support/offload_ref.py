"""A reference for the TUN offloads, written from the RFCs and the kernel's documented
behaviour, independently of csrc/offload.c: the Internet checksum (RFC 1071), TCP and UDP
packets with correct checksums, the virtio_net_hdr (include/uapi/linux/virtio_net.h), and
what segmenting a super-packet must produce (the kernel's tcp_gso_segment and
__udp_gso_segment: lengths, IPv4 ID + 1 per segment, sequence numbers, FIN/PSH only on the
last segment and CWR only on the first, full checksums).
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

TCP = 6
UDP = 17
FIN, SYN, RST, PSH, ACK, URG, ECE, CWR = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80
VNET = struct.Struct("<BBHHHH")
NEEDS_CSUM = 1
GSO_NONE, GSO_TCPV4, GSO_UDP, GSO_TCPV6, GSO_UDP_L4 = 0, 1, 3, 4, 5


def csum(data: bytes, initial: int = 0) -> int:
    """RFC 1071: the ones' complement sum of 16-bit big-endian words, folded, not inverted."""
    if len(data) % 2:
        data += b"\0"
    total = initial + sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def pseudo_sum(packet: bytes, proto: int, l4_len: int) -> int:
    """The TCP/UDP pseudo-header of an IPv4 or IPv6 packet, summed (RFC 793, RFC 8200)."""
    if packet[0] >> 4 == 4:
        return csum(packet[12:20] + struct.pack("!BBH", 0, proto, l4_len))
    return csum(packet[8:40] + struct.pack("!IxxxB", l4_len, proto))


def l4_checksum_ok(packet: bytes) -> bool:
    """True if the packet's TCP or UDP checksum verifies (a zero UDP/IPv4 one counts)."""
    l3 = ip_header_len(packet)
    proto = packet[9] if packet[0] >> 4 == 4 else packet[6]
    l4 = packet[l3:]
    if proto == UDP and packet[0] >> 4 == 4 and l4[6:8] == b"\0\0":
        return True
    return csum(l4, pseudo_sum(packet, proto, len(l4))) == 0xFFFF


def ipv4_checksum_ok(packet: bytes) -> bool:
    return csum(packet[:ip_header_len(packet)]) == 0xFFFF


def ip_header_len(packet: bytes) -> int:
    return (packet[0] & 0xF) * 4 if packet[0] >> 4 == 4 else 40


@dataclass
class Flow:
    """Addresses, ports and IP fields of one flow's packets."""

    src: str
    dst: str
    sport: int = 40000
    dport: int = 5201
    ttl: int = 64
    tos: int = 0
    df: bool = True
    flow_label: int = 0

    @property
    def version(self) -> int:
        return ipaddress.ip_address(self.src).version

    def ip(self, proto: int, l4: bytes, ident: int = 0) -> bytes:
        """An IP packet around a finished transport segment."""
        src = ipaddress.ip_address(self.src).packed
        dst = ipaddress.ip_address(self.dst).packed
        if self.version == 4:
            header = struct.pack("!BBHHHBBH4s4s", 0x45, self.tos, 20 + len(l4), ident,
                                 0x4000 if self.df else 0, self.ttl, proto, 0, src, dst)
            header = header[:10] + struct.pack("!H", ~csum(header) & 0xFFFF) + header[12:]
            return header + l4
        first = 6 << 28 | self.tos << 20 | self.flow_label
        return struct.pack("!IHBB16s16s", first, len(l4), proto, self.ttl, src, dst) + l4

    def tcp(self, seq: int, payload: bytes, *, ack: int = 1000, flags: int = ACK,
            window: int = 512, options: bytes = b"", ident: int = 0) -> bytes:
        """A TCP segment in an IP packet, with a correct checksum."""
        offset = (20 + len(options)) // 4
        header = struct.pack("!HHIIBBHHH", self.sport, self.dport, seq & 0xFFFFFFFF, ack,
                             offset << 4, flags, window, 0, 0) + options
        return self._finish(TCP, header + payload, 16, ident)

    def udp(self, payload: bytes, *, ident: int = 0) -> bytes:
        header = struct.pack("!HHHH", self.sport, self.dport, 8 + len(payload), 0)
        return self._finish(UDP, header + payload, 6, ident)

    def _finish(self, proto: int, l4: bytes, check_at: int, ident: int) -> bytes:
        packet = self.ip(proto, l4, ident)
        l3 = ip_header_len(packet)
        value = ~csum(l4, pseudo_sum(packet, proto, len(l4))) & 0xFFFF
        if proto == UDP and value == 0:
            value = 0xFFFF
        at = l3 + check_at
        return packet[:at] + struct.pack("!H", value) + packet[at + 2:]


def vnet(*, flags: int = 0, gso_type: int = GSO_NONE, hdr_len: int = 0, gso_size: int = 0,
         csum_start: int = 0, csum_offset: int = 0) -> bytes:
    return VNET.pack(flags, gso_type, hdr_len, gso_size, csum_start, csum_offset)


def parse_vnet(data: bytes) -> dict[str, int]:
    names = ("flags", "gso_type", "hdr_len", "gso_size", "csum_start", "csum_offset")
    return dict(zip(names, VNET.unpack(data[:10]), strict=True))


def super_packet(segments: list[bytes]) -> bytes:
    """What the kernel hands a TSO/USO reader for these segments of one flow: the first
    segment's headers with the total length, all payloads behind them, and the
    pseudo-header sum in the checksum field (CHECKSUM_PARTIAL)."""
    first = segments[0]
    l3 = ip_header_len(first)
    proto = first[9] if first[0] >> 4 == 4 else first[6]
    hdr = l3 + transport_header_len(first)
    payload = b"".join(s[hdr:] for s in segments)
    packet = bytearray(first[:hdr] + payload)
    if first[0] >> 4 == 4:
        struct.pack_into("!H", packet, 2, len(packet))
        struct.pack_into("!H", packet, 10, 0)
        struct.pack_into("!H", packet, 10, ~csum(bytes(packet[:l3])) & 0xFFFF)
    else:
        struct.pack_into("!H", packet, 4, len(packet) - 40)
    if proto == UDP:
        struct.pack_into("!H", packet, l3 + 4, len(packet) - l3)
    # The flags of the whole: FIN/PSH of the last segment too.
    if proto == TCP:
        packet[l3 + 13] |= segments[-1][l3 + 13] & (FIN | PSH)
    check_at = l3 + (16 if proto == TCP else 6)
    struct.pack_into("!H", packet, check_at, pseudo_sum(bytes(packet), proto, len(packet) - l3))
    return bytes(packet)


def transport_header_len(packet: bytes) -> int:
    l3 = ip_header_len(packet)
    proto = packet[9] if packet[0] >> 4 == 4 else packet[6]
    return (packet[l3 + 12] >> 4) * 4 if proto == TCP else 8


def segment(packet: bytes, gso_size: int) -> list[bytes]:
    """The segments of a super-packet, as the kernel's software segmentation makes them."""
    l3 = ip_header_len(packet)
    proto = packet[9] if packet[0] >> 4 == 4 else packet[6]
    hdr = l3 + transport_header_len(packet)
    payload = packet[hdr:]
    chunks = [payload[i:i + gso_size] for i in range(0, len(payload), gso_size)]
    out = []
    for k, chunk in enumerate(chunks):
        seg = bytearray(packet[:hdr] + chunk)
        if seg[0] >> 4 == 4:
            struct.pack_into("!H", seg, 2, len(seg))
            ident = (struct.unpack_from("!H", packet, 4)[0] + k) & 0xFFFF
            struct.pack_into("!H", seg, 4, ident)
            struct.pack_into("!H", seg, 10, 0)
            struct.pack_into("!H", seg, 10, ~csum(bytes(seg[:l3])) & 0xFFFF)
        else:
            struct.pack_into("!H", seg, 4, len(seg) - 40)
        if proto == TCP:
            seq = struct.unpack_from("!I", packet, l3 + 4)[0] + k * gso_size
            struct.pack_into("!I", seg, l3 + 4, seq & 0xFFFFFFFF)
            if k + 1 < len(chunks):
                seg[l3 + 13] &= ~(FIN | PSH) & 0xFF
            if k:
                seg[l3 + 13] &= ~CWR & 0xFF
            at = l3 + 16
        else:
            struct.pack_into("!H", seg, l3 + 4, len(seg) - l3)
            at = l3 + 6
        struct.pack_into("!H", seg, at, 0)
        value = ~csum(bytes(seg[l3:]), pseudo_sum(bytes(seg), proto, len(seg) - l3)) & 0xFFFF
        if proto == UDP and value == 0:
            value = 0xFFFF
        struct.pack_into("!H", seg, at, value)
        out.append(bytes(seg))
    return out
