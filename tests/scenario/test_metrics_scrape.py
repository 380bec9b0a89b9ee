"""A device's metrics read a slice of peers at a time on its event loop, while the loop goes
on changing the device: every peer read exactly once, the loop's other work served between
slices, and scrapes that stay whole (parsed by prometheus_client's own parser) while peers
are removed, added and their allowed IPs moved under them. In process: one real Device
(production driver and C data plane, no TUN), no root."""

from __future__ import annotations

import asyncio
import collections
import gzip
import os
import threading
from collections.abc import Iterator

import pytest
import uvloop
from prometheus_client.parser import text_string_to_metric_families

from pywg._config.model import PeerConfig, PublicKey
from pywg._config.uapi import format_prefix, parse_set
from pywg._driver import metrics
from pywg._driver.device import Device
from pywg._tools import keys

SLICE = 16


def _peer_lines(key: bytes, n: int) -> list[str]:
    return [f"public_key={key.hex()}", f"endpoint=192.0.2.{n % 250 + 1}:{1024 + n}",
            f"allowed_ip=10.{n >> 8 & 255}.{n & 255}.0/24"]


@pytest.fixture
def device() -> Iterator[Device]:
    device = Device(None, max_peers=4096)
    lines = [f"private_key={keys.generate_private_key().hex()}"]
    for n in range(10 * SLICE + 5):  # ten slices and a short one
        lines += _peer_lines(os.urandom(32), n)
    device.apply(parse_set(lines, max_lines=len(lines) + 1))
    try:
        yield device
    finally:
        device.close()


def _run(coroutine: object) -> object:
    loop = uvloop.new_event_loop()
    try:
        return loop.run_until_complete(coroutine)  # type: ignore[arg-type]
    finally:
        loop.close()


def test_a_reading_covers_every_peer_once_and_lets_the_loop_turn(device):
    async def read() -> tuple[metrics.Reading, int]:
        loop = asyncio.get_running_loop()
        turns = 0
        reading = metrics.start_reading(device, loop, lambda config: True, slice_peers=SLICE)
        future = asyncio.wrap_future(reading.future)
        while not future.done():
            await asyncio.sleep(0)
            turns += 1
        return await future, turns

    reading, turns = _run(read())  # type: ignore[misc]
    peers = reading.peers
    assert [id(c) for c in peers.configs] == [id(c) for c in device.config.peers]
    assert len(peers.transfers) == len(peers.handshakes_ns) == len(peers.configs)
    # Between two slices the loop ran this test's coroutine too: the reading never had it
    # to itself for longer than a slice.
    assert turns >= len(device.config.peers) // SLICE
    # Every peer's allowed IPs, as asked for, read with the peer.
    listed = device.allowed_ips(device.config.peers)
    assert [[format_prefix(*net) for net in peers.allowed_ips[row]]
            for row in range(len(peers.configs))] == [[str(net) for net in nets]
                                                       for nets in listed]


def test_peers_removed_and_added_during_a_reading(device):
    removed = {c.public_key for c in device.config.peers[::3]}
    added: set[PublicKey] = set()

    async def read_while_changing() -> metrics.Reading:
        loop = asyncio.get_running_loop()
        reading = metrics.start_reading(device, loop, None, slice_peers=SLICE)
        future = asyncio.wrap_future(reading.future)
        while not reading.future.running():  # its first slice is on its way
            await asyncio.sleep(0)
        doomed = list(removed)
        n = 1000
        while not future.done():
            # One change a turn of the loop, between two slices of the reading.
            if doomed:
                device.apply(parse_set([f"public_key={doomed.pop().raw.hex()}",
                                        "remove=true"]))
            key = os.urandom(32)
            device.apply(parse_set(_peer_lines(key, n)))
            added.add(PublicKey(key))
            n += 1
            await asyncio.sleep(0)
        return await future

    reading = _run(read_while_changing())
    assert isinstance(reading, metrics.Reading)
    began = [c.public_key for c in reading.config.peers]  # when the reading began
    keys_read = [c.public_key for c in reading.peers.configs]
    assert len(keys_read) == len(set(keys_read))  # none twice
    assert not set(keys_read) & added  # those added wait for the next reading
    assert set(keys_read) <= set(began)
    # Those never removed are all there, in their order; some removed were left out.
    assert [k for k in keys_read if k not in removed] == [k for k in began if k not in removed]
    assert len(keys_read) < len(began)
    assert added


def _parse(body: bytes) -> dict[str, list[dict[str, str]]]:
    """Each per-peer family's label sets; fails on text prometheus_client cannot parse."""
    samples = collections.defaultdict(list)
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            samples[sample.name].append(sample.labels)
    return samples


