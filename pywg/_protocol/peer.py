"""One peer's protocol state, sans I/O: keypairs, timers, staged packets, endpoint, counters.

What a peer holds, as the kernel's peer.c and wireguard-go's peer.go have it; the handshake
itself (and the index table) lives in `HandshakeCore`. The send and receive paths that use
this state belong to whoever moves packets: the C data plane, or the pure-Python reference
device the tests run (tests/support/pydevice.py).

Packets wait here ("staged") while there is no keypair to send them with. The queue is
bounded at MAX_STAGED_PACKETS; when it is full the oldest packet goes, since fresher
packets are likelier to still matter once the handshake completes. Not safe for concurrent
use.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from pywg._constants import MAX_STAGED_PACKETS
from pywg._protocol import timers
from pywg._protocol.endpoint import Endpoint
from pywg._protocol.keypair import Keypair, Keypairs, Rotation
from pywg._protocol.noise import Session
from pywg._protocol.timers import PeerFacts, TimerState

__all__ = ["Peer", "PeerCounters"]


@dataclass(slots=True)
class PeerCounters:
    """Traffic and drops, for `wg show` and for tests."""

    tx_bytes: int = 0  # transport and handshake datagrams sent to the peer
    rx_bytes: int = 0  # authenticated datagrams received from the peer
    staged_dropped: int = 0  # staged packets lost to the bound or to a handshake giving up


@dataclass(eq=False)
class Peer:
    public_key: bytes
    timers: TimerState = field(default_factory=TimerState)
    keypairs: Keypairs = field(default_factory=Keypairs)
    facts: PeerFacts = field(default_factory=PeerFacts)
    endpoint: Endpoint | None = None
    counters: PeerCounters = field(default_factory=PeerCounters)
    staged: deque[bytes] = field(default_factory=lambda: deque(maxlen=MAX_STAGED_PACKETS))

    def __repr__(self) -> str:
        return f"Peer({self.public_key.hex()[:8]}…, endpoint={self.endpoint})"

    # ---- staged packets -------------------------------------------------------------------

    def stage(self, packet: bytes) -> None:
        """Queue an inner packet until a keypair can carry it (the oldest goes when full)."""
        if len(self.staged) == self.staged.maxlen:
            self.counters.staged_dropped += 1
        self.staged.append(packet)

    def take_staged(self) -> list[bytes]:
        packets = list(self.staged)
        self.staged.clear()
        return packets

    def restage(self, packets: list[bytes]) -> None:
        """Put back packets that could not be sent, ahead of any staged since."""
        for packet in reversed(packets):
            if len(self.staged) == self.staged.maxlen:
                self.counters.staged_dropped += 1
                continue
            self.staged.appendleft(packet)

    def flush_staged(self) -> None:
        self.counters.staged_dropped += len(self.staged)
        self.staged.clear()

    # ---- keypairs -------------------------------------------------------------------------

    def install_session(self, session: Session, now: int) -> tuple[int, ...]:
        """A handshake derived keys: install them; returns the local indices released.

        For the initiator the handshake is complete; the responder waits for confirmation.
        """
        released = self.keypairs.add(Keypair.from_session(session))
        timers.session_derived(self.timers, now)
        if session.initiator:
            timers.handshake_complete(self.timers, now)
        self.refresh_keypair_facts()
        return released

    def received_with(self, keypair: Keypair, now: int) -> Rotation:
        """Authenticated data arrived under `keypair`; if that confirms the responder's next
        keypair, the handshake is complete (the caller then sends what is staged)."""
        rotation = self.keypairs.received_with(keypair)
        if rotation.confirmed:
            timers.handshake_complete(self.timers, now)
            self.refresh_keypair_facts()
        return rotation

    def zero_key_material(self) -> tuple[int, ...]:
        """Wipe every keypair and drop what was waiting for one; returns released indices."""
        released = self.keypairs.clear()
        self.flush_staged()
        self.refresh_keypair_facts()
        return released

    def refresh_keypair_facts(self) -> None:
        """Copy the current keypair's birth, counter and role into the timer facts."""
        current = self.keypairs.current
        self.facts.keypair_birth_ns = current.birth_ns if current else 0
        self.facts.keypair_send_counter = current.send_counter if current else 0
        self.facts.keypair_is_initiator = current.is_initiator if current else False
        self.facts.has_next_keypair = self.keypairs.next is not None
