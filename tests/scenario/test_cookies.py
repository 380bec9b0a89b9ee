"""Under load, a device answers initiations with cookie replies, and a real peer's next
initiation, carrying mac2, gets through.

The load is a flood of initiations from another socket that carry a valid mac1 (anyone who
knows the responder's public key can make one) and garbage elsewhere: each costs the
responder a mac1 check, and all of them together put it under load. mac1 is computed here
from the whitepaper's definition, independently of pywg's cookie code:
mac1 = BLAKE2s-128(key = BLAKE2s-256("mac1----" || responder's public key), msg[:116]).
"""

from __future__ import annotations

import hashlib
import os
import socket

from tests.scenario.pair import a_to_b, pair

FLOOD = 6000


def with_mac1(body: bytes, responder: bytes) -> bytes:
    key = hashlib.blake2s(b"mac1----" + responder).digest()
    return body + hashlib.blake2s(body, key=key, digest_size=16).digest() + bytes(16)


def flood_initiations(responder: bytes, n: int) -> list[bytes]:
    return [with_mac1(b"\x01\0\0\0" + os.urandom(112), responder) for _ in range(n)]


def test_under_load_a_cookie_reply_then_mac2_gets_through() -> None:
    with pair() as p:
        flood = flood_initiations(p.b.public_key, FLOOD)
        port = p.wire.ports["b"]
        p.wire.hold.add("a>b")
        p.a.send(a_to_b(b"busy?"))
        assert p.wait(lambda: len(p.wire.held) == 1)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as attacker:
            attacker.setblocking(False)
            for i, message in enumerate(flood):
                if i == FLOOD // 2:
                    p.wire.release()  # a's initiation arrives in the middle of the flood
                try:
                    attacker.sendto(message, ("127.0.0.1", port))
                except BlockingIOError:
                    p.run_for(0.001)
            # b answered the mac2-less initiation with a 64-byte cookie reply, no response.
            assert p.wait(lambda: bool(p.wire.sent("b>a", 3)))
            assert len(p.wire.sent("b>a", 3)[0].data) == 64
            assert p.wait(lambda: len(p.b.received) == 1, timeout=5)
        assert p.b.received == [a_to_b(b"busy?")]
        initiations = p.wire.sent("a>b", 1)
        assert initiations[0].data[-16:] == bytes(16)  # the first had no cookie yet
        assert initiations[-1].data[-16:] != bytes(16)  # the one that passed carried mac2
        assert p.b.stats().drop_handshake_mac == 0  # the flood's mac1 were all valid
