"""The protocol's timers, live, watched on the wire with a raw packet socket on the far veth.

The subject (side a) is pywg with PYWG_TIMING_SCALE=SCALE, which shortens every protocol
time by that factor; the far side is wireguard-go at normal speed (it only answers).
Set PYWG_INTEROP_REALTIME=1 to run the same tests with wireguard-go as the subject at the
protocol's own times (minutes; for checking this suite, not for `make test`).

Timing checks are lower bounds and ordering (a keepalive comes after KEEPALIVE, not at
once; retries are spaced at least REKEY_TIMEOUT apart), with generous deadlines, never
performance. The persistent keepalive is configuration, not a protocol time: it is not
scaled, and is checked for every pair at 1 s.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from pywg import _constants as C
from tests.harness import files, topology, wait
from tests.harness.capture import (
    DATA,
    INITIATION,
    RESPONSE,
    Capture,
    Message,
    capture,
)
from tests.harness.netns import socket_in
from tests.harness.probes import ping
from tests.harness.skips import require_impls, require_root
from tests.harness.topology import Node, Topology
from tests.harness.transfer import transfer

SCALE = 0.025
SINK_PORT = 7777
SLACK_S = 2.0  # scheduling slack on a loaded 2-core machine, added to every deadline
MB = 1 << 20


@dataclass
class Timed:
    tunnel: Topology
    scale: float

    def s(self, protocol_seconds: float) -> float:
        """A protocol time as the subject runs it."""
        return protocol_seconds * self.scale

    @property
    def subject(self) -> Node:
        return self.tunnel.a

    @property
    def far(self) -> Node:
        return self.tunnel.b


def _subjects() -> list[tuple[str, float]]:
    found = [("pywg", SCALE)]
    if os.environ.get("PYWG_INTEROP_REALTIME") == "1":
        found.append(("wggo", 1.0))
    return found


@pytest.fixture(scope="module", params=_subjects(), ids=lambda p: f"{p[0]}-wggo")
def timed(request: pytest.FixtureRequest) -> Iterator[Timed]:
    require_root()
    name, scale = request.param
    subject, far = require_impls(name, "wggo")
    env = {"PYWG_TIMING_SCALE": str(scale)} if name == "pywg" else None
    with files.workdir("timers") as work, \
            topology.tunnel((subject, far), "timers", work, env=env) as t:
        yield Timed(t, scale)


def _watch(timed: Timed) -> contextlib.AbstractContextManager[Capture]:
    far = timed.far
    return capture(far.ns, far.veth, {timed.subject.port, far.port})


def _sink(side: Node) -> socket.socket:
    """A UDP socket on the side's tunnel address that swallows what it gets: data that
    arrives there calls for no reply, so the side's next packet can only be a timer's."""
    s = socket_in(side.ns, socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((side.inner4, SINK_PORT))
    return s


def _send_one(from_side: Node, to_side: Node) -> None:
    with socket_in(from_side.ns, socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(b"timer test datagram", (to_side.inner4, SINK_PORT))


def _src(side: Node) -> str:
    return side.endpoint(4)


def _wait_messages(cap: Capture, what: str, timeout: float, *, src: str, kind: int | None = None,
                   since: float = 0.0) -> list[Message]:
    return wait.wait_for(lambda: cap.messages(src=src, kind=kind, since=since), what, timeout)


def test_passive_keepalive_after_received_data(timed: Timed) -> None:
    subject, far = timed.subject, timed.far
    timed.tunnel.configure()
    ping(subject.ns, far.inner4, count=1)
    with _sink(subject), _watch(timed) as cap:
        time.sleep(timed.s(2 * C.KEEPALIVE_TIMEOUT_S))  # earlier timers have fired by now
        start = time.monotonic()
        _send_one(far, subject)
        data = _wait_messages(cap, "the datagram to reach the subject", 5 + SLACK_S,
                              src=_src(far), kind=DATA, since=start)[0]
        reply = _wait_messages(cap, "a keepalive from the subject",
                               timed.s(3 * C.KEEPALIVE_TIMEOUT_S) + SLACK_S,
                               src=_src(subject), since=data.when)[0]
    assert reply.keepalive, f"the subject's first packet after the data was {reply}"
    assert reply.when - data.when >= timed.s(C.KEEPALIVE_TIMEOUT_S) * 0.9, \
        "the keepalive came before KEEPALIVE_TIMEOUT"


def test_rekey_after_time_during_transfer_loses_nothing(timed: Timed) -> None:
    subject, far = timed.subject, timed.far
    timed.tunnel.configure()
    with _watch(timed) as cap:
        ping(subject.ns, far.inner4, count=1)  # the subject initiates: it rekeys
        before = far.daemon.dump().peers[subject.daemon.keys.public].latest_handshake
        seconds = timed.s(C.REKEY_AFTER_TIME_S) * 1.6
        with transfer(subject.ns, far.ns, far.inner4, 8 * MB, seconds=seconds) as t:
            sent, received = t.finish(timeout=seconds + 60)
        initiations = cap.messages(src=_src(subject), kind=INITIATION)
        receivers = {m.receiver for m in cap.messages(src=_src(subject), kind=DATA)}
    assert received == sent, "the rekey lost or changed data"
    assert len(initiations) >= 2, "no new handshake during the transfer"
    assert len(receivers) >= 2, "the data never moved to the new keys"
    after = far.daemon.dump().peers[subject.daemon.keys.public].latest_handshake
    assert after > before


def test_handshake_retries_then_give_up_then_recovery(timed: Timed) -> None:
    subject, far = timed.subject, timed.far
    timed.tunnel.configure()
    # The far side forgets the subject: initiations arrive and go unanswered.
    far.daemon.wg("set", far.ifname, "peer", subject.daemon.keys.public, "remove")
    with _watch(timed) as cap:
        start = time.monotonic()
        ping(subject.ns, far.inner4, count=1, check=False, deadline=1)
        give_up = timed.s(C.REKEY_ATTEMPT_TIME_S + 2 * C.REKEY_TIMEOUT_S) + 1.0
        wait.wait_for(lambda: len(cap.messages(src=_src(subject), kind=INITIATION))
                      >= C.MAX_TIMER_HANDSHAKES + 1,
                      "the subject's retries", give_up + SLACK_S)
        time.sleep(timed.s(2 * C.REKEY_TIMEOUT_S) + 0.5)  # room for a last one (+ jitter)
        settled = cap.messages(src=_src(subject), kind=INITIATION, since=start)
        time.sleep(timed.s(3 * C.REKEY_TIMEOUT_S) + 0.5)  # then a quiet window
        sent = cap.messages(src=_src(subject), kind=INITIATION, since=start)
    gaps = [b.when - a.when for a, b in itertools.pairwise(sent)]
    assert min(gaps) >= timed.s(C.REKEY_TIMEOUT_S) * 0.9, f"retries too close: {gaps}"
    assert len({round(g, 3) for g in gaps}) > 1, "retries without jitter"
    assert sent == settled, "the subject kept retrying after REKEY_ATTEMPT_TIME"
    assert C.MAX_TIMER_HANDSHAKES + 1 <= len(sent) <= C.MAX_TIMER_HANDSHAKES + 2, \
        f"{len(sent)} initiations for one packet"

    # The far side knows the subject again; the subject's peer, which gave up, is left as
    # it is: its next packet starts a handshake that works.
    topology.add_peer(far, subject, endpoint=subject.endpoint(4))
    ping(subject.ns, far.inner4, count=2)
    assert subject.daemon.dump().peers[far.daemon.keys.public].latest_handshake > 0


def test_keys_unused_after_reject_time(timed: Timed) -> None:
    subject, far = timed.subject, timed.far
    timed.tunnel.configure()
    with _sink(far), _watch(timed) as cap:
        ping(subject.ns, far.inner4, count=1)
        old = {m.receiver for m in cap.messages(src=_src(subject), kind=DATA)}
        time.sleep(timed.s(C.REJECT_AFTER_TIME_S) * 1.1 + 0.5)
        start = time.monotonic()
        _send_one(subject, far)
        first = _wait_messages(cap, "the subject's datagram", timed.s(C.REKEY_TIMEOUT_S) + 5
                               + SLACK_S, src=_src(subject), kind=DATA, since=start)[0]
        shaken = cap.messages(src=_src(subject), kind=INITIATION, since=start)
        answered = cap.messages(src=_src(far), kind=RESPONSE, since=start)
    assert old, "no data before the idle time"
    assert first.receiver not in old, "data sent on keys older than REJECT_AFTER_TIME"
    assert shaken and answered and shaken[0].when < answered[0].when < first.when, \
        "the datagram waited for a new handshake"


def test_persistent_keepalive_cadence(tunnel: Topology) -> None:
    subject, far = tunnel.a, tunnel.b
    interval = 1
    tunnel.configure()
    ping(subject.ns, far.inner4, count=1)
    window = 3.5 * interval
    with capture(far.ns, far.veth, {subject.port, far.port}) as cap:
        subject.daemon.wg("set", subject.ifname, "peer", far.daemon.keys.public,
                          "persistent-keepalive", str(interval))
        start = time.monotonic()
        time.sleep(window)
        keepalives = [m for m in cap.messages(src=_src(subject), kind=DATA, since=start)
                      if m.keepalive]
    # Turning it on sends one at once, then one per interval.
    assert 3 <= len(keepalives) <= 5, [round(m.when - start, 2) for m in keepalives]
    gaps = [b.when - a.when for a, b in itertools.pairwise(keepalives)]
    assert min(gaps) >= interval * 0.8, gaps
