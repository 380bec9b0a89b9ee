"""Timers: when to start, retry and give up handshakes, send keepalives and forget keys.

Theory of operation
===================

The kernel module (timers.c) and wireguard-go (timers.go) run five timers per peer, armed
and cancelled by a handful of event verbs. pywg splits the same rules between the two
planes: the C data plane sees every packet and only records *facts* (`PeerFacts`: when an
authenticated packet last went out or came in, when the first data packet went out since
the last one came in, and so on); the Python control plane turns those facts, plus the
handshake events it sees itself, into actions. `evaluate(state, facts, now)` is that turn:
it returns the actions due now and the next instant at which it must run again (if no fact
moves first), so the driver keeps one deadline heap and never runs Python per packet.

The five timers, as facts and state express them (times from `Timing`; defaults are the
whitepaper's):

  retransmit handshake  armed when an initiation is sent, for REKEY_TIMEOUT plus a jitter
                        of 0-333 ms, and cancelled when a handshake completes. On expiry:
                        resend (clearing the cached source address, which may be stale),
                        unless more than MAX_TIMER_HANDSHAKES (18) retries were made; then
                        give up: flush the staged packets, cancel the passive keepalive and
                        arm the zeroing of key material. One initiation plus 19 retries
                        makes 20 sends over about REKEY_ATTEMPT_TIME (90 s) and then some.
  passive keepalive     owed KEEPALIVE_TIMEOUT after the first data received since we last
                        sent an authenticated packet (facts.first_rx_data_since_tx_ns); any
                        authenticated packet we send pays it. The peer's new-handshake timer
                        relies on this: it hears from us within KEEPALIVE_TIMEOUT of each
                        data packet it sends. (The kernel may send a second keepalive when
                        data arrived while one was pending; here data arriving after our
                        keepalive arms a new one, so every data packet is still answered.)
  new handshake         KEEPALIVE_TIMEOUT + REKEY_TIMEOUT + jitter after the first data
                        sent since we last received an authenticated packet: we talk, the
                        peer is silent, so start over with a new handshake (clearing the
                        source address too). Data sent after it fired arms it again.
  persistent keepalive  when configured, N seconds after the last authenticated packet in
                        either direction, so that NAT mappings stay open.
  zero key material     3 * REJECT_AFTER_TIME after the last session was derived (or after
                        giving up): every keypair and the handshake state are erased.

Initiations are requested by the data plane's events and by the timers themselves
(`request_handshake`): packets staged with no usable keypair, a current keypair that needs
refreshing (keepKeyFreshSending and keepKeyFreshReceiving: the data plane checks them after
each send and each authenticated receive, csrc/send.c and csrc/receive.c), and the
new-handshake timer. Staged packets are also a fact: packets waiting while no initiation is
in flight ask again at the next evaluation, so a request lost to a full event ring (a
gateway turning a million keepalives on at once) costs a tick, not the handshake. A
request resets the retry count, as in the kernel, and is dropped if an initiation went out
less than REKEY_TIMEOUT ago: the retransmit timer covers that case.

Everything here is pure: no clock is read (callers pass `now`, CLOCK_MONOTONIC in ns) and
the jitter comes from the injected `rng`. Facts use 0 for "never", as the C data plane does;
the state uses None. Not safe for concurrent use: one driver owns a peer's state.
"""

from __future__ import annotations

import enum
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import NamedTuple

from pywg._constants import (
    KEEPALIVE_TIMEOUT_S,
    MAX_TIMER_HANDSHAKES,
    NSEC_PER_MSEC,
    NSEC_PER_SEC,
    REJECT_AFTER_MESSAGES,
    REJECT_AFTER_TIME_S,
    REKEY_AFTER_MESSAGES,
    REKEY_AFTER_TIME_S,
    REKEY_TIMEOUT_JITTER_MAX_MS,
    REKEY_TIMEOUT_S,
    ZERO_KEY_MATERIAL_AFTER_S,
)

__all__ = [
    "Decision",
    "PeerFacts",
    "TimerAction",
    "TimerState",
    "Timing",
    "evaluate",
    "handshake_complete",
    "handshake_initiated",
    "keys_expired",
    "request_handshake",
    "request_last_minute_handshake",
    "session_derived",
    "set_persistent_keepalive",
]

# rng(n) returns an integer in [0, n), like secrets.randbelow.
RandBelow = Callable[[int], int]


