"""WireGuard's four message types: parse and build (whitepaper 5.4; protocol-notes.md 1.3).

All integers are little endian. The type is a u32 whose top three bytes must be zero; the
sizes of types 1-3 are exact and a transport message is at least a header and a tag.
`parse` raises `MessageError` for anything else and never another exception.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from pywg._constants import (
    COOKIE_LEN,
    COOKIE_NONCE_LEN,
    MESSAGE_COOKIE_REPLY_SIZE,
    MESSAGE_DATA,
    MESSAGE_DATA_HEADER_SIZE,
    MESSAGE_DATA_MIN_SIZE,
    MESSAGE_HANDSHAKE_COOKIE,
    MESSAGE_HANDSHAKE_INITIATION,
    MESSAGE_HANDSHAKE_RESPONSE,
    MESSAGE_INITIATION_SIZE,
    MESSAGE_MAC_LEN,
    MESSAGE_RESPONSE_SIZE,
    NOISE_AUTHTAG_LEN,
    NOISE_PUBLIC_KEY_LEN,
    NOISE_TIMESTAMP_LEN,
)
from pywg._protocol.errors import MessageError

__all__ = [
    "Message",
    "MessageCookieReply",
    "MessageInitiation",
    "MessageResponse",
    "MessageTransport",
    "message_type",
    "parse",
]

_U32 = struct.Struct("<I")
_ENC_STATIC_LEN = NOISE_PUBLIC_KEY_LEN + NOISE_AUTHTAG_LEN
_ENC_TIMESTAMP_LEN = NOISE_TIMESTAMP_LEN + NOISE_AUTHTAG_LEN
_ENC_COOKIE_LEN = COOKIE_LEN + NOISE_AUTHTAG_LEN
_NO_MAC = bytes(MESSAGE_MAC_LEN)


def _check_field(name: str, value: bytes, size: int) -> None:
    if len(value) != size:
        raise MessageError(f"{name} must be {size} bytes, not {len(value)}")


def _check_u32(name: str, value: int) -> None:
    if not 0 <= value <= 0xFFFFFFFF:
        raise MessageError(f"{name} is not a u32: {value}")


@dataclass(frozen=True, slots=True)
class MessageInitiation:
    """Type 1, 148 bytes: the initiator's first handshake message."""

    sender: int
    ephemeral: bytes  # 32, in the clear
    encrypted_static: bytes  # 32 + 16
    encrypted_timestamp: bytes  # 12 + 16
    mac1: bytes = _NO_MAC
    mac2: bytes = _NO_MAC

    def __post_init__(self) -> None:
        _check_u32("sender", self.sender)
        _check_field("ephemeral", self.ephemeral, NOISE_PUBLIC_KEY_LEN)
        _check_field("encrypted_static", self.encrypted_static, _ENC_STATIC_LEN)
        _check_field("encrypted_timestamp", self.encrypted_timestamp, _ENC_TIMESTAMP_LEN)
        _check_field("mac1", self.mac1, MESSAGE_MAC_LEN)
        _check_field("mac2", self.mac2, MESSAGE_MAC_LEN)

    def to_bytes(self) -> bytes:
        return b"".join((
            _U32.pack(MESSAGE_HANDSHAKE_INITIATION), _U32.pack(self.sender), self.ephemeral,
            self.encrypted_static, self.encrypted_timestamp, self.mac1, self.mac2,
        ))

    @classmethod
    def from_bytes(cls, data: bytes) -> MessageInitiation:
        _check_header(data, MESSAGE_HANDSHAKE_INITIATION, MESSAGE_INITIATION_SIZE)
        return cls(
            sender=_U32.unpack_from(data, 4)[0], ephemeral=data[8:40],
            encrypted_static=data[40:88], encrypted_timestamp=data[88:116],
            mac1=data[116:132], mac2=data[132:148],
        )


