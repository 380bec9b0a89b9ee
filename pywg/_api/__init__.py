"""Internal: the public API's implementation; `import pywg` exports it (docs/api.md).

- device.py: Device, an interface inside an application's asyncio program, over the driver.
- peer.py: Peer and the values it is made of (keys, endpoints, allowed IPs), checked.
- stats.py: PeerStats and DeviceStats, what an application reads.
- events.py: peer events (HandshakeCompleted, EndpointChanged, PeerStale), their delivery.
- packets.py: PacketInterface, the IP packets of a device without a TUN.
- errors.py: Error and its subclasses.
- loop.py: run(), an application's main coroutine on uvloop.
This layer imports the driver, the configuration and the protocol core; nothing imports it
but pywg/__init__.py.
"""
