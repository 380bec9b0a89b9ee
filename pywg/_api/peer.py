"""A peer as an application describes it, and the values it is made of.

Keys are taken as 32 raw bytes or as the base64 text `wg` prints; endpoints as `ip:port` /
`[ip6]:port` text, an (ip, port) pair or an Endpoint; allowed IPs as `addr/len` text (a bare
address is a host, as wg(8) reads it) or ipaddress networks. Everything is checked here,
with pywg._config's parsers, when the value is made: a Peer that exists is one the device
can take, and what it holds is in one form only (bytes, Endpoint, ipaddress networks).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field

from pywg._api.errors import ConfigError
from pywg._config.errors import ConfigError as _ParseError
from pywg._config.values import (
    is_zero_key,
    parse_allowed_ip_entry,
    parse_base64_key,
    parse_endpoint,
)
from pywg._constants import API_KEEPALIVE_MAX_S, API_PORT_MAX, NOISE_PUBLIC_KEY_LEN
from pywg._protocol.endpoint import Endpoint

__all__ = [
    "EndpointLike",
    "KeyLike",
    "Network",
    "NetworkLike",
    "Peer",
    "endpoint_value",
    "int_value",
    "keepalive_value",
    "key_bytes",
    "network_value",
    "networks_value",
    "optional_key",
]

KeyLike = bytes | bytearray | memoryview | str
EndpointLike = str | tuple[str, int] | Endpoint
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
NetworkLike = str | Network

def key_bytes(value: KeyLike, what: str) -> bytes:
    """A key from 32 bytes or wg's base64; ConfigError naming `what`, never the value."""
    if isinstance(value, str):
        try:
            return parse_base64_key(value, what)
        except _ParseError as e:
            raise ConfigError(f"{what} is not a key: 44 characters of base64") from e
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        if len(raw) != NOISE_PUBLIC_KEY_LEN:
            raise ConfigError(f"{what} is {len(raw)} bytes, not {NOISE_PUBLIC_KEY_LEN}")
        return raw
    raise ConfigError(f"{what} must be bytes or base64 text, not {type(value).__name__}")


def optional_key(value: KeyLike | None, what: str) -> bytes | None:
    """A key that may be absent: None, or all zeros (the UAPI's way of saying none)."""
    if value is None:
        return None
    raw = key_bytes(value, what)
    return None if is_zero_key(raw) else raw


def endpoint_value(value: EndpointLike) -> Endpoint:
    if isinstance(value, Endpoint):
        return value
    if isinstance(value, str):
        try:
            return parse_endpoint(value)
        except _ParseError as e:
            raise ConfigError(f"endpoint {value!r}: {e.message}") from e
    if isinstance(value, tuple) and len(value) == 2:
        host, port = value
        try:
            port = int_value(port, "endpoint port", API_PORT_MAX)
            return Endpoint(ipaddress.ip_address(host), port)
        except ValueError as e:
            raise ConfigError(f"endpoint {value!r}: {e}") from e
    raise ConfigError("an endpoint is 'ip:port', '[ip6]:port', (ip, port) or an Endpoint")


def network_value(value: NetworkLike) -> Network:
    """An allowed IP, host bits cleared (as the device keeps it)."""
    if isinstance(value, ipaddress.IPv4Network | ipaddress.IPv6Network):
        return value
    if isinstance(value, str):
        try:
            prefix, _host_bits = parse_allowed_ip_entry(value)
        except _ParseError as e:
            raise ConfigError(f"allowed IP {value!r}: {e.message}") from e
        return prefix.network
    raise ConfigError(f"an allowed IP is 'addr/len' text or an ipaddress network, not "
                      f"{type(value).__name__}")


def networks_value(values: Iterable[NetworkLike]) -> tuple[Network, ...]:
    if isinstance(values, str):
        raise ConfigError("allowed_ips is a list of prefixes, not one string")
    return tuple(network_value(v) for v in values)


def keepalive_value(value: int) -> int:
    return int_value(value, "persistent_keepalive", API_KEEPALIVE_MAX_S)


def int_value(value: object, what: str, maximum: int) -> int:
    """An integer setting from 0 to `maximum`; ConfigError otherwise (bool included)."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise ConfigError(f"{what} must be an int, not {type(value).__name__}")
    if not 0 <= value <= maximum:
        raise ConfigError(f"{what} must be from 0 to {maximum}, not {value}")
    return value


@dataclass(frozen=True, init=False)
class Peer:
    """A peer to add: its public key, and optionally a preshared key, the endpoint to send
    to until it is heard from elsewhere, the IP prefixes it may use (cryptokey routing), and
    a persistent keepalive in seconds (0: off).

    Made from flexible input, held in one form: keys as 32 bytes, the endpoint as an
    Endpoint, allowed IPs as ipaddress networks with host bits cleared. Raises ConfigError
    for anything the device would not take. The preshared key stays out of the repr.
    """

    public_key: bytes
    preshared_key: bytes | None = field(default=None, repr=False)
    endpoint: Endpoint | None = None
    allowed_ips: tuple[Network, ...] = ()
    persistent_keepalive: int = 0

    def __init__(self, public_key: KeyLike, *, preshared_key: KeyLike | None = None,
                 endpoint: EndpointLike | None = None,
                 allowed_ips: Iterable[NetworkLike] = (),
                 persistent_keepalive: int = 0) -> None:
        values = {
            "public_key": key_bytes(public_key, "public_key"),
            "preshared_key": optional_key(preshared_key, "preshared_key"),
            "endpoint": None if endpoint is None else endpoint_value(endpoint),
            "allowed_ips": networks_value(allowed_ips),
            "persistent_keepalive": keepalive_value(persistent_keepalive),
        }
        for name, value in values.items():
            object.__setattr__(self, name, value)
