"""A pure-Python WireGuard device for tests, and an in-memory network between devices.

This is the reference behaviour the C data plane is held to, built only from the sans-I/O
core (HandshakeCore, Peer, transport, timers), in the manner of wireguard-go's
TestTwoDevicePing over ChannelBind/ChannelTUN, or h11's ConnectionPair:

    FakeClock   monotonic and wall time, moved only by the test
    Network     UDP between endpoints: datagrams stay in flight until `deliver`, so a test
                can capture, drop, delay or replay any of them
    PyDevice    one interface: routes inner packets by allowed IPs, stages them while there
                is no keypair, runs handshakes, timers and transport; what it would write to
                its TUN lands in `tun`, and every drop is counted in `drops` by reason
    run_until   deliver everything, jump the clock to the next timer deadline, repeat

The send and receive paths follow wireguard-go's send.go/receive.go step by step; where a
step is a timer verb the kernel names, the same name is used (see pywg/protocol/timers.py).
"""

from __future__ import annotations

import collections
import ipaddress
import random
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

from pywg._constants import DEFAULT_MTU, MESSAGE_DATA, NSEC_PER_SEC
from pywg._protocol import handshake as hs
from pywg._protocol import timers, transport
from pywg._protocol.endpoint import Endpoint
from pywg._protocol.errors import LocalProtocolError
from pywg._protocol.keypair import Keypair
from pywg._protocol.peer import Peer
from pywg._protocol.timers import TimerAction, TimerState, Timing
from pywg._protocol.transport import TransportDrop
from tests.support.allowedips import AllowedIPs
from tests.support.packets import destination, source

T0 = 1_000 * NSEC_PER_SEC
WALL0 = 1_700_000_000 * NSEC_PER_SEC
NETWORK_CAPACITY = 4096  # datagrams in flight; more are lost, as on a full link
TUN_CAPACITY = 4096
MAX_TIMER_ROUNDS = 4  # an action may request another (a keepalive needing a handshake)


class FakeClock:
    def __init__(self, now_ns: int = T0, wall_ns: int = WALL0) -> None:
        self.now_ns = now_ns
        self._wall_offset = wall_ns - now_ns

    @property
    def wall_ns(self) -> int:
        return self.now_ns + self._wall_offset

    def advance(self, seconds: float) -> None:
        self.now_ns += round(seconds * NSEC_PER_SEC)


class Datagram(NamedTuple):
    src: Endpoint
    dst: Endpoint
    data: bytes
    sent_ns: int


