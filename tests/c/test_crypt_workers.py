"""Sealing and opening spread over several threads keep every rule of one thread.

The packet threads share a batch only while more than one is waiting (they are behind), so
each test makes a backlog: TUN super-packets or datagrams queued while the data plane is
stopped. With four threads per direction (more than this machine may have cores: the
threads still interleave), the shared work must come out exactly as one thread makes it:
each packet with the next counter, sent in counter order, each opened by the independent
Python reference; received packets opened, checked against the replay window and written
in arrival order, with a forgery in the middle dropped alone.
"""

from __future__ import annotations

import os
import struct

import pytest

from pywg import _constants as constants
from pywg._driver.datapath import DataPlane, Settings
from pywg._driver.offload import Offload
from tests.c.dpnet import Node, PyPeer
from tests.c.test_offload import (
    arrive_in_one_batch,
    burst_from_tun,
    flow_in,
    make_side,
    received,
    send_gso,
    tun_writes,
)
from tests.harness import netns
from tests.harness.skips import require_root
from tests.support import offload_ref as ref
from tests.support import transport

THREADS = 4


@pytest.fixture
def side(ns):
    n, far = make_side(ns, crypto_threads=THREADS)
    try:
        yield n, far
    finally:
        n.close()
        far.close()


@pytest.fixture(scope="module")
def ns():
    require_root()
    with netns.namespace("pcw") as name:
        yield name


def test_the_setting_is_kept_and_bounded() -> None:
    with DataPlane(Settings(max_peers=2)) as dp:
        assert 1 <= dp.crypto_threads() <= constants.DATAPLANE_MAX_CRYPTO_THREADS
    with DataPlane(Settings(max_peers=2, crypto_threads=3)) as dp:
        assert dp.crypto_threads() == 3
    with pytest.raises(OSError):
        DataPlane(Settings(max_peers=2, crypto_threads=constants.DATAPLANE_MAX_CRYPTO_THREADS + 1))


def backlog_from_tun(n: Node, supers: int, count: int = 150) -> list[bytes]:
    """More than one batch waiting on the TUN (what makes the thread share its work):
    `supers` TSO super-packets of `count` segments, written while the data plane is
    stopped."""
    n.dp.stop()
    segs: list[bytes] = []
    for _ in range(supers):
        segs += burst_from_tun(n, count, size=400)
    n.dp.start()
    return segs


def test_a_shared_seal_keeps_counters_and_order(side) -> None:
    n, far = side
    segs = backlog_from_tun(n, 8)                 # 1200 packets: more than DP_BURST
    datagrams = [far.receive() for _ in range(len(segs))]
    counters = [struct.unpack_from("<Q", d, 8)[0] for d in datagrams]
    assert counters == list(range(len(segs)))
    opened = [far.open(d) for d in datagrams]
    assert all(isinstance(o, transport.Opened) for o in opened)
    assert [transport.trim(o.plaintext) for o in opened] == segs  # type: ignore[union-attr]


def test_a_shared_open_keeps_order_and_the_replay_window(side) -> None:
    n, far = side
    flow = flow_in(4)
    # A full receive (128 datagrams) is shared; two more follow in the next batch.
    packets = [flow.tcp(1000 * k, os.urandom(1000), ident=k) for k in range(129)]
    sealed = [far.seal(p) for p in packets]
    forged = bytearray(sealed[41])
    forged[20] ^= 1
    sealed[41] = bytes(forged)
    # A replayed one too: the same counter as packet 10, again at the end.
    batch = [*sealed, sealed[10]]
    arrive_in_one_batch_datagrams(n, far, batch)
    delivered = []
    for h, p in tun_writes(n, 128):
        delivered += [p] if h["gso_type"] == ref.GSO_NONE else ref.segment(p, h["gso_size"])
    assert delivered == packets[:41] + packets[42:]
    st = n.dp.stats()
    assert st.drop_decrypt == 1 and st.drop_replay == 1


def arrive_in_one_batch_datagrams(n: Node, far: PyPeer, datagrams: list[bytes]) -> None:
    """Already sealed datagrams, sent while the data plane is stopped."""
    n.dp.stop()
    to = n.endpoint()
    for d in datagrams:
        far.send(d, to)
    n.dp.start()


def test_shared_work_with_offloads_off(ns) -> None:
    n, far = make_side(ns, crypto_threads=THREADS, offloads=Offload.NONE)
    try:
        segs = backlog_from_tun(n, 8)
        assert received(far, len(segs)) == segs
        back = [flow_in(6).udp(os.urandom(900), ident=k) for k in range(128)]
        arrive_in_one_batch(n, far, back)
        assert [n.read_tun()[10:] for _ in range(128)] == back
    finally:
        n.close()
        far.close()


def test_gso_datagrams_opened_by_several_threads(side) -> None:
    n, far = side
    flow = flow_in(4)
    # Coalesced sends of 50 (any kernel's UDP_MAX_SEGMENTS): 1250 packets, more than a
    # batch takes.
    packets = [flow.udp(k.to_bytes(2, "big") * 150, ident=k) for k in range(1250)]
    n.dp.stop()
    for k in range(0, len(packets), 50):
        send_gso(far, [far.seal(p) for p in packets[k:k + 50]],
                 (str(n.endpoint().address), n.endpoint().port))
    n.dp.start()
    delivered = []
    for h, p in tun_writes(n, len(packets)):
        delivered += [p] if h["gso_type"] == ref.GSO_NONE else ref.segment(p, h["gso_size"])
    assert delivered == packets
