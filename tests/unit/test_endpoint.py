"""Endpoints: what the cookie MACs over and what the rate limiter keys on."""

import ipaddress

import pytest

from pywg._protocol.endpoint import Endpoint


def test_from_sockaddr_and_bytes():
    v4 = Endpoint.from_sockaddr(("192.0.2.7", 51820))
    assert v4.to_bytes() == bytes([192, 0, 2, 7]) + (51820).to_bytes(2, "big")
    assert str(v4) == "192.0.2.7:51820"
    v6 = Endpoint.from_sockaddr(("2001:db8::1", 1, 0, 0))
    assert v6.to_bytes() == ipaddress.ip_address("2001:db8::1").packed + b"\0\1"
    assert str(v6) == "[2001:db8::1]:1"


def test_mapped_ipv4_is_ipv4_and_scopes_are_kept():
    assert Endpoint.from_sockaddr(("::ffff:192.0.2.7", 9, 0, 0)) == Endpoint(
        ipaddress.ip_address("192.0.2.7"), 9)
    scoped = Endpoint.from_sockaddr(("fe80::1%lo", 9, 0, 1))
    assert str(scoped) == "[fe80::1%lo]:9"


@pytest.mark.parametrize("port", [-1, 65536])
def test_ports_are_checked(port):
    with pytest.raises(ValueError):
        Endpoint(ipaddress.ip_address("192.0.2.7"), port)
