"""The handshake half of a WireGuard device, sans I/O (the kernel's `struct wg_device` and
the handshake path of its receive.c; wireguard-go's Device and RoutineHandshake).

`HandshakeCore` holds our static identity, the peers by public key (each with its
handshake state and cookie generator), the index table, the cookie checker and the rate
limiter. It has two entry points for traffic:

    create_initiation(peer, now_ns, wall_ns) -> bytes          a 148-byte initiation
    receive(datagram, source, now_ns, under_load) -> actions   for any datagram

`receive` never raises a ProtocolError: every datagram yields a tuple of actions, in the
order the driver must carry them out, and a rejected datagram yields exactly one `Drop` with a
typed reason:

    initiation accepted:  UpdateEndpoint, InstallSession (responder), SendHandshakeResponse
    response accepted:    UpdateEndpoint, InstallSession (initiator)
    cookie reply taken:   CookieConsumed
    under load, no mac2:  SendCookieReply (to the source; the endpoint is NOT updated)
    anything else:        Drop

Processing order for types 1 and 2 (as the kernel and wireguard-go do): exact size, mac1
(always), then under load mac2 (else a cookie reply) and the per-source rate limit, then the
Noise work. Under load is what the driver says, kept for a second after it last said so.

Times: `now_ns` is monotonic (cookie ages, the 20 ms initiation limit, session birth);
`wall_ns` is wall-clock time and only feeds the TAI64N timestamp.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass, field

from pywg._constants import MAX_PEERS, NOISE_PUBLIC_KEY_LEN, UNDER_LOAD_AFTER_S
from pywg._protocol import crypto, messages, noise, tai64n
from pywg._protocol.cookie import CookieChecker, CookieGenerator
from pywg._protocol.crypto import Buffer, Rng
from pywg._protocol.endpoint import Endpoint
from pywg._protocol.errors import (
    DropReason,
    LocalProtocolError,
    ProtocolError,
    RemoteProtocolError,
)
from pywg._protocol.indextable import IndexTable
from pywg._protocol.messages import MessageCookieReply, MessageInitiation, MessageResponse
from pywg._protocol.noise import Handshake, Session, StaticIdentity
from pywg._protocol.ratelimiter import RateLimiter

__all__ = [
    "Action",
    "CookieConsumed",
    "Drop",
    "HandshakeCore",
    "IndexEntry",
    "IndexKind",
    "InstallSession",
    "SendCookieReply",
    "SendHandshakeResponse",
    "UpdateEndpoint",
]

_UNDER_LOAD_AFTER_NS = UNDER_LOAD_AFTER_S * 1_000_000_000


# ---- Actions: what `receive` tells the driver to do -----------------------------------------

@dataclass(frozen=True, slots=True)
class SendCookieReply:
    """Send `packet` (a 64-byte cookie reply) to `destination`, the message's source."""

    destination: Endpoint
    packet: bytes


@dataclass(frozen=True, slots=True)
class SendHandshakeResponse:
    """Send `packet` (a 92-byte response) to `peer`'s endpoint (just updated)."""

    peer: bytes
    packet: bytes


@dataclass(frozen=True, slots=True)
class InstallSession:
    """A handshake completed: install the keypair (responder: as `next`; initiator: current)."""

    session: Session


@dataclass(frozen=True, slots=True)
class UpdateEndpoint:
    """An authenticated handshake message came from `endpoint`: roam the peer there."""

    peer: bytes
    endpoint: Endpoint


@dataclass(frozen=True, slots=True)
class CookieConsumed:
    """A cookie reply from `peer` was stored; its next handshake message will carry mac2."""

    peer: bytes


@dataclass(frozen=True, slots=True)
class Drop:
    """The datagram was rejected; count it under `reason`."""

    reason: DropReason
    detail: str = ""


Action = SendCookieReply | SendHandshakeResponse | InstallSession | UpdateEndpoint \
    | CookieConsumed | Drop


# ---- The index table's values ---------------------------------------------------------------

class IndexKind(enum.Enum):
    HANDSHAKE = enum.auto()
    KEYPAIR = enum.auto()


@dataclass(frozen=True, slots=True)
class IndexEntry:
    peer: bytes
    kind: IndexKind


@dataclass(eq=False)
class _Peer:
    handshake: Handshake
    cookie: CookieGenerator
    handshake_index: int | None = None  # the index of our pending handshake, if any
    keypair_indices: set[int] = field(default_factory=set)


