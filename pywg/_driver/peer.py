"""One peer as the driver keeps it: the kernel's struct wg_peer, minus what the C data plane
keeps (endpoint, keypairs and their indices, counters and timestamps, staged packets,
allowed IPs), which it reaches through `slot`.

Here live the peer's handshake state (its Noise `Handshake` and `CookieGenerator`, which the
protocol core works on), its timer state, and the two facts only Python knows: when the
latest handshake completed (wall-clock, for `wg show`) and when its timers want to run next.
What `wg` configured is the configuration's (pywg._config.model.PeerConfig); the record
keeps the preshared key only because a handshake needs it.

A gateway may hold a million peers, most of them idle, so a record at rest is small: the
handshake, the cookie generator and the timer state are made the first time they are used.
"""

from __future__ import annotations

from dataclasses import dataclass

from pywg._driver.log import peer_name
from pywg._protocol.cookie import CookieGenerator
from pywg._protocol.noise import Handshake
from pywg._protocol.timers import RandBelow, TimerState, Timing, keys_expired

__all__ = ["Peer", "PeerContext"]


@dataclass(frozen=True, slots=True)
class PeerContext:
    """What every peer of a device shares, for making its state when first needed."""

    timing: Timing
    rand_below: RandBelow


class Peer:
    __slots__ = ("_context", "_cookie", "_handshake", "_psk", "_timers", "deadline_ns",
                 "last_handshake_wall_ns", "public_key", "slot")

    def __init__(self, public_key: bytes, slot: int, context: PeerContext,
                 preshared_key: bytes | None = None) -> None:
        self.public_key = public_key
        self.slot = slot  # the data plane's name for it
        self.last_handshake_wall_ns = 0  # 0: never
        self.deadline_ns: int | None = None  # its live entry in the device's timer heap
        self._context = context
        self._psk = preshared_key
        self._handshake: Handshake | None = None
        self._cookie: CookieGenerator | None = None
        self._timers: TimerState | None = None

    @property
    def handshake(self) -> Handshake:
        if self._handshake is None:
            handshake = Handshake(remote_static=self.public_key)
            handshake.set_preshared_key(self._psk)
            self._handshake = handshake
        return self._handshake

    @property
    def cookie(self) -> CookieGenerator:
        if self._cookie is None:
            self._cookie = CookieGenerator(self.public_key)
        return self._cookie

    @property
    def timers(self) -> TimerState:
        if self._timers is None:
            self._timers = TimerState(timing=self._context.timing,
                                      rng=self._context.rand_below)
        return self._timers

    def set_preshared_key(self, key: bytes | None) -> None:
        self._psk = key
        if self._handshake is not None:
            self._handshake.set_preshared_key(key)

    def new_identity(self) -> None:
        """Our private key changed: a handshake in progress is void, and the static-static
        secret is forgotten (the next handshake computes it with the new key); the next
        initiation may go at once."""
        if self._handshake is not None:
            self._handshake.clear()
            self._handshake.forget_static_static()
        if self._timers is not None:
            keys_expired(self._timers)

    def clear_handshake(self) -> None:
        if self._handshake is not None:
            self._handshake.clear()

    @property
    def name(self) -> str:
        """How logs name it: a short form of its public key, never anything secret."""
        return peer_name(self.public_key)

    def __str__(self) -> str:
        # Logs take the peer itself, so a line that is not written costs no formatting.
        return self.name

    def wipe(self) -> None:
        """Forget every secret (the peer is being removed)."""
        if self._handshake is not None:
            self._handshake.wipe()
        if self._cookie is not None:
            self._cookie.wipe()
        self._psk = None
