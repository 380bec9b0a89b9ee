"""pywg._driver.device.Device's peer slots in the data plane: handed out lazily, reused after a peer
is removed, never more than max_peers at once. No root needed (no TUN, no socket)."""

from __future__ import annotations

import os

import pytest

from pywg._config.errors import ConfigError
from pywg._config.uapi import parse_set
from pywg._driver.device import Device


def key() -> str:
    return os.urandom(32).hex()


def set_(device: Device, *lines: str) -> None:
    device.apply(parse_set(lines))


def peers(device: Device) -> set[str]:
    return {p.public_key.raw.hex() for p in device.snapshot().config.peers}


@pytest.fixture
def device():
    dev = Device(None, max_peers=2)
    yield dev
    dev.close()


def test_slots_of_removed_peers_are_reused(device: Device) -> None:
    kept, other = key(), key()
    set_(device, f"public_key={kept}", f"public_key={other}")
    for _ in range(5):
        new = key()
        set_(device, f"public_key={other}", "remove=true", f"public_key={new}")
        other = new
        assert peers(device) == {kept, other}


def test_no_more_peers_than_slots(device: Device) -> None:
    set_(device, f"public_key={key()}", f"public_key={key()}")
    before = peers(device)
    with pytest.raises(ConfigError):
        set_(device, f"public_key={key()}")
    assert peers(device) == before
