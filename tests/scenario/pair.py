"""Two real pywg devices in one process: the harness of the scenario suite.

Each side is the production driver (pywg._driver.device.Device) with the real C data plane,
configured through the UAPI's own `set` parser. What stands in for the world around them:

    SocketTun   a SOCK_SEQPACKET socketpair instead of /dev/net/tun: it keeps packet
                boundaries as a TUN does; the data plane reads and writes one end, the test
                the other (`Side.send`, `Side.received`)
    Wire        a UDP relay on loopback between the two devices, run on the same event loop:
                every datagram is recorded (which way, when), and a test can drop, hold and
                replay any of them, or give a side a new address (roaming)
    Timing      the protocol's durations scaled down, on the real monotonic clock that the C
                data plane also reads

```
   Side a: Device ─ UDP 127.0.0.1:pa ──> Wire [sock_a | sock_b] ──> UDP 127.0.0.1:pb ─ Device
           SocketTun <-> test                                          test <-> SocketTun
```

No root is needed: everything binds loopback ports the kernel chooses. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ipaddress
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import uvloop

from pywg._config.uapi import parse_set
from pywg._driver.datapath import PeerInfo, Stats
from pywg._driver.device import Device
from pywg._driver.tun import Tun
from pywg._protocol.timers import Timing
from pywg._tools import keys
from tests.support.packets import ipv4, ipv6

S = 1_000_000_000
SCALE = 0.02  # REKEY_TIMEOUT 100 ms, KEEPALIVE 200 ms, REJECT_AFTER_TIME 3.6 s
INNER = {"a": ("10.0.0.1", "fd00::1"), "b": ("10.0.0.2", "fd00::2")}
SOCKET_BUFFER = 4 << 20
WAIT_S = 10.0


def scaled(scale: float = SCALE, **changes: int) -> Timing:
    """The protocol's times scaled by `scale`, with `changes` (message limits) on top."""
    return dataclasses.replace(Timing().scaled(scale), **changes)


class SocketTun(Tun):
    """A TUN without a kernel interface: one end of a packet-keeping socketpair."""

    @classmethod
    def open(cls, name: str) -> tuple[SocketTun, socket.socket]:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        for end in (ours, theirs):
            end.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SOCKET_BUFFER)
            end.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SOCKET_BUFFER)
        ours.setblocking(False)
        return cls(fd=theirs.detach(), name=name, ifindex=0, vnet_hdr=False), ours

    def exists(self) -> bool:
        return self.fd >= 0


@dataclass
class Datagram:
    way: str  # "a>b" or "b>a"
    data: bytes
    time_ns: int

    @property
    def type(self) -> int:
        return self.data[0] if self.data else -1


@dataclass
class Wire:
    """The UDP path between the two devices; see the module doc."""

    loop: asyncio.AbstractEventLoop
    host: str
    ports: dict[str, int] = field(default_factory=dict)  # each device's listen port
    socks: dict[str, socket.socket] = field(default_factory=dict)  # the wire's end facing it
    log: list[Datagram] = field(default_factory=list)
    drop: dict[str, Callable[[Datagram], bool]] = field(default_factory=dict)
    hold: set[str] = field(default_factory=set)  # ways whose datagrams are kept, not sent
    held: list[Datagram] = field(default_factory=list)

    def attach(self, side: str) -> None:
        """A (new) socket facing `side`: what it sends to this one leaves through the other."""
        old = self.socks.get(side)
        if old is not None:
            self.loop.remove_reader(old)
            old.close()
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SOCKET_BUFFER)
        sock.bind((self.host, 0))
        sock.setblocking(False)
        self.socks[side] = sock
        self.loop.add_reader(sock, self._forward, side)

    def address(self, side: str) -> str:
        """The endpoint `side` is configured to send to (the wire's end facing it)."""
        port = self.socks[side].getsockname()[1]
        return f"[{self.host}]:{port}" if ":" in self.host else f"{self.host}:{port}"

    def _forward(self, side: str) -> None:
        other = "b" if side == "a" else "a"
        while True:
            try:
                data = self.socks[side].recv(1 << 16)
            except BlockingIOError:
                return
            d = Datagram(f"{side}>{other}", data, time.monotonic_ns())
            self.log.append(d)
            if self.drop.get(d.way, _never)(d):
                continue
            if d.way in self.hold:
                self.held.append(d)
                continue
            self.send(d.way, data)

    def send(self, way: str, data: bytes) -> None:
        """Put `data` on the wire as if the side before '>' had sent it."""
        to = way[-1]
        with contextlib.suppress(OSError):
            self.socks[to].sendto(data, (self.host, self.ports[to]))

    def release(self) -> None:
        held, self.held = self.held, []
        self.hold.clear()
        for d in held:
            self.send(d.way, d.data)

    def sent(self, way: str, msg_type: int | None = None, size: int | None = None,
             ) -> list[Datagram]:
        return [d for d in self.log if d.way == way and msg_type in (None, d.type)
                and size in (None, len(d.data))]

    def close(self) -> None:
        for sock in self.socks.values():
            self.loop.remove_reader(sock)
            sock.close()


def _never(_: Datagram) -> bool:
    return False