@dataclass(frozen=True, slots=True)
class Timing:
    """The protocol's times (ns) and message limits; the defaults are the whitepaper's."""

    rekey_after_time_ns: int = REKEY_AFTER_TIME_S * NSEC_PER_SEC
    reject_after_time_ns: int = REJECT_AFTER_TIME_S * NSEC_PER_SEC
    rekey_timeout_ns: int = REKEY_TIMEOUT_S * NSEC_PER_SEC
    # The jitter added to REKEY_TIMEOUT is drawn from [0, rekey_timeout_jitter_ns).
    rekey_timeout_jitter_ns: int = REKEY_TIMEOUT_JITTER_MAX_MS * NSEC_PER_MSEC
    keepalive_timeout_ns: int = KEEPALIVE_TIMEOUT_S * NSEC_PER_SEC
    zero_key_material_ns: int = ZERO_KEY_MATERIAL_AFTER_S * NSEC_PER_SEC
    max_timer_handshakes: int = MAX_TIMER_HANDSHAKES
    rekey_after_messages: int = REKEY_AFTER_MESSAGES
    reject_after_messages: int = REJECT_AFTER_MESSAGES

    @property
    def new_handshake_ns(self) -> int:
        """How long data may go unanswered before a new handshake (before jitter)."""
        return self.keepalive_timeout_ns + self.rekey_timeout_ns

    @property
    def last_minute_rekey_ns(self) -> int:
        """The key age at which the initiator rekeys on receive: 165 s by default."""
        return self.reject_after_time_ns - self.keepalive_timeout_ns - self.rekey_timeout_ns

    def scaled(self, factor: float) -> Timing:
        """The same rules with every duration multiplied by `factor` (for test modes)."""
        return replace(
            self,
            rekey_after_time_ns=round(self.rekey_after_time_ns * factor),
            reject_after_time_ns=round(self.reject_after_time_ns * factor),
            rekey_timeout_ns=round(self.rekey_timeout_ns * factor),
            rekey_timeout_jitter_ns=round(self.rekey_timeout_jitter_ns * factor),
            keepalive_timeout_ns=round(self.keepalive_timeout_ns * factor),
            zero_key_material_ns=round(self.zero_key_material_ns * factor),
        )


@dataclass(slots=True)
class PeerFacts:
    """What the data plane records per peer (csrc/peer.c keeps them as it sends and
    receives): CLOCK_MONOTONIC ns, 0 meaning never. The keypair fields describe the current
    keypair (birth 0: there is none)."""

    last_tx_auth_ns: int = 0
    last_rx_auth_ns: int = 0
    first_tx_data_since_rx_ns: int = 0
    first_rx_data_since_tx_ns: int = 0
    last_tx_data_ns: int = 0
    last_rx_data_ns: int = 0
    keypair_birth_ns: int = 0
    keypair_send_counter: int = 0
    keypair_is_initiator: bool = False
    has_next_keypair: bool = False
    staged: int = 0  # packets waiting for a key


class TimerAction(enum.Enum):
    """What the driver must do for a peer, in the order evaluate returns them."""

    CLEAR_ENDPOINT_SOURCE = "clear_endpoint_source"  # the cached source address may be stale
    SEND_INITIATION = "send_initiation"  # create and send a handshake initiation now
    FLUSH_STAGED = "flush_staged"  # the handshake gave up: drop the packets waiting for it
    SEND_KEEPALIVE = "send_keepalive"  # send the staged packets, or an empty one if none
    ZERO_KEY_MATERIAL = "zero_key_material"  # wipe every keypair and the handshake state


class Decision(NamedTuple):
    """evaluate's answer: actions due now, and when to evaluate again (None: only on news)."""

    actions: tuple[TimerAction, ...]
    next_deadline_ns: int | None


@dataclass(slots=True)
class TimerState:
    """A peer's timer state kept by the control plane (the data plane keeps PeerFacts)."""

    timing: Timing = field(default_factory=Timing)
    rng: RandBelow = secrets.randbelow
    persistent_keepalive_ns: int = 0  # 0: off
    handshake_attempts: int = 0  # retries of the current initiation
    sent_last_minute_handshake: bool = False
    last_handshake_ns: int | None = None  # when a handshake last completed
    last_initiation_sent_ns: int | None = None
    retransmit_at_ns: int | None = None
    zero_key_at_ns: int | None = None
    # Requests waiting for the next evaluate (which honours or drops them at once).
    handshake_requested: bool = False
    keepalive_requested: bool = False
    # The latest authenticated packet these timers sent: the facts show it only after the
    # driver has acted, and until then it must still cancel keepalives that it paid for.
    auth_sent_ns: int | None = None
    # The passive keepalive armed at this data-receive time was cancelled by giving up.
    keepalive_cancelled_for_ns: int = 0
    # The new-handshake timer: the data-sent time that armed it, its jitter, and the
    # first_tx_data_since_rx_ns value it belongs to (a new value means a new arming).
    new_handshake_epoch_ns: int = 0
    new_handshake_armed_ns: int | None = None
    new_handshake_jitter_ns: int = 0
    new_handshake_fired_ns: int = 0


