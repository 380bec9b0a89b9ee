"""Writes the seed inputs of the C fuzz targets into tests/fuzz/corpus/TARGET/seed-*.

Each target reads its input as a stream of choices (csrc/fuzz/TARGET_fuzz.c says how); the
seeds here spell out meaningful ones in that format, so that the fuzzer starts from real
traffic: the Linux module's replay-window table, nested allowed IPs, real TCP/UDP/ICMP
packets (tests/support/packets.py, offload_ref.py), TSO and USO super-packets as the kernel
hands them over with their virtio headers, AEAD messages at the lengths where the backends
change gear, UDP GRO receives of full-size segments, and for the
receive path sealed data from every peer, a handshake flood that puts the front line under
load and answers with cookies, a responder's keypair confirmed, replays and expiry, roaming.
The fuzzer's own finds join them (make fuzz, then `libFuzzer -merge=1` into the kept corpus).

Usage: python -m tests.fuzz.seeds
"""

from __future__ import annotations

import ipaddress
import json
import struct
from pathlib import Path

from tests.support import offload_ref as ref
from tests.support.packets import ipv4, ipv6

CORPUS = Path(__file__).resolve().parent / "corpus"
DATA = Path(__file__).resolve().parents[1] / "data"
W = 8128
R = 2**64 - 2**13 - 1


def u16(v: int) -> bytes:
    return struct.pack("<H", v & 0xFFFF)


def u32(v: int) -> bytes:
    return struct.pack("<I", v & 0xFFFFFFFF)


def u64(v: int) -> bytes:
    return struct.pack("<Q", v & 0xFFFFFFFFFFFFFFFF)


# ---- AEAD -------------------------------------------------------------------------------

def aead_seeds() -> dict[str, bytes]:
    """Key, counter, associated-data length and data, then the body (aead_fuzz.c), at the
    lengths where the backends change gear: empty, one byte, around a block, around the
    vector widths, a full packet, a TSO's worth."""
    key = bytes(range(0x80, 0xA0))
    out = {}
    for length in (0, 1, 15, 16, 17, 63, 64, 65, 255, 256, 257, 511, 512, 1420, 4096, 65535):
        body = bytes((k * 13 + 7) & 0xFF for k in range(length))
        ad = b"" if length % 2 else bytes(range(12))
        out[f"len-{length}"] = key + u64(length * 977) + bytes([len(ad)]) + ad + body
    out["counter-top"] = key + u64(2**64 - 1) + b"\x00" + bytes(300)
    return out


# ---- handshake messages -----------------------------------------------------------------

def noise_seeds() -> dict[str, bytes]:
    """Steps on the real handshake's messages (noise_fuzz.c: an op byte, then the step's own
    choices): each untouched, so the fuzzer starts from the path that reads, then forged."""
    static, payload, response, own, batch = 0, 1, 2, 3, 4
    return {
        "static": bytes([static, 0]),
        "payload": bytes([payload, 28, 0, 2]),
        "payload-short": bytes([payload, 15, 0, 2]),
        "payload-zero-secret": bytes([payload, 28, 0, 0]),
        "response": bytes([response, 16, 0, 1]),
        "response-other-psk": bytes([response, 16, 0, 0, 5, 1]),
        "forged-static": bytes([static, 1, 40, 0x10]),
        "forged-ephemeral": bytes([static, 2, 0, 0xFF, 31, 0x80]),
        "own-chain": bytes([own]) + bytes(range(64)) + bytes(80),
        "batch": bytes([batch, 3, 5, 0, 0, 1, 90, 1, 0]),
        "all": bytes([static, 0, payload, 28, 0, 2, response, 16, 0, 1, batch, 1, 0, 0, 0]),
    }


# ---- replay ---------------------------------------------------------------------------

