"""Internal: pywg's configuration, shared by the driver's UAPI server and the tools.

- model.py: immutable DeviceConfig / PeerConfig, keys, endpoints, and Change (a `set`).
- apply.py: apply(state, change) -> (new_state, effects), all or nothing.
- values.py: strict parsers for UAPI and configuration-file values.
- uapi.py: the UAPI's text format (get replies, set requests).
No I/O here. (wg(8) and wg-quick(8) configuration files are in pywg/_tools/conffile.py.)
"""