# ---- the control plane's event verbs ------------------------------------------------------


def handshake_initiated(state: TimerState, now: int) -> None:
    """An initiation was sent: arm the retransmission, with jitter so that peers that
    started together drift apart."""
    state.last_initiation_sent_ns = now
    state.handshake_requested = False
    state.retransmit_at_ns = now + state.timing.rekey_timeout_ns + _jitter(state)
    state.auth_sent_ns = now


def handshake_complete(state: TimerState, now: int) -> None:
    """A response was consumed, or (responder) the first data on the new keypair arrived."""
    state.retransmit_at_ns = None
    state.handshake_requested = False
    state.handshake_attempts = 0
    state.sent_last_minute_handshake = False
    state.last_handshake_ns = now


def keys_expired(state: TimerState) -> None:
    """The sessions were dropped because our private key changed: the next initiation may
    go at once, not REKEY_TIMEOUT after the last one (which used the old key), as the
    kernel's wg_noise_expire_current_peer_keypairs allows."""
    state.last_initiation_sent_ns = None


def session_derived(state: TimerState, now: int) -> None:
    """New transport keys exist: postpone the erasure of key material."""
    state.zero_key_at_ns = now + state.timing.zero_key_material_ns


def request_handshake(state: TimerState) -> None:
    """Ask for an initiation (not a retry): staged packets, stale keys, a silent peer."""
    state.handshake_attempts = 0
    state.handshake_requested = True


def request_last_minute_handshake(state: TimerState) -> None:
    """keep_key_fresh_receiving held: ask once per keypair, not on every packet."""
    if not state.sent_last_minute_handshake:
        state.sent_last_minute_handshake = True
        request_handshake(state)


def set_persistent_keepalive(state: TimerState, interval_ns: int) -> None:
    """Configure the persistent keepalive; turning it on sends one keepalive at once, as
    wireguard-go does, so the NAT mapping opens without waiting for traffic."""
    if interval_ns and not state.persistent_keepalive_ns:
        state.keepalive_requested = True
    state.persistent_keepalive_ns = interval_ns


# ---- evaluate -----------------------------------------------------------------------------


def evaluate(state: TimerState, facts: PeerFacts, now: int) -> Decision:
    """Run every timer that is due at `now`; return the actions and the next deadline."""
    actions: list[TimerAction] = []
    if facts.staged and state.retransmit_at_ns is None and not state.handshake_requested:
        # Packets wait for a key and no initiation is in flight: the data plane's request
        # is still on its way, or was lost to a full event ring. Either way, ask now.
        request_handshake(state)
    _retransmit_handshake(state, facts, now, actions)
    _new_handshake(state, facts, now, actions)
    if state.handshake_requested:
        sent = _send_initiation(state, now, actions)
        # Too soon after the last initiation: a retransmission covers a handshake still in
        # progress; otherwise the request waits for the end of the window.
        state.handshake_requested = not sent and state.retransmit_at_ns is None
    _keepalives(state, facts, now, actions)
    if _due(state.zero_key_at_ns, now):
        state.zero_key_at_ns = None
        actions.append(TimerAction.ZERO_KEY_MATERIAL)
    deadlines = (
        state.retransmit_at_ns,
        _requested_initiation_deadline(state),
        _new_handshake_deadline(state),
        _passive_keepalive_deadline(state, facts),
        _persistent_keepalive_deadline(state, facts),
        state.zero_key_at_ns,
    )
    pending = [d for d in deadlines if d is not None]
    return Decision(tuple(actions), min(pending) if pending else None)


def _due(deadline: int | None, now: int) -> bool:
    return deadline is not None and deadline <= now


def _send_initiation(state: TimerState, now: int, actions: list[TimerAction]) -> bool:
    """At most one initiation per REKEY_TIMEOUT per peer: False if one went out too recently.

    The kernel drops such a request and relies on the next staged packet to ask again; the
    data plane asks once per staging episode, so with no retransmission armed a request
    waits for the end of the window instead, or a lone packet would wait for ever."""
    last = state.last_initiation_sent_ns
    if last is not None and now - last < state.timing.rekey_timeout_ns:
        return False
    actions.append(TimerAction.SEND_INITIATION)
    handshake_initiated(state, now)
    return True