class Network:
    """In-memory UDP. Datagrams to an unattached or `unreachable` endpoint vanish."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.devices: dict[Endpoint, PyDevice] = {}
        self.in_flight: collections.deque[Datagram] = collections.deque()
        self.sent: collections.deque[Datagram] = collections.deque(maxlen=NETWORK_CAPACITY)
        self.unreachable: set[Endpoint] = set()
        self.lost = 0

    def attach(self, endpoint: Endpoint, device: PyDevice) -> None:
        self.devices[endpoint] = device

    def send(self, src: Endpoint, dst: Endpoint, data: bytes) -> None:
        datagram = Datagram(src, dst, bytes(data), self.clock.now_ns)
        self.sent.append(datagram)
        if len(self.in_flight) >= NETWORK_CAPACITY:
            self.lost += 1
            return
        self.in_flight.append(datagram)

    def deliver(self, limit: int = 100_000) -> int:
        """Hand every datagram in flight (and those sent in reply) to its destination."""
        delivered = 0
        while self.in_flight and delivered < limit:
            datagram = self.in_flight.popleft()
            device = self.devices.get(datagram.dst)
            if device is None or datagram.dst in self.unreachable:
                self.lost += 1
                continue
            device.receive(datagram.data, datagram.src)
            delivered += 1
        return delivered

    def hold(self) -> list[Datagram]:
        """Take everything in flight out of the network (for delaying or replaying)."""
        held = list(self.in_flight)
        self.in_flight.clear()
        return held


class PyDevice:
    def __init__(self, private_key: bytes, endpoint: Endpoint, network: Network,
                 clock: FakeClock, *, timing: Timing | None = None, mtu: int = DEFAULT_MTU,
                 seed: int = 0) -> None:
        rng = random.Random(seed)
        self.core = hs.HandshakeCore(private_key, rng=rng.randbytes)
        self.endpoint = endpoint
        self.network = network
        self.clock = clock
        self.timing = timing or Timing()
        self.mtu = mtu
        self.under_load = False
        self.peers: dict[bytes, Peer] = {}
        self.allowed_ips: AllowedIPs[Peer] = AllowedIPs()
        self.tun: collections.deque[bytes] = collections.deque(maxlen=TUN_CAPACITY)
        self.drops: collections.Counter[str] = collections.Counter()
        self.events: collections.Counter[str] = collections.Counter()
        self._jitter_rng = random.Random(seed + 1).randrange
        self._deadlines: dict[bytes, int | None] = {}
        network.attach(endpoint, self)

    @property
    def public_key(self) -> bytes:
        key = self.core.public_key
        assert key is not None
        return key

    def add_peer(self, public_key: bytes, allowed_ips: Iterable[str], *,
                 endpoint: Endpoint | None = None, persistent_keepalive_s: int = 0) -> Peer:
        self.core.add_peer(public_key)
        peer = Peer(public_key, timers=TimerState(self.timing, self._jitter_rng),
                    endpoint=endpoint)
        self.peers[public_key] = peer
        for network in allowed_ips:
            self.allowed_ips.insert(network, peer)
        if persistent_keepalive_s:
            timers.set_persistent_keepalive(peer.timers, persistent_keepalive_s * NSEC_PER_SEC)
            self._run_timers(peer)
        return peer

    # ---- the TUN side: an inner packet to send ----------------------------------------------

    def send(self, packet: bytes) -> None:
        peer = self.allowed_ips.lookup(destination(packet))
        if peer is None:
            self.drops["no_route"] += 1
            return
        peer.stage(packet)
        self._send_staged(peer)
        self._run_timers(peer)

    def _send_staged(self, peer: Peer) -> None:
        now = self.clock.now_ns
        keypair = peer.keypairs.for_sending(now, self.timing)
        if keypair is None:
            # Packets stay staged until a handshake brings keys.
            timers.request_handshake(peer.timers)
            return
        packets = peer.take_staged()
        sent_data = False
        for i, packet in enumerate(packets):
            if not keypair.usable_for_sending(now, self.timing):
                # Out of counters halfway through: the rest waits for the next keypair.
                peer.restage(packets[i:])
                timers.request_handshake(peer.timers)
                break
            sealed = transport.seal(keypair, packet, self.mtu,
                                    limit=self.timing.reject_after_messages)
            self._transmit(peer, sealed)
            sent_data = sent_data or bool(packet)
        timers.any_authenticated_packet_sent(peer.facts, now)
        if sent_data:
            timers.data_sent(peer.facts, now)
        peer.refresh_keypair_facts()
        if timers.keep_key_fresh_sending(peer.facts, now, self.timing):
            timers.request_handshake(peer.timers)

    def _transmit(self, peer: Peer, datagram: bytes) -> None:
        if peer.endpoint is None:
            self.drops["no_endpoint"] += 1
            return
        peer.counters.tx_bytes += len(datagram)
        self.network.send(self.endpoint, peer.endpoint, datagram)

    # ---- the UDP side: a datagram arrived ---------------------------------------------------

    def receive(self, datagram: bytes, src: Endpoint) -> None:
        if len(datagram) >= 4 and struct.unpack_from("<I", datagram)[0] == MESSAGE_DATA:
            self._receive_transport(datagram, src)
        else:
            self._receive_handshake(datagram, src)

    def _receive_transport(self, datagram: bytes, src: Endpoint) -> None:
        now = self.clock.now_ns
        opened = transport.unseal(datagram, self._keypair_by_index, now, self.timing)
        if isinstance(opened, TransportDrop):
            self.drops[opened.value] += 1
            return
        peer = self._peer_of(opened.keypair)
        timers.any_authenticated_packet_received(peer.facts, now)
        peer.endpoint = src  # roaming: authenticated packets move the endpoint
        peer.counters.rx_bytes += len(datagram)
        rotation = peer.received_with(opened.keypair, now)
        self._release(rotation.released)
        if rotation.confirmed:
            self.events["next_keypair_confirmed"] += 1
            self._send_staged(peer)
        if timers.keep_key_fresh_receiving(peer.facts, now, self.timing):
            timers.request_last_minute_handshake(peer.timers)
        if not opened.is_keepalive:
            timers.data_received(peer.facts, now)
            self._deliver_inner(peer, opened.plaintext)
        else:
            self.events["keepalive_received"] += 1
        self._run_timers(peer)

    def _deliver_inner(self, peer: Peer, plaintext: bytes) -> None:
        packet = transport.trim(plaintext)
        if isinstance(packet, TransportDrop):
            self.drops[packet.value] += 1
        elif self.allowed_ips.lookup(source(packet)) is not peer:
            # Cryptokey routing: a peer may only send from the addresses it is allowed.
            self.drops["disallowed_source"] += 1
        else:
            self.tun.append(packet)

    def _receive_handshake(self, datagram: bytes, src: Endpoint) -> None:
        now = self.clock.now_ns
        touched: list[Peer] = []
        for action in self.core.receive(datagram, src, now, self.under_load):
            match action:
                case hs.UpdateEndpoint(key, endpoint):
                    peer = self.peers[key]
                    peer.endpoint = endpoint
                    peer.counters.rx_bytes += len(datagram)
                    timers.any_authenticated_packet_received(peer.facts, now)
                    touched.append(peer)
                case hs.InstallSession(session):
                    peer = self.peers[session.peer]
                    self._release(peer.install_session(session, now))
                    self.events["session_installed"] += 1
                    if session.initiator:
                        # Confirm the keypair to the responder with data or a keepalive.
                        self._send_keepalive(peer)
                case hs.SendHandshakeResponse(key, packet):
                    peer = self.peers[key]
                    self._transmit(peer, packet)
                    timers.any_authenticated_packet_sent(peer.facts, now)
                case hs.SendCookieReply(destination_, packet):
                    self.network.send(self.endpoint, destination_, packet)
                case hs.CookieConsumed():
                    self.events["cookie_consumed"] += 1
                case hs.Drop(reason):
                    self.drops[reason.value] += 1
        for peer in touched:
            self._run_timers(peer)

    def _keypair_by_index(self, index: int) -> Keypair | None:
        entry = self.core.index_entry(index)
        if entry is None or entry.kind is not hs.IndexKind.KEYPAIR:
            return None
        peer = self.peers.get(entry.peer)
        return peer.keypairs.find(index) if peer else None

    def _peer_of(self, keypair: Keypair) -> Peer:
        entry = self.core.index_entry(keypair.local_index)
        assert entry is not None
        return self.peers[entry.peer]

    def _release(self, indices: tuple[int, ...]) -> None:
        for index in indices:
            self.core.release_index(index)

    # ---- timers -----------------------------------------------------------------------------

    def tick(self) -> None:
        for peer in self.peers.values():
            self._run_timers(peer)

    def next_deadline(self) -> int | None:
        pending = [d for d in self._deadlines.values() if d is not None]
        return min(pending) if pending else None

    def _run_timers(self, peer: Peer) -> None:
        for _ in range(MAX_TIMER_ROUNDS):
            decision = timers.evaluate(peer.timers, peer.facts, self.clock.now_ns)
            self._deadlines[peer.public_key] = decision.next_deadline_ns
            if not decision.actions:
                return
            for action in decision.actions:
                self.events[action.value] += 1
                self._perform(peer, action)

    def _perform(self, peer: Peer, action: TimerAction) -> None:
        now = self.clock.now_ns
        match action:
            case TimerAction.SEND_INITIATION:
                try:
                    packet = self.core.create_initiation(peer.public_key, now, self.clock.wall_ns)
                except LocalProtocolError:
                    self.drops["initiation_failed"] += 1
                    return
                self._transmit(peer, packet)
                timers.any_authenticated_packet_sent(peer.facts, now)
            case TimerAction.SEND_KEEPALIVE:
                self._send_keepalive(peer)
            case TimerAction.CLEAR_ENDPOINT_SOURCE:
                pass  # an in-memory network has no cached source address
            case TimerAction.FLUSH_STAGED:
                peer.flush_staged()
            case TimerAction.ZERO_KEY_MATERIAL:
                self._release(peer.zero_key_material())
                self.core.clear_handshake(peer.public_key)

    def _send_keepalive(self, peer: Peer) -> None:
        # Staged packets confirm as well as a keepalive does; send one only if none wait.
        if not peer.staged:
            peer.stage(b"")
        self._send_staged(peer)


# ---- two devices and a way to run them ---------------------------------------------------

A_INNER = ("10.0.0.1", "fd00::1")
B_INNER = ("10.0.0.2", "fd00::2")


@dataclass
class Pair:
    clock: FakeClock
    network: Network
    a: PyDevice  # the initiator: it knows b's endpoint
    b: PyDevice  # learns a's endpoint from a's first authenticated packet

    @property
    def devices(self) -> tuple[PyDevice, PyDevice]:
        return self.a, self.b

    def run_for(self, seconds: float) -> None:
        run_until(self.devices, self.network, self.clock,
                  self.clock.now_ns + round(seconds * NSEC_PER_SEC))

    def settle(self) -> None:
        """Deliver what is in flight and run the timers due now, until nothing moves."""
        run_until(self.devices, self.network, self.clock, self.clock.now_ns)


def make_pair(*, timing: Timing | None = None, seed: int = 0,
              a_keepalive_s: int = 0, b_keepalive_s: int = 0) -> Pair:
    rng = random.Random(seed)
    clock = FakeClock()
    network = Network(clock)
    # In-memory only: these documentation addresses never reach a real socket.
    a_end = Endpoint(ipaddress.ip_address("192.0.2.1"), 51820)
    b_end = Endpoint(ipaddress.ip_address("192.0.2.2"), 51820)
    a = PyDevice(rng.randbytes(32), a_end, network, clock, timing=timing, seed=seed * 2)
    b = PyDevice(rng.randbytes(32), b_end, network, clock, timing=timing, seed=seed * 2 + 1)
    a.add_peer(b.public_key, [f"{B_INNER[0]}/32", f"{B_INNER[1]}/128"], endpoint=b_end,
               persistent_keepalive_s=a_keepalive_s)
    b.add_peer(a.public_key, [f"{A_INNER[0]}/32", f"{A_INNER[1]}/128"],
               persistent_keepalive_s=b_keepalive_s)
    return Pair(clock, network, a, b)


def run_until(devices: Iterable[PyDevice], network: Network, clock: FakeClock, end_ns: int,
              max_steps: int = 100_000) -> None:
    """Deliver everything in flight, then move the clock to the earliest timer deadline and
    run the timers, until no deadline is left before `end_ns`; then stop at `end_ns`."""
    devices = tuple(devices)
    for _ in range(max_steps):
        network.deliver()
        pending = [d for dev in devices if (d := dev.next_deadline()) is not None]
        due = [d for d in pending if d <= end_ns]
        if not due:
            clock.now_ns = max(clock.now_ns, end_ns)
            return
        clock.now_ns = max(clock.now_ns, min(due))
        for device in devices:
            device.tick()
    raise RuntimeError(f"the devices did not settle within {max_steps} steps")