@dataclass
class Side:
    name: str
    device: Device
    tun: socket.socket
    private_key: bytes
    received: list[bytes] = field(default_factory=list)  # what the device wrote to its TUN

    @property
    def public_key(self) -> bytes:
        return keys.public_key(self.private_key)

    @property
    def inner(self) -> tuple[str, str]:
        return INNER[self.name]

    def send(self, packet: bytes) -> None:
        """A packet from the kernel's side of the TUN."""
        self.tun.send(packet)

    def set(self, text: str) -> None:
        """Apply a UAPI `set` request (the lines after `set=1`)."""
        self.device.apply(parse_set(line.strip() for line in text.strip().splitlines()))

    def peer_info(self) -> PeerInfo:
        (peer,) = self.device._peers.values()
        return self.device.dp.peer_info(peer.slot)

    def stats(self) -> Stats:
        return self.device.dp.stats()

    def read_tun(self) -> None:
        while True:
            try:
                self.received.append(self.tun.recv(1 << 16))
            except BlockingIOError:
                return


class Pair:
    """Two devices that are each other's peer, over a Wire; see the module doc."""

    def __init__(self, timing: Timing, *, outer: str = "127.0.0.1",
                 keepalive: dict[str, int] | None = None, **device_args: object) -> None:
        self.loop = uvloop.new_event_loop()
        self.wire = Wire(self.loop, outer)
        self.sides: dict[str, Side] = {}
        self._tasks: list[asyncio.Task[str]] = []
        try:
            self._start(timing, keepalive or {}, device_args)
        except BaseException:
            self.close()
            raise

    def _start(self, timing: Timing, keepalive: dict[str, int],
               device_args: dict[str, object]) -> None:
        for name in ("a", "b"):
            self.sides[name] = self._side(name, timing, device_args)
            self.wire.attach(name)
        for name, side in self.sides.items():
            self.wire.ports[name] = side.device.bind.port if side.device.bind else 0
        for name, side in self.sides.items():
            other = self.sides["b" if name == "a" else "a"]
            interval = keepalive.get(name, 0)
            side.set(f"""
                private_key={side.private_key.hex()}
                public_key={other.public_key.hex()}
                endpoint={self.wire.address(name)}
                persistent_keepalive_interval={interval}
                allowed_ip={other.inner[0]}/32
                allowed_ip={other.inner[1]}/128
            """)

    def _side(self, name: str, timing: Timing, device_args: dict[str, object]) -> Side:
        tun, ours = SocketTun.open(f"scen-{name}")
        device = Device(tun, timing=timing, **device_args)  # type: ignore[arg-type]
        side = Side(name, device, ours, keys.generate_private_key())
        self.loop.add_reader(ours, side.read_tun)
        self._tasks.append(self.loop.create_task(device.run()))
        return side

    @property
    def a(self) -> Side:
        return self.sides["a"]

    @property
    def b(self) -> Side:
        return self.sides["b"]

    def wait(self, condition: Callable[[], bool], timeout: float = WAIT_S) -> bool:
        """Run both devices until `condition` holds or `timeout` passes; True if it held."""
        async def poll() -> bool:
            deadline = time.monotonic() + timeout
            while not condition():
                if time.monotonic() > deadline:
                    return False
                await asyncio.sleep(0.002)
            return True
        return self.loop.run_until_complete(poll())

    def run_for(self, seconds: float) -> None:
        self.loop.run_until_complete(asyncio.sleep(seconds))

    def connect(self) -> None:
        """Complete a handshake and one packet each way, then forget what was seen."""
        self.a.send(a_to_b(b"hello"))
        assert self.wait(lambda: len(self.b.received) == 1)
        self.b.send(b_to_a(b"hello back"))
        assert self.wait(lambda: len(self.a.received) == 1)
        self.a.received.clear()
        self.b.received.clear()

    def close(self) -> None:
        for side in self.sides.values():
            side.device.stop("the test is over")
        if self._tasks:
            self.loop.run_until_complete(asyncio.gather(*self._tasks))
        for side in self.sides.values():
            self.loop.remove_reader(side.tun)
            side.device.close()
            side.tun.close()
        self.wire.close()
        self.loop.close()


@contextlib.contextmanager
def pair(timing: Timing | None = None, **kwargs: object) -> Iterator[Pair]:
    p = Pair(timing or scaled(), **kwargs)  # type: ignore[arg-type]
    try:
        yield p
    finally:
        p.close()


def a_to_b(payload: bytes = b"ping", v6: bool = False) -> bytes:
    src, dst = INNER["a"][v6], INNER["b"][v6]
    return ipv6(src, dst, payload) if v6 else ipv4(src, dst, payload)


def b_to_a(payload: bytes = b"pong", v6: bool = False) -> bytes:
    src, dst = INNER["b"][v6], INNER["a"][v6]
    return ipv6(src, dst, payload) if v6 else ipv4(src, dst, payload)


def padded(length: int) -> int:
    """The size of a type-4 message carrying `length` bytes: header, padding, tag."""
    return 16 + (length + 15) // 16 * 16 + 16


def endpoint_of(device: Device) -> str:
    (peer,) = device._peers.values()
    info = device.dp.peer_info(peer.slot)
    assert info.endpoint is not None
    host = ipaddress.ip_address(info.endpoint.address)
    return f"[{host}]:{info.endpoint.port}" if host.version == 6 else f"{host}:{info.endpoint.port}"
