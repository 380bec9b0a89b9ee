"""Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s, and WireGuard's handshake on top of it.

Two layers, as in the kernel's noise.c:

1. The Noise pattern, with everything a test needs to set: the protocol name and prologue
   (`SymmetricState.initialize`), the ephemeral private keys and the payloads. The four
   message steps (`write_initiation`, `read_initiation_static` + `read_initiation_payload`,
   `write_response`, `read_response`) are the exact code WireGuard uses, so the standard Noise
   vectors check it byte for byte:

       <- s
       ...
       -> e, es, s, ss        (payload: WireGuard's TAI64N timestamp)
       <- e, ee, se, psk      (payload: empty)

   Every handshake key is used for exactly one encryption, so the AEAD nonce is always 0.

2. WireGuard's per-peer handshake (`Handshake`, the kernel's `struct noise_handshake`) and
   its verbs: `create_initiation`, `consume_initiation`, `create_response`,
   `consume_response`, `begin_session`. Consumers compute on a copy of the state and commit
   only when every check passed, so a bad message never disturbs a handshake in progress.
   Index allocation, mac1/mac2 and cookies belong to the caller (handshake.py, cookie.py).

Secrets (chaining key, hash, ephemeral private key, psk, static-static DH) live in
bytearrays and are zeroed when the handshake ends or is cleared.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field

from pywg._constants import (
    CONSTRUCTION,
    HANDSHAKE_INITIATION_RATE_NS,
    IDENTIFIER,
    NOISE_HASH_LEN,
    NOISE_PUBLIC_KEY_LEN,
    NOISE_SYMMETRIC_KEY_LEN,
)
from pywg._protocol import crypto, tai64n
from pywg._protocol.crypto import Buffer
from pywg._protocol.errors import DropReason, LocalProtocolError, RemoteProtocolError
from pywg._protocol.messages import MessageInitiation, MessageResponse

__all__ = [
    "INITIAL_CHAINING_KEY",
    "INITIAL_HASH",
    "Handshake",
    "HandshakeState",
    "Session",
    "StaticIdentity",
    "SymmetricState",
    "begin_session",
    "consume_initiation",
    "consume_response",
    "create_initiation",
    "create_response",
    "read_initiation_payload",
    "read_initiation_static",
    "read_response",
    "write_initiation",
    "write_response",
]


class SymmetricState:
    """Noise's chaining key `ck` and handshake hash `h` (the cipher key is returned, not kept)."""

    __slots__ = ("chaining_key", "hash")

    def __init__(self, chaining_key: Buffer, hash_: Buffer) -> None:
        self.chaining_key = bytearray(chaining_key)
        self.hash = bytearray(hash_)

    @classmethod
    def initialize(cls, protocol_name: bytes, prologue: bytes) -> SymmetricState:
        """InitializeSymmetric(name) then MixHash(prologue), as the Noise spec defines them."""
        if len(protocol_name) <= NOISE_HASH_LEN:
            h = protocol_name.ljust(NOISE_HASH_LEN, b"\0")
        else:
            h = crypto.blake2s(protocol_name)
        state = cls(h, h)
        state.mix_hash(prologue)
        return state

    def copy(self) -> SymmetricState:
        return SymmetricState(self.chaining_key, self.hash)

    def mix_hash(self, data: Buffer) -> None:
        self.hash[:] = crypto.blake2s(self.hash, data)

    def mix_key(self, input_key_material: Buffer) -> bytearray:
        """ck, k = KDF2(ck, ikm); returns k (the caller wipes it)."""
        chaining_key, key = crypto.kdf2(self.chaining_key, input_key_material)
        self.chaining_key[:] = chaining_key
        crypto.wipe(chaining_key)
        return key

    def mix_dh(self, private: Buffer, public: Buffer) -> bytearray:
        """MixKey(DH(private, public)); an all-zero DH raises BAD_DH."""
        shared = crypto.dh(private, public)
        try:
            return self.mix_key(shared)
        finally:
            crypto.wipe(shared)

    def mix_key_and_hash(self, input_key_material: Buffer) -> bytearray:
        """ck, t, k = KDF3(ck, ikm); MixHash(t); returns k. This is how the psk enters."""
        chaining_key, temp, key = crypto.kdf3(self.chaining_key, input_key_material)
        self.chaining_key[:] = chaining_key
        self.mix_hash(temp)
        crypto.wipe(chaining_key, temp)
        return key

    def encrypt_and_hash(self, key: bytearray, plaintext: Buffer) -> bytes:
        try:
            ciphertext = crypto.aead_encrypt(key, 0, plaintext, self.hash)
        finally:
            crypto.wipe(key)
        self.mix_hash(ciphertext)
        return ciphertext

    def decrypt_and_hash(self, key: bytearray, ciphertext: Buffer) -> bytes:
        try:
            plaintext = crypto.aead_decrypt(key, 0, ciphertext, self.hash)
        finally:
            crypto.wipe(key)
        self.mix_hash(ciphertext)
        return plaintext

    def split(self) -> tuple[bytearray, bytearray]:
        """(initiator-to-responder key, responder-to-initiator key) = KDF2(ck, "")."""
        return crypto.kdf2(self.chaining_key, b"")

    def wipe(self) -> None:
        crypto.wipe(self.chaining_key, self.hash)


