"""The initiator's half of cookies (pywg/_protocol/cookie.py): mac1 and mac2 on what we send,
and cookie replies taken in. Replies are made here as the whitepaper defines them (5.4.7),
with pynacl's XChaCha20-Poly1305, independently of the responder's C code (csrc/cookie.c,
tested in tests/c/test_frontline.py and csrc/selftest/cookie.c)."""

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nacl.bindings import crypto_aead_xchacha20poly1305_ietf_encrypt

from pywg._protocol import crypto
from pywg._protocol.cookie import CookieGenerator
from pywg._protocol.errors import DropReason, RemoteProtocolError
from pywg._protocol.messages import MessageCookieReply, MessageInitiation

S = 1_000_000_000
RESPONDER_PUBLIC = crypto.public_key(crypto.generate_private_key())
COOKIE = bytes(range(16))


def _initiation(sender=7):
    return MessageInitiation(sender=sender, ephemeral=bytes(range(32)),
                             encrypted_static=bytes(48), encrypted_timestamp=bytes(28)).to_bytes()


def _reply(sent: bytes, cookie: bytes = COOKIE) -> MessageCookieReply:
    """What a responder under load answers to `sent`: the cookie, sealed to its mac1."""
    key = hashlib.blake2s(b"cookie--" + RESPONDER_PUBLIC).digest()
    nonce = bytes(24)
    sealed = crypto_aead_xchacha20poly1305_ietf_encrypt(cookie, sent[116:132], nonce, key)
    return MessageCookieReply(receiver=7, nonce=nonce, encrypted_cookie=sealed)


def test_mac1_is_keyed_by_the_receivers_public_key():
    packet = CookieGenerator(RESPONDER_PUBLIC).add_macs(_initiation(), 0)
    assert len(packet) == 148 and packet[-16:] == bytes(16)  # no cookie yet: no mac2
    key = hashlib.blake2s(b"mac1----" + RESPONDER_PUBLIC).digest()
    assert packet[116:132] == hashlib.blake2s(packet[:116], key=key, digest_size=16).digest()


def test_a_cookie_reply_gives_mac2():
    generator = CookieGenerator(RESPONDER_PUBLIC)
    generator.consume_reply(_reply(generator.add_macs(_initiation(), S)), S)
    packet = generator.add_macs(_initiation(), 2 * S)
    assert packet[132:] == hashlib.blake2s(packet[:132], key=COOKIE, digest_size=16).digest()


def test_a_cookie_is_used_until_shortly_before_the_responders_secret_can_change():
    generator = CookieGenerator(RESPONDER_PUBLIC)
    generator.consume_reply(_reply(generator.add_macs(_initiation(), 0)), 0)
    # The responder's secret may change 120 s after it made the cookie: stop at 115 s.
    assert generator.add_macs(_initiation(), 115 * S - 1)[-16:] != bytes(16)
    assert generator.add_macs(_initiation(), 115 * S)[-16:] == bytes(16)


def test_a_reply_is_only_good_for_the_message_that_caused_it():
    generator = CookieGenerator(RESPONDER_PUBLIC)
    reply = _reply(generator.add_macs(_initiation(1), 0))
    generator.add_macs(_initiation(2), 0)  # a newer message: a different mac1
    with pytest.raises(RemoteProtocolError) as e:
        generator.consume_reply(reply, 0)
    assert e.value.reason is DropReason.DECRYPT_FAILED


def test_a_reply_is_taken_once_and_only_after_sending():
    sent = CookieGenerator(RESPONDER_PUBLIC).add_macs(_initiation(), 0)
    generator = CookieGenerator(RESPONDER_PUBLIC)
    with pytest.raises(RemoteProtocolError) as e:
        generator.consume_reply(_reply(sent), 0)  # this generator never sent anything
    assert e.value.reason is DropReason.UNEXPECTED_COOKIE
    reply = _reply(generator.add_macs(_initiation(), 0))
    generator.consume_reply(reply, 0)
    with pytest.raises(RemoteProtocolError) as e:
        generator.consume_reply(reply, 0)
    assert e.value.reason is DropReason.UNEXPECTED_COOKIE


@settings(max_examples=200)
@given(st.binary(min_size=24, max_size=24), st.binary(min_size=32, max_size=32),
       st.integers(0, 2**32 - 1))
def test_arbitrary_replies_are_typed_errors(nonce, sealed, receiver):
    generator = CookieGenerator(RESPONDER_PUBLIC)
    generator.add_macs(_initiation(), 0)
    with pytest.raises(RemoteProtocolError):
        generator.consume_reply(MessageCookieReply(receiver, nonce, sealed), 0)
