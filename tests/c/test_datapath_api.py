"""pywg/_driver/datapath.py's contract, no root needed: errors as OSError with the C errno,
argument checks, endpoints in and out, and the keypair slots as peer_info reports them."""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
import time

import pytest

from pywg._driver.datapath import (
    PEER_NONE,
    DataPlane,
    Endpoint,
    Event,
    EventType,
    Settings,
    pack_endpoint,
)
from pywg._protocol.timers import Timing


@pytest.fixture
def dp():
    with DataPlane(Settings(max_peers=8)) as plane:
        plane.add_peer(1)
        yield plane


def keypair(dp: DataPlane, peer: int, initiator: bool) -> int:
    """A handshake's index from the data plane, then the keypair under it; the index."""
    index = dp.new_index(peer)
    dp.install_keypair(peer, local_index=index, remote_index=index ^ 1, send_key=os.urandom(32),
                       receive_key=os.urandom(32), initiator=initiator,
                       birth_ns=time.monotonic_ns())
    return index


def test_bad_settings_are_refused() -> None:
    for bad in (Settings(max_peers=0), Settings(event_ring_size=100),
                Settings(timing=Timing(reject_after_time_ns=0))):
        with pytest.raises(OSError) as e:
            DataPlane(bad)
        assert e.value.errno == errno.EINVAL


def test_peer_slots(dp: DataPlane) -> None:
    with pytest.raises(FileExistsError):
        dp.add_peer(1)
    with pytest.raises(OSError) as e:
        dp.add_peer(8)
    assert e.value.errno == errno.EINVAL
    for call in (dp.peer_info, dp.remove_peer, dp.send_keepalive, dp.clear_keypairs,
                 dp.clear_staged, dp.clear_source):
        with pytest.raises(FileNotFoundError):
            call(2)
    dp.remove_peer(1)
    dp.add_peer(1)  # a slot can be reused


def test_endpoint_round_trip(dp: DataPlane) -> None:
    info = dp.peer_info(1)
    assert info.endpoint is None and info.current_index is None and info.staged == 0
    for ep in (Endpoint(ipaddress.ip_address("192.0.2.1"), 51820),
               Endpoint(ipaddress.ip_address("2001:db8::1"), 1, scope_id=3,
                        source=ipaddress.ip_address("2001:db8::2"), source_ifindex=7)):
        dp.set_endpoint(1, ep)
        assert dp.peer_info(1).endpoint == ep
    dp.clear_source(1)
    assert dp.peer_info(1).endpoint == Endpoint(ipaddress.ip_address("2001:db8::1"), 1, scope_id=3)
    dp.set_endpoint(1, None)
    assert dp.peer_info(1).endpoint is None
    with pytest.raises(ValueError):
        Endpoint(ipaddress.ip_address("192.0.2.1"), 70000)
    with pytest.raises(ValueError):
        Endpoint(ipaddress.ip_address("192.0.2.1"), 1, source=ipaddress.ip_address("::1"))


def test_sending_without_sockets(dp: DataPlane) -> None:
    with pytest.raises(OSError) as e:
        dp.send_to_peer(1, b"\x01" + bytes(147))
    assert e.value.errno == errno.EDESTADDRREQ
    dp.set_endpoint(1, Endpoint(ipaddress.ip_address("192.0.2.1"), 51820))
    with pytest.raises(OSError) as e:
        dp.send_to_peer(1, b"\x01" + bytes(147))
    assert e.value.errno == errno.EAFNOSUPPORT


def test_keypair_slots_follow_the_rotation(dp: DataPlane) -> None:
    k10 = keypair(dp, 1, initiator=True)
    k11 = keypair(dp, 1, initiator=False)
    info = dp.peer_info(1)
    assert (info.previous_index, info.current_index, info.next_index) == (None, k10, k11)
    assert info.current_initiator and info.current_birth_ns > 0
    k12 = keypair(dp, 1, initiator=True)
    info = dp.peer_info(1)
    assert (info.previous_index, info.current_index, info.next_index) == (k11, k12, None)
    assert len({k10, k11, k12}) == 3
    with pytest.raises(ValueError):
        dp.install_keypair(1, local_index=1, remote_index=2, send_key=bytes(31),
                           receive_key=bytes(32), initiator=True, birth_ns=0)
    dp.clear_keypairs(1)
    assert dp.peer_info(1).current_index is None


