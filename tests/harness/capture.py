"""WireGuard messages seen on a veth, both directions, from a raw packet socket.

No tcpdump: an AF_PACKET socket opened inside the namespace and bound to the veth sees
every frame sent and received there. Each UDP datagram on the tunnel's ports is kept as a
Message (when, direction, type, length, receiver index), at most MAX_MESSAGES of them.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

from tests.harness.netns import socket_in

ETH_P_ALL = 0x0003
MAX_MESSAGES = 100_000
RECV_TIMEOUT_S = 0.1
INITIATION, RESPONSE, COOKIE, DATA = 1, 2, 3, 4
KEEPALIVE_LEN = 32  # a data message with an empty payload: header 16 + tag 16


@dataclass(frozen=True)
class Message:
    when: float      # time.monotonic()
    src: str         # "ip:port"
    dst: str
    kind: int        # the WireGuard message type, first byte of the payload
    length: int      # UDP payload length
    receiver: int    # receiver index (responses, cookies and data), else 0

    @property
    def keepalive(self) -> bool:
        return self.kind == DATA and self.length == KEEPALIVE_LEN


def _parse(frame: bytes, ports: frozenset[int], when: float) -> Message | None:
    version = frame[0] >> 4 if frame else 0
    if version == 4 and len(frame) >= 20 and frame[9] == socket.IPPROTO_UDP:
        ihl = (frame[0] & 0xF) * 4
        src, dst = ipaddress.ip_address(frame[12:16]), ipaddress.ip_address(frame[16:20])
    elif version == 6 and len(frame) >= 40 and frame[6] == socket.IPPROTO_UDP:
        ihl = 40
        src, dst = ipaddress.ip_address(frame[8:24]), ipaddress.ip_address(frame[24:40])
    else:
        return None
    if len(frame) < ihl + 9:
        return None
    sport, dport = struct.unpack_from("!HH", frame, ihl)
    if sport not in ports and dport not in ports:
        return None
    payload = frame[ihl + 8:]
    kind = payload[0]
    receiver = struct.unpack_from("<I", payload, 4)[0] if kind != INITIATION and \
        len(payload) >= 8 else 0
    fmt = "[{}]:{}" if version == 6 else "{}:{}"
    return Message(when, fmt.format(src, sport), fmt.format(dst, dport), kind, len(payload),
                   receiver)


class Capture:
    def __init__(self, ns: str, ifname: str, ports: set[int]) -> None:
        self._sock = socket_in(ns, socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_ALL))
        self._sock.bind((ifname, ETH_P_ALL))
        self._sock.settimeout(RECV_TIMEOUT_S)
        self._ports = frozenset(ports)
        self._lock = threading.Lock()
        self._messages: list[Message] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                frame = self._sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            msg = _parse(frame, self._ports, time.monotonic())
            with self._lock:
                if msg is not None and len(self._messages) < MAX_MESSAGES:
                    self._messages.append(msg)

    def messages(self, *, src: str | None = None, kind: int | None = None,
                 since: float = 0.0) -> list[Message]:
        with self._lock:
            found = list(self._messages)
        return [m for m in found if (src is None or m.src == src)
                and (kind is None or m.kind == kind) and m.when >= since]

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._sock.close()


@contextlib.contextmanager
def capture(ns: str, ifname: str, ports: set[int]) -> Iterator[Capture]:
    c = Capture(ns, ifname, ports)
    c.start()
    try:
        yield c
    finally:
        c.close()
