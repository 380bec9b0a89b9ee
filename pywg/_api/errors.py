"""The API's errors: one root, Error, and a class for each thing an application can act on.

Every refusal leaves the device as it was: values are checked before anything is applied,
and a change is applied whole or not at all (pywg._config.apply). Messages never quote key
material.
"""

from __future__ import annotations

import errno as _errno

__all__ = [
    "ClosedError",
    "ConfigError",
    "DeviceError",
    "Error",
    "PacketError",
    "PeerExistsError",
    "PeerNotFoundError",
]


class Error(Exception):
    """The root of every error pywg's API raises."""


class ConfigError(Error, ValueError):
    """A value or a change the device does not take; nothing was changed. `errno` is what
    the UAPI would have replied (EINVAL for a bad value or a limit)."""

    def __init__(self, message: str, errno: int = _errno.EINVAL) -> None:
        super().__init__(message)
        self.errno = errno


class PeerExistsError(ConfigError):
    """add_peer of a public key the device already has as a peer."""

    def __init__(self, message: str) -> None:
        super().__init__(message, _errno.EEXIST)


class PeerNotFoundError(ConfigError, KeyError):
    """A public key that is not one of the device's peers."""

    def __init__(self, message: str) -> None:
        super().__init__(message, _errno.ENOENT)

    def __str__(self) -> str:
        # KeyError's own would quote the message as a repr.
        return str(self.args[0])


class DeviceError(Error, OSError):
    """The system refused: the TUN could not be made, the UDP port or the UAPI socket is
    taken. Raised with the errno the system gave; nothing was changed."""


class PacketError(Error, ValueError):
    """A packet the packet interface does not take (empty, or longer than an IP packet)."""


class ClosedError(Error):
    """The device was closed."""
