"""Transport data messages (type 4), pure Python: the reference for the C data plane.

A transport message is a 16-byte header (type 4 as a little-endian u32, the receiver's
index, the 64-bit little-endian counter) and the ChaCha20-Poly1305 encryption of the inner
IP packet under the keypair's sending key, with the counter as nonce and no associated
data. The inner packet is padded with zeros to a multiple of 16 bytes, so that sizes leak
less, but never beyond the MTU (whitepaper 5.4.6). A keepalive is an empty inner packet:
32 bytes on the wire.

Receiving is two steps, in the kernel's and wireguard-go's order. `unseal` checks the size
and type, the receiver index, the keypair's age, the tag, and only then the replay window (a
forged counter must not move it): what passes is an authenticated packet, which the caller
lets update its timers and the peer's endpoint. Unless it is a keepalive, `trim` then cuts
the padding off by the inner IP header's length. Every failure is a `TransportDrop`, never
an exception: the caller counts it and moves on. The cryptokey-routing check of the inner
source address belongs to the caller, which knows the allowed IPs.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from pywg._constants import (
    IPV4_HEADER_MIN_LEN,
    IPV6_HEADER_LEN,
    MESSAGE_DATA,
    MESSAGE_DATA_HEADER_SIZE,
    MESSAGE_DATA_MIN_SIZE,
    MESSAGE_PADDING_MULTIPLE,
    REJECT_AFTER_MESSAGES,
)
from pywg._protocol.crypto import Buffer, aead_decrypt, aead_encrypt
from pywg._protocol.errors import DecryptError
from pywg._protocol.keypair import Keypair
from pywg._protocol.timers import Timing

__all__ = [
    "Opened",
    "TransportDrop",
    "TransportHeader",
    "inner_packet_length",
    "padding_length",
    "parse_header",
    "seal",
    "trim",
    "unseal",
]

_HEADER = struct.Struct("<IIQ")  # type, receiver index, counter


class TransportDrop(enum.Enum):
    """Why an incoming transport message was dropped (one counter each)."""

    TOO_SHORT = "too_short"  # under 32 bytes: not even a keepalive
    WRONG_TYPE = "wrong_type"  # the type field is not a little-endian 4
    UNKNOWN_INDEX = "unknown_index"  # no keypair of ours has this receiver index
    KEY_EXPIRED = "key_expired"  # the keypair is REJECT_AFTER_TIME old, or wiped
    DECRYPT_FAILED = "decrypt_failed"  # the tag did not verify
    REPLAYED = "replayed"  # counter seen before, behind the window, or past the limit
    BAD_INNER_PACKET = "bad_inner_packet"  # not IPv4/IPv6, or its length field disagrees


class TransportHeader(NamedTuple):
    receiver_index: int
    counter: int


@dataclass(frozen=True, slots=True)
class Opened:
    """An authenticated, fresh transport message."""

    keypair: Keypair
    counter: int
    plaintext: bytes  # the inner packet and its padding; empty for a keepalive

    @property
    def is_keepalive(self) -> bool:
        return not self.plaintext


def padding_length(length: int, mtu: int) -> int:
    """How many zero bytes follow an inner packet of `length` bytes (mtu 0: no MTU).

    A packet larger than the MTU (a GSO super-packet) is padded as its last segment is, so
    the padded size never overshoots and the subtraction never goes negative.
    """
    if mtu <= 0:
        return -length % MESSAGE_PADDING_MULTIPLE
    last = length % mtu if length > mtu else length
    padded = min(mtu, last + -last % MESSAGE_PADDING_MULTIPLE)
    return padded - last


def seal(
    keypair: Keypair, packet: Buffer, mtu: int, *, limit: int = REJECT_AFTER_MESSAGES
) -> bytes:
    """Encrypt one inner packet (empty: a keepalive) under the keypair's next counter.

    The caller has checked `keypair.usable_for_sending`; `limit` is REJECT_AFTER_MESSAGES
    unless a test shortens it.
    """
    counter = keypair.take_send_counter(limit)
    plaintext = bytes(packet) + bytes(padding_length(len(packet), mtu))
    header = _HEADER.pack(MESSAGE_DATA, keypair.remote_index, counter)
    return header + aead_encrypt(keypair.send_key, counter, plaintext, b"")


def parse_header(datagram: Buffer) -> TransportHeader | TransportDrop:
    """Size and type checks, then the receiver index and counter."""
    if len(datagram) < MESSAGE_DATA_MIN_SIZE:
        return TransportDrop.TOO_SHORT
    kind, receiver_index, counter = _HEADER.unpack_from(datagram)
    if kind != MESSAGE_DATA:
        return TransportDrop.WRONG_TYPE
    return TransportHeader(receiver_index, counter)


def unseal(
    datagram: Buffer,
    lookup: Callable[[int], Keypair | None],
    now: int,
    timing: Timing,
) -> Opened | TransportDrop:
    """Authenticate and decrypt one transport message; `lookup` maps receiver indices to
    our keypairs. The replay window records the counter only if the tag verified."""
    header = parse_header(datagram)
    if isinstance(header, TransportDrop):
        return header
    keypair = lookup(header.receiver_index)
    if keypair is None:
        return TransportDrop.UNKNOWN_INDEX
    if not keypair.usable_for_receiving(now, timing):
        return TransportDrop.KEY_EXPIRED
    try:
        plaintext = aead_decrypt(
            keypair.receive_key,
            header.counter,
            memoryview(datagram)[MESSAGE_DATA_HEADER_SIZE:],
            b"",
        )
    except DecryptError:
        return TransportDrop.DECRYPT_FAILED
    if not keypair.replay_filter.validate_counter(header.counter, timing.reject_after_messages):
        return TransportDrop.REPLAYED
    return Opened(keypair, header.counter, plaintext)


def trim(plaintext: bytes) -> bytes | TransportDrop:
    """The inner IP packet of a (non-keepalive) plaintext, without its padding."""
    length = inner_packet_length(plaintext)
    if length is None:
        return TransportDrop.BAD_INNER_PACKET
    return plaintext[:length]


def inner_packet_length(plaintext: bytes) -> int | None:
    """The length the inner IP header claims, or None unless `plaintext` starts with a
    whole IPv4 or IPv6 packet."""
    if not plaintext:
        return None
    version = plaintext[0] >> 4
    if version == 4 and len(plaintext) >= IPV4_HEADER_MIN_LEN:
        (total,) = struct.unpack_from("!H", plaintext, 2)
        return total if IPV4_HEADER_MIN_LEN <= total <= len(plaintext) else None
    if version == 6 and len(plaintext) >= IPV6_HEADER_LEN:
        (payload,) = struct.unpack_from("!H", plaintext, 4)
        total = IPV6_HEADER_LEN + payload
        return total if total <= len(plaintext) else None
    return None
