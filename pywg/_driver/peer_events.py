"""Peer events for an application that embeds pywg: the driver's side of the contract.

The driver (pywg._driver.device) holds an optional sink and tells it, where these things
happen, that a peer completed a handshake or was heard from a new address. With no sink
(the daemon, and any embedding application that did not subscribe) each place costs one
`is None` test, per handshake or per roam, never per peer or per packet. The sink is called
on the event loop, in the middle of the driver's own work: it must not raise and must not
call back into the device (pywg._api.events queues what it is told and delivers it later).
"""

from __future__ import annotations

from typing import Protocol

from pywg._protocol.endpoint import Endpoint

__all__ = ["PeerEventSink"]


class PeerEventSink(Protocol):
    def handshake_completed(self, public_key: bytes, wall_ns: int) -> None:
        """A session with the peer was confirmed (as initiator or as responder), at
        wall-clock `wall_ns`: what `wg show` calls its latest handshake."""

    def endpoint_changed(self, public_key: bytes, endpoint: Endpoint) -> None:
        """An authenticated packet (a handshake message or data) came from an address that
        is not the peer's endpoint, which follows it; not said of endpoints `set` configures."""
