"""What the driver counts of the handshake protocol, for pywg's metrics.

The data plane counts packets and what its handshake front line does (macs, cookie replies,
the rate limit, the under-load state: pywg._driver.datapath.Stats); the handshakes happen in
Python, so the driver counts them here, one integer each, where it acts. Handshake messages it drops
are counted by reason in `Device.drops`. Reading these from another thread is safe: each
is one int, written only by the event loop, and a reader copies them with `copy()`.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass
class HandshakeCounters:
    initiations_sent: int = 0
    responses_sent: int = 0
    completed: int = 0  # sessions confirmed, as initiator or as responder
    cookie_replies_received: int = 0
    attempts_exhausted: int = 0  # peers whose handshake attempts ran out (packets dropped)
    rekeys_requested: int = 0  # a keypair aged or was used enough: a new handshake asked for

    def copy(self) -> HandshakeCounters:
        return dataclasses.replace(self)
