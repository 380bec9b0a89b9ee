"""Fuzzing the value parsers of the UAPI and of the files (pywg._config.values): endpoints,
prefixes, allowed-IP entries, keys and numbers, with Python's ipaddress module as the
independent judge of addresses.

Properties, for any text:
- a parser returns its value or raises ConfigError, nothing else;
- what parse_prefix and parse_endpoint accept, ipaddress reads the same way; what they
  write (format_network, str(Endpoint)) they read back to the same value, and the text of
  a canonical value (Go's spelling) is written back unchanged;
- what ipaddress accepts in the strict form Go's netip takes, they accept too.
"""

from __future__ import annotations

import base64
import ipaddress
import re

from hypothesis import example, given
from hypothesis import strategies as st

from pywg._config.errors import ConfigError
from pywg._config.model import AllowedIP, Endpoint, format_network
from pywg._config.values import (
    parse_allowed_ip_entry,
    parse_base64_key,
    parse_decimal,
    parse_endpoint,
    parse_hex_key,
    parse_prefix,
)
from tests.fuzz.python.common import fuzz_settings, target
from tests.fuzz.python.inputs import mutated_text

_SEEDS = ["10.0.0.0/8", "192.0.2.7/32", "0.0.0.0/0", "fd00::/64", "::/0", "::ffff:1.2.3.4/128",
          "::1.2.3.4/96", "2001:db8::1/128", "fe80::1%lo/64", "1.2.3.4:51820",
          "[2001:db8::1]:51820", "[fe80::1%eth0]:0", "[::ffff:192.0.2.1]:65535", "1.2.3.4"]
_ALPHABET = st.sampled_from("0123456789abcdefABCDEF.:/[]%-+ x\x00\n٣²")
_TEXTS = st.one_of(mutated_text(_SEEDS, 5), st.text(_ALPHABET, max_size=50), st.text(max_size=50))


