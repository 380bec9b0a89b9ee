"""The protocol core's exceptions and the typed reasons for dropping a packet.

As in h11: one root, `ProtocolError`, split into `LocalProtocolError` (the caller misused the
API: an unknown peer, no private key) and `RemoteProtocolError` (the bytes that came from the
network are bad). Remote errors carry a `DropReason`, which is what the driver counts and logs;
`HandshakeCore.receive` turns every remote error into a `Drop` action, so none escapes it.
"""

from __future__ import annotations

import enum

__all__ = [
    "DecryptError",
    "DropReason",
    "LocalProtocolError",
    "MessageError",
    "ProtocolError",
    "RemoteProtocolError",
]


class DropReason(enum.Enum):
    """Why an incoming datagram was dropped (one counter each in the driver)."""

    MALFORMED = "malformed"  # wrong size or a type field that is not one of ours
    DATA_MESSAGE = "data_message"  # type 4: belongs to the data plane, not here
    NO_PRIVATE_KEY = "no_private_key"
    DECRYPT_FAILED = "decrypt_failed"  # an AEAD tag did not verify
    BAD_DH = "bad_dh"  # an X25519 result was all zero (a low-order public key)
    UNKNOWN_PEER = "unknown_peer"  # the decrypted static key is not a configured peer
    STALE_TIMESTAMP = "stale_timestamp"  # not strictly newer than the last accepted one: replay
    INITIATION_FLOOD = "initiation_flood"  # under 20 ms since the last accepted initiation
    UNKNOWN_INDEX = "unknown_index"  # the receiver index names nothing we hold
    WRONG_STATE = "wrong_state"  # a response for a handshake that is not waiting for one
    UNEXPECTED_COOKIE = "unexpected_cookie"  # a cookie reply with no handshake sent to match it
    LOCAL_ERROR = "local_error"  # our side could not process it (e.g. the index table is full)


class ProtocolError(Exception):
    """Root of every exception the protocol core raises."""


class LocalProtocolError(ProtocolError):
    """The caller asked for something impossible (a bug or a configuration error)."""


class RemoteProtocolError(ProtocolError):
    """Input from the network is unacceptable; the packet must be dropped."""

    def __init__(self, reason: DropReason, detail: str = "") -> None:
        super().__init__(f"{reason.value}: {detail}" if detail else reason.value)
        self.reason = reason
        self.detail = detail


class MessageError(RemoteProtocolError):
    """A datagram is not a well-formed WireGuard message (size, type or layout)."""

    def __init__(self, detail: str) -> None:
        super().__init__(DropReason.MALFORMED, detail)


class DecryptError(RemoteProtocolError):
    """An AEAD tag did not verify: wrong key, wrong associated data, or tampering."""

    def __init__(self, detail: str = "authentication tag mismatch") -> None:
        super().__init__(DropReason.DECRYPT_FAILED, detail)
