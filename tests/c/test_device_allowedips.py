"""A Device's allowed IPs live only in its data plane: what `get` lists (and so `wg show`,
`wg showconf`) is read from C, and must be what the configuration model says, order
included: each peer's prefixes in the order given, a prefix given again moved to the end,
one given to another peer taken from the first. No root needed (no TUN, no socket)."""

from __future__ import annotations

import os
import random

import pytest

from pywg._config.model import DeviceConfig
from pywg._config.uapi import MemoryDevice, parse_set
from pywg._driver.device import Device
from pywg._tools.uapi_client import parse_get

KEYS = [os.urandom(32).hex() for _ in range(4)]
NETS = ["10.0.0.0/8", "10.1.0.0/16", "10.1.2.3/32", "fd00::/64", "fd00::1/128", "0.0.0.0/0",
        "::/0", "192.0.2.0/24"]


@pytest.fixture
def device():
    dev = Device(None, max_peers=8)
    yield dev
    dev.close()


def listed(device: Device | MemoryDevice) -> DeviceConfig:
    """The configuration a `get` reply describes, parsed back as wg(8) would."""
    lines = b"".join(device.get()).decode().split("\n")
    assert lines[-3:] == ["errno=0", "", ""]
    return parse_get(lines[:-3]).config


def both(device: Device, twin: MemoryDevice, *lines: str) -> None:
    change = parse_set(lines)
    device.apply(change)
    twin.apply(change)
    assert listed(device).peers == listed(twin).peers
    assert device.snapshot().config.peers == twin.config.peers


def test_order_given_moves_and_removals(device: Device) -> None:
    twin = MemoryDevice()
    a, b = KEYS[0], KEYS[1]
    both(device, twin, f"public_key={a}", *(f"allowed_ip={n}" for n in NETS[:5]))
    both(device, twin, f"public_key={a}", "allowed_ip=10.0.0.0/8")  # to the end
    both(device, twin, f"public_key={b}", "allowed_ip=10.1.0.0/16",  # taken from a
         f"public_key={a}", "allowed_ip=-fd00::/64", "allowed_ip=fd00::/64")
    both(device, twin, f"public_key={a}", "replace_allowed_ips=true",
         *(f"allowed_ip={n}" for n in reversed(NETS)))
    assert [str(n) for n in listed(device).peers[0].allowed_ips] == list(reversed(NETS))
    assert listed(device).peers[1].allowed_ips == ()
    both(device, twin, "replace_peers=true", f"public_key={b}", "allowed_ip=10.1.2.3/32")
    assert device.dp.allowed_ips_count() == 1


def test_random_sets_against_the_model(device: Device) -> None:
    rng = random.Random(5)
    twin = MemoryDevice()
    for _ in range(300):
        lines: list[str] = []
        if rng.random() < 0.05:
            lines.append("replace_peers=true")
        for _ in range(rng.randint(1, 3)):
            lines.append(f"public_key={rng.choice(KEYS)}")
            for _ in range(rng.randint(0, 4)):
                pick = rng.random()
                if pick < 0.6:
                    lines.append(f"allowed_ip={rng.choice(NETS)}")
                elif pick < 0.8:
                    lines.append(f"allowed_ip=-{rng.choice(NETS)}")
                elif pick < 0.9:
                    lines.append("replace_allowed_ips=true")
                elif pick < 0.95:
                    lines.append("remove=true")
                else:
                    lines.append("update_only=true")
        both(device, twin, *lines)
