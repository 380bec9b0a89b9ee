"""The handshake front line in the data plane's receive thread (csrc/cookie.c,
csrc/ratelimiter.c, receive.c): real datagrams from a socket, and what comes up to Python,
what comes back on the wire and what is counted.

Messages, macs and cookies are made here from the whitepaper's definitions (5.4.4, 5.4.7)
with hashlib and pynacl, independently of the C: mac1 = BLAKE2s-128(key = BLAKE2s("mac1----"
|| receiver's public key), message up to mac1); mac2 = BLAKE2s-128(key = cookie, message up
to mac2); a cookie reply seals the cookie with XChaCha20-Poly1305 under BLAKE2s("cookie--" ||
responder's public key), with the message's mac1 as associated data.
"""

from __future__ import annotations

import hashlib
import os
import struct

import pytest
from nacl.bindings import crypto_aead_xchacha20poly1305_ietf_decrypt

from pywg._driver.datapath import EventType
from tests.c.dpnet import Node, PyPeer, node, wait_for
from tests.harness import netns
from tests.harness.skips import require_root

PUBLIC = os.urandom(32)  # the data plane's public key: only its hash matters here


@pytest.fixture(scope="module")
def ns():
    require_root()
    with netns.namespace("pfl") as name:
        yield name


@pytest.fixture
def side(ns):
    """A data plane with an event ring of 16 (under load from 2 queued handshake messages)
    that knows its public key, and a sender."""
    n = node(ns, event_ring_size=16)
    sender = PyPeer(ns)
    n.dp.set_public_key(PUBLIC)
    n.dp.start()
    try:
        yield n, sender
    finally:
        n.close()
        sender.close()


def mac(key: bytes, data: bytes) -> bytes:
    return hashlib.blake2s(data, key=key, digest_size=16).digest()


def initiation(sender_index: int, cookie: bytes | None = None, public: bytes = PUBLIC) -> bytes:
    body = struct.pack("<II", 1, sender_index) + os.urandom(108)
    body += mac(hashlib.blake2s(b"mac1----" + public).digest(), body)
    return body + (mac(cookie, body) if cookie else bytes(16))


def open_cookie(reply: bytes, sent: bytes) -> bytes:
    """The cookie in a reply to `sent`; raises if it was not sealed for that message."""
    assert len(reply) == 64 and reply[:4] == b"\x03\0\0\0"
    key = hashlib.blake2s(b"cookie--" + PUBLIC).digest()
    return crypto_aead_xchacha20poly1305_ietf_decrypt(reply[32:], sent[116:132], reply[8:32], key)


def handshakes_up(n: Node) -> list[bytes]:
    return [e.data for e in n.dp.read_events() if e.type is EventType.HANDSHAKE]


def settle(n: Node, field: str, value: int) -> bool:
    return wait_for(lambda: getattr(n.dp.stats(), field) >= value)


def test_mac1_is_checked_before_anything_goes_up(side) -> None:
    n, sender = side
    good = initiation(1)
    bad = bytearray(initiation(2))
    bad[120] ^= 1
    other_key = initiation(3, public=os.urandom(32))
    for message in (bytes(bad), other_key, good):
        sender.send(message, n.endpoint())
    assert settle(n, "handshakes_rx", 1)
    assert n.dp.stats().drop_handshake_mac == 2
    assert handshakes_up(n) == [good]


def test_without_our_key_nothing_passes(side) -> None:
    n, sender = side
    n.dp.set_public_key(None)
    sender.send(initiation(1), n.endpoint())
    assert settle(n, "drop_handshake_mac", 1)
    assert n.dp.stats().handshakes_rx == 0


def test_under_load_a_cookie_reply_then_mac2_passes(side) -> None:
    n, sender = side
    for i in range(2):  # two waiting messages: an eighth of the ring
        sender.send(initiation(10 + i), n.endpoint())
    assert settle(n, "handshakes_rx", 2)
    first = initiation(77)
    sender.send(first, n.endpoint())
    cookie = open_cookie(sender.receive(), first)
    stats = n.dp.stats()
    assert stats.handshake_cookies_tx == 1 and stats.handshakes_rx == 2
    assert stats.handshake_under_load == 1
    handshakes_up(n)  # Python drains the queue; under load holds for a second
    retry = initiation(78, cookie)
    sender.send(retry, n.endpoint())
    assert settle(n, "handshakes_rx", 3)
    assert handshakes_up(n) == [retry]
    # A wrong mac2 is another cookie reply, never a message for Python.
    wrong = bytearray(initiation(79, cookie))
    wrong[-1] ^= 1
    sender.send(bytes(wrong), n.endpoint())
    open_cookie(sender.receive(), bytes(wrong))
    assert n.dp.stats().handshakes_rx == 3


