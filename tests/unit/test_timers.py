"""The timer rules of the whitepaper (section 6) and the kernel's timers.c, on a fake clock.

Each test drives one rule through `evaluate` with hand-made facts: the numbers expected are
the protocol's (REKEY_TIMEOUT 5 s, KEEPALIVE_TIMEOUT 10 s, REKEY_AFTER_TIME 120 s,
REJECT_AFTER_TIME 180 s, 20 initiations before giving up), written out as the spec states
them rather than read back from the code under test.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pywg._protocol import timers
from pywg._protocol.timers import Decision, PeerFacts, TimerAction, TimerState, Timing

S = 1_000_000_000
MS = 1_000_000
T0 = 1_000 * S  # CLOCK_MONOTONIC is far from 0 on a running system; 0 means "never"
JITTER_BOUND = 334 * MS  # wireguard-go: rand(334) ms, kernel: HZ/3 jiffies

INIT = TimerAction.SEND_INITIATION
KEEPALIVE = TimerAction.SEND_KEEPALIVE
CLEAR_SRC = TimerAction.CLEAR_ENDPOINT_SOURCE
FLUSH = TimerAction.FLUSH_STAGED
ZERO = TimerAction.ZERO_KEY_MATERIAL


class RecordingRng:
    """Returns a fixed fraction of the bound and remembers every bound asked for."""

    def __init__(self, fraction: float = 0.5) -> None:
        self.fraction = fraction
        self.bounds: list[int] = []

    def __call__(self, bound: int) -> int:
        self.bounds.append(bound)
        return min(bound - 1, int(bound * self.fraction))


# ---- what the data plane records (csrc/peer.c), as far as these tests need it ---------------


def data_sent(facts: PeerFacts, now: int) -> None:
    facts.last_tx_data_ns = now
    facts.first_tx_data_since_rx_ns = facts.first_tx_data_since_rx_ns or now


def data_received(facts: PeerFacts, now: int) -> None:
    facts.last_rx_data_ns = now
    facts.first_rx_data_since_tx_ns = facts.first_rx_data_since_tx_ns or now


def any_authenticated_packet_sent(facts: PeerFacts, now: int) -> None:
    facts.last_tx_auth_ns = now
    facts.first_rx_data_since_tx_ns = 0


def any_authenticated_packet_received(facts: PeerFacts, now: int) -> None:
    facts.last_rx_auth_ns = now
    facts.first_tx_data_since_rx_ns = 0


def new_state(rng: timers.RandBelow | None = None, timing: Timing | None = None) -> TimerState:
    return TimerState(timing=timing or Timing(), rng=rng or RecordingRng())


def test_default_timing_is_the_protocols() -> None:
    t = Timing()
    assert t.rekey_after_time_ns == 120 * S
    assert t.reject_after_time_ns == 180 * S
    assert t.rekey_timeout_ns == 5 * S
    assert t.rekey_timeout_jitter_ns == JITTER_BOUND
    assert t.keepalive_timeout_ns == 10 * S
    assert t.zero_key_material_ns == 540 * S
    assert t.max_timer_handshakes == 18  # REKEY_ATTEMPT_TIME / REKEY_TIMEOUT = 90 / 5
    assert t.rekey_after_messages == 2**60
    assert t.reject_after_messages == 2**64 - 2**13 - 1
    assert t.new_handshake_ns == 15 * S
    assert t.last_minute_rekey_ns == 165 * S


def test_scaled_timing_shortens_durations_only() -> None:
    t = Timing().scaled(0.01)
    assert t.rekey_after_time_ns == 1_200 * MS
    assert t.rekey_timeout_ns == 50 * MS
    assert t.keepalive_timeout_ns == 100 * MS
    assert t.zero_key_material_ns == 5_400 * MS
    assert t.max_timer_handshakes == 18
    assert t.reject_after_messages == 2**64 - 2**13 - 1


def test_idle_peer_has_nothing_to_do() -> None:
    assert timers.evaluate(new_state(), PeerFacts(), T0) == Decision((), None)


# ---- sending initiations and retrying them -------------------------------------------------


def test_request_sends_one_initiation_at_most_every_rekey_timeout() -> None:
    state, facts = new_state(), PeerFacts()
    timers.request_handshake(state)
    assert timers.evaluate(state, facts, T0).actions == (INIT,)
    timers.request_handshake(state)
    assert timers.evaluate(state, facts, T0 + 5 * S - 1).actions == ()  # dropped, not deferred
    timers.handshake_complete(state, T0 + 5 * S - 1)  # so the retransmission does not interfere
    assert timers.evaluate(state, facts, T0 + 5 * S).actions == ()
    timers.request_handshake(state)
    assert timers.evaluate(state, facts, T0 + 5 * S).actions == (INIT,)


def test_a_request_right_after_a_completed_handshake_waits_for_the_window() -> None:
    # The data plane asks once per staging episode: a request dropped here, with no
    # retransmission to cover it, would leave a lone staged packet waiting for ever.
    state, facts = new_state(), PeerFacts()
    timers.request_handshake(state)
    assert timers.evaluate(state, facts, T0).actions == (INIT,)
    timers.handshake_complete(state, T0 + S)
    timers.request_handshake(state)  # say, the keys were zeroed and a packet was staged
    decision = timers.evaluate(state, facts, T0 + 2 * S)
    assert decision == Decision((), T0 + 5 * S)
    assert timers.evaluate(state, facts, T0 + 5 * S).actions == (INIT,)
    assert timers.evaluate(state, facts, T0 + 5 * S + 1).actions == ()


def test_staged_packets_ask_for_the_handshake_an_event_did_not() -> None:
    # The data plane's NEED_HANDSHAKE can be lost to a full event ring; the staged count
    # it reports as a fact asks instead, once, without resetting a retry cycle under way.
    state = new_state()
    facts = PeerFacts(staged=1)
    assert timers.evaluate(state, facts, T0).actions == (INIT,)
    attempts = state.handshake_attempts
    retransmit = state.retransmit_at_ns
    assert retransmit is not None
    assert timers.evaluate(state, facts, T0 + S).actions == ()
    assert timers.evaluate(state, facts, retransmit).actions == (CLEAR_SRC, INIT)
    assert state.handshake_attempts == attempts + 1
    # Given up and flushed: nothing is staged and nothing more is asked.
    timers.handshake_complete(state, T0 + 10 * S)
    assert timers.evaluate(state, PeerFacts(), T0 + 20 * S).actions == ()


def test_retransmit_after_rekey_timeout_plus_jitter() -> None:
    rng = RecordingRng(fraction=0.25)
    state, facts = new_state(rng), PeerFacts()
    timers.request_handshake(state)
    first = timers.evaluate(state, facts, T0)
    assert rng.bounds == [JITTER_BOUND]
    due = T0 + 5 * S + JITTER_BOUND // 4
    assert first.next_deadline_ns == due
    assert timers.evaluate(state, facts, due - 1).actions == ()
    # A retry forgets the cached source address first, in case the route changed.
    assert timers.evaluate(state, facts, due).actions == (CLEAR_SRC, INIT)
    assert state.handshake_attempts == 1


@pytest.mark.parametrize("seed", range(5))
def test_jitter_stays_within_0_to_333_ms(seed: int) -> None:
    state, facts = new_state(random.Random(seed).randrange), PeerFacts()
    timers.request_handshake(state)
    now = T0
    decision = timers.evaluate(state, facts, now)
    for _ in range(19):
        assert decision.next_deadline_ns is not None
        wait = decision.next_deadline_ns - now
        assert 5 * S <= wait < 5 * S + 334 * MS
        now = decision.next_deadline_ns
        decision = timers.evaluate(state, facts, now)
        assert INIT in decision.actions


def test_jitter_at_its_extremes() -> None:
    for fraction, expected in ((0.0, 5 * S), (1.0, 5 * S + JITTER_BOUND - 1)):
        state = new_state(RecordingRng(fraction))
        timers.request_handshake(state)
        assert timers.evaluate(state, PeerFacts(), T0).next_deadline_ns == T0 + expected


def run_until_quiet(state: TimerState, facts: PeerFacts, start: int, limit: int = 100) -> list:
    """Follow the deadlines with nobody answering; returns (time, actions) pairs."""
    log = []
    now = start
    for _ in range(limit):
        decision = timers.evaluate(state, facts, now)
        log.append((now, decision.actions))
        if decision.next_deadline_ns is None:
            break
        now = decision.next_deadline_ns
    return log


def test_gives_up_after_20_initiations() -> None:
    rng = RecordingRng(fraction=0.5)
    state, facts = new_state(rng), PeerFacts()
    timers.request_handshake(state)
    log = run_until_quiet(state, facts, T0)
    sends = [t for t, actions in log if INIT in actions]
    assert len(sends) == 20  # MAX_TIMER_HANDSHAKES + 2: the first send and 19 retries
    gave_up = [t for t, actions in log if FLUSH in actions]
    assert len(gave_up) == 1
    assert gave_up[0] == sends[-1] + 5 * S + JITTER_BOUND // 2
    # About REKEY_ATTEMPT_TIME (90 s) of retrying: 20 timeouts of 5 s and a jitter each.
    assert 100 * S <= gave_up[0] - T0 < 100 * S + 20 * JITTER_BOUND
    zeroed = [t for t, actions in log if ZERO in actions]
    assert zeroed == [gave_up[0] + 540 * S]
    assert log[-1][1] == (ZERO,)


def test_giving_up_cancels_the_passive_keepalive() -> None:
    state, facts = new_state(), PeerFacts()
    timers.request_handshake(state)
    timers.evaluate(state, facts, T0)
    state.handshake_attempts = 19  # as if the 20th initiation had just gone out
    due = state.retransmit_at_ns
    assert due is not None
    data_received(facts, due - S)  # owed a keepalive at due + 9 s
    assert timers.evaluate(state, facts, due).actions == (FLUSH,)
    decision = timers.evaluate(state, facts, due + 9 * S)
    assert decision.actions == ()
    assert decision.next_deadline_ns == due + 540 * S


def test_handshake_complete_stops_retransmission() -> None:
    state, facts = new_state(), PeerFacts()
    timers.request_handshake(state)
    timers.evaluate(state, facts, T0)
    timers.evaluate(state, facts, T0 + 6 * S)  # one retry
    timers.handshake_complete(state, T0 + 7 * S)
    assert state.handshake_attempts == 0
    assert state.last_handshake_ns == T0 + 7 * S
    assert timers.evaluate(state, facts, T0 + 60 * S) == Decision((), None)


def test_a_new_request_restarts_the_retry_count() -> None:
    # As in the kernel: a request that is not a retry (more staged data) resets the count,
    # so a peer that keeps being sent to keeps being tried.
    state, facts = new_state(), PeerFacts()
    timers.request_handshake(state)
    log = run_until_quiet(state, facts, T0, limit=10)
    assert state.handshake_attempts == 9
    timers.request_handshake(state)
    assert state.handshake_attempts == 0
    # The request itself is dropped (an initiation just went out), but 19 more retries
    # follow before giving up, not 9.
    log = run_until_quiet(state, facts, log[-1][0])
    assert sum(INIT in actions for _, actions in log) == 19
    assert sum(FLUSH in actions for _, actions in log) == 1


# ---- keepalives ----------------------------------------------------------------------------


def test_passive_keepalive_10_s_after_data_received() -> None:
    state, facts = new_state(), PeerFacts()
    any_authenticated_packet_received(facts, T0)
    data_received(facts, T0)
    data_received(facts, T0 + 3 * S)  # a second packet does not push it back
    decision = timers.evaluate(state, facts, T0 + 3 * S)
    assert decision == Decision((), T0 + 10 * S)
    assert timers.evaluate(state, facts, T0 + 10 * S - 1).actions == ()
    assert timers.evaluate(state, facts, T0 + 10 * S).actions == (KEEPALIVE,)
    # Until the data plane reports the keepalive sent, it is not owed twice.
    assert timers.evaluate(state, facts, T0 + 11 * S).actions == ()
    any_authenticated_packet_sent(facts, T0 + 10 * S)
    assert timers.evaluate(state, facts, T0 + 30 * S) == Decision((), None)


def test_any_authenticated_send_pays_the_keepalive() -> None:
    state, facts = new_state(), PeerFacts()
    data_received(facts, T0)
    data_sent(facts, T0 + 2 * S)
    any_authenticated_packet_sent(facts, T0 + 2 * S)
    assert KEEPALIVE not in timers.evaluate(state, facts, T0 + 10 * S).actions


def test_data_after_the_keepalive_arms_another() -> None:
    state, facts = new_state(), PeerFacts()
    data_received(facts, T0)
    assert timers.evaluate(state, facts, T0 + 10 * S).actions == (KEEPALIVE,)
    any_authenticated_packet_sent(facts, T0 + 10 * S)
    data_received(facts, T0 + 12 * S)
    assert timers.evaluate(state, facts, T0 + 12 * S).next_deadline_ns == T0 + 22 * S
    assert timers.evaluate(state, facts, T0 + 22 * S).actions == (KEEPALIVE,)


def test_a_keepalive_received_owes_no_keepalive() -> None:
    state, facts = new_state(), PeerFacts()
    any_authenticated_packet_received(facts, T0)  # a keepalive is not data
    assert timers.evaluate(state, facts, T0 + 60 * S) == Decision((), None)


def test_persistent_keepalive() -> None:
    state, facts = new_state(), PeerFacts()
    timers.set_persistent_keepalive(state, 25 * S)
    # Turning it on sends one at once, so a NAT mapping opens without waiting for traffic.
    assert timers.evaluate(state, facts, T0).actions == (KEEPALIVE,)
    any_authenticated_packet_sent(facts, T0)
    assert timers.evaluate(state, facts, T0).next_deadline_ns == T0 + 25 * S
    any_authenticated_packet_received(facts, T0 + 10 * S)  # traffic either way re-arms
    assert timers.evaluate(state, facts, T0 + 25 * S) == Decision((), T0 + 35 * S)
    assert timers.evaluate(state, facts, T0 + 35 * S).actions == (KEEPALIVE,)
    any_authenticated_packet_sent(facts, T0 + 35 * S)
    assert timers.evaluate(state, facts, T0 + 36 * S).next_deadline_ns == T0 + 60 * S
    # Changing the interval does not send again; turning it off stops it.
    timers.set_persistent_keepalive(state, 30 * S)
    assert timers.evaluate(state, facts, T0 + 36 * S) == Decision((), T0 + 65 * S)
    timers.set_persistent_keepalive(state, 0)
    assert timers.evaluate(state, facts, T0 + 600 * S) == Decision((), None)


def test_persistent_keepalive_waits_for_a_first_packet() -> None:
    state, facts = new_state(), PeerFacts()
    state.persistent_keepalive_ns = 25 * S  # configured before anything was ever sent
    assert timers.evaluate(state, facts, T0 + 100 * S) == Decision((), None)


def test_one_keepalive_serves_passive_and_persistent() -> None:
    state, facts = new_state(), PeerFacts()
    state.persistent_keepalive_ns = 10 * S
    any_authenticated_packet_received(facts, T0)
    data_received(facts, T0)
    assert timers.evaluate(state, facts, T0 + 10 * S).actions == (KEEPALIVE,)


# ---- new handshake when the peer goes quiet ------------------------------------------------


def test_new_handshake_15_s_after_unanswered_data() -> None:
    rng = RecordingRng(fraction=0.5)
    state, facts = new_state(rng), PeerFacts()
    data_sent(facts, T0)
    data_sent(facts, T0 + 4 * S)  # later sends do not push it back
    due = T0 + 15 * S + JITTER_BOUND // 2
    assert timers.evaluate(state, facts, T0 + 4 * S) == Decision((), due)
    assert rng.bounds == [JITTER_BOUND]
    assert timers.evaluate(state, facts, due - 1).actions == ()
    assert timers.evaluate(state, facts, due).actions == (CLEAR_SRC, INIT)


def test_an_authenticated_receive_cancels_the_new_handshake() -> None:
    state, facts = new_state(), PeerFacts()
    data_sent(facts, T0)
    timers.evaluate(state, facts, T0)
    any_authenticated_packet_received(facts, T0 + 14 * S)
    assert timers.evaluate(state, facts, T0 + 16 * S) == Decision((), None)


def test_data_sent_after_the_new_handshake_fired_arms_it_again() -> None:
    state, facts = new_state(RecordingRng(0.0)), PeerFacts()
    data_sent(facts, T0)
    assert timers.evaluate(state, facts, T0 + 15 * S).actions == (CLEAR_SRC, INIT)
    any_authenticated_packet_sent(facts, T0 + 15 * S)  # the initiation
    timers.handshake_complete(state, T0 + 16 * S)  # keep its retries out of the picture
    assert timers.evaluate(state, facts, T0 + 16 * S) == Decision((), None)
    data_sent(facts, T0 + 30 * S)
    assert timers.evaluate(state, facts, T0 + 30 * S) == Decision((), T0 + 45 * S)
    assert timers.evaluate(state, facts, T0 + 45 * S).actions == (CLEAR_SRC, INIT)


# ---- key freshness, rejection and erasure --------------------------------------------------


def test_last_minute_request_is_made_once_per_handshake() -> None:
    state, facts = new_state(RecordingRng(0.5)), PeerFacts()
    timers.request_last_minute_handshake(state)
    assert timers.evaluate(state, facts, T0).actions == (INIT,)
    retry = T0 + 5 * S + JITTER_BOUND // 2
    assert timers.evaluate(state, facts, retry).actions == (CLEAR_SRC, INIT)
    # Every later packet on the old keypair asks again; only the first request counts
    # (a second one would have reset the retry count and sent at once).
    timers.request_last_minute_handshake(state)
    assert timers.evaluate(state, facts, retry + 5 * S).actions == ()
    assert state.handshake_attempts == 1
    timers.handshake_complete(state, retry + 6 * S)
    timers.request_last_minute_handshake(state)
    assert timers.evaluate(state, facts, retry + 6 * S).actions == (INIT,)


def test_key_material_zeroed_540_s_after_the_last_session() -> None:
    state, facts = new_state(), PeerFacts()
    timers.session_derived(state, T0)
    assert timers.evaluate(state, facts, T0) == Decision((), T0 + 540 * S)
    timers.session_derived(state, T0 + 100 * S)  # a newer session postpones it
    assert timers.evaluate(state, facts, T0 + 540 * S) == Decision((), T0 + 640 * S)
    assert timers.evaluate(state, facts, T0 + 640 * S).actions == (ZERO,)
    assert timers.evaluate(state, facts, T0 + 2000 * S) == Decision((), None)


# ---- properties over arbitrary event sequences ---------------------------------------------

EVENTS = st.sampled_from(
    ["request", "last_minute", "complete", "derived", "data_sent", "data_received",
     "auth_sent", "auth_received", "persistent_on", "persistent_off"]
)


def apply(event: str, state: TimerState, facts: PeerFacts, now: int) -> None:
    match event:
        case "request":
            timers.request_handshake(state)
        case "last_minute":
            timers.request_last_minute_handshake(state)
        case "complete":
            timers.handshake_complete(state, now)
        case "derived":
            timers.session_derived(state, now)
        case "data_sent":
            data_sent(facts, now)
        case "data_received":
            data_received(facts, now)
        case "auth_sent":
            any_authenticated_packet_sent(facts, now)
        case "auth_received":
            any_authenticated_packet_received(facts, now)
        case "persistent_on":
            timers.set_persistent_keepalive(state, 25 * S)
        case "persistent_off":
            timers.set_persistent_keepalive(state, 0)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 20 * S), EVENTS), max_size=40), st.integers(0, 2**32))
def test_rate_limit_and_deadlines_hold_for_any_history(steps, seed) -> None:
    state, facts = new_state(random.Random(seed).randrange), PeerFacts()
    now = T0
    last_init = None
    for delay, event in steps:
        now += delay
        apply(event, state, facts, now)
        decision = timers.evaluate(state, facts, now)
        if INIT in decision.actions:
            # Never two initiations within REKEY_TIMEOUT.
            assert last_init is None or now - last_init >= 5 * S
            last_init = now
            any_authenticated_packet_sent(facts, now)
        if KEEPALIVE in decision.actions:
            any_authenticated_packet_sent(facts, now)
        # Nothing due is left behind, and evaluating again at once has nothing new to do.
        assert decision.next_deadline_ns is None or decision.next_deadline_ns > now
        assert timers.evaluate(state, facts, now).actions == ()
