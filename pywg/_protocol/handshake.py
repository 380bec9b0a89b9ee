"""The handshake half of a WireGuard device, sans I/O (the kernel's handshake path of
receive.c over noise.c; wireguard-go's RoutineHandshake).

The DoS front line is not here: the data plane's receive thread checks every handshake
message's size and mac1, and under load its mac2 (answering with a cookie reply) and its
source's rate limit, before the message comes up (csrc/cookie.c, csrc/ratelimiter.c). What
arrives here has passed it, and `HandshakeCore` does the rest: our static identity and the
Noise work. What is each peer's (its Noise `Handshake` and its `CookieGenerator`, which puts
mac1 and mac2 on what we send and takes the cookies we are given) lives in the caller's peer
records; the core reaches them through `find`, by public key. Receiver indices are the data
plane's: `new_index(peer)` draws the sender index of a message we create, and for a response
or cookie reply the data plane has already found the peer the receiver index names.

    create_initiation(peer, now_ns, wall_ns) -> bytes          a 148-byte initiation
    receive(datagram, peer, now_ns) -> actions                 for types 1 to 3
    receive_batch([(datagram, peer), ...], now_ns) -> [actions, ...]

`receive_batch` is `receive` over many messages, with the same actions, but with the Noise
work of the initiations among them spread over every core (noise.py's batches).

`receive` never raises a ProtocolError: every datagram yields a tuple of actions, in the
order the driver must carry them out, and a rejected datagram yields exactly one `Drop` with
a typed reason:

    initiation accepted:  UpdateEndpoint, InstallSession (responder), SendHandshakeResponse
    response accepted:    UpdateEndpoint, InstallSession (initiator)
    cookie reply taken:   CookieConsumed
    anything else:        Drop

Times: `now_ns` is monotonic (cookie ages, the 20 ms initiation limit, session birth);
`wall_ns` is wall-clock time and only feeds the TAI64N timestamp.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from pywg._constants import MESSAGE_HANDSHAKE_COOKIE, MESSAGE_HANDSHAKE_RESPONSE
from pywg._protocol import crypto, messages, noise, tai64n
from pywg._protocol.cookie import CookieGenerator
from pywg._protocol.crypto import Buffer, Rng
from pywg._protocol.errors import (
    DropReason,
    LocalProtocolError,
    ProtocolError,
    RemoteProtocolError,
)
from pywg._protocol.messages import MessageCookieReply, MessageInitiation
from pywg._protocol.noise import Handshake, Session, StaticIdentity

__all__ = [
    "Action",
    "CookieConsumed",
    "Drop",
    "HandshakeCore",
    "HandshakePeer",
    "InstallSession",
    "SendHandshakeResponse",
    "UpdateEndpoint",
]


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


Action = SendHandshakeResponse | InstallSession | UpdateEndpoint | CookieConsumed | Drop


def _names_a_peer(datagram: bytes) -> bool:
    """Whether a datagram is a response or cookie reply (whose receiver index the data plane
    already resolved to a peer), the messages that change a peer's state outright."""
    try:
        kind = messages.message_type(datagram)
    except RemoteProtocolError:
        return False
    return kind in (MESSAGE_HANDSHAKE_RESPONSE, MESSAGE_HANDSHAKE_COOKIE)


def _dropped(error: ProtocolError) -> tuple[Action, ...]:
    if isinstance(error, RemoteProtocolError):
        return (Drop(error.reason, error.detail),)
    # Not the sender's fault (say, no free index), but the datagram is lost all the same.
    return (Drop(DropReason.LOCAL_ERROR, str(error)),)