def _mix_ephemeral(sym: SymmetricState, ephemeral_public: Buffer) -> None:
    # The "e" token in a psk handshake: MixHash(e) and also MixKey(e) (Noise spec 9.2).
    sym.mix_hash(ephemeral_public)
    crypto.wipe(sym.mix_key(ephemeral_public))


# ---- The Noise IKpsk2 message steps -------------------------------------------------------

def write_initiation(
    sym: SymmetricState, *, ephemeral_private: Buffer, local_static_public: Buffer,
    remote_static: Buffer, static_static: Buffer, payload: Buffer,
) -> tuple[bytes, bytes, bytes]:
    """-> e, es, s, ss, payload. Returns (ephemeral public, encrypted static, encrypted payload).

    `sym` must already hold the pre-message (MixHash of the responder's static key).
    `static_static` is DH(our static, their static), which WireGuard precomputes per peer.
    """
    ephemeral_public = crypto.public_key(ephemeral_private)
    _mix_ephemeral(sym, ephemeral_public)
    encrypted_static = sym.encrypt_and_hash(
        sym.mix_dh(ephemeral_private, remote_static), local_static_public)
    encrypted_payload = sym.encrypt_and_hash(sym.mix_key(static_static), payload)
    return ephemeral_public, encrypted_static, encrypted_payload


def read_initiation_static(
    sym: SymmetricState, *, local_static_private: Buffer, ephemeral: Buffer,
    encrypted_static: Buffer,
) -> bytes:
    """The responder's first half of reading message 1 (e, es, s): returns the initiator's
    static public key, so the caller can find the peer (and its static-static DH)."""
    _mix_ephemeral(sym, ephemeral)
    return sym.decrypt_and_hash(sym.mix_dh(local_static_private, ephemeral), encrypted_static)


def read_initiation_payload(
    sym: SymmetricState, *, static_static: Buffer, encrypted_payload: Buffer,
) -> bytes:
    """The second half (ss, payload): returns the decrypted payload."""
    return sym.decrypt_and_hash(sym.mix_key(static_static), encrypted_payload)


def write_response(
    sym: SymmetricState, *, ephemeral_private: Buffer, remote_ephemeral: Buffer,
    remote_static: Buffer, preshared_key: Buffer, payload: Buffer,
) -> tuple[bytes, bytes]:
    """<- e, ee, se, psk, payload. Returns (ephemeral public, encrypted payload)."""
    ephemeral_public = crypto.public_key(ephemeral_private)
    _mix_ephemeral(sym, ephemeral_public)
    crypto.wipe(sym.mix_dh(ephemeral_private, remote_ephemeral))
    crypto.wipe(sym.mix_dh(ephemeral_private, remote_static))
    encrypted_payload = sym.encrypt_and_hash(sym.mix_key_and_hash(preshared_key), payload)
    return ephemeral_public, encrypted_payload


def read_response(
    sym: SymmetricState, *, ephemeral_private: Buffer, local_static_private: Buffer,
    remote_ephemeral: Buffer, preshared_key: Buffer, encrypted_payload: Buffer,
) -> bytes:
    """The initiator reads message 2 (e, ee, se, psk, payload): returns the payload."""
    _mix_ephemeral(sym, remote_ephemeral)
    crypto.wipe(sym.mix_dh(ephemeral_private, remote_ephemeral))
    crypto.wipe(sym.mix_dh(local_static_private, remote_ephemeral))
    return sym.decrypt_and_hash(sym.mix_key_and_hash(preshared_key), encrypted_payload)


# ---- WireGuard's handshake -----------------------------------------------------------------

def _initial_state() -> tuple[bytes, bytes]:
    sym = SymmetricState.initialize(CONSTRUCTION, IDENTIFIER)
    return bytes(sym.chaining_key), bytes(sym.hash)


# Ci0 = HASH(CONSTRUCTION) and Hi0 = HASH(Ci0 || IDENTIFIER): the same for every handshake.
INITIAL_CHAINING_KEY, INITIAL_HASH = _initial_state()


