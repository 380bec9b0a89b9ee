"""Handshake initiations for the load generator, made by pywg's sans-I/O protocol core.

The generator plays many distinct initiators against one responder and needs only their
first messages: `noise.create_initiation` plus the macs of `cookie.CookieGenerator` (mac2 is
zero: these initiators never hold a cookie). What comes back is checked too: a response
counts only if its mac1 was made with the initiator's public key, a cookie reply only if it
decrypts under the responder's cookie key with the triggering initiation's mac1 as AD.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pywg._constants import LABEL_COOKIE, LABEL_MAC1, MESSAGE_MAC_LEN
from pywg._protocol import crypto, noise, tai64n
from pywg._protocol.cookie import CookieGenerator
from pywg._protocol.errors import RemoteProtocolError
from pywg._protocol.messages import MessageCookieReply, MessageResponse

# Initiations are distinguishable by the responder's replay check only if their TAI64N
# stamps differ after whitening: successive ones of a peer are this many ns apart.
TIMESTAMP_STEP_NS = 1 << 24


@dataclass(frozen=True)
class Responder:
    public: bytes
    cookie_key: bytes = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "cookie_key", crypto.blake2s(LABEL_COOKIE, self.public))


class Initiator:
    """One initiating peer (its static-static DH computed at its first initiation and kept,
    as real peers do)."""

    def __init__(self, private: bytes, responder: Responder) -> None:
        self.identity = noise.StaticIdentity(private)
        self.public = self.identity.public_key
        self.handshake = noise.Handshake(remote_static=responder.public)
        self.macs = CookieGenerator(responder.public)
        # What mac1 of a response sent to us is keyed with.
        self.mac1_key = crypto.blake2s(LABEL_MAC1, self.public)

    def initiation(self, sender_index: int, wall_ns: int, ephemeral: bytes) -> bytes:
        """A complete 148-byte initiation with a valid mac1 and a zero mac2."""
        message = noise.create_initiation(
            self.handshake, self.identity, sender_index=sender_index,
            timestamp=tai64n.from_wall_ns(wall_ns), ephemeral_private=bytearray(ephemeral))
        return self.macs.add_macs(message.to_bytes(), now_ns=0)

    def response_ok(self, packet: bytes) -> bool:
        """Whether a response's mac1 was made for us (keyed by our public key)."""
        mac1_at = len(packet) - 2 * MESSAGE_MAC_LEN
        expected = crypto.mac(self.mac1_key, packet[:mac1_at])
        return crypto.constant_time_eq(expected, packet[mac1_at:mac1_at + MESSAGE_MAC_LEN])


def response_receiver(packet: bytes) -> int | None:
    """The receiver index of a well-formed handshake response, else None."""
    try:
        return MessageResponse.from_bytes(packet).receiver
    except RemoteProtocolError:
        return None


def cookie_receiver(packet: bytes) -> int | None:
    """The receiver index of a well-formed cookie reply, else None."""
    try:
        return MessageCookieReply.from_bytes(packet).receiver
    except RemoteProtocolError:
        return None


def cookie_opens(packet: bytes, responder: Responder, initiation: bytes) -> bool:
    """Whether a cookie reply was sealed for this initiation (its mac1 is the AD)."""
    reply = MessageCookieReply.from_bytes(packet)
    mac1_at = len(initiation) - 2 * MESSAGE_MAC_LEN
    try:
        crypto.xaead_decrypt(responder.cookie_key, reply.nonce, reply.encrypted_cookie,
                             initiation[mac1_at:mac1_at + MESSAGE_MAC_LEN])
    except RemoteProtocolError:
        return False
    return True
