"""mac1, mac2 and cookie replies: WireGuard's defence against handshake floods (whitepaper 5.3,
5.4.4 and 5.4.7; the kernel's cookie.c).

- mac1 = MAC(HASH("mac1----" || receiver's static public key), message up to mac1). Anyone who
  knows our public key can make it, but it proves the sender knows it; it is always checked.
- mac2 = MAC(cookie, message up to mac2), or zeros without a fresh cookie.
- The responder's cookie for a source is MAC(secret, source ip || port); the secret is random
  and rotates lazily every two minutes. Under load, a handshake without a valid mac2 is not
  processed: the sender gets a cookie reply instead, the cookie sealed with XChaCha20-Poly1305
  under HASH("cookie--" || responder's public key) with the triggering mac1 as associated data,
  so only the sender of that very message can use the reply.

`CookieChecker` is the responder side (one per device); `CookieGenerator` the initiator side
(one per peer, holding the last cookie received from that peer and the last mac1 sent to it).
"""

from __future__ import annotations

from pywg._constants import (
    COOKIE_LEN,
    COOKIE_NONCE_LEN,
    COOKIE_SECRET_LATENCY_S,
    COOKIE_SECRET_MAX_AGE_S,
    LABEL_COOKIE,
    LABEL_MAC1,
    MESSAGE_MAC_LEN,
    NOISE_HASH_LEN,
    NOISE_PUBLIC_KEY_LEN,
)
from pywg._protocol import crypto
from pywg._protocol.crypto import Rng
from pywg._protocol.endpoint import Endpoint
from pywg._protocol.errors import DropReason, LocalProtocolError, RemoteProtocolError
from pywg._protocol.messages import MessageCookieReply

__all__ = ["CookieChecker", "CookieGenerator"]

_NS_PER_S = 1_000_000_000
_SECRET_MAX_AGE_NS = COOKIE_SECRET_MAX_AGE_S * _NS_PER_S
# The initiator stops using a cookie a little before the responder's secret can rotate
# (the kernel's choice; wireguard-go waits the full 120 s and risks one useless mac2).
_COOKIE_USABLE_NS = (COOKIE_SECRET_MAX_AGE_S - COOKIE_SECRET_LATENCY_S) * _NS_PER_S


def _mac1_key(public_key: bytes) -> bytes:
    return crypto.blake2s(LABEL_MAC1, public_key)


def _cookie_key(public_key: bytes) -> bytes:
    return crypto.blake2s(LABEL_COOKIE, public_key)


def _mac1_offset(packet: bytes) -> int:
    return len(packet) - 2 * MESSAGE_MAC_LEN


def _mac2_offset(packet: bytes) -> int:
    return len(packet) - MESSAGE_MAC_LEN


def _compute_mac1(key: bytes, packet: bytes) -> bytes:
    return crypto.mac(key, packet[:_mac1_offset(packet)])


def _compute_mac2(cookie: bytes | bytearray, packet: bytes) -> bytes:
    return crypto.mac(cookie, packet[:_mac2_offset(packet)])


def _check_public_key(public_key: bytes) -> None:
    if len(public_key) != NOISE_PUBLIC_KEY_LEN:
        raise LocalProtocolError("a public key is 32 bytes")


class CookieChecker:
    """The responder side: checks mac1 and mac2 of handshake messages sent to us, and makes
    cookie replies. It needs our public key; without one every mac1 check fails."""

    def __init__(self, public_key: bytes | None = None, *, rng: Rng = crypto.random_bytes):
        self._rng = rng
        self._mac1_key: bytes | None = None
        self._cookie_key: bytes | None = None
        self._secret = bytearray(NOISE_HASH_LEN)
        self._secret_birth_ns: int | None = None  # None: make a secret on first use
        self.set_public_key(public_key)

    def set_public_key(self, public_key: bytes | None) -> None:
        if public_key is None:
            self._mac1_key = self._cookie_key = None
            return
        _check_public_key(public_key)
        self._mac1_key = _mac1_key(public_key)
        self._cookie_key = _cookie_key(public_key)

    def check_mac1(self, packet: bytes) -> bool:
        """Whether a handshake message (type 1 or 2, full size) carries our mac1."""
        if self._mac1_key is None:
            return False
        offset = _mac1_offset(packet)
        mac1 = packet[offset:offset + MESSAGE_MAC_LEN]
        return crypto.constant_time_eq(_compute_mac1(self._mac1_key, packet), mac1)

    def check_mac2(self, packet: bytes, source: Endpoint, now_ns: int) -> bool:
        """Whether a handshake message carries the mac2 of the cookie we give `source` now."""
        cookie = self._cookie(source, now_ns)
        try:
            expected = _compute_mac2(cookie, packet)
        finally:
            crypto.wipe(cookie)
        return crypto.constant_time_eq(expected, packet[_mac2_offset(packet):])

    def create_reply(self, packet: bytes, sender_index: int, source: Endpoint,
                     now_ns: int) -> bytes:
        """The cookie reply (64 bytes) for a handshake message whose mac1 was valid."""
        if self._cookie_key is None:
            raise LocalProtocolError("cookie replies need our public key")
        offset = _mac1_offset(packet)
        mac1 = packet[offset:offset + MESSAGE_MAC_LEN]
        nonce = self._rng(COOKIE_NONCE_LEN)
        cookie = self._cookie(source, now_ns)
        try:
            sealed = crypto.xaead_encrypt(self._cookie_key, nonce, cookie, mac1)
        finally:
            crypto.wipe(cookie)
        return MessageCookieReply(receiver=sender_index, nonce=nonce,
                                  encrypted_cookie=sealed).to_bytes()

    def _cookie(self, source: Endpoint, now_ns: int) -> bytearray:
        if self._secret_birth_ns is None or now_ns - self._secret_birth_ns >= _SECRET_MAX_AGE_NS:
            self._secret[:] = self._rng(NOISE_HASH_LEN)
            self._secret_birth_ns = now_ns
        return bytearray(crypto.mac(self._secret, source.to_bytes()))


class CookieGenerator:
    """The initiator side for one peer: puts mac1 and mac2 on the handshake messages we send it
    and takes the cookie from its replies."""

    def __init__(self, peer_public_key: bytes) -> None:
        _check_public_key(peer_public_key)
        self._mac1_key = _mac1_key(peer_public_key)
        self._cookie_key = _cookie_key(peer_public_key)
        self._cookie = bytearray(COOKIE_LEN)
        self._cookie_birth_ns: int | None = None
        self._last_mac1: bytes | None = None  # None: no handshake awaiting a cookie

    def add_macs(self, packet: bytes, now_ns: int) -> bytes:
        """A copy of a handshake message with its mac1 and, with a fresh cookie, its mac2."""
        body = packet[:_mac1_offset(packet)]
        mac1 = crypto.mac(self._mac1_key, body)
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
            self._cookie_key, reply.nonce, reply.encrypted_cookie, self._last_mac1))
        self._cookie[:] = cookie
        crypto.wipe(cookie)
        self._cookie_birth_ns = now_ns
        self._last_mac1 = None

    def wipe(self) -> None:
        crypto.wipe(self._cookie)
        self._cookie_birth_ns = None
        self._last_mac1 = None