def replay_seeds() -> dict[str, bytes]:
    """The kernel's counter table, then its loops, as absolute counters (op 2)."""
    table = json.loads((DATA / "replay-window-table.json").read_text())
    env = {"L": W + 1, "R": R, "W": W}
    steps = b"".join(b"\x02" + u64(eval(s["counter"], env)) for s in table["sequence"])
    out = {"kernel-table": b"\x00\x00" + steps}
    loop = b"".join(b"\x02" + u64(i) for i in range(W + 1, 0, -1)) + b"\x02" + u64(0)
    out["kernel-loop4"] = b"\x00\x00" + loop[:4000]
    out["near-limit"] = b"\x00\x01" + b"".join(b"\x00" + u16(d) for d in (0, 5, -3, 9000, 2))
    out["word-jumps"] = b"\x03\x03" + b"".join(bytes([4, k]) + bytes([5, k]) for k in range(130))
    return out


# ---- allowed IPs ---------------------------------------------------------------------

def ai_insert(v6: bool, addr: bytes, cidr: int, peer: int) -> bytes:
    return bytes([133 if v6 else 7, 0xFF]) + addr + bytes([cidr, peer])


def ai_remove(v6: bool, addr: bytes, cidr: int, peer: int) -> bytes:
    return bytes([128 if v6 else 2, 0xFF]) + addr + bytes([cidr, peer])


def ai_lookup(v6: bool, addr: bytes) -> bytes:
    return bytes([130 if v6 else 4, 0xFF]) + addr + b"\x00"


def allowedips_seeds() -> dict[str, bytes]:
    v4 = [(bytes([10, 0, 0, 0]), 8, 0), (bytes([10, 1, 0, 0]), 16, 1),
          (bytes([10, 1, 1, 1]), 32, 2), (bytes([0, 0, 0, 0]), 0, 3),
          (bytes([192, 168, 4, 0]), 22, 4), (bytes([192, 168, 5, 0]), 24, 5)]
    v6 = [(bytes.fromhex("fd000000000000000000000000000000"), 8, 0),
          (bytes.fromhex("fd000000000000010000000000000000"), 64, 1),
          (bytes.fromhex("fd000000000000010000000000000001"), 128, 2),
          (bytes(16), 0, 3)]
    nested = b"".join(ai_insert(False, a, c, p) for a, c, p in v4)
    nested += b"".join(ai_insert(True, a, c, p) for a, c, p in v6)
    probes = b"".join(ai_lookup(False, bytes([10, 1, 1, k])) for k in (0, 1, 2, 255))
    probes += b"".join(ai_lookup(True, a) for a, _c, _p in v6)
    removes = ai_remove(False, *v4[1]) + ai_remove(False, v4[2][0], 32, 0) + b"\x03\x03"
    removes += ai_remove(True, *v6[1]) + probes
    return {"nested": nested + probes, "nested-removed": nested + removes,
            "owner-changes": nested + ai_insert(False, bytes([10, 1, 0, 0]), 16, 7) + probes}


# ---- ICMP ------------------------------------------------------------------------------

def icmp_packet(pkt: bytes) -> bytes:
    return b"\x02" + u16(len(pkt)) + pkt


def icmp_seeds() -> dict[str, bytes]:
    echo = ipv4("10.0.0.1", "192.0.2.9", b"\x08\x00\x00\x00\x00\x01\x00\x01" + bytes(56), proto=1)
    error = ipv4("10.0.0.1", "192.0.2.9", b"\x03\x01" + bytes(6) + echo[:28], proto=1)
    tcp = ref.Flow("10.0.0.1", "192.0.2.9").tcp(1, b"", flags=ref.SYN)
    udp6 = ipv6("fd00::1", "2001:db8::9", bytes(8) + b"dns?")
    echo6 = ipv6("fd00::1", "2001:db8::9", b"\x80\x00" + bytes(6), next_header=58)
    err6 = ipv6("fd00::1", "2001:db8::9", b"\x01\x03" + bytes(6) + udp6, next_header=58)
    hop = ipv6("fd00::1", "2001:db8::9", bytes([58, 0]) + bytes(6) + b"\x01\x00" + bytes(6),
               next_header=0)
    frag = ipv6("fd00::1", "2001:db8::9", bytes([17, 0, 0, 8]) + bytes(4) + bytes(16),
                next_header=44)
    big = ipv4("10.0.0.1", "192.0.2.9", bytes(1400))
    out = {name: b"\x00" + icmp_packet(p) for name, p in
           (("echo", echo), ("icmp-error", error), ("tcp-syn", tcp), ("udp6", udp6),
            ("echo6", echo6), ("icmp6-error", err6), ("hop-by-hop-error", hop),
            ("fragment6", frag), ("big", big))}
    out["rate-limit"] = b"\x03" + icmp_packet(tcp) + b"\x01\xff" + b"\x00" + u32(500000) + \
        icmp_packet(tcp) + b"\x01\xff"
    return out