@dataclass(frozen=True, slots=True)
class MessageResponse:
    """Type 2, 92 bytes: the responder's answer."""

    sender: int
    receiver: int
    ephemeral: bytes  # 32, in the clear
    encrypted_nothing: bytes  # 0 + 16: an AEAD of the empty string
    mac1: bytes = _NO_MAC
    mac2: bytes = _NO_MAC

    def __post_init__(self) -> None:
        _check_u32("sender", self.sender)
        _check_u32("receiver", self.receiver)
        _check_field("ephemeral", self.ephemeral, NOISE_PUBLIC_KEY_LEN)
        _check_field("encrypted_nothing", self.encrypted_nothing, NOISE_AUTHTAG_LEN)
        _check_field("mac1", self.mac1, MESSAGE_MAC_LEN)
        _check_field("mac2", self.mac2, MESSAGE_MAC_LEN)

    def to_bytes(self) -> bytes:
        return b"".join((
            _U32.pack(MESSAGE_HANDSHAKE_RESPONSE), _U32.pack(self.sender),
            _U32.pack(self.receiver), self.ephemeral, self.encrypted_nothing, self.mac1,
            self.mac2,
        ))

    @classmethod
    def from_bytes(cls, data: bytes) -> MessageResponse:
        _check_header(data, MESSAGE_HANDSHAKE_RESPONSE, MESSAGE_RESPONSE_SIZE)
        sender, receiver = struct.unpack_from("<II", data, 4)
        return cls(
            sender=sender, receiver=receiver, ephemeral=data[12:44],
            encrypted_nothing=data[44:60], mac1=data[60:76], mac2=data[76:92],
        )


@dataclass(frozen=True, slots=True)
class MessageCookieReply:
    """Type 3, 64 bytes: a cookie for the sender of a handshake message, sent under load."""

    receiver: int
    nonce: bytes  # 24, random
    encrypted_cookie: bytes  # 16 + 16

    def __post_init__(self) -> None:
        _check_u32("receiver", self.receiver)
        _check_field("nonce", self.nonce, COOKIE_NONCE_LEN)
        _check_field("encrypted_cookie", self.encrypted_cookie, _ENC_COOKIE_LEN)

    def to_bytes(self) -> bytes:
        return b"".join((
            _U32.pack(MESSAGE_HANDSHAKE_COOKIE), _U32.pack(self.receiver), self.nonce,
            self.encrypted_cookie,
        ))

    @classmethod
    def from_bytes(cls, data: bytes) -> MessageCookieReply:
        _check_header(data, MESSAGE_HANDSHAKE_COOKIE, MESSAGE_COOKIE_REPLY_SIZE)
        return cls(
            receiver=_U32.unpack_from(data, 4)[0], nonce=data[8:32],
            encrypted_cookie=data[32:64],
        )


@dataclass(frozen=True, slots=True)
class MessageTransport:
    """Type 4: a header (receiver index, counter) and an AEAD box of at least the tag."""

    receiver: int
    counter: int
    encrypted: bytes  # ciphertext || tag

    def __post_init__(self) -> None:
        _check_u32("receiver", self.receiver)
        if not 0 <= self.counter < 1 << 64:
            raise MessageError(f"counter is not a u64: {self.counter}")
        if len(self.encrypted) < NOISE_AUTHTAG_LEN:
            raise MessageError("encrypted payload shorter than its tag")

    def to_bytes(self) -> bytes:
        return struct.pack("<IIQ", MESSAGE_DATA, self.receiver, self.counter) + self.encrypted

    @classmethod
    def from_bytes(cls, data: bytes) -> MessageTransport:
        _check_header(data, MESSAGE_DATA, None)
        _, receiver, counter = struct.unpack_from("<IIQ", data, 0)
        return cls(receiver=receiver, counter=counter,
                   encrypted=data[MESSAGE_DATA_HEADER_SIZE:])


Message = MessageInitiation | MessageResponse | MessageCookieReply | MessageTransport

_BY_TYPE: dict[int, type[MessageInitiation | MessageResponse | MessageCookieReply
                         | MessageTransport]] = {
    MESSAGE_HANDSHAKE_INITIATION: MessageInitiation,
    MESSAGE_HANDSHAKE_RESPONSE: MessageResponse,
    MESSAGE_HANDSHAKE_COOKIE: MessageCookieReply,
    MESSAGE_DATA: MessageTransport,
}


def message_type(data: bytes) -> int:
    """The message type (1-4) of a datagram, checking only its first four bytes."""
    if len(data) < 4:
        raise MessageError(f"{len(data)} bytes is too short for a message type")
    value: int = _U32.unpack_from(data, 0)[0]
    if value not in _BY_TYPE:
        raise MessageError(f"unknown message type {value:#x}")
    return value


def _check_header(data: bytes, expected_type: int, exact_size: int | None) -> None:
    if message_type(data) != expected_type:
        raise MessageError(f"expected message type {expected_type}")
    if exact_size is not None and len(data) != exact_size:
        raise MessageError(f"type {expected_type} must be {exact_size} bytes, not {len(data)}")
    if exact_size is None and len(data) < MESSAGE_DATA_MIN_SIZE:
        raise MessageError(f"transport message of {len(data)} bytes is shorter than a keepalive")


def parse(data: bytes) -> Message:
    """Parse any WireGuard datagram into its message, or raise MessageError."""
    return _BY_TYPE[message_type(data)].from_bytes(bytes(data))