class HandshakeCore:
    """Everything a device needs to run WireGuard handshakes; no I/O, no clock."""

    def __init__(self, private_key: Buffer | None = None, *,
                 rng: Rng = crypto.random_bytes) -> None:
        self._rng = rng
        self._identity: StaticIdentity | None = None
        self._peers: dict[bytes, _Peer] = {}
        self._indices: IndexTable[IndexEntry] = IndexTable(rng=rng)
        self._checker = CookieChecker(rng=rng)
        self._ratelimiter = RateLimiter()
        self._last_under_load_ns: int | None = None
        if private_key is not None:
            self.set_private_key(private_key)

    # ---- configuration ----------------------------------------------------------------------

    @property
    def public_key(self) -> bytes | None:
        return self._identity.public_key if self._identity else None

    def set_private_key(self, private_key: Buffer | None) -> tuple[bytes, ...]:
        """Set (or, with None, clear) our static private key.

        Recomputes every peer's static-static DH and abandons handshakes in progress. A peer
        whose public key is our new public key is removed (as wireguard-go does); their keys
        are returned.
        """
        identity = StaticIdentity(private_key) if private_key is not None else None
        if identity and self._identity and identity.public_key == self._identity.public_key:
            identity.wipe()
            return ()
        if self._identity is not None:
            self._identity.wipe()
        self._identity = identity
        self._checker.set_public_key(identity.public_key if identity else None)
        removed = tuple(k for k in self._peers if identity and k == identity.public_key)
        for key in removed:
            self.remove_peer(key)
        for key, peer in self._peers.items():
            self.clear_handshake(key)
            peer.handshake.precompute(identity)
        return removed

    def add_peer(self, public_key: bytes, preshared_key: Buffer | None = None) -> None:
        """Add a peer; our own public key, a duplicate or a bad length is refused."""
        if len(public_key) != NOISE_PUBLIC_KEY_LEN:
            raise LocalProtocolError("a public key is 32 bytes")
        if public_key in self._peers:
            raise LocalProtocolError("the peer already exists")
        if public_key == self.public_key:
            raise LocalProtocolError("a peer cannot have our own public key")
        if len(self._peers) >= MAX_PEERS:
            raise LocalProtocolError(f"at most {MAX_PEERS} peers")
        handshake = Handshake(remote_static=bytes(public_key))
        handshake.set_preshared_key(preshared_key)
        handshake.precompute(self._identity)
        self._peers[bytes(public_key)] = _Peer(handshake, CookieGenerator(bytes(public_key)))

    def remove_peer(self, public_key: bytes) -> tuple[int, ...]:
        """Remove a peer and wipe its secrets; returns the keypair indices it held, which the
        driver must drop from the data plane."""
        peer = self._peer(public_key)
        self.clear_handshake(public_key)
        released = tuple(sorted(peer.keypair_indices))
        for index in released:
            self._indices.release(index)
        peer.handshake.wipe()
        peer.cookie.wipe()
        del self._peers[public_key]
        return released

    def set_preshared_key(self, public_key: bytes, preshared_key: Buffer | None) -> None:
        """Set or (with None, or all zeros) clear a peer's preshared key."""
        self._peer(public_key).handshake.set_preshared_key(preshared_key)

    def has_peer(self, public_key: bytes) -> bool:
        return public_key in self._peers

    def peers(self) -> Iterator[bytes]:
        return iter(tuple(self._peers))

    def clear_handshake(self, public_key: bytes) -> None:
        """Abandon the peer's handshake in progress (the timers gave up, or keys are zeroed)."""
        peer = self._peer(public_key)
        self._release_handshake_index(peer)
        peer.handshake.clear()

    def release_index(self, index: int) -> None:
        """Free the index of a keypair the data plane dropped."""
        entry = self._indices.lookup(index)
        if entry is None or entry.kind is not IndexKind.KEYPAIR:
            raise LocalProtocolError(f"index {index:#010x} is not a keypair's")
        self._indices.release(index)
        self._peers[entry.peer].keypair_indices.discard(index)

    def index_entry(self, index: int) -> IndexEntry | None:
        """Whose (and what kind of) index this is, if any."""
        return self._indices.lookup(index)

    # ---- traffic ----------------------------------------------------------------------------

    def create_initiation(self, public_key: bytes, now_ns: int, wall_ns: int) -> bytes:
        """A fresh 148-byte initiation to `public_key`, with mac1 and (with a fresh cookie)
        mac2. Any handshake already in progress with that peer is abandoned."""
        identity = self._require_identity()
        peer = self._peer(public_key)
        timestamp = tai64n.from_wall_ns(wall_ns)
        self._release_handshake_index(peer)
        index = self._indices.allocate(IndexEntry(public_key, IndexKind.HANDSHAKE))
        peer.handshake_index = index
        try:
            message = noise.create_initiation(
                peer.handshake, identity, sender_index=index, timestamp=timestamp,
                ephemeral_private=crypto.generate_private_key(self._rng))
        except BaseException:
            self._release_handshake_index(peer)
            raise
        return peer.cookie.add_macs(message.to_bytes(), now_ns)

    def receive(self, datagram: bytes, source: Endpoint, now_ns: int,
                under_load: bool = False) -> tuple[Action, ...]:
        """Process one datagram from `source`; returns the actions (see the module doc)."""
        try:
            return self._receive(bytes(datagram), source, now_ns, under_load)
        except RemoteProtocolError as e:
            return (Drop(e.reason, e.detail),)
        except ProtocolError as e:
            # Not the sender's fault (say, no free index), but the datagram is lost all the same.
            return (Drop(DropReason.LOCAL_ERROR, str(e)),)

    def _receive(self, datagram: bytes, source: Endpoint, now_ns: int,
                 under_load: bool) -> tuple[Action, ...]:
        under_load = self._under_load(now_ns, under_load)
        message = messages.parse(datagram)
        if isinstance(message, messages.MessageTransport):
            return (Drop(DropReason.DATA_MESSAGE),)
        if isinstance(message, MessageCookieReply):
            return self._consume_cookie_reply(message, now_ns)
        identity = self._identity
        if identity is None:
            return (Drop(DropReason.NO_PRIVATE_KEY),)
        if not self._checker.check_mac1(datagram):
            return (Drop(DropReason.BAD_MAC1),)
        if under_load:
            if not self._checker.check_mac2(datagram, source, now_ns):
                reply = self._checker.create_reply(datagram, message.sender, source, now_ns)
                return (SendCookieReply(source, reply),)
            if not self._ratelimiter.allow(source.ip, now_ns):
                return (Drop(DropReason.RATE_LIMITED),)
        if isinstance(message, MessageInitiation):
            return self._consume_initiation(message, identity, source, now_ns)
        return self._consume_response(message, identity, source, now_ns)

    def _consume_initiation(self, message: MessageInitiation, identity: StaticIdentity,
                            source: Endpoint, now_ns: int) -> tuple[Action, ...]:
        handshake = noise.consume_initiation(message, identity, self._find_handshake, now_ns)
        key = handshake.remote_static
        peer = self._peers[key]
        # Our own initiation to this peer, if any, is superseded: its index goes.
        self._release_handshake_index(peer)
        index = self._indices.allocate(IndexEntry(key, IndexKind.HANDSHAKE))
        peer.handshake_index = index
        try:
            response = noise.create_response(
                handshake, sender_index=index,
                ephemeral_private=crypto.generate_private_key(self._rng))
        except BaseException:
            self._release_handshake_index(peer)
            raise
        packet = peer.cookie.add_macs(response.to_bytes(), now_ns)
        session = self._begin_session(peer, now_ns)
        return (UpdateEndpoint(key, source), InstallSession(session),
                SendHandshakeResponse(key, packet))

    def _consume_response(self, message: MessageResponse, identity: StaticIdentity,
                          source: Endpoint, now_ns: int) -> tuple[Action, ...]:
        entry = self._indices.lookup(message.receiver)
        if entry is None or entry.kind is not IndexKind.HANDSHAKE:
            return (Drop(DropReason.UNKNOWN_INDEX),)
        peer = self._peers[entry.peer]
        noise.consume_response(message, identity, peer.handshake)
        session = self._begin_session(peer, now_ns)
        return (UpdateEndpoint(entry.peer, source), InstallSession(session))

    def _consume_cookie_reply(self, message: MessageCookieReply,
                              now_ns: int) -> tuple[Action, ...]:
        # The reply names the index we sent: a pending handshake's, or (for a response we
        # sent) the keypair's that took it over.
        entry = self._indices.lookup(message.receiver)
        if entry is None:
            return (Drop(DropReason.UNKNOWN_INDEX),)
        self._peers[entry.peer].cookie.consume_reply(message, now_ns)
        return (CookieConsumed(entry.peer),)

    # ---- helpers ----------------------------------------------------------------------------

    def _begin_session(self, peer: _Peer, now_ns: int) -> Session:
        session = noise.begin_session(peer.handshake, now_ns)
        self._indices.replace(session.local_index, IndexEntry(session.peer, IndexKind.KEYPAIR))
        peer.keypair_indices.add(session.local_index)
        peer.handshake_index = None
        return session

    def _under_load(self, now_ns: int, under_load: bool) -> bool:
        # Sticky for a second, so a flood that pauses between bursts keeps meeting cookies.
        if under_load:
            self._last_under_load_ns = now_ns
            return True
        last = self._last_under_load_ns
        return last is not None and now_ns - last < _UNDER_LOAD_AFTER_NS

    def _find_handshake(self, public_key: bytes) -> Handshake | None:
        peer = self._peers.get(public_key)
        return peer.handshake if peer else None

    def _release_handshake_index(self, peer: _Peer) -> None:
        if peer.handshake_index is not None:
            self._indices.release(peer.handshake_index)
            peer.handshake_index = None

    def _peer(self, public_key: bytes) -> _Peer:
        peer = self._peers.get(public_key)
        if peer is None:
            raise LocalProtocolError("no such peer")
        return peer

    def _require_identity(self) -> StaticIdentity:
        if self._identity is None:
            raise LocalProtocolError("no private key is set")
        return self._identity
