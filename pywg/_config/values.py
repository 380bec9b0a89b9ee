"""Strict parsers for the values of UAPI lines and of wg(8) configuration files.

Two dialects, because the two tools differ:
- UAPI values are what wireguard-go parses with Go's strconv and net/netip: keys are 64 hex
  digits, numbers plain decimal, prefixes `addr/bits`, endpoints `ip:port` / `[ip6]:port`.
- Configuration files are what wg(8) parses: base64 keys, `0x` fwmarks, `off`, allowed IPs
  without a `/bits` meaning a host, hostnames in endpoints (resolved in conffile.py).
Python's own int() and ipaddress accept more than either (whitespace, `_`, non-ASCII
digits, netmasks, `%scope` in a prefix), so every value is matched against an ASCII
pattern first. Every failure raises ConfigError(EINVAL) naming the field; no message quotes
the value, which might be key material in the wrong place (conffile.py shows the line, with
keys hidden).
"""

from __future__ import annotations

import base64
import hmac
import ipaddress
import re
import socket

from pywg._config.errors import ConfigError
from pywg._config.model import AllowedIP, Endpoint, IPAddress
from pywg._constants import NOISE_PUBLIC_KEY_LEN

__all__ = [
    "is_zero_key",
    "parse_allowed_ip_entry",
    "parse_base64_key",
    "parse_decimal",
    "parse_endpoint",
    "parse_hex_key",
    "parse_ip",
    "parse_prefix",
    "parse_true",
]

_DIGITS = re.compile(r"[0-9]+")
_HEX_KEY = re.compile(f"[0-9a-fA-F]{{{2 * NOISE_PUBLIC_KEY_LEN}}}")
# 43 base64 characters then '='; the 43rd carries 2 unused bits, which must be zero.
_BASE64_KEY = re.compile(r"[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=")
# Go's netip rejects a sign and leading zeros in the prefix length.
_PREFIX_BITS = re.compile(r"0|[1-9][0-9]{0,2}")


def _digits_value(digits: str) -> int:
    """The value of ASCII digits; huge ones (which int() would refuse) saturate."""
    significant = digits.lstrip("0") or "0"
    return int(significant) if len(significant) <= 20 else 1 << 64


def parse_hex_key(value: str, what: str) -> bytes:
    """A key as the UAPI sends it: exactly 64 hex digits (either case, as Go accepts)."""
    if not _HEX_KEY.fullmatch(value):
        raise ConfigError(f"{what} is not {2 * NOISE_PUBLIC_KEY_LEN} hex digits")
    return bytes.fromhex(value)


def is_zero_key(raw: bytes) -> bool:
    """All zeros (the UAPI's "clear this key"), in constant time: it may be a secret."""
    return hmac.compare_digest(raw, bytes(len(raw)))


def parse_base64_key(value: str, what: str) -> bytes:
    """A key as wg(8) reads it from a file: 44 characters of canonical base64."""
    if not _BASE64_KEY.fullmatch(value):
        raise ConfigError(f"{what} is not the correct length or format")
    return base64.b64decode(value, validate=True)


def parse_decimal(value: str, what: str, maximum: int) -> int:
    """An unsigned decimal as Go's strconv.ParseUint(value, 10, bits) takes it."""
    if not _DIGITS.fullmatch(value):
        raise ConfigError(f"{what} is not a decimal number")
    number = _digits_value(value)
    if number > maximum:
        raise ConfigError(f"{what} is out of range (at most {maximum})")
    return number


def parse_true(value: str, what: str) -> None:
    """The flag keys (replace_peers, remove, ...) accept exactly `true`."""
    if value != "true":
        raise ConfigError(f"{what} must be 'true'")


def parse_ip(text: str, *, scoped: bool = False) -> IPAddress:
    """An IPv4 (dotted quad) or IPv6 address; a `%scope` only when `scoped`.

    inet_pton is as strict as Go's netip (no leading zeros in IPv4, no scope) and far
    faster than ipaddress's parser, which matters for configurations of 10^5 prefixes.
    """
    try:
        if ":" not in text:
            return ipaddress.IPv4Address(socket.inet_pton(socket.AF_INET, text))
        if "%" not in text:
            return ipaddress.IPv6Address(socket.inet_pton(socket.AF_INET6, text))
        address, _, scope = text.partition("%")
        if scoped and scope:
            socket.inet_pton(socket.AF_INET6, address)
            return ipaddress.IPv6Address(text)
    except (OSError, ValueError, UnicodeError) as e:
        raise ConfigError("not an IP address") from e
    raise ConfigError("not an IP address (or a scope where none is allowed)")


def _network(ip: IPAddress, bits: int) -> AllowedIP:
    if bits > ip.max_prefixlen:
        raise ConfigError("prefix length out of range")
    return _cut(ip.version, ip.packed, bits)


def _cut(family: int, packed: bytes, bits: int) -> AllowedIP:
    """The prefix of `bits` around a packed address: host bits cleared, as wg shows it."""
    width = len(packed) * 8
    if bits == width:
        return AllowedIP(family, packed, bits)
    mask = ((1 << bits) - 1) << (width - bits)
    value = int.from_bytes(packed, "big") & mask
    return AllowedIP(family, value.to_bytes(len(packed), "big"), bits)


def parse_prefix(value: str) -> AllowedIP:
    """A UAPI allowed_ip: `addr/bits` as Go's netip.ParsePrefix, host bits cleared. On the
    path of `wg setconf` with a million prefixes: inet_pton and bytes, no ipaddress."""
    addr, slash, bits = value.rpartition("/")
    if not slash or not _PREFIX_BITS.fullmatch(bits):
        raise ConfigError("not an IP prefix (address/length)")
    family, af = (6, socket.AF_INET6) if ":" in addr else (4, socket.AF_INET)
    try:
        packed = socket.inet_pton(af, addr)
    except (OSError, ValueError, UnicodeError) as e:
        raise ConfigError("not an IP address") from e
    length = int(bits)
    if length > len(packed) * 8:
        raise ConfigError("prefix length out of range")
    return _cut(family, packed, length)


def parse_allowed_ip_entry(entry: str) -> tuple[AllowedIP, bool]:
    """One entry of a wg(8) AllowedIPs list: `ip[/cidr]`; returns (network, host_bits_set).

    As wg does: an address without a length is a host, the length is decimal (leading
    zeros allowed), and host bits are only warned about (the device clears them).
    """
    addr, slash, bits = entry.partition("/")
    ip = parse_ip(addr)
    length: int = ip.max_prefixlen
    if slash:
        if not _DIGITS.fullmatch(bits):
            raise ConfigError("AllowedIP is not in the correct format")
        length = _digits_value(bits)
    network = _network(ip, length)
    return network, network.address != ip.packed


def parse_endpoint(value: str) -> Endpoint:
    """A UAPI endpoint, as Go's netip.ParseAddrPort: `a.b.c.d:port` or `[v6%zone]:port`."""
    if value.startswith("["):
        host, bracket, rest = value[1:].partition("]")
        if not bracket or not rest.startswith(":") or ":" not in host:
            raise ConfigError("not an endpoint (IPv6 needs [addr]:port)")
        port_text = rest[1:]
        ip = parse_ip(host, scoped=True)
    else:
        host, colon, port_text = value.rpartition(":")
        if not colon or ":" in host:
            raise ConfigError("not an endpoint (ip:port or [ip6]:port)")
        ip = parse_ip(host)
    return Endpoint(ip, parse_decimal(port_text, "endpoint port", 0xFFFF))
