"""Endpoints: what the cookie MACs over, and how the UAPI prints them (as wireguard-go)."""

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pywg._protocol.endpoint import Endpoint, format_ip, format_packed


def test_bytes_and_text():
    v4 = Endpoint(ipaddress.ip_address("192.0.2.7"), 51820)
    assert v4.to_bytes() == bytes([192, 0, 2, 7]) + (51820).to_bytes(2, "big")
    assert str(v4) == "192.0.2.7:51820"
    v6 = Endpoint(ipaddress.ip_address("2001:db8::1"), 1)
    assert v6.to_bytes() == ipaddress.ip_address("2001:db8::1").packed + b"\0\1"
    assert str(v6) == "[2001:db8::1]:1"


def test_mapped_ipv4_stays_ipv6_and_scopes_are_kept():
    assert str(Endpoint(ipaddress.ip_address("::ffff:192.0.2.7"), 9)) == "[::ffff:192.0.2.7]:9"
    assert str(Endpoint(ipaddress.ip_address("fe80::1%lo"), 9)) == "[fe80::1%lo]:9"


@pytest.mark.parametrize("port", [-1, 65536])
def test_ports_are_checked(port):
    with pytest.raises(ValueError):
        Endpoint(ipaddress.ip_address("192.0.2.7"), port)


@settings(max_examples=500)
@given(st.binary(min_size=16, max_size=16), st.sampled_from([0, 10, 12, 16]))
def test_packed_addresses_are_written_as_netip_writes_them(raw, zeros):
    """format_packed (inet_ntop, the fast path of `get`) against format_ip (ipaddress, with
    Go's IPv4-mapped spelling), including the mapped and IPv4-compatible forms."""
    packed = bytes(zeros) + (b"\xff\xff" if zeros == 10 else b"") + raw
    packed = packed[:16]
    assert format_packed(packed) == format_ip(ipaddress.IPv6Address(packed))
    assert format_packed(packed[:4]) == str(ipaddress.IPv4Address(packed[:4]))
