"""One peer as the driver keeps it: the kernel's struct wg_peer, minus what the C data plane
keeps (endpoint, keypairs and their indices, counters and timestamps, staged packets,
allowed IPs), which it reaches through `slot`.

Here live the peer's handshake state (its Noise `Handshake` and `CookieGenerator`, which the
protocol core works on), its timer state, and the two facts only Python knows: when the
latest handshake completed (wall-clock, for `wg show`) and when its timers want to run next.
What `wg` configured (preshared key, endpoint, keepalive, allowed IPs) is the
configuration's (pywg._config.model.PeerConfig): the record holds the parts that run.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pywg._driver.log import peer_name
from pywg._protocol.cookie import CookieGenerator
from pywg._protocol.noise import Handshake
from pywg._protocol.timers import TimerState

__all__ = ["Peer"]


@dataclass(eq=False, slots=True)
class Peer:
    public_key: bytes
    slot: int  # the data plane's name for it
    timers: TimerState
    handshake: Handshake = field(init=False)
    cookie: CookieGenerator = field(init=False)
    last_handshake_wall_ns: int = 0  # 0: never
    deadline_ns: int | None = None  # when its timers run next, if no fact moves first

    def __post_init__(self) -> None:
        self.handshake = Handshake(remote_static=self.public_key)
        self.cookie = CookieGenerator(self.public_key)

    @property
    def name(self) -> str:
        """How logs name it: a short form of its public key, never anything secret."""
        return peer_name(self.public_key)

    def __str__(self) -> str:
        # Logs take the peer itself, so a line that is not written costs no formatting.
        return self.name

    def wipe(self) -> None:
        """Forget every secret (the peer is being removed)."""
        self.handshake.wipe()
        self.cookie.wipe()
