"""`python -m pywg._tools.walkthrough`: two WireGuard peers in one process, step by step.

Alice and Bob are two instances of pywg's sans-I/O protocol core joined by nothing but
this script: it carries each datagram from one to the other, moves a pretend clock, and
prints what happens. No sockets, no root: the protocol alone, for reading. `make demo`
(pywg.demo) runs a real tunnel between two network namespaces.
"""

from __future__ import annotations

import struct
import time
from dataclasses import dataclass, field

from pywg._constants import DEFAULT_MTU, MESSAGE_DATA_HEADER_SIZE, NSEC_PER_SEC
from pywg._protocol import handshake as hs
from pywg._protocol import timers, transport
from pywg._protocol.endpoint import Endpoint
from pywg._protocol.keypair import Keypair
from pywg._protocol.peer import Peer
from pywg._protocol.timers import TimerAction, Timing
from pywg._tools import keys

__all__ = ["main"]

TIMING = Timing()


@dataclass
class Side:
    name: str
    endpoint: Endpoint
    core: hs.HandshakeCore = field(init=False)
    peer: Peer = field(init=False)

    def __post_init__(self) -> None:
        self.core = hs.HandshakeCore(keys.generate_private_key())

    @property
    def public_key(self) -> bytes:
        assert self.core.public_key is not None
        return self.core.public_key

    def meet(self, other: Side) -> None:
        self.core.add_peer(other.public_key)
        self.peer = Peer(other.public_key, endpoint=other.endpoint)

    def keypair(self, index: int) -> Keypair | None:
        return self.peer.keypairs.find(index)


class Demo:
    def __init__(self) -> None:
        self.now = time.monotonic_ns()
        self._wall_offset = time.time_ns() - self.now
        self.alice = Side("alice", Endpoint.from_sockaddr(("192.0.2.1", 51820)))
        self.bob = Side("bob", Endpoint.from_sockaddr(("192.0.2.2", 51820)))
        self.alice.meet(self.bob)
        self.bob.meet(self.alice)

    def wall(self) -> int:
        # The pretend clock jumps ahead; the handshake's timestamps must follow it.
        return self.now + self._wall_offset

    def handshake(self, initiator: Side, responder: Side) -> None:
        initiation = initiator.core.create_initiation(responder.public_key, self.now, self.wall())
        sender = struct.unpack_from("<I", initiation, 4)[0]
        say(f"{initiator.name} -> {responder.name}  initiation  {len(initiation)} bytes, "
            f"sender index {sender:#010x}")
        response = self.receive_handshake(responder, initiation, initiator.endpoint)
        assert response is not None
        sender, receiver = struct.unpack_from("<II", response, 4)
        say(f"{responder.name} -> {initiator.name}  response     {len(response)} bytes, "
            f"sender index {sender:#010x}, receiver index {receiver:#010x}")
        self.receive_handshake(initiator, response, responder.endpoint)
        say(f"both sides derived transport keys; {responder.name} keeps its new keypair as "
            f"'next' until {initiator.name}'s first packet confirms it")

    def receive_handshake(self, side: Side, datagram: bytes, source: Endpoint) -> bytes | None:
        reply = None
        for action in side.core.receive(datagram, source, self.now):
            match action:
                case hs.InstallSession(session):
                    for index in side.peer.install_session(session, self.now):
                        side.core.release_index(index)
                case hs.SendHandshakeResponse(_, packet):
                    reply = packet
                case hs.Drop(reason):
                    say(f"{side.name} dropped a handshake message: {reason.value}")
        return reply

    def send(self, sender: Side, receiver: Side, text: str) -> bytes:
        keypair = sender.peer.keypairs.for_sending(self.now, TIMING)
        assert keypair is not None
        src, dst = ("10.0.0.1", "10.0.0.2") if sender is self.alice else ("10.0.0.2", "10.0.0.1")
        sealed = transport.seal(keypair, ipv4(src, dst, text.encode()), DEFAULT_MTU)
        counter = struct.unpack_from("<Q", sealed, 8)[0]
        say(f"{sender.name} -> {receiver.name}  transport   {len(sealed)} bytes, counter {counter}"
            f", carrying {text!r}")
        self.receive_data(receiver, sealed)
        return sealed

    def receive_data(self, side: Side, datagram: bytes) -> None:
        opened = transport.unseal(datagram, side.keypair, self.now, TIMING)
        if isinstance(opened, transport.TransportDrop):
            say(f"{side.name} dropped it: {opened.value}")
            return
        if side.peer.received_with(opened.keypair, self.now).confirmed:
            say(f"{side.name} confirmed its next keypair: it is now current")
        if opened.is_keepalive:
            say(f"{side.name} received a keepalive")
            return
        inner = transport.trim(opened.plaintext)
        assert isinstance(inner, bytes)
        say(f"{side.name} decrypted a {len(inner)}-byte IPv4 packet: {inner[28:].decode()!r}")


