"""What an application reads of a running device: per-peer statistics and the device's own.

The same numbers `wg show` and pywg's metrics report, read the same way (the driver's
configuration and the data plane's counters); nothing secret is in them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pywg._api.peer import Network
from pywg._protocol.endpoint import Endpoint

__all__ = ["DeviceStats", "PeerStats"]


@dataclass(frozen=True, slots=True)
class PeerStats:
    """One peer as the device sees it now."""

    public_key: bytes
    endpoint: Endpoint | None  # where the device sends to it now (it follows roaming)
    allowed_ips: tuple[Network, ...]
    persistent_keepalive: int  # seconds, 0: off
    last_handshake: float | None  # Unix time of the latest completed handshake; None: never
    rx_bytes: int  # bytes received from it, WireGuard's own messages included (wg's transfer)
    tx_bytes: int  # bytes sent to it
    has_preshared_key: bool


@dataclass(frozen=True, slots=True)
class DeviceStats:
    """The device as a whole."""

    peers: int
    rx_bytes: int  # the sum of every peer's rx_bytes
    tx_bytes: int  # the sum of every peer's tx_bytes
    rx_packets: int  # UDP datagrams received
    tx_packets: int  # UDP datagrams sent
    handshakes_completed: int  # sessions confirmed, as initiator or as responder
    handshake_initiations_sent: int
    # What the device dropped, by reason: the data plane's counters (as `pywg_drop_*` in
    # the UAPI's `get` and `pywg_dropped_packets_total` in the metrics, without the
    # `drop_` prefix), and "handshake" for handshake messages the protocol core refused.
    drops: Mapping[str, int]
