"""The Python API (`import pywg`), without root: two embedded devices in one process, no TUN,
peers over loopback UDP, each the real driver and C data plane.

What is checked against what: the peer events against the handshake that really happened
(each side's own record of it) and the addresses the kernel bound; byte counts against the
protocol's message sizes (whitepaper 5.4); drop counters against the datagrams and packets
the test itself sent; every documented exception against bad input, with the device's state
read before and after (unchanged) and the process's open files (nothing left open).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import os
import secrets
import shutil
import socket
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import pytest

import pywg
from pywg._constants import (
    MESSAGE_DATA_HEADER_SIZE,
    MESSAGE_INITIATION_SIZE,
    MESSAGE_PADDING_MULTIPLE,
    MESSAGE_RESPONSE_SIZE,
    NOISE_AUTHTAG_LEN,
)
from tests.support.packets import ipv4

WAIT_S = 10.0
STALE_S = 0.3  # the stale threshold these tests set: a handshake goes stale quickly
A, B = "10.0.0.1", "10.0.0.2"


def run(main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    pywg.run(main())


class Pair:
    """Two started devices that are each other's peer; only a knows b's endpoint."""

    def __init__(self, a: pywg.Device, b: pywg.Device, key_a: bytes, key_b: bytes) -> None:
        self.a, self.b = a, b
        self.key_a, self.key_b = key_a, key_b

    @property
    def pub_a(self) -> bytes:
        return pywg.public_key(self.key_a)

    @property
    def pub_b(self) -> bytes:
        return pywg.public_key(self.key_b)

    def peer_each_other(self) -> None:
        self.a.add_peer(pywg.Peer(self.pub_b, allowed_ips=[f"{B}/32"],
                                  endpoint=f"127.0.0.1:{self.b.listen_port}"))
        self.b.add_peer(pywg.Peer(self.pub_a, allowed_ips=[f"{A}/32"]))

    async def ping(self, payload: bytes = b"ping") -> None:
        """A packet from a to b and one back, each checked as it comes out."""
        await self.a.packets.send(ipv4(A, B, payload))
        assert await asyncio.wait_for(self.b.packets.recv(), WAIT_S) == ipv4(A, B, payload)
        await self.b.packets.send(ipv4(B, A, payload))
        assert await asyncio.wait_for(self.a.packets.recv(), WAIT_S) == ipv4(B, A, payload)


@contextlib.asynccontextmanager
async def pair(*, peered: bool = True, **kwargs: Any) -> AsyncIterator[Pair]:
    key_a, key_b = pywg.generate_private_key(), pywg.generate_private_key()
    async with pywg.Device(private_key=key_a, **kwargs) as a, \
            pywg.Device(private_key=key_b, **kwargs) as b:
        p = Pair(a, b, key_a, key_b)
        if peered:
            p.peer_each_other()
        yield p


def data_message_size(inner: int) -> int:
    """A type-4 message carrying `inner` bytes: header, padded payload, tag."""
    padded = -(-inner // MESSAGE_PADDING_MULTIPLE) * MESSAGE_PADDING_MULTIPLE
    return MESSAGE_DATA_HEADER_SIZE + padded + NOISE_AUTHTAG_LEN


async def settled(read: Callable[[], pywg.PeerStats],
                  transfer: tuple[int, int]) -> pywg.PeerStats:
    """The peer once its (tx, rx) is `transfer`, or as it is after WAIT_S."""
    loop = asyncio.get_running_loop()
    end = loop.time() + WAIT_S
    while (stats := read()).tx_bytes < transfer[0] or stats.rx_bytes < transfer[1]:
        if loop.time() > end:
            break
        await asyncio.sleep(0.01)
    return stats


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("0.0.0.0", 0))
        return int(s.getsockname()[1])


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


# ---- events ------------------------------------------------------------------------------

def test_a_real_handshake_raises_its_events_on_both_sides() -> None:
    async def main() -> None:
        async with pair(peered=False) as p:
            heard_by_a: list[pywg.PeerEvent] = []
            p.a.subscribe(heard_by_a.append)
            async with p.b.events() as events:
                p.peer_each_other()
                await p.ping()
                moved = await asyncio.wait_for(anext(events), WAIT_S)
                done = await asyncio.wait_for(anext(events), WAIT_S)
            # b learned a's address from the initiation: the port a's socket is bound to.
            assert moved == pywg.EndpointChanged(
                p.pub_a, pywg.Endpoint(ipaddress.ip_address("127.0.0.1"), p.a.listen_port))
            assert done == pywg.HandshakeCompleted(p.pub_a, p.b.peer(p.pub_a).last_handshake)
            # a initiated: one handshake, and it did not hear of b moving (b was where a
            # was told it is).
            assert heard_by_a == [pywg.HandshakeCompleted(p.pub_b,
                                                          p.a.peer(p.pub_b).last_handshake)]
            assert p.a.stats().handshakes_completed == p.b.stats().handshakes_completed == 1
    run(main)


def test_a_peer_that_moves_raises_endpoint_changed() -> None:
    async def main() -> None:
        async with pair() as p:
            await p.ping()
            new_port = free_udp_port()
            async with p.b.events() as events:
                p.a.set_listen_port(new_port)  # a roams: same session, a new address
                assert p.a.listen_port == new_port
                await p.ping(b"from elsewhere")
                moved = await asyncio.wait_for(anext(events), WAIT_S)
            assert moved == pywg.EndpointChanged(
                p.pub_a, pywg.Endpoint(ipaddress.ip_address("127.0.0.1"), new_port))
            assert p.b.peer(p.pub_a).endpoint == moved.endpoint
    run(main)


def test_a_silent_peer_goes_stale_once_after_its_last_handshake() -> None:
    async def main() -> None:
        async with pair(stale_after=STALE_S) as p:
            events: list[pywg.PeerEvent] = []
            stale = asyncio.Event()

            def heard(event: pywg.PeerEvent) -> None:
                events.append(event)
                if isinstance(event, pywg.PeerStale):
                    stale.set()
            p.a.subscribe(heard)
            await p.ping()
            await asyncio.wait_for(stale.wait(), WAIT_S)
            last = p.a.peer(p.pub_b).last_handshake
            assert last is not None
            assert events == [pywg.HandshakeCompleted(p.pub_b, last),
                              pywg.PeerStale(p.pub_b, last)]
            # Once stale it stays quiet: no second event for the same silence.
            await asyncio.sleep(3 * STALE_S)
            assert len(events) == 2
    run(main)


def test_a_listener_that_comes_later_still_hears_a_recent_peer_go_stale() -> None:
    async def main() -> None:
        async with pair(stale_after=STALE_S) as p:
            await p.ping()  # the handshake happens while nobody listens
            async with p.a.events() as events:
                event = await asyncio.wait_for(anext(events), WAIT_S)
            assert event == pywg.PeerStale(p.pub_b, p.a.peer(p.pub_b).last_handshake)
    run(main)


def test_a_removed_peer_does_not_go_stale() -> None:
    async def main() -> None:
        async with pair(stale_after=STALE_S) as p:
            events: list[pywg.PeerEvent] = []
            p.a.subscribe(events.append)
            await p.ping()
            p.a.remove_peer(p.pub_b)
            await asyncio.sleep(3 * STALE_S)
            assert [type(e) for e in events] == [pywg.HandshakeCompleted]
    run(main)


def test_a_failing_callback_harms_neither_the_others_nor_the_device() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        reported: list[dict[str, Any]] = []
        loop.set_exception_handler(lambda _loop, context: reported.append(context))

        def fail(event: pywg.PeerEvent) -> None:
            raise RuntimeError("the application's bug")
        async with pair() as p:
            heard: list[pywg.PeerEvent] = []
            p.a.subscribe(fail)
            p.a.subscribe(heard.append)
            await p.ping()
            await asyncio.sleep(0)  # events are delivered on the loop's next turn
            assert [type(e) for e in heard] == [pywg.HandshakeCompleted]
            assert [type(c["exception"]) for c in reported] == [RuntimeError]
            await p.ping(b"still going")
    run(main)


def test_callbacks_may_change_the_device() -> None:
    async def main() -> None:
        async with pair() as p:
            removed = asyncio.Event()

            def remove_on_handshake(event: pywg.PeerEvent) -> None:
                p.b.remove_peer(event.public_key)
                removed.set()
            p.b.subscribe(remove_on_handshake)
            await p.a.packets.send(ipv4(A, B))
            await asyncio.wait_for(removed.wait(), WAIT_S)
            assert p.b.peers() == []
    run(main)


def test_the_driver_has_a_sink_only_while_somebody_listens() -> None:
    async def main() -> None:
        async with pair() as p:
            driver = p.a._driver
            assert driver.events is None
            subscription = p.a.subscribe(lambda event: None)
            stream = p.a.events()
            assert driver.events is not None
            subscription.close()
            assert driver.events is not None
            stream.close()
            assert driver.events is None
    run(main)


def test_event_streams_end_when_the_device_closes() -> None:
    async def main() -> None:
        key = pywg.generate_private_key()
        device = pywg.Device(private_key=key)
        await device.start()
        stream = device.events()
        subscription = device.subscribe(lambda event: None)

        async def read_all() -> list[pywg.PeerEvent]:
            return [event async for event in stream]
        reader = asyncio.ensure_future(read_all())
        await asyncio.sleep(0)
        await device.close()
        assert await asyncio.wait_for(reader, WAIT_S) == []
        assert not subscription.active
    run(main)


# ---- statistics --------------------------------------------------------------------------

def test_transfer_is_what_went_over_the_wire() -> None:
    async def main() -> None:
        async with pair() as p:
            await p.ping(b"12345")
            inner = len(ipv4(A, B, b"12345"))
            a_sent = MESSAGE_INITIATION_SIZE + data_message_size(inner)
            b_sent = MESSAGE_RESPONSE_SIZE + data_message_size(inner)
            # A sender's thread adds to its count after the datagram left, so the receiver
            # may have it first: wait for the counts to arrive, then they must be exact.
            seen_by_a = await settled(lambda: p.a.peer(p.pub_b), (a_sent, b_sent))
            seen_by_b = await settled(lambda: p.b.peer(p.pub_a), (b_sent, a_sent))
            assert (seen_by_a.tx_bytes, seen_by_a.rx_bytes) == (a_sent, b_sent)
            assert (seen_by_b.tx_bytes, seen_by_b.rx_bytes) == (b_sent, a_sent)
            stats = p.a.stats()
            assert (stats.peers, stats.tx_bytes, stats.rx_bytes) == (1, a_sent, b_sent)
            assert (stats.tx_packets, stats.rx_packets) == (2, 2)
            assert stats.handshake_initiations_sent == 1
            assert p.a.peers() == [seen_by_a]
    run(main)


def test_drops_count_what_the_device_refused() -> None:
    async def main() -> None:
        async with pair() as p:
            await p.ping()
            before = p.b.stats().drops
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.sendto(b"\x07\x00\x00\x00 no such message", ("127.0.0.1", p.b.listen_port))
                s.sendto(b"\x04\x00\x00\x00" + bytes(60), ("127.0.0.1", p.b.listen_port))
            await p.b.packets.send(ipv4(B, "10.9.9.9"))  # no peer has that address...
            unreachable = await asyncio.wait_for(p.b.packets.recv(), WAIT_S)
            assert unreachable[9] == socket.IPPROTO_ICMP and unreachable[20] == 3  # ...said
            await p.ping(b"after")  # everything before it has been handled

            after = p.b.stats().drops
            changed = {k: after[k] - before[k] for k in after if after[k] != before[k]}
            assert changed == {"malformed": 1, "unknown_index": 1, "no_peer": 1}
    run(main)


def test_peer_reads_each_setting_back() -> None:
    async def main() -> None:
        psk = pywg.generate_preshared_key()
        key = pywg.public_key(pywg.generate_private_key())
        async with pywg.Device(private_key=pywg.generate_private_key()) as dev:
            dev.add_peer(pywg.Peer(pywg.to_base64(key), preshared_key=psk,
                                   endpoint=("fe80::1%1", 51820), persistent_keepalive=0,
                                   allowed_ips=["10.1.2.3/24", ipaddress.ip_network("fd00::/8")]))
            peer = dev.peer(key)
            assert peer.public_key == key and peer.has_preshared_key
            assert str(peer.endpoint) == "[fe80::1%1]:51820"
            assert peer.allowed_ips == (ipaddress.ip_network("10.1.2.0/24"),
                                        ipaddress.ip_network("fd00::/8"))
            assert (peer.last_handshake, peer.rx_bytes, peer.tx_bytes) == (None, 0, 0)
    run(main)


# ---- changing peers ----------------------------------------------------------------------

def test_update_peer_changes_only_what_it_is_given() -> None:
    async def main() -> None:
        async with pair() as p:
            other = pywg.public_key(pywg.generate_private_key())
            p.a.add_peer(pywg.Peer(other, allowed_ips=["10.0.0.64/26"]))
            p.a.update_peer(p.pub_b, preshared_key=pywg.generate_preshared_key())
            before = p.a.peer(p.pub_b)
            assert before.has_preshared_key and before.endpoint is not None
            # An allowed IP given to a peer moves from the one that had it (as in wg).
            p.a.update_peer(p.pub_b, allowed_ips=[f"{B}/32", "10.0.0.64/26"])
            p.a.update_peer(p.pub_b, preshared_key=None)
            after = p.a.peer(p.pub_b)
            assert not after.has_preshared_key
            assert after.endpoint == before.endpoint
            assert [str(n) for n in after.allowed_ips] == [f"{B}/32", "10.0.0.64/26"]
            assert p.a.peer(other).allowed_ips == ()
    run(main)


def test_a_removed_peer_is_gone_with_its_sessions() -> None:
    async def main() -> None:
        async with pair() as p:
            await p.ping()
            p.a.remove_peer(p.pub_b)
            assert p.a.peers() == []
            before = p.a.stats().drops["no_peer"]
            await p.a.packets.send(ipv4(A, B))
            for _ in range(100):  # the data plane drops it on its own thread
                if p.a.stats().drops["no_peer"] > before:
                    break
                await asyncio.sleep(0.01)
            assert p.a.stats().drops["no_peer"] == before + 1
    run(main)


# ---- bad input ---------------------------------------------------------------------------

def state_of(dev: pywg.Device) -> tuple[object, ...]:
    return (dev.public_key, dev.listen_port, dev.fwmark, dev.peers())


KEY = pywg.public_key(pywg.generate_private_key())

BAD_PEERS: list[tuple[str, Callable[[], object]]] = [
    ("short key", lambda: pywg.Peer(b"\x01" * 31)),
    ("key of the wrong type", lambda: pywg.Peer(12345)),  # type: ignore[arg-type]
    ("key not base64", lambda: pywg.Peer("not a key")),
    ("key base64 not canonical", lambda: pywg.Peer(pywg.to_base64(KEY)[:-2] + "B=")),
    ("psk too long", lambda: pywg.Peer(KEY, preshared_key=bytes(33))),
    ("endpoint without port", lambda: pywg.Peer(KEY, endpoint="192.0.2.1")),
    ("endpoint host name", lambda: pywg.Peer(KEY, endpoint="example.com:51820")),
    ("endpoint port too big", lambda: pywg.Peer(KEY, endpoint=("192.0.2.1", 65536))),
    ("endpoint of the wrong type", lambda: pywg.Peer(KEY, endpoint=51820)),  # type: ignore[arg-type]
    ("allowed IPs as one string", lambda: pywg.Peer(KEY, allowed_ips="10.0.0.0/8")),
    ("allowed IP prefix too long", lambda: pywg.Peer(KEY, allowed_ips=["10.0.0.0/33"])),
    ("allowed IP with a scope", lambda: pywg.Peer(KEY, allowed_ips=["fe80::1%eth0/64"])),
    ("allowed IP of the wrong type", lambda: pywg.Peer(KEY, allowed_ips=[10])),  # type: ignore[list-item]
    ("keepalive negative", lambda: pywg.Peer(KEY, persistent_keepalive=-1)),
    ("keepalive too big", lambda: pywg.Peer(KEY, persistent_keepalive=65536)),
    ("keepalive a bool", lambda: pywg.Peer(KEY, persistent_keepalive=True)),
]


@pytest.mark.parametrize(("what", "make"), BAD_PEERS, ids=[w for w, _ in BAD_PEERS])
def test_a_bad_peer_value_is_a_config_error(what: str, make: Callable[[], object]) -> None:
    with pytest.raises(pywg.ConfigError) as raised:
        make()
    assert isinstance(raised.value, ValueError) and raised.value.errno == errno.EINVAL
    # No key material in the message, whatever was passed.
    assert pywg.to_base64(KEY) not in str(raised.value) and KEY.hex() not in str(raised.value)


def test_refused_changes_leave_the_device_as_it_was() -> None:
    async def main() -> None:
        async with pair() as p:
            await p.ping()
            dev = p.a
            before = state_of(dev)
            stranger = pywg.public_key(pywg.generate_private_key())
            refusals: list[tuple[type[pywg.Error], Callable[[], object]]] = [
                (pywg.PeerExistsError, lambda: dev.add_peer(pywg.Peer(p.pub_b))),
                (pywg.ConfigError, lambda: dev.add_peer(pywg.Peer(p.pub_a))),  # ourselves
                (pywg.ConfigError, lambda: dev.add_peer("peer")),  # type: ignore[arg-type]
                (pywg.PeerNotFoundError, lambda: dev.update_peer(stranger, endpoint="[::1]:1")),
                (pywg.PeerNotFoundError, lambda: dev.remove_peer(stranger)),
                (pywg.PeerNotFoundError, lambda: dev.peer(stranger)),
                (pywg.ConfigError, lambda: dev.update_peer(p.pub_b, allowed_ips=[f"{B}/32", "x"])),
                (pywg.ConfigError, lambda: dev.update_peer(p.pub_b, endpoint="nowhere")),
                (pywg.ConfigError, lambda: dev.update_peer("short")),
                (pywg.ConfigError, lambda: dev.set_listen_port(65536)),
                (pywg.ConfigError, lambda: dev.set_listen_port(True)),
                (pywg.ConfigError, lambda: dev.set_fwmark(-1)),
                (pywg.ConfigError, lambda: dev.set_fwmark(1 << 32)),
                (pywg.ConfigError, lambda: dev.set_private_key(b"\x00" * 16)),
            ]
            for expected, call in refusals:
                with pytest.raises(expected):
                    call()
                assert state_of(dev) == before
            for packet in (b"", bytes(65536)):
                with pytest.raises(pywg.PacketError):
                    await dev.packets.send(packet)
            await p.ping(b"unharmed")
    run(main)


def test_a_port_in_use_is_a_device_error_and_changes_nothing() -> None:
    async def main() -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
            taken.bind(("0.0.0.0", 0))
            port = taken.getsockname()[1]
            async with pair() as p:
                await p.ping()
                before = state_of(p.a)
                with pytest.raises(pywg.DeviceError) as raised:
                    p.a.set_listen_port(port)
                assert raised.value.errno == errno.EADDRINUSE
                assert isinstance(raised.value, OSError)
                assert state_of(p.a) == before
                await p.ping(b"same port, same session")
            fds = open_fds()
            with pytest.raises(pywg.DeviceError):
                pywg.Device(listen_port=port)
            assert open_fds() == fds  # nothing of the failed device is left open
    run(main)


@pytest.mark.parametrize(("what", "kwargs"), [
    ("a TUN needs a name", {"tun": True}),
    ("the UAPI needs a name", {"uapi": True}),
    ("a bad name", {"name": "a/b", "tun": False}),
    ("an MTU too small", {"mtu": 67}),
    ("stale_after zero", {"stale_after": 0}),
    ("a bad private key", {"private_key": "not base64"}),
    ("a peer twice", {"peers": [pywg.Peer(KEY), pywg.Peer(KEY)]}),
    ("ourselves as a peer", {"private_key": bytes(range(32)),
                             "peers": [pywg.Peer(pywg.public_key(bytes(range(32))))]}),
    ("a port too big", {"listen_port": 1 << 16}),
])
def test_a_device_that_cannot_be_made_leaves_nothing_open(what: str,
                                                          kwargs: dict[str, Any]) -> None:
    fds = open_fds()
    with pytest.raises(pywg.ConfigError):
        pywg.Device(**kwargs)
    assert open_fds() == fds


def test_a_closed_device_refuses_everything() -> None:
    async def main() -> None:
        async with pair() as p:
            await p.ping()
        for call in (lambda: p.a.add_peer(pywg.Peer(KEY)), p.a.peers, p.a.stats,
                     lambda: p.a.listen_port, lambda: p.a.subscribe(print), p.a.start):
            with pytest.raises(pywg.ClosedError):
                result = call()
                if asyncio.iscoroutine(result):
                    await result
        with pytest.raises(pywg.ClosedError):
            await p.a.packets.send(ipv4(A, B))
        with pytest.raises(pywg.ClosedError):
            await p.a.packets.recv()
        await p.a.close()  # again: nothing happens
        assert p.a.closed
    run(main)


# ---- the packet interface and the device's life --------------------------------------------

def test_a_waiting_reader_ends_when_the_device_closes() -> None:
    async def main() -> None:
        device = pywg.Device(private_key=pywg.generate_private_key())
        await device.start()

        async def read_all() -> list[bytes]:
            return [packet async for packet in device.packets]
        reader = asyncio.ensure_future(read_all())
        await asyncio.sleep(0)
        await device.close()
        assert await asyncio.wait_for(reader, WAIT_S) == []
    run(main)


def test_closing_the_packet_interface_stops_the_device() -> None:
    async def main() -> None:
        async with pair() as p:
            await p.ping()
            p.b.packets.close()
            reason = await asyncio.wait_for(p.b.wait_stopped(), WAIT_S)
            assert reason == "the interface was removed"
    run(main)


def test_a_device_configured_before_it_starts_keeps_its_timers() -> None:
    # A persistent keepalive given to the constructor sends its first keepalive (and with it
    # the handshake) once the device runs, though nothing else happens.
    async def main() -> None:
        key_a, key_b = pywg.generate_private_key(), pywg.generate_private_key()
        async with pywg.Device(private_key=key_b) as b:
            b.add_peer(pywg.Peer(pywg.public_key(key_a)))
            peer_b = pywg.Peer(pywg.public_key(key_b), persistent_keepalive=1,
                               endpoint=f"127.0.0.1:{b.listen_port}")
            a = pywg.Device(private_key=key_a, peers=[peer_b])
            async with b.events() as events, a:
                port = a.listen_port
                moved = await asyncio.wait_for(anext(events), WAIT_S)
            assert moved == pywg.EndpointChanged(
                pywg.public_key(key_a), pywg.Endpoint(ipaddress.ip_address("127.0.0.1"), port))
    run(main)


def test_a_named_device_without_a_tun_has_a_packet_interface() -> None:
    async def main() -> None:
        async with pywg.Device("apitest0", tun=False) as dev:
            assert dev.name == "apitest0"
            dev.packets.fileno()  # a TUN-less device has one, whatever its name
    run(main)


# ---- what `wg` reads of the same device ----------------------------------------------------

async def wg_dump(name: str) -> list[list[str]]:
    """`wg show NAME dump` by the real tool, run while the device serves its UAPI socket."""
    proc = await asyncio.create_subprocess_exec("wg", "show", name, "dump",
                                                stdout=asyncio.subprocess.PIPE)
    out, _ = await asyncio.wait_for(proc.communicate(), WAIT_S)
    assert proc.returncode == 0
    return [line.split("\t") for line in out.decode().strip("\n").split("\n")]


async def uapi_get_extras(name: str) -> dict[str, int]:
    """pywg's own keys of a raw UAPI `get` (the drop counters), which `wg` ignores."""
    reader, writer = await asyncio.open_unix_connection(f"/var/run/wireguard/{name}.sock")
    try:
        writer.write(b"get=1\n\n")
        reply = (await asyncio.wait_for(reader.readuntil(b"\n\n"), WAIT_S)).decode()
    finally:
        writer.close()
    pairs = [line.partition("=") for line in reply.split("\n") if line]
    assert ("errno", "=", "0") in pairs
    return {k.removeprefix("pywg_drop_"): int(v) for k, _, v in pairs
            if k.startswith("pywg_drop_")}