def _requested_initiation_deadline(state: TimerState) -> int | None:
    last = state.last_initiation_sent_ns
    if not state.handshake_requested or last is None:
        return None
    return last + state.timing.rekey_timeout_ns


def _retransmit_handshake(
    state: TimerState, facts: PeerFacts, now: int, actions: list[TimerAction]
) -> None:
    if not _due(state.retransmit_at_ns, now):
        return
    state.retransmit_at_ns = None
    if state.handshake_attempts > state.timing.max_timer_handshakes:
        _give_up(state, facts, now, actions)
        return
    state.handshake_attempts += 1
    actions.append(TimerAction.CLEAR_ENDPOINT_SOURCE)
    _send_initiation(state, now, actions)


def _give_up(state: TimerState, facts: PeerFacts, now: int, actions: list[TimerAction]) -> None:
    # The peer is gone: nothing staged will ever be sent, no keepalive is owed, and the
    # keys are erased in due course unless a session is derived meanwhile.
    actions.append(TimerAction.FLUSH_STAGED)
    state.keepalive_cancelled_for_ns = facts.first_rx_data_since_tx_ns
    if state.zero_key_at_ns is None:
        state.zero_key_at_ns = now + state.timing.zero_key_material_ns


def _new_handshake(
    state: TimerState, facts: PeerFacts, now: int, actions: list[TimerAction]
) -> None:
    _sync_new_handshake(state, facts)
    deadline = _new_handshake_deadline(state)
    if deadline is None or deadline > now:
        return
    state.new_handshake_armed_ns = None
    state.new_handshake_fired_ns = deadline
    actions.append(TimerAction.CLEAR_ENDPOINT_SOURCE)
    request_handshake(state)


def _sync_new_handshake(state: TimerState, facts: PeerFacts) -> None:
    first = facts.first_tx_data_since_rx_ns
    if not first:
        # An authenticated packet came in after our data: the timer is cancelled.
        state.new_handshake_epoch_ns = 0
        state.new_handshake_armed_ns = None
    elif first != state.new_handshake_epoch_ns:
        # The first data sent since the last authenticated receive arms it.
        state.new_handshake_epoch_ns = first
        _arm_new_handshake(state, first)
    elif state.new_handshake_armed_ns is None and (
        facts.last_tx_data_ns > state.new_handshake_fired_ns
    ):
        # It fired and we kept sending: the kernel re-arms on the first send after expiry.
        # The facts hold only the latest send, so this may start up to one evaluation late.
        _arm_new_handshake(state, facts.last_tx_data_ns)


def _arm_new_handshake(state: TimerState, sent_ns: int) -> None:
    state.new_handshake_armed_ns = sent_ns
    state.new_handshake_jitter_ns = _jitter(state)


def _jitter(state: TimerState) -> int:
    bound = state.timing.rekey_timeout_jitter_ns
    return state.rng(bound) if bound > 0 else 0


def _new_handshake_deadline(state: TimerState) -> int | None:
    if state.new_handshake_armed_ns is None:
        return None
    timing = state.timing
    return state.new_handshake_armed_ns + timing.new_handshake_ns + state.new_handshake_jitter_ns


def _keepalives(state: TimerState, facts: PeerFacts, now: int, actions: list[TimerAction]) -> None:
    # One keepalive pays for all three reasons to send one.
    due = (
        state.keepalive_requested
        or _due(_passive_keepalive_deadline(state, facts), now)
        or _due(_persistent_keepalive_deadline(state, facts), now)
    )
    state.keepalive_requested = False
    if due:
        actions.append(TimerAction.SEND_KEEPALIVE)
        state.auth_sent_ns = now


def _passive_keepalive_deadline(state: TimerState, facts: PeerFacts) -> int | None:
    received = facts.first_rx_data_since_tx_ns
    if not received or received == state.keepalive_cancelled_for_ns:
        return None
    # Only a packet sent after the data pays for it; on a tie, keep the keepalive owed.
    if state.auth_sent_ns is not None and state.auth_sent_ns > received:
        return None
    return received + state.timing.keepalive_timeout_ns


def _persistent_keepalive_deadline(state: TimerState, facts: PeerFacts) -> int | None:
    if not state.persistent_keepalive_ns:
        return None
    last = max(facts.last_tx_auth_ns, facts.last_rx_auth_ns, state.auth_sent_ns or 0)
    if not last:
        # Armed by the first authenticated packet either way, as in the kernel.
        return None
    return last + state.persistent_keepalive_ns