def test_the_cookie_names_address_and_port(side, ns) -> None:
    n, sender = side
    for i in range(2):
        sender.send(initiation(10 + i), n.endpoint())
    assert settle(n, "handshakes_rx", 2)
    first = initiation(5)
    sender.send(first, n.endpoint())
    cookie = open_cookie(sender.receive(), first)
    other = PyPeer(ns)  # same address, another port
    try:
        moved = initiation(6, cookie)
        other.send(moved, n.endpoint())
        open_cookie(other.receive(), moved)  # a fresh cookie for the new port instead
    finally:
        other.close()
    assert n.dp.stats().handshakes_rx == 2


def test_under_load_each_source_gets_a_burst_of_five(side) -> None:
    n, sender = side
    for i in range(2):
        sender.send(initiation(10 + i), n.endpoint())
    assert settle(n, "handshakes_rx", 2)
    handshakes_up(n)
    first = initiation(5)
    sender.send(first, n.endpoint())
    cookie = open_cookie(sender.receive(), first)
    handshakes_up(n)
    for i in range(10):
        sender.send(initiation(100 + i, cookie), n.endpoint())
    assert settle(n, "drop_handshake_ratelimit", 5)
    stats = n.dp.stats()
    assert stats.handshakes_rx == 2 + 5 and stats.drop_handshake_ratelimit == 5


def test_responses_meet_mac1_too(side) -> None:
    n, sender = side
    n.dp.add_peer(3)
    index = n.dp.new_index(3)
    body = struct.pack("<III", 2, 9, index) + os.urandom(48)
    good = body + mac(hashlib.blake2s(b"mac1----" + PUBLIC).digest(), body) + bytes(16)
    bad = body + bytes(32)
    sender.send(bad, n.endpoint())
    sender.send(good, n.endpoint())
    assert settle(n, "handshakes_rx", 1)
    assert n.dp.stats().drop_handshake_mac == 1
    assert handshakes_up(n) == [good]


def test_a_full_queue_drops_the_newest(side, ns) -> None:
    """Cookie-valid messages from several sources, five each (their bursts), overfill the
    14 places a 16-slot ring gives handshake messages: the newest are dropped and counted,
    and what is queued is still there for Python."""
    n, sender = side
    for i in range(2):
        sender.send(initiation(10 + i), n.endpoint())
    assert settle(n, "handshakes_rx", 2)
    sources = []
    try:
        for k in range(4):
            source = PyPeer(ns, bind=f"127.0.0.{2 + k}")
            sources.append(source)
            first = initiation(20 + k)
            source.send(first, n.endpoint())
            cookie = open_cookie(source.receive(), first)
            for i in range(5):
                source.send(initiation(100 * k + i, cookie), n.endpoint())
        assert settle(n, "drop_event_overflow", 2 + 20 - 14)
        stats = n.dp.stats()
        assert stats.handshakes_rx == 14 and stats.drop_event_overflow == 8
        assert len(handshakes_up(n)) == 14
    finally:
        for source in sources:
            source.close()


def test_cookie_replies_are_rate_limited_per_source(side) -> None:
    """One address gets a burst of five cookie replies, then twenty a second: a flood from
    it costs no send per message; the refused ones are counted, not answered."""
    n, sender = side
    for i in range(2):
        sender.send(initiation(10 + i), n.endpoint())
    assert settle(n, "handshakes_rx", 2)
    for i in range(40):
        sender.send(initiation(200 + i), n.endpoint())
    assert settle(n, "udp_rx_packets", 42)
    assert wait_for(lambda: n.dp.stats().drop_handshake_ratelimit >= 40 - 6)
    stats = n.dp.stats()
    assert 5 <= stats.handshake_cookies_tx <= 6  # the burst, and at most one refilled
    assert stats.handshake_cookies_tx + stats.drop_handshake_ratelimit == 40
