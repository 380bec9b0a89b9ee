"""mac1, mac2 and cookie replies, each side on its own (handshake tests run them together)."""

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pywg._protocol import crypto
from pywg._protocol.cookie import CookieChecker, CookieGenerator
from pywg._protocol.endpoint import Endpoint
from pywg._protocol.errors import DropReason, RemoteProtocolError
from pywg._protocol.messages import MessageCookieReply, MessageInitiation

S = 1_000_000_000
RESPONDER_PUBLIC = crypto.public_key(crypto.generate_private_key())
SOURCE = Endpoint(ipaddress.ip_address("192.0.2.1"), 51820)


def _initiation(sender=7):
    return MessageInitiation(sender=sender, ephemeral=bytes(range(32)),
                             encrypted_static=bytes(48), encrypted_timestamp=bytes(28)).to_bytes()


def _sides():
    return CookieChecker(RESPONDER_PUBLIC), CookieGenerator(RESPONDER_PUBLIC)


def test_mac1_is_keyed_by_the_receivers_public_key():
    checker, generator = _sides()
    packet = generator.add_macs(_initiation(), 0)
    assert len(packet) == 148 and packet[-16:] == bytes(16)  # no cookie yet: no mac2
    expected = crypto.mac(crypto.blake2s(b"mac1----", RESPONDER_PUBLIC), packet[:116])
    assert packet[116:132] == expected
    assert checker.check_mac1(packet)
    other = CookieChecker(crypto.public_key(crypto.generate_private_key()))
    assert not other.check_mac1(packet)
    assert not CookieChecker(None).check_mac1(packet)
    for i in (0, 60, 116, 131):
        forged = bytearray(packet)
        forged[i] ^= 1
        assert not checker.check_mac1(bytes(forged))


def _cookie_round(checker, generator, now, source=SOURCE):
    packet = generator.add_macs(_initiation(), now)
    reply = checker.create_reply(packet, 7, source, now)
    assert len(reply) == 64
    message = MessageCookieReply.from_bytes(reply)
    assert message.receiver == 7
    generator.consume_reply(message, now)
    return generator.add_macs(_initiation(), now)


def test_cookie_reply_gives_a_valid_mac2():
    checker, generator = _sides()
    assert not checker.check_mac2(generator.add_macs(_initiation(), 0), SOURCE, 0)
    packet = _cookie_round(checker, generator, S)
    assert packet[-16:] != bytes(16)
    assert checker.check_mac2(packet, SOURCE, 2 * S)
    other_source = Endpoint(SOURCE.ip, SOURCE.port + 1)
    assert not checker.check_mac2(packet, other_source, 2 * S)  # the cookie names ip AND port


def test_cookie_expires_on_both_sides():
    checker, generator = _sides()
    _cookie_round(checker, generator, 0)
    # The initiator stops attaching mac2 after 120 - 5 s ...
    assert generator.add_macs(_initiation(), 115 * S - 1)[-16:] != bytes(16)
    assert generator.add_macs(_initiation(), 115 * S)[-16:] == bytes(16)
    # ... and the responder's secret (made at 0) rotates at 120 s, invalidating old cookies.
    packet = _cookie_round(checker, generator, 10 * S)
    assert checker.check_mac2(packet, SOURCE, 120 * S - 1)
    assert not checker.check_mac2(packet, SOURCE, 120 * S)
    assert checker.check_mac2(_cookie_round(checker, generator, 121 * S), SOURCE, 121 * S)


def test_a_reply_is_only_good_for_the_message_that_caused_it():
    checker, generator = _sides()
    first = generator.add_macs(_initiation(1), 0)
    reply = MessageCookieReply.from_bytes(checker.create_reply(first, 1, SOURCE, 0))
    generator.add_macs(_initiation(2), 0)  # a newer message: a different mac1
    with pytest.raises(RemoteProtocolError) as e:
        generator.consume_reply(reply, 0)
    assert e.value.reason is DropReason.DECRYPT_FAILED


def test_a_reply_is_taken_once_and_only_after_sending():
    checker, generator = _sides()
    packet = CookieGenerator(RESPONDER_PUBLIC).add_macs(_initiation(), 0)
    reply = MessageCookieReply.from_bytes(checker.create_reply(packet, 7, SOURCE, 0))
    with pytest.raises(RemoteProtocolError) as e:
        generator.consume_reply(reply, 0)  # this generator never sent anything
    assert e.value.reason is DropReason.UNEXPECTED_COOKIE
    sent = generator.add_macs(_initiation(), 0)
    reply = MessageCookieReply.from_bytes(checker.create_reply(sent, 7, SOURCE, 0))
    generator.consume_reply(reply, 0)
    with pytest.raises(RemoteProtocolError) as e:
        generator.consume_reply(reply, 0)
    assert e.value.reason is DropReason.UNEXPECTED_COOKIE


def test_reply_uses_the_injected_rng_for_its_nonce():
    checker = CookieChecker(RESPONDER_PUBLIC, rng=lambda n: b"\x5a" * n)
    packet = CookieGenerator(RESPONDER_PUBLIC).add_macs(_initiation(), 0)
    assert checker.create_reply(packet, 7, SOURCE, 0)[8:32] == b"\x5a" * 24


@settings(max_examples=200)
@given(st.binary(min_size=24, max_size=24), st.binary(min_size=32, max_size=32),
       st.integers(0, 2**32 - 1))
def test_arbitrary_replies_are_typed_errors(nonce, sealed, receiver):
    _, generator = _sides()
    generator.add_macs(_initiation(), 0)
    with pytest.raises(RemoteProtocolError):
        generator.consume_reply(MessageCookieReply(receiver, nonce, sealed), 0)