def ipv4(src: str, dst: str, payload: bytes) -> bytes:
    """An IPv4/UDP packet (ports 9, the discard service); the demo skips checksums."""
    udp = struct.pack("!HHHH", 9, 9, 8 + len(payload), 0) + payload
    addresses = bytes(map(int, src.split("."))) + bytes(map(int, dst.split(".")))
    return struct.pack("!BBHHHBBH", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0) + addresses + udp


def say(text: str) -> None:
    print(f"  {text}")


def step(title: str) -> None:
    print(f"\n{title}")


def main() -> int:
    print("pywg demo: two WireGuard peers in one process (no network, no root)")
    demo = Demo()
    alice, bob = demo.alice, demo.bob
    step("1. keys (X25519; the private keys never leave their side)")
    say(f"alice  public key {keys.to_base64(alice.public_key)}")
    say(f"bob    public key {keys.to_base64(bob.public_key)}")

    step("2. handshake (Noise_IKpsk2)")
    demo.handshake(alice, bob)

    step("3. data both ways (ChaCha20-Poly1305, padded to 16 bytes)")
    first = demo.send(alice, bob, "hello bob")
    demo.send(bob, alice, "hello alice")

    step("4. a replayed packet")
    say(f"someone on the path resends alice's first packet ({len(first)} bytes)")
    demo.receive_data(bob, first)

    step("5. rekey: the initiator renews keys every REKEY_AFTER_TIME (120 s) while it sends")
    demo.now += 121 * NSEC_PER_SEC
    demo.send(alice, bob, "two minutes later")
    timers.data_sent(alice.peer.facts, demo.now)
    alice.peer.refresh_keypair_facts()
    if timers.keep_key_fresh_sending(alice.peer.facts, demo.now, TIMING):
        timers.request_handshake(alice.peer.timers)
    actions = timers.evaluate(alice.peer.timers, alice.peer.facts, demo.now).actions
    say(f"alice's timers: {', '.join(a.value for a in actions)}")
    if TimerAction.SEND_INITIATION in actions:
        demo.handshake(alice, bob)
    old = alice.peer.keypairs.previous
    assert old is not None
    say(f"alice now sends with a new keypair; the old one (index {old.local_index:#010x}) "
        "stays as 'previous' for packets still in flight")
    demo.send(alice, bob, "fresh keys")

    step("6. stale keys: nothing is accepted under a keypair older than 180 s")
    demo.now += 60 * NSEC_PER_SEC
    stale = transport.seal(old, b"", DEFAULT_MTU)  # as if it had been held up for a minute
    say(f"a {len(stale)}-byte keepalive under the old keypair ({MESSAGE_DATA_HEADER_SIZE}-byte "
        "header, empty payload, 16-byte tag) arrives 181 s after that keypair was made")
    demo.receive_data(bob, stale)
    print("\ndone")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
