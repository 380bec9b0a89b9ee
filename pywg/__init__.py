"""pywg: a userspace WireGuard with a Python control plane and a C data plane.

`import pywg` is the public API (docs/api.md): a Device that an asyncio application embeds,
with a TUN or with its own packet interface, its peers, statistics and peer events, and the
key functions of `wg genkey`/`pubkey`/`genpsk`. Everything it does not export is internal
and may change without notice. The layout under it follows the architecture
(docs/HACKING.md):

    pywg/_protocol/   the sans-I/O protocol core: messages, Noise, cookies, timer rules
    pywg/_driver/     the I/O around it: the device, the C data plane (pywg._wgdp), TUN,
                      UDP sockets, the UAPI server and the daemon process
    pywg/_config/     the configuration model: what `wg` can set, and `set` applied whole
    pywg/_api/        the public API's implementation, over the driver
    pywg/_tools/      the command line, `pywg up/down` (wg-quick), the UAPI client,
                      configuration files

The API's modules (and with them the C data plane) load when one of their names is first
used, so that the command-line tools that only need keys do not pay for them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from pywg._tools.keys import (
    KeyFormatError,
    from_base64,
    generate_preshared_key,
    generate_private_key,
    public_key,
    to_base64,
)

if TYPE_CHECKING:
    from pywg._api.device import Device
    from pywg._api.errors import (
        ClosedError,
        ConfigError,
        DeviceError,
        Error,
        PacketError,
        PeerExistsError,
        PeerNotFoundError,
    )
    from pywg._api.events import (
        EndpointChanged,
        EventStream,
        HandshakeCompleted,
        PeerEvent,
        PeerStale,
        Subscription,
    )
    from pywg._api.loop import run
    from pywg._api.packets import PacketInterface
    from pywg._api.peer import Peer
    from pywg._api.stats import DeviceStats, PeerStats
    from pywg._protocol.endpoint import Endpoint

__version__ = "0.1.0"
__all__ = [
    "ClosedError",
    "ConfigError",
    "Device",
    "DeviceError",
    "DeviceStats",
    "Endpoint",
    "EndpointChanged",
    "Error",
    "EventStream",
    "HandshakeCompleted",
    "KeyFormatError",
    "PacketError",
    "PacketInterface",
    "Peer",
    "PeerEvent",
    "PeerExistsError",
    "PeerNotFoundError",
    "PeerStale",
    "PeerStats",
    "Subscription",
    "__version__",
    "from_base64",
    "generate_preshared_key",
    "generate_private_key",
    "public_key",
    "run",
    "to_base64",
]

# Where each lazily loaded name lives.
_LAZY = {
    "Device": "pywg._api.device",
    "ClosedError": "pywg._api.errors",
    "ConfigError": "pywg._api.errors",
    "DeviceError": "pywg._api.errors",
    "Error": "pywg._api.errors",
    "PacketError": "pywg._api.errors",
    "PeerExistsError": "pywg._api.errors",
    "PeerNotFoundError": "pywg._api.errors",
    "EndpointChanged": "pywg._api.events",
    "EventStream": "pywg._api.events",
    "HandshakeCompleted": "pywg._api.events",
    "PeerEvent": "pywg._api.events",
    "PeerStale": "pywg._api.events",
    "Subscription": "pywg._api.events",
    "run": "pywg._api.loop",
    "PacketInterface": "pywg._api.packets",
    "Peer": "pywg._api.peer",
    "DeviceStats": "pywg._api.stats",
    "PeerStats": "pywg._api.stats",
    "Endpoint": "pywg._protocol.endpoint",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'pywg' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # looked up once
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
