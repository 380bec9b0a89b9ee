"""Keys over time between two real devices: rekeying on age and on message count, keys
refused after REJECT_AFTER_TIME, and both sides starting a handshake at once.

Times are scaled (tests/scenario/pair.py): at the default scale REKEY_AFTER_TIME is 2.4 s,
REJECT_AFTER_TIME 3.6 s and REKEY_TIMEOUT 0.1 s.
"""

from __future__ import annotations

from tests.scenario.pair import S, a_to_b, b_to_a, pair, scaled


def test_rekey_on_age_loses_nothing() -> None:
    timing = scaled()
    with pair(timing) as p:
        p.connect()
        expected_a, expected_b = [], []
        seconds = 3 * timing.rekey_after_time_ns / S + 0.5
        for i in range(int(seconds / 0.02)):
            pa, pb = a_to_b(i.to_bytes(2, "big")), b_to_a(i.to_bytes(2, "big"), v6=True)
            expected_b.append(pa)
            expected_a.append(pb)
            p.a.send(pa)
            p.b.send(pb)
            p.run_for(0.02)
        assert p.wait(lambda: len(p.a.received) == len(expected_a)
                      and len(p.b.received) == len(expected_b))
        assert p.a.received == expected_a and p.b.received == expected_b
        # The initiator rekeys every REKEY_AFTER_TIME while it sends; the responder never
        # does on age, so that the two do not race.
        assert len(p.wire.sent("a>b", 1)) == 4
        assert not p.wire.sent("b>a", 1)
        for side in (p.a, p.b):
            assert side.stats().drop_replay == side.stats().drop_expired == 0


def test_rekey_after_messages() -> None:
    timing = scaled(rekey_after_messages=20, reject_after_messages=30)
    with pair(timing) as p:
        p.connect()
        expected = []
        for i in range(120):
            packet = a_to_b(i.to_bytes(2, "big"))
            expected.append(packet)
            p.a.send(packet)
            # Bursts of ten, with time for a handshake between them.
            p.run_for(0.001 if i % 10 else timing.rekey_timeout_ns / S)
        assert p.wait(lambda: len(p.b.received) == len(expected))
        assert p.b.received == expected
        assert len(p.wire.sent("a>b", 1)) >= 120 // 30
        # No keypair carried more than REJECT_AFTER_MESSAGES data messages.
        assert p.a.peer_info().current_send_counter <= 30


def test_data_under_an_expired_keypair_is_dropped() -> None:
    timing = scaled()
    with pair(timing) as p:
        p.connect()
        p.wire.hold.add("a>b")
        p.a.send(a_to_b(b"late"))
        assert p.wait(lambda: len(p.wire.held) == 1)
        birth = p.b.peer_info().current_birth_ns
        p.run_for((timing.reject_after_time_ns - (p.wire.held[0].time_ns - birth)) / S + 0.05)
        p.wire.release()
        assert p.wait(lambda: p.b.stats().drop_expired == 1)
        assert not p.b.received


def test_sending_after_reject_after_time_needs_a_new_handshake() -> None:
    timing = scaled()
    with pair(timing) as p:
        p.connect()
        p.run_for(timing.reject_after_time_ns / S + 0.1)
        assert len(p.wire.sent("a>b", 1)) == 1
        p.a.send(a_to_b(b"after"))
        assert p.wait(lambda: len(p.b.received) == 1)
        assert p.b.received == [a_to_b(b"after")]
        assert len(p.wire.sent("a>b", 1)) == 2
        # The packet waited for the new session: it went out after the new response.
        response = p.wire.sent("b>a", 2)[-1]
        assert p.wire.sent("a>b", 4)[-1].time_ns > response.time_ns


def test_both_sides_initiating_at_once() -> None:
    with pair() as p:
        p.a.send(a_to_b(b"from a"))
        p.b.send(b_to_a(b"from b"))
        assert p.wait(lambda: len(p.a.received) == 1 and len(p.b.received) == 1)
        assert p.b.received == [a_to_b(b"from a")]
        assert p.a.received == [b_to_a(b"from b")]
