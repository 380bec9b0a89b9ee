"""Internal: the driver, the I/O around the protocol core.

device.py is the driver proper (one interface on an asyncio loop); datapath.py is the only
importer of the C data plane; tun.py and bind.py open the TUN and the UDP sockets;
uapi_server.py serves the UAPI socket; daemon.py is the `wireguard-go IFNAME` process.
"""
