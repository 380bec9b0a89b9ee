"""pywg/datapath.py's contract, no root needed: errors as OSError with the C errno,
argument checks, endpoints in and out, and the keypair slots as peer_info reports them."""

from __future__ import annotations

import errno
import ipaddress
import os
import time

import pytest

from pywg.datapath import PEER_NONE, DataPlane, Endpoint, EventType, Settings
from pywg.protocol.timers import Timing


@pytest.fixture
def dp():
    with DataPlane(Settings(max_peers=8)) as plane:
        plane.add_peer(1)
        yield plane


def keypair(dp: DataPlane, peer: int, index: int, initiator: bool) -> None:
    dp.install_keypair(peer, local_index=index, remote_index=index + 100, send_key=os.urandom(32),
                       receive_key=os.urandom(32), initiator=initiator,
                       birth_ns=time.monotonic_ns())


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
    keypair(dp, 1, 10, initiator=True)
    keypair(dp, 1, 11, initiator=False)
    info = dp.peer_info(1)
    assert (info.previous_index, info.current_index, info.next_index) == (None, 10, 11)
    assert info.current_initiator and info.current_birth_ns > 0
    keypair(dp, 1, 12, initiator=True)
    info = dp.peer_info(1)
    assert (info.previous_index, info.current_index, info.next_index) == (11, 12, None)
    with pytest.raises(ValueError):
        dp.install_keypair(1, local_index=1, remote_index=2, send_key=bytes(31),
                           receive_key=bytes(32), initiator=True, birth_ns=0)
    dp.clear_keypairs(1)
    assert dp.peer_info(1).current_index is None


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