def _go(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    """An address as Go's netip writes it: as ipaddress does, but for IPv4-mapped IPv6."""
    if ip.version == 6 and ip.ipv4_mapped is not None:
        return f"::ffff:{ip.ipv4_mapped}"
    return str(ip)


# Canonical texts, which must be written back as they are.
_CANONICAL_PREFIXES = st.one_of(
    st.tuples(st.ip_addresses(v=4), st.integers(0, 32)),
    st.tuples(st.ip_addresses(v=6), st.integers(0, 128)),
).map(lambda t: ipaddress.ip_network(t, strict=False)).map(
    lambda n: f"{_go(n.network_address)}/{n.prefixlen}")
_CANONICAL_ENDPOINTS = st.tuples(st.ip_addresses(), st.integers(0, 65535)).map(
    lambda t: f"[{_go(t[0])}]:{t[1]}" if t[0].version == 6 else f"{t[0]}:{t[1]}")
# Go's netip: dotted quads without leading zeros, no zone in a prefix, a decimal length
# without a sign or leading zeros.
_V4 = r"(?:0|[1-9][0-9]{0,2})(?:\.(?:0|[1-9][0-9]{0,2})){3}"
_BITS = re.compile(r"0|[1-9][0-9]*")


def _ipaddress_prefix(text: str) -> AllowedIP | None:
    """What ipaddress reads in the strict form netip takes (host bits cleared)."""
    addr, slash, bits = text.rpartition("/")
    if not slash or not _BITS.fullmatch(bits) or "%" in addr:
        return None
    try:
        ip = ipaddress.ip_address(addr)
        network = ipaddress.ip_network((ip, int(bits)), strict=False)
    except ValueError:
        return None
    return AllowedIP(network.version, network.network_address.packed, network.prefixlen)


@target("py-prefix")
@fuzz_settings
@given(st.one_of(_TEXTS, _CANONICAL_PREFIXES))
@example("1.2.3.4/08")
@example("::ffff:1.2.3.4/200")
def test_prefixes_against_ipaddress(text: str) -> None:
    try:
        parsed = parse_prefix(text)
    except ConfigError:
        assert _ipaddress_prefix(text) is None, text
        return
    assert parsed == _ipaddress_prefix(text), text
    written = format_network(parsed)
    assert parse_prefix(written) == parsed
    # Go's spelling: what a canonical text was, it stays.
    assert written == f"{_go(ipaddress.ip_address(parsed.address))}/{parsed.cidr}"


@target("py-allowed-ip")
@fuzz_settings
@given(_TEXTS)
def test_allowed_ip_entries_against_ipaddress(text: str) -> None:
    """wg(8)'s AllowedIPs entries: `ip[/cidr]`, leading zeros in the length allowed."""
    try:
        network, host_bits = parse_allowed_ip_entry(text)
    except ConfigError:
        addr, slash, bits = text.partition("/")
        try:
            ip = ipaddress.ip_address(addr)
        except ValueError:
            return
        assert "%" in addr or (slash and (not bits.isascii() or not bits.isdigit()
                                          or int(bits) > ip.max_prefixlen)), text
        return
    addr, _, bits = text.partition("/")
    ip = ipaddress.ip_address(addr)
    expected = ipaddress.ip_network((ip, int(bits) if bits else ip.max_prefixlen), strict=False)
    assert network == AllowedIP.of(expected)
    assert host_bits == (expected.network_address != ip)


_V6_SCOPED = re.compile(r"\[([^\]%]+)(?:%([^\]%]+))?\]:(0|[1-9][0-9]*|0[0-9]+)")


def _ipaddress_endpoint(text: str) -> Endpoint | None:
    """What ipaddress reads as netip.ParseAddrPort does: `ip4:port`, `[ip6%zone]:port`."""
    if text.startswith("["):
        match = _V6_SCOPED.fullmatch(text)
        if not match:
            return None
        host = match[1] + (f"%{match[2]}" if match[2] else "")
        port_text = match[3]
        try:
            ip: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.IPv6Address(host)
        except ValueError:
            return None
    else:
        host, colon, port_text = text.rpartition(":")
        if not colon or not re.fullmatch(_V4, host) or not re.fullmatch("[0-9]+", port_text):
            return None
        try:
            ip = ipaddress.IPv4Address(host)
        except ValueError:
            return None
    port = int(port_text)
    return Endpoint(ip, port) if port <= 0xFFFF else None


@target("py-endpoint")
@fuzz_settings
@given(st.one_of(_TEXTS, _CANONICAL_ENDPOINTS))
@example("[fe80::1%eth0]:0")
@example("[::ffff:1.2.3.4]:00065535")
def test_endpoints_against_ipaddress(text: str) -> None:
    try:
        parsed = parse_endpoint(text)
    except ConfigError:
        assert _ipaddress_endpoint(text) is None, text
        return
    assert parsed == _ipaddress_endpoint(text), text
    written = str(parsed)
    assert parse_endpoint(written) == parsed
    canonical = (f"[{_go(parsed.ip)}]:{parsed.port}" if parsed.ip.version == 6
                 else f"{parsed.ip}:{parsed.port}")
    assert written == canonical


@target("py-numbers-keys")
@fuzz_settings
@given(st.one_of(st.text(max_size=70), st.text(st.sampled_from("0123456789abcdefgABC+/="),
                                                  min_size=40, max_size=70)))
def test_numbers_and_keys(text: str) -> None:
    """Numbers as Go's ParseUint, keys as 64 hex digits or 44 characters of base64."""
    try:
        number = parse_decimal(text, "n", 0xFFFF)
    except ConfigError:
        assert not (re.fullmatch("[0-9]+", text) and int(text) <= 0xFFFF)
    else:
        assert re.fullmatch("[0-9]+", text) and number == int(text)
    try:
        raw = parse_hex_key(text, "k")
    except ConfigError:
        assert not re.fullmatch("[0-9a-fA-F]{64}", text)
    else:
        assert raw == bytes.fromhex(text)
    try:
        raw = parse_base64_key(text, "k")
    except ConfigError:
        try:
            decoded = base64.b64decode(text, validate=True)
        except ValueError:  # binascii.Error is one
            return
        assert len(decoded) != 32 or base64.b64encode(decoded).decode() != text
    else:
        assert len(raw) == 32 and base64.b64encode(raw).decode() == text
