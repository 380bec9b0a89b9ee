"""The five timers between two real devices: handshake retries and giving up, staged
packets, the passive keepalive, the new-handshake timer and the persistent keepalive,
and the erasure of key material.

Expectations are the whitepaper's counts and intervals, at the scale of pair.py: one
initiation and 19 retries REKEY_TIMEOUT apart (plus up to a third of a second of jitter,
scaled), a keepalive KEEPALIVE_TIMEOUT after unanswered data, keys gone 3 x
REJECT_AFTER_TIME after the last session. Intervals are checked with a tolerance for a
loaded machine; counts and order exactly.
"""

from __future__ import annotations

import contextlib
import itertools
import socket

from pywg._tools import keys
from tests.scenario.pair import S, a_to_b, b_to_a, pair, scaled

SLACK_NS = 60_000_000  # scheduling on a busy 2-core machine
EARLY_NS = 5_000_000  # the wire sees datagrams when it reads them, not when they were sent


def test_retries_then_gives_up_when_the_peer_is_gone() -> None:
    timing = scaled()
    with pair(timing) as p:
        p.wire.drop["a>b"] = lambda d: True
        p.a.send(a_to_b(b"lost"))
        attempts = timing.max_timer_handshakes + 2
        assert p.wait(lambda: p.a.stats().drop_staged_cleared == 1,
                      timeout=attempts * 2 * timing.rekey_timeout_ns / S + 5)
        initiations = p.wire.sent("a>b", 1)
        assert len(initiations) == attempts == 20
        for x, y in itertools.pairwise(initiations):
            gap = y.time_ns - x.time_ns
            assert timing.rekey_timeout_ns - EARLY_NS <= gap
            assert gap < timing.rekey_timeout_ns + timing.rekey_timeout_jitter_ns + SLACK_NS
        # Nothing more is tried until there is traffic again.
        p.run_for(5 * timing.rekey_timeout_ns / S)
        assert len(p.wire.sent("a>b", 1)) == 20


def test_staged_packets_are_bounded_and_the_oldest_go() -> None:
    with pair() as p:
        p.wire.hold.add("a>b")
        packets = [a_to_b(i.to_bytes(2, "big")) for i in range(200)]
        for packet in packets:
            p.a.send(packet)
        assert p.wait(lambda: p.a.stats().drop_staged_overflow == 72)
        assert p.a.peer_info().staged == 128
        p.wire.release()
        assert p.wait(lambda: len(p.b.received) == 128)
        assert p.b.received == packets[72:]


def test_keys_are_erased_three_reject_times_after_the_last_session() -> None:
    timing = scaled(0.01)  # REJECT_AFTER_TIME 1.8 s: the erasure comes after 5.4 s
    with pair(timing) as p:
        p.connect()
        session = p.wire.sent("b>a", 2)[-1].time_ns
        assert p.a.peer_info().current_index is not None
        p.run_for(3 * timing.reject_after_time_ns / S - 0.5)
        assert p.a.peer_info().current_index is not None
        assert p.wait(lambda: p.a.peer_info().current_index is None
                      and p.b.peer_info().current_index is None, timeout=3)
        erased = p.wire.log[-1].time_ns
        assert erased - session < 3 * timing.reject_after_time_ns + SLACK_NS * 10
        # A fresh handshake works afterwards.
        p.a.send(a_to_b(b"again"))
        assert p.wait(lambda: len(p.b.received) == 1)


def test_passive_keepalive_answers_unanswered_data() -> None:
    timing = scaled()
    with pair(timing) as p:
        p.connect()  # b's "hello back" is the last packet: a owes an answer
        first = p.wire.sent("b>a", 4)[-1]
        p.run_for(timing.keepalive_timeout_ns / S / 2)
        p.b.send(b_to_a(b"a second word"))  # does not push the keepalive back
        p.run_for(3 * timing.keepalive_timeout_ns / S)
        keepalives = p.wire.sent("a>b", 4, size=32)
        assert len(keepalives) == 1
        delay = keepalives[0].time_ns - first.time_ns
        assert -EARLY_NS <= delay - timing.keepalive_timeout_ns < SLACK_NS
        assert p.a.received == [b_to_a(b"a second word")]  # the keepalive adds nothing
        assert p.b.stats().keepalives_rx == 1
        assert len(p.wire.sent("b>a", 1)) == 0  # b heard back in time: no new handshake


def test_new_handshake_when_data_goes_unanswered() -> None:
    timing = scaled()
    with pair(timing) as p:
        p.connect()
        p.run_for(2 * timing.keepalive_timeout_ns / S)  # a's keepalive pays b's last packet
        p.wire.drop["a>b"] = lambda d: d.type == 4  # b never hears a's data
        before = len(p.wire.sent("a>b", 4))
        p.a.send(a_to_b(b"anyone?"))
        budget = (timing.new_handshake_ns + timing.rekey_timeout_jitter_ns) / S
        assert p.wait(lambda: len(p.wire.sent("a>b", 1)) == 2, timeout=budget + 2)
        sent_at = p.wire.sent("a>b", 4)[before].time_ns
        delay = p.wire.sent("a>b", 1)[-1].time_ns - sent_at
        assert timing.new_handshake_ns - EARLY_NS <= delay
        assert delay < timing.new_handshake_ns + timing.rekey_timeout_jitter_ns + SLACK_NS


def test_persistent_keepalive() -> None:
    timing = scaled(0.05)  # no rekey (at 6 s) inside the window: it would add a keepalive
    with pair(timing, keepalive={"a": 1}) as p:
        # Turning it on sent a keepalive, which needed (and got) a handshake.
        assert p.wait(lambda: p.b.stats().keepalives_rx >= 1)
        p.run_for(4.5)
        keepalives = p.wire.sent("a>b", 4, size=32)
        gaps = [y.time_ns - x.time_ns for x, y in itertools.pairwise(keepalives)]
        assert len(keepalives) == 5
        assert all(S - EARLY_NS <= gap < S + SLACK_NS for gap in gaps)
        assert not p.wire.sent("b>a", 4, size=32)  # b has none configured and owes none


def test_no_initiation_is_made_for_a_peer_without_an_endpoint() -> None:
    timing = scaled()
    stranger = keys.public_key(keys.generate_private_key())
    with pair(timing) as p, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink:
        sink.bind(("127.0.0.1", 0))
        sink.settimeout(0.05)
        p.a.set(f"public_key={stranger.hex()}\npersistent_keepalive_interval=1")
        peer = p.a.device._peers[stranger]
        # Turning the keepalive on asked for a handshake; the timers retry as usual...
        assert p.wait(lambda: peer.timers.handshake_attempts >= 2,
                      timeout=4 * timing.rekey_timeout_ns / S + 5)
        # ...but with nowhere to send it, no message was made (none went to b either).
        assert p.a.device.counters.initiations_sent == 0
        assert not p.wire.sent("a>b", 1)
        # Once it has an endpoint, the next retry goes out: a real initiation.
        p.a.set(f"public_key={stranger.hex()}\nendpoint=127.0.0.1:{sink.getsockname()[1]}")
        got: list[bytes] = []

        def initiation() -> bool:
            with contextlib.suppress(TimeoutError):
                got.append(sink.recv(2048))
            return bool(got)

        assert p.wait(initiation, timeout=4 * timing.rekey_timeout_ns / S + 5)
        assert got[0][0] == 1 and len(got[0]) == 148
        assert p.a.device.counters.initiations_sent >= 1
