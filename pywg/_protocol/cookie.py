"""mac1, mac2 and cookies on what we send: the initiator's half of WireGuard's defence
against handshake floods (whitepaper 5.3, 5.4.4 and 5.4.7; the kernel's cookie.c).

- mac1 = MAC(HASH("mac1----" || receiver's static public key), message up to mac1): it
  proves we know the receiver's public key; it is always checked.
- mac2 = MAC(cookie, message up to mac2), or zeros without a fresh cookie.
- A responder under load answers a message without a valid mac2 with a cookie reply: the
  cookie for our address, sealed with XChaCha20-Poly1305 under HASH("cookie--" ||
  responder's public key) with our message's mac1 as associated data, so only the sender
  of that very message can use it.

The responder's half (checking mac1 and mac2, making cookies and replies, rate limiting)
runs in the data plane's receive thread: csrc/cookie.c and csrc/ratelimiter.c.
`CookieGenerator` is one per peer: the last cookie received from it and the last mac1 sent.
"""

from __future__ import annotations

from pywg._constants import (
    COOKIE_LEN,
    COOKIE_SECRET_LATENCY_S,
    COOKIE_SECRET_MAX_AGE_S,
    LABEL_COOKIE,
    LABEL_MAC1,
    MESSAGE_MAC_LEN,
    NOISE_PUBLIC_KEY_LEN,
)
from pywg._protocol import crypto
from pywg._protocol.errors import DropReason, LocalProtocolError, RemoteProtocolError
from pywg._protocol.messages import MessageCookieReply

__all__ = ["CookieGenerator"]

_NS_PER_S = 1_000_000_000
# The initiator stops using a cookie a little before the responder's secret can rotate
# (the kernel's choice; wireguard-go waits the full 120 s and risks one useless mac2).
_COOKIE_USABLE_NS = (COOKIE_SECRET_MAX_AGE_S - COOKIE_SECRET_LATENCY_S) * _NS_PER_S


def _mac1_key(public_key: bytes) -> bytes:
    return crypto.blake2s(LABEL_MAC1, public_key)


def _cookie_key(public_key: bytes) -> bytes:
    return crypto.blake2s(LABEL_COOKIE, public_key)


def _mac1_offset(packet: bytes) -> int:
    return len(packet) - 2 * MESSAGE_MAC_LEN


def _check_public_key(public_key: bytes) -> None:
    if len(public_key) != NOISE_PUBLIC_KEY_LEN:
        raise LocalProtocolError("a public key is 32 bytes")


class CookieGenerator:
    """The initiator side for one peer: puts mac1 and mac2 on the handshake messages we send it
    and takes the cookie from its replies."""

    __slots__ = ("_cookie", "_cookie_birth_ns", "_last_mac1", "_peer")

    def __init__(self, peer_public_key: bytes) -> None:
        _check_public_key(peer_public_key)
        # The keys derived from it are made when first needed: a gateway has many peers
        # that never handshake, and each costs two hashes and their bytes otherwise.
        self._peer = peer_public_key
        self._cookie = bytearray(COOKIE_LEN)
        self._cookie_birth_ns: int | None = None
        self._last_mac1: bytes | None = None  # None: no handshake awaiting a cookie

    def add_macs(self, packet: bytes, now_ns: int) -> bytes:
        """A copy of a handshake message with its mac1 and, with a fresh cookie, its mac2."""
        body = packet[:_mac1_offset(packet)]
        mac1 = crypto.mac(_mac1_key(self._peer), body)
        self._last_mac1 = mac1
        with_mac1 = body + mac1
        mac2 = bytes(MESSAGE_MAC_LEN)
        if self.has_fresh_cookie(now_ns):
            mac2 = crypto.mac(self._cookie, with_mac1)
        return with_mac1 + mac2

    def has_fresh_cookie(self, now_ns: int) -> bool:
        birth = self._cookie_birth_ns
        return birth is not None and now_ns - birth < _COOKIE_USABLE_NS

    def consume_reply(self, reply: MessageCookieReply, now_ns: int) -> None:
        """Store the cookie of a reply to the last handshake message we sent this peer.

        Raises RemoteProtocolError: UNEXPECTED_COOKIE if no message awaits one (also for a
        second copy of the same reply), DECRYPT_FAILED if it was not made for that message.
        """
        if self._last_mac1 is None:
            raise RemoteProtocolError(DropReason.UNEXPECTED_COOKIE)
        cookie = bytearray(crypto.xaead_decrypt(
            _cookie_key(self._peer), reply.nonce, reply.encrypted_cookie, self._last_mac1))
        self._cookie[:] = cookie
        crypto.wipe(cookie)
        self._cookie_birth_ns = now_ns
        self._last_mac1 = None

    def wipe(self) -> None:
        crypto.wipe(self._cookie)
        self._cookie_birth_ns = None
        self._last_mac1 = None
