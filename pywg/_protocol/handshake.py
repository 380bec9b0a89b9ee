"""The handshake half of a WireGuard device, sans I/O (the kernel's handshake path of
receive.c over noise.c and cookie.c; wireguard-go's RoutineHandshake).

`HandshakeCore` holds what is the device's own: our static identity, the cookie checker
(mac1 and mac2 of what we receive, cookie replies), the per-source rate limiter and the
under-load state. What is each peer's (its Noise `Handshake` and its `CookieGenerator`) lives
in the caller's peer records; the core reaches them through `find`, by public key. Receiver
indices are the data plane's: `new_index(peer)` draws the sender index of a message we
create, and for a response or cookie reply the data plane has already found the peer the
receiver index names.

    create_initiation(peer, now_ns, wall_ns) -> bytes                a 148-byte initiation
    receive(datagram, source, peer, now_ns, under_load) -> actions   for types 1 to 3

`receive` never raises a ProtocolError: every datagram yields a tuple of actions, in the
order the driver must carry them out, and a rejected datagram yields exactly one `Drop` with
a typed reason:

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

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from pywg._constants import UNDER_LOAD_AFTER_S
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
from pywg._protocol.messages import MessageCookieReply, MessageInitiation
from pywg._protocol.noise import Handshake, Session, StaticIdentity
from pywg._protocol.ratelimiter import RateLimiter

__all__ = [
    "Action",
    "CookieConsumed",
    "Drop",
    "HandshakeCore",
    "HandshakePeer",
    "InstallSession",
    "SendCookieReply",
    "SendHandshakeResponse",
    "UpdateEndpoint",
]

_UNDER_LOAD_AFTER_NS = UNDER_LOAD_AFTER_S * 1_000_000_000


class HandshakePeer(Protocol):
    """What the core needs of a peer record (the driver's Peer is one)."""

    @property
    def public_key(self) -> bytes: ...
    @property
    def handshake(self) -> Handshake: ...
    @property
    def cookie(self) -> CookieGenerator: ...


# ---- Actions: what `receive` tells the driver to do; peers are named by public key ---------

@dataclass(frozen=True, slots=True)
class SendCookieReply:
    """Send `packet` (a 64-byte cookie reply) to the message's source."""

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
    """An authenticated handshake message came from the source: roam `peer` there."""

    peer: bytes


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


class HandshakeCore:
    """The device's handshake state; no I/O, no clock, no peers of its own."""

    def __init__(self, find: Callable[[bytes], HandshakePeer | None],
                 new_index: Callable[[HandshakePeer], int], *,
                 rng: Rng = crypto.random_bytes) -> None:
        self._find = find
        self._new_index = new_index
        self._rng = rng
        self.identity: StaticIdentity | None = None
        self._checker = CookieChecker(rng=rng)
        self._ratelimiter = RateLimiter()
        self._last_under_load_ns: int | None = None

    @property
    def public_key(self) -> bytes | None:
        return self.identity.public_key if self.identity else None

    def set_private_key(self, private_key: Buffer | None) -> None:
        """Set (or, with None, clear) our static private key. Every peer's handshake must then
        be cleared and its static-static secret recomputed (`Handshake.precompute`)."""
        if self.identity is not None:
            self.identity.wipe()
        self.identity = StaticIdentity(private_key) if private_key is not None else None
        self._checker.set_public_key(self.public_key)

    def create_initiation(self, peer: HandshakePeer, now_ns: int, wall_ns: int) -> bytes:
        """A fresh 148-byte initiation to `peer`, with mac1 and (with a fresh cookie) mac2.
        Any handshake already in progress with that peer is abandoned."""
        if self.identity is None:
            raise LocalProtocolError("no private key is set")
        message = noise.create_initiation(
            peer.handshake, self.identity, sender_index=self._new_index(peer),
            timestamp=tai64n.from_wall_ns(wall_ns),
            ephemeral_private=crypto.generate_private_key(self._rng))
        return peer.cookie.add_macs(message.to_bytes(), now_ns)

    def receive(self, datagram: bytes, source: Endpoint, peer: HandshakePeer | None,
                now_ns: int, under_load: bool = False) -> tuple[Action, ...]:
        """Process one handshake message from `source`; `peer` is whose index a response or
        cookie reply names (the data plane looked it up). Returns the actions (module doc)."""
        try:
            return self._receive(bytes(datagram), source, peer, now_ns, under_load)
        except RemoteProtocolError as e:
            return (Drop(e.reason, e.detail),)
        except ProtocolError as e:
            # Not the sender's fault (say, no free index), but the datagram is lost all the same.
            return (Drop(DropReason.LOCAL_ERROR, str(e)),)

    def _receive(self, datagram: bytes, source: Endpoint, peer: HandshakePeer | None,
                 now_ns: int, under_load: bool) -> tuple[Action, ...]:
        under_load = self._under_load(now_ns, under_load)
        message = messages.parse(datagram)
        if isinstance(message, messages.MessageTransport):
            return (Drop(DropReason.DATA_MESSAGE),)
        if isinstance(message, MessageInitiation):
            peer = None  # an initiation names its peer only inside its encrypted static key
        elif peer is None:
            return (Drop(DropReason.UNKNOWN_INDEX),)
        if isinstance(message, MessageCookieReply):
            assert peer is not None
            peer.cookie.consume_reply(message, now_ns)
            return (CookieConsumed(peer.public_key),)
        identity = self.identity
        if identity is None:
            return (Drop(DropReason.NO_PRIVATE_KEY),)
        if not self._checker.check_mac1(datagram):
            return (Drop(DropReason.BAD_MAC1),)
        if under_load:
            if not self._checker.check_mac2(datagram, source, now_ns):
                reply = self._checker.create_reply(datagram, message.sender, source, now_ns)
                return (SendCookieReply(reply),)
            if not self._ratelimiter.allow(source.ip, now_ns):
                return (Drop(DropReason.RATE_LIMITED),)
        if isinstance(message, MessageInitiation):
            return self._consume_initiation(message, identity, now_ns)
        assert peer is not None
        noise.consume_response(message, identity, peer.handshake)
        session = noise.begin_session(peer.handshake, now_ns)
        return (UpdateEndpoint(peer.public_key), InstallSession(session))

    def _consume_initiation(self, message: MessageInitiation, identity: StaticIdentity,
                            now_ns: int) -> tuple[Action, ...]:
        def handshake_of(public_key: bytes) -> Handshake | None:
            found = self._find(public_key)
            return found.handshake if found else None

        handshake = noise.consume_initiation(message, identity, handshake_of, now_ns)
        peer = self._find(handshake.remote_static)
        assert peer is not None
        response = noise.create_response(
            handshake, sender_index=self._new_index(peer),
            ephemeral_private=crypto.generate_private_key(self._rng))
        packet = peer.cookie.add_macs(response.to_bytes(), now_ns)
        session = noise.begin_session(handshake, now_ns)
        return (UpdateEndpoint(peer.public_key), InstallSession(session),
                SendHandshakeResponse(peer.public_key, packet))

    def _under_load(self, now_ns: int, under_load: bool) -> bool:
        # Sticky for a second, so a flood that pauses between bursts keeps meeting cookies.
        if under_load:
            self._last_under_load_ns = now_ns
            return True
        last = self._last_under_load_ns
        return last is not None and now_ns - last < _UNDER_LOAD_AFTER_NS