class HandshakeCore:
    """The device's handshake state; no I/O, no clock, no peers of its own."""

    def __init__(self, find: Callable[[bytes], HandshakePeer | None],
                 new_index: Callable[[HandshakePeer], int], *,
                 rng: Rng = crypto.random_bytes) -> None:
        self._find = find
        self._new_index = new_index
        self._rng = rng
        self.identity: StaticIdentity | None = None

    @property
    def public_key(self) -> bytes | None:
        return self.identity.public_key if self.identity else None

    def set_private_key(self, private_key: Buffer | None) -> None:
        """Set (or, with None, clear) our static private key. Every peer's handshake must then
        be cleared and its static-static secret forgotten (`Handshake.forget_static_static`;
        the next handshake computes it from the new key)."""
        if self.identity is not None:
            self.identity.wipe()
        self.identity = StaticIdentity(private_key) if private_key is not None else None

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

    def receive(self, datagram: bytes, peer: HandshakePeer | None,
                now_ns: int) -> tuple[Action, ...]:
        """Process one handshake message that passed the front line; `peer` is whose index a
        response or cookie reply names (the data plane looked it up). Returns the actions
        (see the module doc)."""
        try:
            result = self._receive(bytes(datagram), peer, now_ns)
            if isinstance(result, MessageInitiation):
                return self._consume_initiations([result], now_ns)[0]
            return result
        except ProtocolError as e:
            return _dropped(e)

    def _receive(self, datagram: bytes, peer: HandshakePeer | None,
                 now_ns: int) -> tuple[Action, ...] | MessageInitiation:
        """Everything `receive` does but an initiation's Noise work: the actions, or the
        initiation to consume (`_consume_initiations` does that)."""
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
        if isinstance(message, MessageInitiation):
            return message
        assert peer is not None
        noise.consume_response(message, identity, peer.handshake)
        session = noise.begin_session(peer.handshake, now_ns)
        return (UpdateEndpoint(peer.public_key), InstallSession(session))

    def _consume_initiations(self, initiations: Sequence[MessageInitiation],
                             now_ns: int) -> list[tuple[Action, ...]]:
        """The Noise work of initiations, in arrival order: each step's C work for all of
        them at once, the rules between the steps in order."""
        identity = self.identity
        assert identity is not None

        def handshake_of(public_key: bytes) -> Handshake | None:
            found = self._find(public_key)
            return found.handshake if found else None

        out: list[tuple[Action, ...]] = []
        accepted: list[tuple[Handshake, int]] = []
        waiting: list[tuple[int, HandshakePeer]] = []  # out position, peer: to answer
        for result in noise.consume_initiations(initiations, identity, handshake_of, now_ns):
            if isinstance(result, RemoteProtocolError):
                out.append(_dropped(result))
                continue
            peer = self._find(result.remote_static)
            assert peer is not None
            try:
                index = self._new_index(peer)
            except ProtocolError as e:
                out.append(_dropped(e))
                continue
            accepted.append((result, index))
            waiting.append((len(out), peer))
            out.append(())
        # One draw of the Rng for the whole batch's ephemeral keys.
        ephemerals = crypto.generate_private_keys(len(accepted), self._rng)
        answers = [(handshake, index, ephemeral)
                   for (handshake, index), ephemeral in zip(accepted, ephemerals, strict=True)]
        for (position, peer), answer in zip(waiting, noise.respond_all(answers, now_ns),
                                            strict=True):
            if isinstance(answer, ProtocolError):
                out[position] = _dropped(answer)
                continue
            response, session = answer
            packet = peer.cookie.add_macs(response.to_bytes(), now_ns)
            out[position] = (UpdateEndpoint(peer.public_key), InstallSession(session),
                             SendHandshakeResponse(peer.public_key, packet))
        return out

    def receive_batch(self, items: Sequence[tuple[Buffer, HandshakePeer | None]],
                      now_ns: int) -> list[tuple[Action, ...]]:
        """`receive` for each (datagram, peer), in order: the same actions as one `receive`
        after another, with the Noise work of the initiations among them done in batches
        over every core (csrc/crypto/noise.c).

        Initiations are gathered while nothing else can touch the state their processing
        reads or writes. A response or a cookie reply touches a peer's handshake or cookie
        state, and which peer an initiation is for is known only once it is decrypted, so
        either first finishes the initiations gathered before it.
        """
        out: list[tuple[Action, ...]] = []
        gathered: list[tuple[int, MessageInitiation]] = []
        for datagram, peer in items:
            data = bytes(datagram)
            if _names_a_peer(data):
                self._finish(gathered, out, now_ns)
                out.append(self.receive(data, peer, now_ns))
                continue
            try:
                result = self._receive(data, peer, now_ns)
            except ProtocolError as e:
                result = _dropped(e)
            if isinstance(result, MessageInitiation):
                gathered.append((len(out), result))
                result = ()
            out.append(result)
        self._finish(gathered, out, now_ns)
        return out

    def _finish(self, gathered: list[tuple[int, MessageInitiation]],
                out: list[tuple[Action, ...]], now_ns: int) -> None:
        """The Noise work of the gathered initiations, into their places in `out`."""
        if not gathered:
            return
        try:
            results = self._consume_initiations([m for _, m in gathered], now_ns)
        except ProtocolError as e:
            results = [_dropped(e)] * len(gathered)
        for (position, _), actions in zip(gathered, results, strict=True):
            out[position] = actions
        gathered.clear()