def test_a_keypair_needs_its_handshakes_index(dp: DataPlane) -> None:
    """The data plane owns the indices: a keypair goes in only under the index of the
    peer's pending handshake, and a newer handshake supersedes the older one's."""
    def install(index: int) -> None:
        dp.install_keypair(1, local_index=index, remote_index=7, send_key=os.urandom(32),
                           receive_key=os.urandom(32), initiator=True,
                           birth_ns=time.monotonic_ns())

    with pytest.raises(OSError) as e:
        install(1234)  # never drawn
    assert e.value.errno == errno.ESTALE
    older = dp.new_index(1)
    newer = dp.new_index(1)
    with pytest.raises(OSError) as e:
        install(older)
    assert e.value.errno == errno.ESTALE
    install(newer)
    assert dp.peer_info(1).current_index == newer
    with pytest.raises(OSError) as e:
        install(newer)  # a handshake's index serves one keypair
    assert e.value.errno == errno.ESTALE
    with pytest.raises(FileNotFoundError):
        dp.new_index(2)


def test_keepalive_without_keypair_is_staged_once(dp: DataPlane) -> None:
    dp.send_keepalive(1)
    dp.send_keepalive(1)
    assert dp.peer_info(1).staged == 1  # the second found a staged packet: nothing new
    events = dp.read_events()
    assert [(e.type, e.peer) for e in events] == [(EventType.NEED_HANDSHAKE, 1)]
    dp.clear_staged(1)
    assert dp.stats().drop_staged_cleared == 1


def test_lookup_none_and_closed_handle() -> None:
    plane = DataPlane(Settings(max_peers=2))
    assert plane.lookup(ipaddress.ip_address("10.0.0.1")) is None
    assert PEER_NONE == 2**32 - 1
    plane.close()
    plane.close()
    with pytest.raises(ValueError):
        plane.add_peer(0)


def test_handshake_received_counts_as_authenticated(dp: DataPlane) -> None:
    dp.add_peer(3)
    before = dp.peer_info(3)
    assert (before.rx_bytes, before.last_rx_auth_ns) == (0, 0)
    dp.handshake_received(3, 92, 12345)
    after = dp.peer_info(3)
    assert after.rx_bytes == 92 and after.last_rx_auth_ns == 12345
    assert after.last_rx_data_ns == 0 and after.first_rx_data_since_tx_ns == 0
    assert 3 in dp.active_peers()
    with pytest.raises(FileNotFoundError):
        dp.handshake_received(4, 92, 1)