def _wireguard_state(responder_static: Buffer) -> SymmetricState:
    sym = SymmetricState(INITIAL_CHAINING_KEY, INITIAL_HASH)
    sym.mix_hash(responder_static)  # the pre-message "<- s"
    return sym


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
    CREATED_RESPONSE = enum.auto()
    CONSUMED_RESPONSE = enum.auto()


@dataclass(eq=False)
class Handshake:
    """One peer's handshake state; the peer's static key never changes for its lifetime."""

    remote_static: bytes
    # The secrets stay out of repr() so that logging a handshake cannot leak them.
    preshared_key: bytearray = field(
        default_factory=lambda: bytearray(NOISE_SYMMETRIC_KEY_LEN), repr=False)
    # DH(our static, their static), or zeros when there is no private key or it is invalid.
    static_static: bytearray = field(
        default_factory=lambda: bytearray(NOISE_PUBLIC_KEY_LEN), repr=False)
    state: HandshakeState = HandshakeState.ZEROED
    sym: SymmetricState | None = field(default=None, repr=False)
    local_ephemeral: bytearray = field(default_factory=bytearray, repr=False)
    remote_ephemeral: bytes = b""
    local_index: int | None = None
    remote_index: int = 0
    # Replay protection: the newest accepted timestamp and when (monotonic) it was accepted.
    latest_timestamp: bytes = tai64n.ZERO
    last_initiation_consumption_ns: int | None = None

    def precompute(self, identity: StaticIdentity | None) -> None:
        """Recompute the static-static DH for a new (or no) private key."""
        try:
            shared = crypto.dh(identity.private_key, self.remote_static) if identity else None
        except RemoteProtocolError:
            shared = None  # a low-order peer key: every handshake with it will fail
        self.static_static[:] = shared if shared is not None else bytes(NOISE_PUBLIC_KEY_LEN)
        if shared is not None:
            crypto.wipe(shared)

    def set_preshared_key(self, key: Buffer | None) -> None:
        if key is not None and len(key) != NOISE_SYMMETRIC_KEY_LEN:
            raise LocalProtocolError("a preshared key is 32 bytes")
        self.preshared_key[:] = key if key is not None else bytes(NOISE_SYMMETRIC_KEY_LEN)

    def clear(self) -> None:
        """Forget the handshake in progress (not the peer's keys or its replay state)."""
        if self.sym is not None:
            self.sym.wipe()
        crypto.wipe(self.local_ephemeral)
        self.sym = None
        self.local_ephemeral = bytearray()
        self.remote_ephemeral = b""
        self.local_index = None
        self.remote_index = 0
        self.state = HandshakeState.ZEROED

    def wipe(self) -> None:
        """Forget everything secret (the peer is being removed)."""
        self.clear()
        crypto.wipe(self.preshared_key, self.static_static)


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


def _require_static_static(handshake: Handshake) -> None:
    if crypto.is_zero(handshake.static_static):
        raise RemoteProtocolError(DropReason.BAD_DH, "no static-static secret for this peer")


def create_initiation(
    handshake: Handshake, identity: StaticIdentity, *, sender_index: int, timestamp: bytes,
    ephemeral_private: bytearray,
) -> MessageInitiation:
    """Start a handshake as the initiator (macs are the caller's). Takes `ephemeral_private`."""
    if crypto.is_zero(handshake.static_static):
        raise LocalProtocolError("the peer's public key gives an all-zero static-static DH")
    sym = _wireguard_state(handshake.remote_static)
    try:
        ephemeral, encrypted_static, encrypted_timestamp = write_initiation(
            sym, ephemeral_private=ephemeral_private, local_static_public=identity.public_key,
            remote_static=handshake.remote_static, static_static=handshake.static_static,
            payload=timestamp)
    except BaseException:
        sym.wipe()
        crypto.wipe(ephemeral_private)
        raise
    handshake.clear()
    handshake.sym = sym
    handshake.local_ephemeral = ephemeral_private
    handshake.local_index = sender_index
    handshake.state = HandshakeState.CREATED_INITIATION
    return MessageInitiation(sender=sender_index, ephemeral=ephemeral,
                             encrypted_static=encrypted_static,
                             encrypted_timestamp=encrypted_timestamp)


