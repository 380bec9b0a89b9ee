"""pywg's extra `get` keys: the drop counters, for `pywg status` and other clients.

wg(8) and wgctrl skip `get` keys they do not know, so pywg adds its own device counters to
the reply (pywg._config.uapi.format_get writes them as `pywg_NAME=N`): every drop counter
of the data plane by reason, and the handshake messages the control plane dropped. The
device is wrapped, not changed: `with_extras(device)` is what the UAPI server serves.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from pywg._config.model import Change
from pywg._config.uapi import DeviceSnapshot
from pywg._driver.datapath import Stats

if TYPE_CHECKING:
    from pywg._driver.device import Device

__all__ = ["ExtrasDevice", "drop_counters"]

_DROP_FIELDS = tuple(f.name for f in dataclasses.fields(Stats) if f.name.startswith("drop_"))


def drop_counters(stats: Stats, handshake_drops: int) -> dict[str, int]:
    """`drop_REASON` for every data-plane drop counter, and `drop_handshake`."""
    counters = {name: getattr(stats, name) for name in _DROP_FIELDS}
    counters["drop_handshake"] = handshake_drops
    return counters


class ExtrasDevice:
    """A UapiDevice: the device, its `get` replies carrying the drop counters."""

    def __init__(self, device: Device) -> None:
        self._device = device

    def snapshot(self) -> DeviceSnapshot:
        snapshot = self._device.snapshot()
        extras = drop_counters(self._device.dp.stats(), sum(self._device.drops.values()))
        return dataclasses.replace(snapshot, extras=extras)

    def apply(self, change: Change) -> None:
        self._device.apply(change)
