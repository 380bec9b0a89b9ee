"""Endpoints: what the cookie MACs over, and how the UAPI prints them (as wireguard-go)."""

import ipaddress

import pytest

from pywg._protocol.endpoint import Endpoint


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
