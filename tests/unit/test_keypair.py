"""Keypair rotation (previous/current/next) as the kernel's noise.c does it, and the
keypair validity rules of the whitepaper (section 6.2)."""

from __future__ import annotations

import itertools

import pytest

from pywg._protocol.errors import LocalProtocolError
from pywg._protocol.keypair import Keypair, Keypairs, Rotation
from pywg._protocol.timers import Timing

S = 1_000_000_000
T0 = 1_000 * S
_indices = itertools.count(1)


def make(initiator: bool, birth: int = T0) -> Keypair:
    index = next(_indices)
    return Keypair(bytearray([index]) * 32, bytearray([index + 100]) * 32, local_index=index,
                   remote_index=index + 1000, birth_ns=birth, is_initiator=initiator)


def slots(kps: Keypairs) -> tuple[Keypair | None, Keypair | None, Keypair | None]:
    return kps.previous, kps.current, kps.next


def wiped(kp: Keypair) -> bool:
    return not kp.valid and not any(kp.send_key) and not any(kp.receive_key)


def test_initiator_uses_a_new_keypair_at_once() -> None:
    kps = Keypairs()
    a, b, c = make(True), make(True), make(True)
    assert kps.add(a) == ()
    assert slots(kps) == (None, a, None)
    assert kps.add(b) == ()
    assert slots(kps) == (a, b, None)
    assert kps.add(c) == (a.local_index,)
    assert slots(kps) == (b, c, None)
    assert wiped(a) and not wiped(b) and not wiped(c)
    assert kps.for_sending(T0, Timing()) is c


def test_responder_waits_for_confirmation_by_first_data() -> None:
    kps = Keypairs()
    old_prev, old_cur = make(True), make(True)
    kps.add(old_prev)
    kps.add(old_cur)
    new = make(False)
    # Previous goes at once; current stays and is still what we send with.
    assert kps.add(new) == (old_prev.local_index,)
    assert slots(kps) == (None, old_cur, new)
    assert kps.for_sending(T0, Timing()) is old_cur
    # Data under current (or previous) confirms nothing.
    assert kps.received_with(old_cur) == Rotation(False, ())
    assert kps.received_with(new) == Rotation(True, ())
    assert slots(kps) == (old_cur, new, None)
    assert kps.for_sending(T0, Timing()) is new
    # A second packet on it is ordinary.
    assert kps.received_with(new) == Rotation(False, ())


def test_responder_replaces_an_unconfirmed_next() -> None:
    kps = Keypairs()
    first, second = make(False), make(False)
    kps.add(first)
    assert kps.add(second) == (first.local_index,)
    assert slots(kps) == (None, None, second)
    assert wiped(first)
    assert kps.for_sending(T0, Timing()) is None  # a responder cannot send before confirmation


def test_confirmation_releases_the_old_previous() -> None:
    kps = Keypairs()
    a = make(False)
    kps.add(a)
    kps.received_with(a)
    b = make(False)
    kps.add(b)
    kps.received_with(b)
    assert slots(kps) == (a, b, None)
    c = make(False)
    assert kps.add(c) == (a.local_index,)
    assert kps.received_with(c) == Rotation(True, ())
    assert slots(kps) == (b, c, None)


def test_initiator_completing_while_a_next_is_pending() -> None:
    # We answered the peer's handshake (next) and then our own completed: the kernel keeps
    # the answered keypair as previous (the peer may use it) and drops the old current.
    kps = Keypairs()
    old_prev, old_cur = make(True), make(True)
    kps.add(old_prev)
    kps.add(old_cur)
    answered = make(False)
    kps.add(answered)  # releases old_prev
    ours = make(True)
    assert kps.add(ours) == (old_cur.local_index,)
    assert slots(kps) == (answered, ours, None)
    assert wiped(old_cur) and not wiped(answered)


def test_clear_wipes_every_keypair() -> None:
    # Previous and next are never held together: a responder's new next pushes previous
    # out, and confirming or initiating empties next.
    for roles in ((True, True), (True, False)):
        kps = Keypairs()
        a, b = make(roles[0]), make(roles[1])
        kps.add(a)
        kps.add(b)
        assert sorted(kps.clear()) == sorted([a.local_index, b.local_index])
        assert slots(kps) == (None, None, None)
        assert wiped(a) and wiped(b)


def test_find_by_local_index() -> None:
    kps = Keypairs()
    a, b = make(True), make(False)
    kps.add(a)
    kps.add(b)
    assert kps.find(a.local_index) is a
    assert kps.find(b.local_index) is b
    assert kps.find(0xDEAD) is None


def test_usable_until_reject_after_time() -> None:
    t = Timing()
    kp = make(True)
    assert kp.usable_for_sending(T0 + 180 * S - 1, t)
    assert kp.usable_for_receiving(T0 + 180 * S - 1, t)
    assert not kp.usable_for_sending(T0 + 180 * S, t)
    assert not kp.usable_for_receiving(T0 + 180 * S, t)


def test_usable_for_sending_until_reject_after_messages() -> None:
    t = Timing()
    kp = make(True)
    kp.send_counter = 2**64 - 2**13 - 2
    assert kp.usable_for_sending(T0, t)
    assert kp.take_send_counter(t.reject_after_messages) == 2**64 - 2**13 - 2
    assert not kp.usable_for_sending(T0, t)
    assert kp.usable_for_receiving(T0, t)
    with pytest.raises(LocalProtocolError):
        kp.take_send_counter(t.reject_after_messages)


def test_counters_count_from_zero() -> None:
    kp = make(True)
    assert [kp.take_send_counter(10) for _ in range(3)] == [0, 1, 2]


def test_a_wiped_keypair_is_unusable() -> None:
    kp = make(True)
    kp.wipe()
    assert wiped(kp)
    assert not kp.usable_for_sending(T0, Timing())
    assert not kp.usable_for_receiving(T0, Timing())


def test_keys_are_never_in_the_repr() -> None:
    kp = Keypair(bytearray(b"\xab" * 32), bytearray(b"\xcd" * 32), local_index=1,
                 remote_index=2, birth_ns=T0, is_initiator=True)
    assert "ab" * 4 not in repr(kp).lower() and "cd" * 4 not in repr(kp).lower()


@pytest.mark.parametrize("bad", [b"\x00" * 32, bytearray(31), bytearray(33)])
def test_keys_must_be_32_byte_bytearrays(bad: bytes) -> None:
    with pytest.raises(LocalProtocolError):
        Keypair(bad, bytearray(32), local_index=1, remote_index=2,  # type: ignore[arg-type]
                birth_ns=T0, is_initiator=True)
