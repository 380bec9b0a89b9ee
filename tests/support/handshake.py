"""A HandshakeCore with what the driver and the data plane give it, for tests that run the
protocol core alone (tests/unit/test_handshake.py, and against a real wireguard-go in
tests/integration/test_handshake_wggo.py).

`Side.indices` stands for the data plane's index table: a handshake's index, which its
keypair then takes; a response must name a pending handshake's index, a cookie reply any.
`Side.peer_for` hands a message up with the peer its index names, as the data plane does.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

from pywg._protocol.cookie import CookieGenerator
from pywg._protocol.crypto import Buffer
from pywg._protocol.handshake import Action, HandshakeCore, HandshakePeer, InstallSession
from pywg._protocol.noise import Handshake, Session


@dataclass(eq=False)
class Record:
    """A peer record as the driver keeps one (what HandshakePeer asks for)."""

    public_key: bytes
    handshake: Handshake = field(init=False)
    cookie: CookieGenerator = field(init=False)

    def __post_init__(self) -> None:
        self.handshake = Handshake(remote_static=self.public_key)
        self.cookie = CookieGenerator(self.public_key)


class Side:
    """One device: a HandshakeCore, its peer records, and the data plane's index table."""

    def __init__(self, private: Buffer, rng: Callable[[int], bytes]) -> None:
        self.peers: dict[bytes, Record] = {}
        self.indices: dict[int, tuple[Record, str]] = {}  # index -> (record, kind)
        self.pending: dict[Record, int] = {}  # record -> its handshake's index
        self._rng = random.Random(rng(8))
        self.core = HandshakeCore(self.peers.get, self.new_index, rng=rng)
        self.set_private_key(private)

    @property
    def public_key(self) -> bytes | None:
        return self.core.public_key

    def set_private_key(self, private: Buffer | None) -> None:
        self.core.set_private_key(private)
        for record in self.peers.values():
            record.handshake.clear()
            record.handshake.forget_static_static()

    def add_peer(self, public_key: bytes, psk: Buffer | None = None) -> Record:
        record = self.peers[public_key] = Record(public_key)
        record.handshake.set_preshared_key(psk)
        return record

    def new_index(self, peer: HandshakePeer) -> int:
        record = self.peers[peer.public_key]
        old = self.pending.pop(record, None)
        if old is not None:
            del self.indices[old]
        index = self._rng.getrandbits(32)
        self.indices[index] = (record, "handshake")
        self.pending[record] = index
        return index

    def install(self, session: Session) -> None:
        record = self.peers[session.peer]
        assert self.pending.pop(record) == session.local_index
        self.indices[session.local_index] = (record, "keypair")

    def peer_for(self, datagram: bytes) -> Record | None:
        """What the data plane hands up with a message: the peer its index names."""
        kind = datagram[0] if len(datagram) in (92, 64) else 0
        offset = {2: 8, 3: 4}.get(kind)
        if offset is None:
            return None
        record, what = self.indices.get(struct.unpack_from("<I", datagram, offset)[0],
                                        (None, None))
        return record if kind == 3 or what == "handshake" else None

    def initiation(self, to: bytes, now: int, wall: int) -> bytes:
        return self.core.create_initiation(self.peers[to], now, wall)

    def receive(self, datagram: bytes, now: int) -> tuple[Action, ...]:
        """As the driver hands up what passed the data plane's front line (mac1 and, under
        load, mac2 and the rate limit are checked there, not here)."""
        actions = self.core.receive(datagram, self.peer_for(datagram), now)
        for action in actions:
            if isinstance(action, InstallSession):
                self.install(action.session)
        return actions