def _udp(family: socket.AddressFamily) -> socket.socket:
    s = socket.socket(family, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1" if family == socket.AF_INET else "::1", 0))
    return s


def _heard(plane: DataPlane, to: socket.socket, before: int) -> bool:
    """Sends a datagram (garbage, so dropped and counted) to `to`; True once the data
    plane has read it."""
    with socket.socket(to.family, socket.SOCK_DGRAM) as sender:
        sender.sendto(b"\x01not wireguard", to.getsockname()[:2])
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if plane.stats().udp_rx_packets > before:
            return True
        time.sleep(0.002)
    return False


# The close behind the data plane's back is this test's point: it races the receive thread's
# recvmmsg on that fd on purpose, which ThreadSanitizer rightly reports (make tsan).
@pytest.mark.skipif(os.environ.get("PYWG_EXPECT_SANITIZED") == "tsan",
                    reason="closes a socket under the receive thread on purpose")
def test_a_new_socket_under_a_dead_sockets_number_is_heard() -> None:
    """A socket closed behind the data plane's back reads as POLLNVAL and is left out;
    wg_dp_set_udp with a new socket under the same fd number must bring it back (the
    receive thread once kept ignoring the number, deaf to that family for good)."""
    udp4, udp6 = _udp(socket.AF_INET), _udp(socket.AF_INET6)
    number = udp4.fileno()
    with DataPlane(Settings(udp4_fd=number, udp6_fd=udp6.fileno())) as plane:
        plane.start()
        assert _heard(plane, udp4, 0)
        udp4.close()
        # A datagram on the other socket wakes the thread, which now sees the dead fd.
        assert _heard(plane, udp6, plane.stats().udp_rx_packets)
        fresh = _udp(socket.AF_INET)
        if fresh.fileno() != number:  # the kernel reuses the lowest number; make sure
            os.dup2(fresh.fileno(), number)
            fresh.close()
            fresh = socket.socket(fileno=number)
        try:
            plane.set_udp(number, udp6.fileno())
            assert _heard(plane, fresh, plane.stats().udp_rx_packets)
        finally:
            plane.set_udp(-1, -1)
            fresh.close()
    udp6.close()


def test_rebinding_again_and_again_never_goes_deaf() -> None:
    """Python's rebind: set_udp(-1, -1), close, open (the kernel hands out the same
    numbers), set_udp; every time, the new socket is heard."""
    udp4 = _udp(socket.AF_INET)
    with DataPlane(Settings(udp4_fd=udp4.fileno())) as plane:
        plane.start()
        for _ in range(300):
            plane.set_udp(-1, -1)
            udp4.close()
            udp4 = _udp(socket.AF_INET)
            plane.set_udp(udp4.fileno(), -1)
            assert _heard(plane, udp4, plane.stats().udp_rx_packets)
        plane.set_udp(-1, -1)
    udp4.close()


def test_receiver_indices_are_unique_across_pool_refills() -> None:
    """Indices come from a pooled draw of the kernel's CSPRNG: each draw used once, the
    pool refilled when empty, every index unique and found again under its entry."""
    from _wgdp_test import ffi, lib  # the test-only module: tests/conftest.py

    n = 1000
    indices, left = ffi.new("uint32_t[]", n), ffi.new("uint32_t[]", n)
    assert lib.wg_indextable_draws(n, indices, left) == 0
    drawn, pool = list(indices), list(left)
    assert len(set(drawn)) == n
    size = pool[0] + 1  # the first draw filled the pool and took one
    assert size > 1 and pool[:size] == list(range(size - 1, -1, -1))
    assert pool[size] == size - 1  # empty, refilled by the next draw
    assert pool.count(size - 1) == -(-n // size)
    # Not a counter or a fixed sequence: another table draws other indices.
    again = ffi.new("uint32_t[]", n)
    assert lib.wg_indextable_draws(n, again, left) == 0
    assert len(set(drawn) & set(again)) < 5


def test_many_peers_draw_distinct_indices() -> None:
    with DataPlane(Settings(max_peers=300)) as plane:
        for peer in range(300):
            plane.add_peer(peer)
        assert len({plane.new_index(peer) for peer in range(300)}) == 300


def answer(dp: DataPlane, peer: int, source: Endpoint, response: bytes) -> tuple:
    """One answered initiation for answer_handshakes: a fresh index of the peer's."""
    return (peer, pack_endpoint(source), 148, dp.new_index(peer), 7000 + peer, os.urandom(32),
            os.urandom(32), time.monotonic_ns(), response)


def test_answered_handshakes_in_one_call() -> None:
    """answer_handshakes does for each answer what the driver did in four calls: the peer
    roams to the source, the initiation counts as received, the keypair goes in as next,
    the response goes out (to each its own destination), counted as sent."""
    ours = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    ours.bind(("127.0.0.1", 0))
    theirs = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(3)]
    for sock in theirs:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(5)
    with ours, DataPlane(Settings(max_peers=8, udp4_fd=ours.fileno())) as dp:
        for peer in (1, 2, 3):
            dp.add_peer(peer)
        sources = [Endpoint(ipaddress.ip_address("127.0.0.1"), s.getsockname()[1])
                   for s in theirs]
        responses = [bytes([2, 0, 0, 0, peer]) + os.urandom(87) for peer in (1, 2, 3)]
        stale = answer(dp, 2, sources[1], responses[1])
        answers = [answer(dp, 1, sources[0], responses[0]), stale,
                   answer(dp, 2, sources[1], responses[1]),  # takes the index from `stale`
                   answer(dp, 3, sources[2], responses[2])]
        now = time.monotonic_ns()
        results = dp.answer_handshakes(answers, now)
        assert results == [0, -errno.ESTALE, 0, 0]
        for peer, sock, source, response, (_, _, _, index, *_) in zip(
                (1, 2, 3), theirs, sources, responses, (answers[0], answers[2], answers[3]),
                strict=True):
            assert sock.recv(200) == response
            info = dp.peer_info(peer)
            assert info.endpoint == source and info.next_index == index
            assert info.current_index is None
            assert info.rx_bytes == 148 * (2 if peer == 2 else 1)  # the stale one counted too
            assert info.tx_bytes == 92 and info.last_rx_auth_ns == now
        for sock in theirs:
            sock.close()
        # What it cannot do, it says, and does nothing else.
        dp.remove_peer(3)
        gone = answer(dp, 1, sources[0], responses[0])
        nowhere = (1, bytes(len(pack_endpoint(sources[0]))), *gone[2:])
        assert dp.answer_handshakes([(3, *gone[1:]), nowhere], now) == \
            [-errno.ENOENT, -errno.EAFNOSUPPORT]
        with pytest.raises(ValueError):
            dp.answer_handshakes([(1, *gone[1:8], b"short")], now)
        assert dp.answer_handshakes([], now) == []


def test_events_keep_their_source_raw_until_asked() -> None:
    ep = Endpoint(ipaddress.ip_address("2001:db8::5"), 51820, scope_id=2,
                  source=ipaddress.ip_address("2001:db8::1"), source_ifindex=4)
    for endpoint in (ep, Endpoint(ipaddress.ip_address("192.0.2.9"), 1)):
        raw = pack_endpoint(endpoint)
        event = Event(EventType.HANDSHAKE, None, 1, raw, b"\x01")
        assert event.has_source and event.source == endpoint
    none = Event(EventType.TUN_GONE, None, 1, bytes(len(raw)), b"")
    assert not none.has_source and none.source is None