def test_the_api_reads_what_wg_show_reads() -> None:
    """A device that also serves its UAPI socket, read by the real `wg` and by the API."""
    if os.geteuid() != 0 or shutil.which("wg") is None:
        pytest.skip("needs root (/var/run/wireguard) and the wg tool")
    name = f"api{secrets.token_hex(4)}"
    key_a, key_b = pywg.generate_private_key(), pywg.generate_private_key()
    psk = pywg.generate_preshared_key()

    async def main() -> None:
        async with pywg.Device(private_key=key_b) as b, \
                pywg.Device(name, tun=False, uapi=True, private_key=key_a, fwmark=0x51) as a:
            a.add_peer(pywg.Peer(pywg.public_key(key_b), allowed_ips=[f"{B}/32", "fd00::/64"],
                                 endpoint=f"127.0.0.1:{b.listen_port}", preshared_key=psk,
                                 persistent_keepalive=25))
            a.add_peer(pywg.Peer(pywg.public_key(pywg.generate_private_key())))
            b.add_peer(pywg.Peer(pywg.public_key(key_a), allowed_ips=[f"{A}/32"],
                                 preshared_key=psk))
            await a.packets.send(ipv4(A, B, b"to b"))
            assert await asyncio.wait_for(b.packets.recv(), WAIT_S) == ipv4(A, B, b"to b")
            await b.packets.send(ipv4(B, A, b"to a"))
            assert await asyncio.wait_for(a.packets.recv(), WAIT_S) == ipv4(B, A, b"to a")
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.sendto(b"\x07 not a message", ("127.0.0.1", a.listen_port))
            await b.packets.send(ipv4(B, A, b"after"))  # handled after the junk
            assert await asyncio.wait_for(a.packets.recv(), WAIT_S) == ipv4(B, A, b"after")
            # Counters may still move (a sender counts after its datagram left): compare a
            # dump with API readings taken on either side of it that agree with each other.
            for _ in range(100):
                before = a.peers()
                device, *rows = await wg_dump(name)
                extras = await uapi_get_extras(name)
                stats, ours = a.stats(), a.peers()
                if ours == before:
                    break
            port = a.listen_port

        assert device[1:] == [pywg.to_base64(pywg.public_key(key_a)), str(port), "0x51"]
        assert len(rows) == len(ours) == stats.peers == 2
        for row, peer in zip(rows, ours, strict=True):
            key, shared, endpoint, allowed, handshake, rx, tx, keepalive = row
            assert key == pywg.to_base64(peer.public_key)
            assert (shared != "(none)") == peer.has_preshared_key
            assert endpoint == (str(peer.endpoint) if peer.endpoint else "(none)")
            assert allowed == (",".join(str(n) for n in peer.allowed_ips) or "(none)")
            assert int(handshake) == int(peer.last_handshake or 0)
            assert (int(rx), int(tx)) == (peer.rx_bytes, peer.tx_bytes)
            assert keepalive == (str(peer.persistent_keepalive)
                                 if peer.persistent_keepalive else "off")
        assert ours[0].last_handshake is not None and ours[0].rx_bytes > 0
        assert (stats.rx_bytes, stats.tx_bytes) == (sum(int(r[5]) for r in rows),
                                                    sum(int(r[6]) for r in rows))
        assert extras["malformed"] >= 1
        assert {k: stats.drops[k] for k in extras} == extras
    run(main)