# ---- TUN reads (offload) ------------------------------------------------------------------

def tso(flow: ref.Flow, segments: int, size: int) -> bytes:
    """A TSO super-packet as the kernel hands it over: headers, the payload, and the
    pseudo-header sum left in the checksum field."""
    payload = bytes(k * 7 & 0xFF for k in range(segments * size - size // 3))
    packet = flow.tcp(7_000_000, payload, flags=ref.ACK | ref.PSH, ident=100)
    l3 = ref.ip_header_len(packet)
    partial = ref.pseudo_sum(packet, ref.TCP, len(packet) - l3)
    packet = packet[:l3 + 16] + struct.pack("!H", partial) + packet[l3 + 18:]
    kind = ref.GSO_TCPV4 if flow.version == 4 else ref.GSO_TCPV6
    header = ref.vnet(flags=ref.NEEDS_CSUM, gso_type=kind, hdr_len=l3 + 20, gso_size=size,
                      csum_start=l3, csum_offset=16)
    return header + packet


def uso(flow: ref.Flow, segments: int, size: int) -> bytes:
    payload = bytes(k * 3 & 0xFF for k in range(segments * size - 100))
    packet = flow.udp(payload, ident=7)
    l3 = ref.ip_header_len(packet)
    partial = ref.pseudo_sum(packet, ref.UDP, len(packet) - l3)
    packet = packet[:l3 + 6] + struct.pack("!H", partial) + packet[l3 + 8:]
    header = ref.vnet(flags=ref.NEEDS_CSUM, gso_type=ref.GSO_UDP_L4, hdr_len=l3 + 8,
                      gso_size=size, csum_start=l3, csum_offset=6)
    return header + packet


def offload_read(read: bytes, flush: bool = False) -> bytes:
    return bytes([1 if flush else 0, 0]) + u16(len(read)) + read


def offload_seeds() -> dict[str, bytes]:
    f4, f6 = ref.Flow("10.0.0.1", "10.0.0.2"), ref.Flow("fd00::1", "fd00::2")
    plain = ref.vnet() + ipv4("10.0.0.1", "10.0.0.2", b"plain")
    out = {
        "tso4": b"\x02" + u16(1420) + offload_read(tso(f4, 20, 1400)),
        "tso6": b"\x02" + u16(1420) + offload_read(tso(f6, 20, 1380)),
        "uso4": b"\x02" + u16(1420) + offload_read(uso(f4, 10, 1200)),
        "uso6": b"\x02" + u16(9000) + offload_read(uso(f6, 5, 8000)),
        "mixed": b"\x02" + u16(1420) + offload_read(plain) + offload_read(tso(f4, 40, 536))
        + offload_read(plain, flush=True) + offload_read(uso(f6, 3, 1000)),
        "with-pi": b"\x03" + u16(1420) + offload_read(b"\x00\x00\x08\x00" + tso(f4, 4, 1000)),
        "no-vnet": b"\x00" + u16(1420) + offload_read(ipv4("10.0.0.1", "10.0.0.2", bytes(3000))),
        "batch-overflow": b"\x02" + u16(1420) + offload_read(tso(f4, 1200, 50)),
    }
    return out


# ---- GRO ------------------------------------------------------------------------------

def gro_flow(v6: bool, tcp: bool, mss: int) -> bytes:
    shape = (1 if v6 else 0) | (0 if tcp else 2) | 4
    addrs = bytes([10, 0, 0, 1, 10, 0, 0, 2]) + bytes(24) if not v6 else \
        bytes.fromhex("fd000000000000000000000000000001fd000000000000000000000000000002")
    return bytes([shape]) + addrs + struct.pack("!HH", 40000, 5201) + u32(7_000_000) + \
        u32(1000) + u16(mss - 1) + u32(0) + u16(100) + u16(512) + bytes([64, 0])


def gro_seeds() -> dict[str, bytes]:
    same = b"\x00\x00\x00\x00\x00"                      # op 0 (flow 0), no deviation, any csum
    second = bytes([8]) + bytes(4)                      # flow 1
    out = {
        "tcp4-flow": b"\x07\x00" + gro_flow(False, True, 1200) + same * 12,
        "tcp6-flow": b"\x07\x00" + gro_flow(True, True, 1200) + same * 12,
        "udp-flows": b"\x07\x01" + gro_flow(False, False, 1000) + gro_flow(True, False, 1000)
        + (same + second) * 8,
        "psh-ends": b"\x07\x00" + gro_flow(False, True, 1000) + same * 3
        + b"\x00\x02\x00\x18" + u16(0) + same * 3,
    }
    raw = b"".join(b"\x05" + u16(len(p)) + p for p in (
        ref.Flow("10.0.0.1", "10.0.0.2").tcp(1, bytes(100)),
        ref.Flow("10.0.0.1", "10.0.0.2").tcp(101, bytes(100)),
        ipv4("10.0.0.1", "10.0.0.2", b"\x08\x00" + bytes(30), proto=1)))
    out["raw-packets"] = b"\x07\x00" + gro_flow(False, True, 100) + raw
    return out


# ---- UDP GRO receive -----------------------------------------------------------------

def udp_dgram(length: int, gro: int, v6: bool, seed: int) -> bytes:
    kind = 2 if gro else 0                              # mode 1: gro = operand % 2000 + 1
    out = u16(length) + bytes([kind]) + (u16(gro - 1) if gro else b"") + u64(seed)
    source = bytes([0]) + u16(51820) + bytes([2])
    if v6:
        addr, local = ipaddress.ip_address("2001:db8::1"), ipaddress.ip_address("2001:db8::ff")
    else:
        addr, local = ipaddress.ip_address("192.0.2.1"), ipaddress.ip_address("198.51.100.1")
    return out + source + addr.packed.ljust(16, b"\0") + local.packed.ljust(16, b"\0")


def udpgro_seeds() -> dict[str, bytes]:
    full = udp_dgram(44 * 1452, 1452, False, 1) + udp_dgram(148, 0, False, 2)
    full6 = udp_dgram(30 * 1432 + 100, 1432, True, 3) + udp_dgram(32, 0, True, 4)
    return {
        "gro4": u16(2) + full + u16(0),
        "gro6": u16(0) + u16(2) + full6,
        "many": u16(200) + udp_dgram(148, 0, False, 5) * 200 + u16(1) + udp_dgram(92, 0, True, 6),
        "over-128": u16(1) + udp_dgram(60000, 100, False, 7) + u16(0),
    }


# ---- the receive path -------------------------------------------------------------------

def data(peer: int, src: int, v6_inner: bool, *, slot: int = 1, own: bool = True,
         counter: bytes = b"\x00", payload: int = 64, seed: int = 1) -> bytes:
    """A datagram sealed under the peer's keypair in `slot` (0 previous, 1 current, 2 next),
    around an inner packet whose source is inside the peer's allowed IPs (own) or not."""
    shape = 0x05 if v6_inner else 0x04
    alen = 16 if v6_inner else 4
    inner = bytes([shape]) + u16(payload) + u64(seed) + bytes([0 if own else 1]) + \
        bytes(alen) + b"\x00" + bytes(alen)
    return bytes([0, src, peer, slot]) + inner + counter + b"\x00"


def initiation(src: int, *, mac1: bool = True, mac2: str = "zero", seed: int = 9) -> bytes:
    macs = (1 if mac1 else 0) | (4 if mac2 == "zero" else 8 if mac2 == "cookie" else 0)
    out = bytes([5, src, macs, 0]) + u64(seed) + u32(seed * 77)
    if mac2 == "cookie":
        out += b"\x00"
    return out + b"\x00"


def batch(v6: bool, dgrams: list[bytes]) -> bytes:
    return bytes([8, 1 if v6 else 0, len(dgrams) - 1]) + b"".join(dgrams)


def receive_seeds() -> dict[str, bytes]:
    events = b"\x07"
    later = bytes([0, 100, 20])                         # 2 s
    out = {
        "data-from-every-peer": batch(False, [data(p, p, False, seed=p) for p in range(3)])
        + batch(True, [data(p, 4, True, seed=10 + p) for p in range(3)]) + events,
        "keepalive-and-bad-source": batch(False, [
            bytes([0, 0, 0, 1, 0x08, 0, 0]) + b"\x00\x00",
            data(0, 0, False, own=False, seed=3)]) + events,
        "replay-and-expiry": batch(False, [data(1, 1, False, seed=4), bytes([3, 1]) + u16(0)
                                           + b"\x00"])
        + bytes([0, 200, 4]) + batch(False, [data(1, 1, False, seed=5)]) + events,
        "roaming": batch(True, [data(0, 3, False, seed=6), data(0, 6, True, seed=7)]) + events,
        "responder-confirmed": bytes([1, 0, 0]) + batch(False, [
            data(0, 0, False, slot=2, seed=8), data(0, 0, False, slot=1, seed=9),
            data(0, 0, False, slot=0, seed=10)]) + events,
        "front-line-under-load": batch(False, [initiation(0, seed=20 + k) for k in range(10)])
        + batch(False, [initiation(0, mac2="cookie", seed=40 + k) for k in range(8)])
        + events + later + batch(False, [initiation(2, mac2="cookie", seed=60)]) + events,
        "bad-mac1": batch(True, [initiation(4, mac1=False), initiation(5)]) + events,
        "response-and-cookie": bytes([2, 1]) + batch(False, [
            bytes([6, 1, 1, 1]) + u64(5) + u32(6) + b"\x00" + b"\x00",
            bytes([7, 1, 0, 1]) + u64(6) + u32(7) + b"\x02" + b"\x00"]) + events,
    }
    return out


# ---- x25519 ---------------------------------------------------------------------------

def x25519_seeds() -> dict[str, bytes]:
    """RFC 7748's vectors, then eight lanes of u-coordinates at the edges of the field:
    0, 1, p - 1, p, p + 1, 2^255 - 1 (top bit clear), all ones, and a point of order 8."""
    rfc = [("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
            "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c"),
           ("4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d",
            "e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493")]
    p = 2**255 - 19
    edges = [0, 1, p - 1, p, p + 1, 2**255 - 1, 2**256 - 1,
             int.from_bytes(bytes.fromhex(
                 "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"), "little")]
    scalar = bytes(range(1, 33))
    return {
        "rfc7748": bytes([1]) + b"".join(bytes.fromhex(k) + bytes.fromhex(u) for k, u in rfc),
        "edges": bytes([7]) + b"".join(scalar + u.to_bytes(32, "little") for u in edges),
        "one-lane": bytes([0]) + bytes.fromhex(rfc[0][0]) + (p + 9).to_bytes(32, "little"),
    }


TARGETS = {"aead": aead_seeds, "noise": noise_seeds, "replay": replay_seeds,
           "allowedips": allowedips_seeds, "icmp": icmp_seeds, "offload": offload_seeds,
           "gro": gro_seeds, "udpgro": udpgro_seeds, "receive": receive_seeds,
           "x25519": x25519_seeds}


def main() -> None:
    for target, make in TARGETS.items():
        folder = CORPUS / target
        folder.mkdir(parents=True, exist_ok=True)
        for name, content in make().items():
            (folder / f"seed-{name}").write_bytes(content)
        print(f"{target}: {len(make())} seeds")


if __name__ == "__main__":
    main()
