"""Transport data messages (type 4) in a few lines: the independent oracle the C data plane
is held to. It seals and opens with libsodium's ChaCha20-Poly1305 (through pynacl), not
with any of pywg's own AEAD backends, and follows the whitepaper (5.4.6) directly:

    message = le32(4) || le32(receiver index) || le64(counter) || AEAD(key, counter,
              packet padded with zeros to a multiple of 16, but never beyond the MTU)

A keepalive is an empty packet: 32 bytes on the wire. Replay windows, key ages and
cryptokey routing are not modelled here: they are what the tests check on the C side.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from nacl.bindings import (
    crypto_aead_chacha20poly1305_ietf_decrypt,
    crypto_aead_chacha20poly1305_ietf_encrypt,
)
from nacl.exceptions import CryptoError

HEADER = struct.Struct("<IIQ")  # type, receiver index, counter


@dataclass
class Keypair:
    """One side's view of a session: what it sends with and what it receives with."""

    send_key: bytes
    receive_key: bytes
    local_index: int  # the index the other side writes in its messages to us
    remote_index: int  # the index we write
    send_counter: int = 0


@dataclass(frozen=True)
class Opened:
    counter: int
    plaintext: bytes  # still padded

    @property
    def is_keepalive(self) -> bool:
        return not self.plaintext


def _nonce(counter: int) -> bytes:
    return bytes(4) + counter.to_bytes(8, "little")


def padding_length(length: int, mtu: int) -> int:
    """Zeros after a packet of `length`: up to a multiple of 16, capped at the MTU; a GSO
    super-packet is padded as its last segment is (the kernel's calculate_skb_padding)."""
    last = length % mtu if mtu and length > mtu else length
    padded = -(-last // 16) * 16
    return (min(padded, mtu) if mtu else padded) - last


def seal(keypair: Keypair, packet: bytes, mtu: int) -> bytes:
    counter = keypair.send_counter
    keypair.send_counter += 1
    plaintext = packet + bytes(padding_length(len(packet), mtu))
    return HEADER.pack(4, keypair.remote_index, counter) + \
        crypto_aead_chacha20poly1305_ietf_encrypt(plaintext, None, _nonce(counter),
                                                  keypair.send_key)


def open_message(keypair: Keypair, datagram: bytes) -> Opened | None:
    """The plaintext, or None if the datagram is not a data message for this keypair or
    its tag does not verify."""
    if len(datagram) < HEADER.size + 16:
        return None
    msg_type, receiver, counter = HEADER.unpack_from(datagram)
    if msg_type != 4 or receiver != keypair.local_index:
        return None
    try:
        plaintext = crypto_aead_chacha20poly1305_ietf_decrypt(
            datagram[HEADER.size:], None, _nonce(counter), keypair.receive_key)
    except CryptoError:
        return None
    return Opened(counter, plaintext)


def trim(plaintext: bytes) -> bytes:
    """The IP packet inside a padded plaintext, by its header's own length."""
    if plaintext[0] >> 4 == 4:
        return plaintext[:struct.unpack_from("!H", plaintext, 2)[0]]
    return plaintext[:40 + struct.unpack_from("!H", plaintext, 4)[0]]
