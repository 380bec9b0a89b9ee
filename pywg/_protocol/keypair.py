"""Transport keypairs and their rotation: previous, current and next.

A handshake ends with two symmetric keys, one per direction. Each peer holds up to three
keypairs so that no packet in flight is lost while keys change:

  current   what we send with (and receive with);
  previous  the keypair current replaced: packets sent under it may still be arriving;
  next      (responder only) derived from a handshake we answered, but not yet used by the
            initiator. We may not send with it until we know the initiator has it too,
            which its first data packet under it proves; until then we keep sending with
            current.

The initiator learns the handshake succeeded when it consumes the response, so its new
keypair becomes current at once. Whoever is pushed out of the three slots is released:
its keys are wiped and its local index is returned so the index table can free it.

A keypair is usable for sending until it is REJECT_AFTER_TIME old or has sent
REJECT_AFTER_MESSAGES packets, and for receiving until it is REJECT_AFTER_TIME old (its
replay filter refuses counters at or past REJECT_AFTER_MESSAGES). Not safe for concurrent
use.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

from pywg._constants import NOISE_SYMMETRIC_KEY_LEN
from pywg._protocol.crypto import wipe
from pywg._protocol.errors import LocalProtocolError
from pywg._protocol.noise import Session
from pywg._protocol.replay import ReplayFilter
from pywg._protocol.timers import Timing

__all__ = ["Keypair", "Keypairs", "Rotation"]


class Keypair:
    """One session's keys, counters and identity.

    The keypair takes ownership of the two key bytearrays (a `noise.Session`'s): they are
    wiped when it is released, so the caller keeps no other reference to them.
    """

    __slots__ = (
        "birth_ns",
        "is_initiator",
        "local_index",
        "receive_key",
        "remote_index",
        "replay_filter",
        "send_counter",
        "send_key",
        "valid",
    )

    def __init__(
        self,
        send_key: bytearray,
        receive_key: bytearray,
        *,
        local_index: int,
        remote_index: int,
        birth_ns: int,
        is_initiator: bool,
    ) -> None:
        for name, key in (("send", send_key), ("receive", receive_key)):
            if not isinstance(key, bytearray) or len(key) != NOISE_SYMMETRIC_KEY_LEN:
                raise LocalProtocolError(
                    f"{name} key must be a bytearray of {NOISE_SYMMETRIC_KEY_LEN} bytes"
                )
        self.send_key = send_key
        self.receive_key = receive_key
        self.local_index = local_index  # the receiver index peers put on packets to us
        self.remote_index = remote_index  # the receiver index we put on packets to them
        self.birth_ns = birth_ns
        self.is_initiator = is_initiator
        self.send_counter = 0  # the next nonce to send with
        self.replay_filter = ReplayFilter()
        self.valid = True  # False once wiped

    @classmethod
    def from_session(cls, session: Session) -> Keypair:
        """The keypair a finished handshake derived (it takes the session's keys)."""
        return cls(
            session.send_key,
            session.receive_key,
            local_index=session.local_index,
            remote_index=session.remote_index,
            birth_ns=session.birth_ns,
            is_initiator=session.initiator,
        )

    def __repr__(self) -> str:
        # Never the keys.
        return (
            f"Keypair(local_index={self.local_index:#010x}, remote_index={self.remote_index:#010x}"
            f", initiator={self.is_initiator}, sent={self.send_counter}, valid={self.valid})"
        )

    def usable_for_sending(self, now: int, timing: Timing) -> bool:
        return (
            self.valid
            and self.send_counter < timing.reject_after_messages
            and now - self.birth_ns < timing.reject_after_time_ns
        )

    def usable_for_receiving(self, now: int, timing: Timing) -> bool:
        return self.valid and now - self.birth_ns < timing.reject_after_time_ns

    def take_send_counter(self, limit: int) -> int:
        """The nonce for the next packet; the caller checked usable_for_sending."""
        if not self.valid or self.send_counter >= limit:
            raise LocalProtocolError("keypair cannot send: wiped or out of counters")
        counter = self.send_counter
        self.send_counter += 1
        return counter

    def wipe(self) -> None:
        wipe(self.send_key, self.receive_key)
        self.valid = False


class Rotation(NamedTuple):
    """What receiving with a keypair changed."""

    confirmed: bool  # it was the responder's next keypair, and is now current
    released: tuple[int, ...]  # local indices to free


class Keypairs:
    """A peer's previous, current and next keypairs (kernel: struct noise_keypairs)."""

    __slots__ = ("current", "next", "previous")

    def __init__(self) -> None:
        self.previous: Keypair | None = None
        self.current: Keypair | None = None
        self.next: Keypair | None = None

    def __iter__(self) -> Iterator[Keypair]:
        return (k for k in (self.current, self.previous, self.next) if k is not None)

    def add(self, keypair: Keypair) -> tuple[int, ...]:
        """Install a freshly derived keypair; returns the local indices released."""
        if keypair.is_initiator:
            return self._add_as_initiator(keypair)
        return self._add_as_responder(keypair)

    def _add_as_initiator(self, keypair: Keypair) -> tuple[int, ...]:
        if self.next is not None:
            # We answered a handshake and then ours completed: the keypair we answered with
            # may already be in use by the peer, so it stays around as previous, and
            # current, superseded twice, goes.
            released = _release(self.previous, self.current)
            self.previous, self.next = self.next, None
        else:
            released = _release(self.previous)
            self.previous = self.current
        self.current = keypair
        return released

    def _add_as_responder(self, keypair: Keypair) -> tuple[int, ...]:
        # Current stays (we keep sending with it until the initiator confirms); previous
        # goes so that confirmation can move current into its place.
        released = _release(self.next, self.previous)
        self.next, self.previous = keypair, None
        return released

    def received_with(self, keypair: Keypair) -> Rotation:
        """An authenticated data packet arrived under `keypair`: confirm next if it is."""
        if keypair is not self.next:
            return Rotation(False, ())
        released = _release(self.previous)
        self.previous, self.current, self.next = self.current, keypair, None
        return Rotation(True, released)

    def for_sending(self, now: int, timing: Timing) -> Keypair | None:
        current = self.current
        if current is not None and current.usable_for_sending(now, timing):
            return current
        return None

    def find(self, local_index: int) -> Keypair | None:
        for keypair in self:
            if keypair.local_index == local_index:
                return keypair
        return None

    def clear(self) -> tuple[int, ...]:
        """Wipe all three (zero key material, peer removed); returns the indices released."""
        released = _release(self.previous, self.current, self.next)
        self.previous = self.current = self.next = None
        return released


def _release(*keypairs: Keypair | None) -> tuple[int, ...]:
    released = []
    for keypair in keypairs:
        if keypair is not None:
            keypair.wipe()
            released.append(keypair.local_index)
    return tuple(released)