def consume_initiation(
    message: MessageInitiation, identity: StaticIdentity,
    find_peer: Callable[[bytes], Handshake | None], now_ns: int,
) -> Handshake:
    """Accept an initiation as the responder; returns the peer's handshake, now CONSUMED.

    Raises RemoteProtocolError (decrypt failure, unknown peer, replayed or stale timestamp,
    initiation flood, all-zero DH) and then leaves every handshake untouched.
    """
    sym = _wireguard_state(identity.public_key)
    try:
        remote_static = read_initiation_static(
            sym, local_static_private=identity.private_key, ephemeral=message.ephemeral,
            encrypted_static=message.encrypted_static)
        handshake = find_peer(remote_static)
        if handshake is None:
            raise RemoteProtocolError(DropReason.UNKNOWN_PEER)
        _require_static_static(handshake)
        timestamp = read_initiation_payload(
            sym, static_static=handshake.static_static,
            encrypted_payload=message.encrypted_timestamp)
        _check_replay_and_flood(handshake, timestamp, now_ns)
    except BaseException:
        sym.wipe()
        raise
    handshake.clear()
    handshake.sym = sym
    handshake.remote_ephemeral = message.ephemeral
    handshake.remote_index = message.sender
    handshake.latest_timestamp = timestamp
    handshake.last_initiation_consumption_ns = now_ns
    handshake.state = HandshakeState.CONSUMED_INITIATION
    return handshake


def _check_replay_and_flood(handshake: Handshake, timestamp: bytes, now_ns: int) -> None:
    if not tai64n.after(timestamp, handshake.latest_timestamp):
        raise RemoteProtocolError(DropReason.STALE_TIMESTAMP)
    last = handshake.last_initiation_consumption_ns
    if last is not None and now_ns - last <= HANDSHAKE_INITIATION_RATE_NS:
        raise RemoteProtocolError(DropReason.INITIATION_FLOOD)


def create_response(
    handshake: Handshake, *, sender_index: int, ephemeral_private: bytearray,
) -> MessageResponse:
    """Answer a consumed initiation (macs are the caller's). Takes `ephemeral_private`."""
    if handshake.state is not HandshakeState.CONSUMED_INITIATION or handshake.sym is None:
        raise LocalProtocolError(f"no initiation to answer (state {handshake.state.name})")
    try:
        ephemeral, encrypted_nothing = write_response(
            handshake.sym, ephemeral_private=ephemeral_private,
            remote_ephemeral=handshake.remote_ephemeral, remote_static=handshake.remote_static,
            preshared_key=handshake.preshared_key, payload=b"")
    except BaseException:
        crypto.wipe(ephemeral_private)
        handshake.clear()  # the chaining key is half-mixed: this handshake is unusable
        raise
    handshake.local_ephemeral = ephemeral_private
    handshake.local_index = sender_index
    handshake.state = HandshakeState.CREATED_RESPONSE
    return MessageResponse(sender=sender_index, receiver=handshake.remote_index,
                           ephemeral=ephemeral, encrypted_nothing=encrypted_nothing)


def consume_response(
    message: MessageResponse, identity: StaticIdentity, handshake: Handshake,
) -> None:
    """Accept the response to our initiation; the handshake becomes CONSUMED_RESPONSE."""
    if handshake.state is not HandshakeState.CREATED_INITIATION or handshake.sym is None:
        raise RemoteProtocolError(DropReason.WRONG_STATE)
    if message.receiver != handshake.local_index:
        # An answer to an initiation a newer one has replaced.
        raise RemoteProtocolError(DropReason.UNKNOWN_INDEX)
    sym = handshake.sym.copy()
    try:
        read_response(
            sym, ephemeral_private=handshake.local_ephemeral,
            local_static_private=identity.private_key, remote_ephemeral=message.ephemeral,
            preshared_key=handshake.preshared_key, encrypted_payload=message.encrypted_nothing)
    except BaseException:
        sym.wipe()
        raise
    handshake.sym.wipe()
    handshake.sym = sym
    handshake.remote_ephemeral = message.ephemeral
    handshake.remote_index = message.sender
    handshake.state = HandshakeState.CONSUMED_RESPONSE


def begin_session(handshake: Handshake, now_ns: int) -> Session:
    """Derive the transport keys of a finished handshake and clear the handshake.

    The handshake's local index now belongs to the session's keypair.
    """
    if handshake.state is HandshakeState.CONSUMED_RESPONSE:
        initiator = True
    elif handshake.state is HandshakeState.CREATED_RESPONSE:
        initiator = False
    else:
        raise LocalProtocolError(f"no finished handshake (state {handshake.state.name})")
    if handshake.sym is None or handshake.local_index is None:
        raise LocalProtocolError("a finished handshake without its state or index")
    first, second = handshake.sym.split()
    send_key, receive_key = (first, second) if initiator else (second, first)
    session = Session(peer=handshake.remote_static, local_index=handshake.local_index,
                      remote_index=handshake.remote_index, send_key=send_key,
                      receive_key=receive_key, initiator=initiator, birth_ns=now_ns)
    handshake.clear()
    return session