def test_scrapes_while_peers_come_and_go(device):
    """HTTP-less but otherwise as served: an Exporter reading through the loop, rendering in
    another thread, scraping as fast as it can while the loop changes the device."""
    peer_keys = [c.public_key for c in device.config.peers]
    errors: list[BaseException] = []
    bodies: list[bytes] = []

    async def scrape_while_changing() -> None:
        loop = asyncio.get_running_loop()
        exporter = metrics.Exporter(metrics.reader_on_loop(device, loop, slice_peers=SLICE),
                                    min_read_interval=0)
        stop = threading.Event()

        def scrape() -> None:
            try:
                while not stop.is_set() or len(bodies) < 6:
                    bodies.append(exporter.render(gzipped=len(bodies) % 2 == 1))
            except BaseException as e:  # handed to the test
                errors.append(e)

        scraper = threading.Thread(target=scrape)
        scraper.start()
        try:
            for n in range(300):
                victim = peer_keys.pop(n * 7 % len(peer_keys))
                device.apply(parse_set([f"public_key={victim.raw.hex()}", "remove=true"]))
                key = os.urandom(32)
                device.apply(parse_set(_peer_lines(key, 2000 + n)))
                peer_keys.append(PublicKey(key))
                # A prefix moved from one peer to another: both configurations change.
                owner, taker = peer_keys[n % 50], peer_keys[50 + n % 50]
                nets = device.allowed_ips([device.config.peer(owner)])[0]
                if nets:
                    device.apply(parse_set([f"public_key={taker.raw.hex()}",
                                            f"allowed_ip={nets[0]}"]))
                await asyncio.sleep(0)
        finally:
            stop.set()
            await loop.run_in_executor(None, scraper.join)
        # Still: the last scrape is the device as it is now.
        bodies.append(await loop.run_in_executor(None, exporter.render))
        exporter.close()

    _run(scrape_while_changing())
    assert not errors
    for i, body in enumerate(bodies):
        samples = _parse(gzip.decompress(body) if body[:2] == b"\x1f\x8b" else body)
        info = samples["wireguard_peer_info"]
        keys_seen = [labels["public_key"] for labels in info]
        assert len(keys_seen) == len(set(keys_seen)), f"scrape {i}: a peer twice"
        for name in ("wireguard_peer_receive_bytes_total",
                     "wireguard_peer_last_handshake_seconds"):
            assert [labels["public_key"] for labels in samples[name]] == keys_seen
    last = _parse(bodies[-1])["wireguard_peer_info"]
    config = device.config
    assert [labels["public_key"] for labels in last] == [
        c.public_key.base64() for c in config.peers]
    assert [labels["allowed_ips"] for labels in last] == [
        ",".join(str(net) for net in nets) for nets in device.allowed_ips(config.peers)]


def test_a_peer_whose_allowed_ips_move_gets_new_labels(device):
    """The labels kept from one scrape to the next follow a change of allowed IPs (apply
    gives the peer a new configuration) and of endpoint (the data plane's)."""
    async def scrape_twice() -> tuple[bytes, bytes, list[PeerConfig]]:
        loop = asyncio.get_running_loop()
        exporter = metrics.Exporter(metrics.reader_on_loop(device, loop, slice_peers=SLICE),
                                    min_read_interval=0)
        first = await loop.run_in_executor(None, exporter.render)
        a, b = device.config.peers[:2]
        device.apply(parse_set([f"public_key={b.public_key.raw.hex()}",
                                f"allowed_ip={device.allowed_ips([a])[0][0]}",
                                "endpoint=[2001:db8::1]:4242"]))
        second = await loop.run_in_executor(None, exporter.render)
        exporter.close()
        return first, second, [device.config.peer(a.public_key), device.config.peer(
            b.public_key)]

    first, second, (a, b) = _run(scrape_twice())  # type: ignore[misc]
    def info(body: bytes) -> dict[str, dict[str, str]]:
        return {labels["public_key"]: labels for labels in _parse(body)["wireguard_peer_info"]}
    before, after = info(first), info(second)
    a_key, b_key = a.public_key.base64(), b.public_key.base64()
    assert before[a_key]["allowed_ips"] and after[a_key]["allowed_ips"] == ""
    assert after[b_key]["allowed_ips"] == before[b_key]["allowed_ips"] + "," + \
        before[a_key]["allowed_ips"]
    assert after[b_key]["endpoint"] == "[2001:db8::1]:4242"
    assert before[b_key]["endpoint"] != after[b_key]["endpoint"]


def test_a_device_closed_under_a_reading_is_a_read_error(device):
    """Shutting down, the daemon frees the data plane while a scrape may be reading it: the
    scrape gets a ReadError (served as 503), and nothing is read from freed memory."""
    async def read_while_closing() -> BaseException | None:
        loop = asyncio.get_running_loop()
        read = metrics.reader_on_loop(device, loop, slice_peers=SLICE)
        scrape = loop.run_in_executor(None, read, None)
        while not scrape.done():
            device.close()  # at once, or between two slices of the reading
            await asyncio.sleep(0)
        return scrape.exception()

    error = _run(read_while_closing())
    assert isinstance(error, metrics.ReadError)
