"""WireGuard's handshake: Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s with WireGuard's rules.

Two layers, as in the kernel's noise.c:

1. The Noise message steps, one C call each (crypto.py over csrc/crypto/noise.c), on the
   symmetric state as one 64-byte chain (chaining key, then hash); the standard Noise vectors
   check them byte for byte, from the chain `initial_chain` makes:

       <- s
       ...
       -> e, es, s, ss        (payload: WireGuard's TAI64N timestamp)
       <- e, ee, se, psk      (payload: empty)

2. WireGuard's per-peer handshake (`Handshake`, the kernel's `struct noise_handshake`) and
   its verbs, here: `create_initiation`, `consume_initiation`, `respond` (the kernel's
   create_response and begin_session, which a responder always does together),
   `consume_response`, `begin_session` (the initiator's). The rules are Python's: the
   state machine, the peer lookup, the TAI64N replay check, the 20 ms flood rule.
   Consumers compute on copies of the chain and commit only when every check passed, so a
   bad message never disturbs a handshake in progress. Index allocation, mac1/mac2 and
   cookies belong to the caller (handshake.py, cookie.py).

A responder's two verbs also come for many messages at once (`consume_initiations`,
`respond_all`): the C side then runs each step over the whole batch on every core, and the
rules run in the messages' order between the steps, so each message meets exactly the state
it would one at a time. The single verbs are those batches of one.

The static-static secret DH(our static, their static) is computed at a peer's first
handshake, not when it is configured (a configuration of many peers does no X25519 at all),
and again after our private key changes.

Secrets (the chain, ephemeral private keys, psk, static-static secret) live in bytearrays
and are zeroed when the handshake ends or is cleared.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from pywg._constants import (
    CONSTRUCTION,
    HANDSHAKE_INITIATION_RATE_NS,
    IDENTIFIER,
    NOISE_AUTHTAG_LEN,
    NOISE_HASH_LEN,
    NOISE_PUBLIC_KEY_LEN,
    NOISE_SYMMETRIC_KEY_LEN,
    NOISE_TIMESTAMP_LEN,
)
from pywg._protocol import crypto, tai64n
from pywg._protocol.crypto import Buffer
from pywg._protocol.errors import (
    DropReason,
    LocalProtocolError,
    ProtocolError,
    RemoteProtocolError,
)
from pywg._protocol.messages import MessageInitiation, MessageResponse

__all__ = [
    "INITIAL_CHAIN",
    "Handshake",
    "HandshakeState",
    "Session",
    "StaticIdentity",
    "begin_session",
    "consume_initiation",
    "consume_initiations",
    "consume_response",
    "create_initiation",
    "initial_chain",
    "respond",
    "respond_all",
]

_KEY = NOISE_PUBLIC_KEY_LEN
# An initiation's Noise part as the C steps read it: e, the encrypted static, the encrypted
# timestamp (the sender index before it and the macs after it are the caller's).
_ENCRYPTED_STATIC_LEN = _KEY + NOISE_AUTHTAG_LEN
_ENCRYPTED_TIMESTAMP_LEN = NOISE_TIMESTAMP_LEN + NOISE_AUTHTAG_LEN


def initial_chain(protocol_name: bytes, prologue: bytes) -> bytes:
    """InitializeSymmetric(name), then MixHash(prologue) (Noise spec 5.2), as one chain."""
    if len(protocol_name) <= NOISE_HASH_LEN:
        h = protocol_name.ljust(NOISE_HASH_LEN, b"\0")
    else:
        h = crypto.blake2s(protocol_name)
    return h + crypto.blake2s(h, prologue)


# Ci0 = HASH(CONSTRUCTION) and Hi0 = HASH(Ci0 || IDENTIFIER): the same for every handshake.
INITIAL_CHAIN = initial_chain(CONSTRUCTION, IDENTIFIER)


class StaticIdentity:
    """Our static key pair (the kernel's `struct noise_static_identity`)."""

    __slots__ = ("private_key", "public_key")

    def __init__(self, private_key: Buffer) -> None:
        if len(private_key) != NOISE_PUBLIC_KEY_LEN:
            raise LocalProtocolError("a private key is 32 bytes")
        self.private_key = crypto.clamp(bytearray(private_key))
        self.public_key = crypto.public_key(self.private_key)

    def wipe(self) -> None:
        crypto.wipe(self.private_key)


class HandshakeState(enum.Enum):
    ZEROED = enum.auto()
    CREATED_INITIATION = enum.auto()
    CONSUMED_INITIATION = enum.auto()
    CONSUMED_RESPONSE = enum.auto()


@dataclass(eq=False)
class Handshake:
    """One peer's handshake state; the peer's static key never changes for its lifetime."""

    remote_static: bytes
    # The secrets stay out of repr() so that logging a handshake cannot leak them.
    preshared_key: bytearray = field(
        default_factory=lambda: bytearray(NOISE_SYMMETRIC_KEY_LEN), repr=False)
    state: HandshakeState = HandshakeState.ZEROED
    # The symmetric state (chaining key, hash) of the handshake in progress; empty if none.
    chain: bytearray = field(default_factory=bytearray, repr=False)
    local_ephemeral: bytearray = field(default_factory=bytearray, repr=False)
    remote_ephemeral: bytes = b""
    local_index: int | None = None
    remote_index: int = 0
    # Replay protection: the newest accepted timestamp and when (monotonic) it was accepted.
    latest_timestamp: bytes = tai64n.ZERO
    last_initiation_consumption_ns: int | None = None
    # DH(our static, their static), computed for `_static_static_of` (all zeros if the
    # peer's key is of small order); None until a handshake needs it.
    _static_static: bytearray | None = field(default=None, repr=False)
    _static_static_of: StaticIdentity | None = field(default=None, repr=False)

    def static_static(self, identity: StaticIdentity) -> bytearray | None:
        """The static-static secret with `identity`, or None if not computed yet."""
        return self._static_static if self._static_static_of is identity else None

    def _set_static_static(self, identity: StaticIdentity, secret: bytearray | None) -> None:
        self.forget_static_static()
        self._static_static = secret if secret is not None else bytearray(_KEY)
        self._static_static_of = identity

    def forget_static_static(self) -> None:
        """Wipe the static-static secret (our private key changed: the next handshake
        computes it again, from the new one)."""
        if self._static_static is not None:
            crypto.wipe(self._static_static)
        self._static_static = None
        self._static_static_of = None

    def set_preshared_key(self, key: Buffer | None) -> None:
        if key is not None and len(key) != NOISE_SYMMETRIC_KEY_LEN:
            raise LocalProtocolError("a preshared key is 32 bytes")
        self.preshared_key[:] = key if key is not None else bytes(NOISE_SYMMETRIC_KEY_LEN)

    def clear(self) -> None:
        """Forget the handshake in progress (not the peer's keys or its replay state)."""
        crypto.wipe(self.chain, self.local_ephemeral)
        self.chain = bytearray()
        self.local_ephemeral = bytearray()
        self.remote_ephemeral = b""
        self.local_index = None
        self.remote_index = 0
        self.state = HandshakeState.ZEROED

    def wipe(self) -> None:
        """Forget everything secret (the peer is being removed)."""
        self.clear()
        self.forget_static_static()
        crypto.wipe(self.preshared_key)


@dataclass(frozen=True, eq=False)
class Session:
    """What a completed handshake yields: the material of one keypair, to install.

    `send_key` and `receive_key` are bytearrays: whoever drops the keypair calls `wipe`.
    """

    peer: bytes  # the peer's static public key
    local_index: int  # the index the peer puts in the messages it sends us
    remote_index: int  # the index we put in the messages we send it
    send_key: bytearray = field(repr=False)  # never in logs
    receive_key: bytearray = field(repr=False)
    initiator: bool  # True if we sent the initiation (the timers' rekey rules depend on it)
    birth_ns: int  # monotonic time of derivation

    def wipe(self) -> None:
        crypto.wipe(self.send_key, self.receive_key)


def _static_statics(handshakes: Sequence[Handshake], identity: StaticIdentity,
                    ) -> list[bytearray]:
    """Each handshake's static-static secret with `identity`, computing (in one batch) those
    not computed yet; all zeros for a peer whose key is of small order."""
    secrets = [h.static_static(identity) for h in handshakes]
    known = [secret for secret in secrets if secret is not None]
    if len(known) == len(secrets):
        return known
    missing = list({id(h): h for h, s in zip(handshakes, secrets, strict=True)
                    if s is None}.values())
    computed = crypto.static_statics(identity.private_key, [h.remote_static for h in missing])
    for handshake, secret in zip(missing, computed, strict=True):
        handshake._set_static_static(identity, secret)
    return [h._static_static for h in handshakes if h._static_static is not None]


def create_initiation(
    handshake: Handshake, identity: StaticIdentity, *, sender_index: int, timestamp: bytes,
    ephemeral_private: bytearray,
) -> MessageInitiation:
    """Start a handshake as the initiator (macs are the caller's). Takes `ephemeral_private`."""
    try:
        static_static = _static_statics([handshake], identity)[0]
        if crypto.is_zero(static_static):
            raise LocalProtocolError("the peer's public key gives an all-zero static-static DH")
        chain, body = crypto.write_initiation(
            INITIAL_CHAIN, ephemeral_private=ephemeral_private,
            local_static_public=identity.public_key, remote_static=handshake.remote_static,
            static_static=static_static, payload=timestamp)
    except BaseException:
        crypto.wipe(ephemeral_private)
        raise
    handshake.clear()
    handshake.chain = chain
    handshake.local_ephemeral = ephemeral_private
    handshake.local_index = sender_index
    handshake.state = HandshakeState.CREATED_INITIATION
    static_end = _KEY + _ENCRYPTED_STATIC_LEN
    return MessageInitiation(sender=sender_index, ephemeral=body[:_KEY],
                             encrypted_static=body[_KEY:static_end],
                             encrypted_timestamp=body[static_end:])


def _body(message: MessageInitiation) -> bytes:
    return message.ephemeral + message.encrypted_static + message.encrypted_timestamp


def consume_initiations(
    messages: Sequence[MessageInitiation], identity: StaticIdentity,
    find_peer: Callable[[bytes], Handshake | None], now_ns: int,
) -> list[Handshake | RemoteProtocolError]:
    """`consume_initiation` for each message, in order: the peer's handshake, now CONSUMED,
    or the error that rejected the message (and left every handshake untouched)."""
    out: list[Handshake | RemoteProtocolError] = []
    bodies = [_body(m) for m in messages]
    rcs, chains, statics = crypto.read_initiations_static(
        INITIAL_CHAIN, identity.private_key, identity.public_key, bodies)
    try:
        found: list[tuple[int, Handshake]] = []
        for i, (rc, remote_static) in enumerate(zip(rcs, statics, strict=True)):
            handshake = find_peer(remote_static) if rc == 0 else None
            if rc != 0:
                out.append(_remote(crypto.error(rc)))
            elif handshake is None:
                out.append(RemoteProtocolError(DropReason.UNKNOWN_PEER))
            else:
                out.append(handshake)
                found.append((i, handshake))
        usable: list[tuple[int, Handshake, bytearray]] = []
        for (i, handshake), secret in zip(
                found, _static_statics([h for _, h in found], identity), strict=True):
            if crypto.is_zero(secret):
                out[i] = RemoteProtocolError(DropReason.BAD_DH,
                                             "no static-static secret for this peer")
            else:
                usable.append((i, handshake, secret))
        rcs, chains_after, timestamps = crypto.read_initiations_payload(
            [chains[i] for i, _, _ in usable], [s for _, _, s in usable],
            [bodies[i] for i, _, _ in usable], _KEY + _ENCRYPTED_STATIC_LEN,
            _ENCRYPTED_TIMESTAMP_LEN)
    finally:
        crypto.wipe(*chains)
    for (i, handshake, _), rc, chain, timestamp in zip(usable, rcs, chains_after, timestamps,
                                                       strict=True):
        # In order: a second message from the same peer meets the state the first left.
        problem = _remote(crypto.error(rc)) if rc != 0 else \
            _replay_or_flood(handshake, timestamp, now_ns)
        if problem is not None:
            out[i] = problem
            crypto.wipe(chain)
            continue
        handshake.clear()
        handshake.chain = chain
        handshake.remote_ephemeral = messages[i].ephemeral
        handshake.remote_index = messages[i].sender
        handshake.latest_timestamp = timestamp
        handshake.last_initiation_consumption_ns = now_ns
        handshake.state = HandshakeState.CONSUMED_INITIATION
    return out


def _remote(error: ProtocolError) -> RemoteProtocolError:
    if isinstance(error, RemoteProtocolError):
        return error
    raise error


def consume_initiation(
    message: MessageInitiation, identity: StaticIdentity,
    find_peer: Callable[[bytes], Handshake | None], now_ns: int,
) -> Handshake:
    """Accept an initiation as the responder; returns the peer's handshake, now CONSUMED.

    Raises RemoteProtocolError (decrypt failure, unknown peer, replayed or stale timestamp,
    initiation flood, all-zero DH) and then leaves every handshake untouched.
    """
    result = consume_initiations([message], identity, find_peer, now_ns)[0]
    if isinstance(result, RemoteProtocolError):
        raise result
    return result


def _replay_or_flood(handshake: Handshake, timestamp: bytes,
                     now_ns: int) -> RemoteProtocolError | None:
    if not tai64n.after(timestamp, handshake.latest_timestamp):
        return RemoteProtocolError(DropReason.STALE_TIMESTAMP)
    last = handshake.last_initiation_consumption_ns
    if last is not None and now_ns - last <= HANDSHAKE_INITIATION_RATE_NS:
        return RemoteProtocolError(DropReason.INITIATION_FLOOD)
    return None


def respond_all(
    answers: Sequence[tuple[Handshake, int, bytearray]], now_ns: int,
) -> list[tuple[MessageResponse, Session] | ProtocolError]:
    """`respond` for each (handshake, sender index, ephemeral private key), in one batch."""
    for handshake, _, _ in answers:
        if handshake.state is not HandshakeState.CONSUMED_INITIATION or not handshake.chain:
            raise LocalProtocolError(f"no initiation to answer (state {handshake.state.name})")
    results = crypto.write_responses(
        [h.chain for h, _, _ in answers], [e for _, _, e in answers],
        [h.remote_ephemeral for h, _, _ in answers], [h.remote_static for h, _, _ in answers],
        [h.preshared_key for h, _, _ in answers])
    out: list[tuple[MessageResponse, Session] | ProtocolError] = []
    for (handshake, index, ephemeral), rc, body, first, second in zip(answers, *results,
                                                                       strict=True):
        crypto.wipe(ephemeral)
        if rc != 0:
            handshake.clear()  # the chain is half-mixed: this handshake is unusable
            out.append(crypto.error(rc))
            continue
        response = MessageResponse(sender=index, receiver=handshake.remote_index,
                                   ephemeral=body[:_KEY], encrypted_nothing=body[_KEY:])
        # The responder receives with the first key and sends with the second.
        session = Session(peer=handshake.remote_static, local_index=index,
                          remote_index=handshake.remote_index, send_key=second,
                          receive_key=first, initiator=False, birth_ns=now_ns)
        handshake.clear()
        out.append((response, session))
    return out


def respond(
    handshake: Handshake, *, sender_index: int, ephemeral_private: bytearray, now_ns: int,
) -> tuple[MessageResponse, Session]:
    """Answer a consumed initiation (macs are the caller's) and derive the session; the
    handshake is cleared, its index now the session's. Takes `ephemeral_private`."""
    result = respond_all([(handshake, sender_index, ephemeral_private)], now_ns)[0]
    if isinstance(result, ProtocolError):
        raise result
    return result


def consume_response(
    message: MessageResponse, identity: StaticIdentity, handshake: Handshake,
) -> None:
    """Accept the response to our initiation; the handshake becomes CONSUMED_RESPONSE."""
    if handshake.state is not HandshakeState.CREATED_INITIATION or not handshake.chain:
        raise RemoteProtocolError(DropReason.WRONG_STATE)
    if message.receiver != handshake.local_index:
        # An answer to an initiation a newer one has replaced.
        raise RemoteProtocolError(DropReason.UNKNOWN_INDEX)
    chain, _ = crypto.read_response(
        handshake.chain, ephemeral_private=handshake.local_ephemeral,
        local_static_private=identity.private_key, preshared_key=handshake.preshared_key,
        message=message.ephemeral + message.encrypted_nothing)
    crypto.wipe(handshake.chain)
    handshake.chain = chain
    handshake.remote_ephemeral = message.ephemeral
    handshake.remote_index = message.sender
    handshake.state = HandshakeState.CONSUMED_RESPONSE


def begin_session(handshake: Handshake, now_ns: int) -> Session:
    """The initiator's transport keys, from a handshake whose response it consumed; the
    handshake is cleared, its local index now the session's."""
    if handshake.state is not HandshakeState.CONSUMED_RESPONSE:
        raise LocalProtocolError(f"no finished handshake (state {handshake.state.name})")
    if not handshake.chain or handshake.local_index is None:
        raise LocalProtocolError("a finished handshake without its state or index")
    send_key, receive_key = crypto.split(handshake.chain)
    session = Session(peer=handshake.remote_static, local_index=handshake.local_index,
                      remote_index=handshake.remote_index, send_key=send_key,
                      receive_key=receive_key, initiator=True, birth_ns=now_ns)
    handshake.clear()
    return session
