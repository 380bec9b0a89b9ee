"""Endpoints and peers changing under a live session: roaming, IPv6 outer addresses, a
peer removed and added again, and a private key changed; peers that cost no X25519 until
their first handshake."""

from __future__ import annotations

import os

from tests.scenario.pair import a_to_b, b_to_a, endpoint_of, pair
from tests.support.packets import ipv4


def test_roaming_follows_the_latest_authenticated_packet() -> None:
    with pair() as p:
        p.connect()
        before = endpoint_of(p.b.device)
        p.wire.attach("b")  # a's packets now reach b from a new address
        p.a.send(a_to_b(b"moved"))
        assert p.wait(lambda: len(p.b.received) == 1)
        assert p.wait(lambda: endpoint_of(p.b.device) == p.wire.address("b"))
        assert endpoint_of(p.b.device) != before
        p.b.send(b_to_a(b"found you"))  # goes to a through the new address
        assert p.wait(lambda: len(p.a.received) == 1)
        assert p.a.received == [b_to_a(b"found you")]


def test_a_session_over_ipv6_outer_addresses() -> None:
    with pair(outer="::1") as p:
        p.connect()
        p.a.send(a_to_b(b"v6 outside", v6=True))
        assert p.wait(lambda: len(p.b.received) == 1)
        assert endpoint_of(p.b.device).startswith("[::1]:")


def test_a_removed_peer_gets_nothing_and_comes_back_when_added() -> None:
    with pair() as p:
        p.connect()
        b_key = p.b.public_key.hex()
        p.a.set(f"public_key={b_key}\nremove=true")
        assert not p.a.device._peers
        # Nothing routes to b any more: refused at a's TUN, with an ICMP error.
        p.a.send(a_to_b(b"to nobody"))
        assert p.wait(lambda: p.a.stats().drop_no_peer == 1)
        # b's packets under the old session meet an index a no longer knows.
        p.b.send(b_to_a(b"hello?"))
        assert p.wait(lambda: p.a.stats().drop_unknown_index == 1)
        assert all(packet[9] == 1 for packet in p.a.received)  # only the ICMP error
        p.a.set(f"""
            public_key={b_key}
            endpoint={p.wire.address("a")}
            allowed_ip={p.b.inner[0]}/32
        """)
        p.a.received.clear()
        p.a.send(a_to_b(b"welcome back"))
        assert p.wait(lambda: len(p.b.received) == 1)
        assert p.b.received == [a_to_b(b"welcome back")]


def test_a_new_private_key_drops_the_session_and_a_new_handshake_needs_the_new_key() -> None:
    with pair() as p:
        p.connect()
        old_public = p.a.public_key
        p.a.private_key = bytes(reversed(p.a.private_key))
        p.a.set(f"private_key={p.a.private_key.hex()}")
        assert p.a.peer_info().current_index is None  # the keys are gone at once
        p.a.send(a_to_b(b"who am I"))
        # b still knows a by its old public key: the new initiation is not for any peer.
        assert p.wait(lambda: p.b.device.drops["UNKNOWN_PEER"] >= 1)
        p.b.set(f"public_key={old_public.hex()}\nremove=true")
        p.b.set(f"""
            public_key={p.a.public_key.hex()}
            allowed_ip={p.a.inner[0]}/32
        """)
        assert p.wait(lambda: len(p.b.received) == 1, timeout=5)
        assert p.b.received == [a_to_b(b"who am I")]


def test_cryptokey_routing_picks_the_longest_prefix() -> None:
    with pair() as p:
        p.connect()
        # b may also use 10.0.9.0/24 but not 10.0.9.7, which a gives to no one.
        p.a.set(f"public_key={p.b.public_key.hex()}\nupdate_only=true\n"
                "allowed_ip=10.0.9.0/24")
        p.b.send(ipv4("10.0.9.5", p.a.inner[0], b"inside"))
        assert p.wait(lambda: len(p.a.received) == 1)
        p.a.send(ipv4(p.a.inner[0], "10.0.9.5", b"back inside"))
        assert p.wait(lambda: len(p.b.received) == 1)
        assert p.b.received == [ipv4(p.a.inner[0], "10.0.9.5", b"back inside")]


def test_peers_cost_no_x25519_until_their_first_handshake() -> None:
    """Adding peers does no X25519 (the static-static secret waits for a peer's first
    handshake), so a configuration of many peers is quick; the handshake computes it."""
    with pair() as p:
        p.a.set("".join(f"public_key={os.urandom(32).hex()}\n" for _ in range(500)))
        device = p.a.device
        identity = device.core.identity
        assert identity is not None and len(device._peers) == 501
        assert all(peer.handshake.static_static(identity) is None
                   for peer in device._peers.values())
        p.a.send(a_to_b())
        assert p.wait(lambda: len(p.b.received) == 1)
        computed = [peer.public_key for peer in device._peers.values()
                    if peer.handshake.static_static(identity) is not None]
        assert computed == [p.b.public_key]
