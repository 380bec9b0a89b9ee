"""Value parsers (pywg/_config/values.py) and the key and endpoint types.

Expected results are wireguard-go's and wg(8)'s, as run against Debian's wireguard-go
0.0.20220316 and wireguard-tools 1.0.20210914 (see the comments), and RFC 7748 for X25519.
"""

import contextlib
import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pywg._config.errors import ConfigError
from pywg._config.model import Endpoint, PresharedKey, PrivateKey, PublicKey
from pywg._config.values import (
    parse_allowed_ip_entry,
    parse_base64_key,
    parse_decimal,
    parse_endpoint,
    parse_hex_key,
    parse_prefix,
    parse_true,
)
from tests.support.nets import net

# RFC 7748 section 6.1: Alice's private key and the public key it yields.
RFC7748_PRIVATE = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"
RFC7748_PUBLIC = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"


def test_private_key_derives_rfc7748_public_key() -> None:
    key = PrivateKey(bytes.fromhex(RFC7748_PRIVATE))
    assert key.public_key() == PublicKey(bytes.fromhex(RFC7748_PUBLIC))


def test_private_key_is_clamped_as_wireguard_go_reports_it() -> None:
    # wireguard-go answered `private_key=FFFF...` with f8ff...ff7f.
    key = PrivateKey(b"\xff" * 32)
    assert key.hex() == "f8" + "ff" * 30 + "7f"


def test_secret_keys_never_show_in_repr() -> None:
    raw = bytes(range(32))
    for key in (PrivateKey(raw), PresharedKey(raw)):
        assert raw.hex() not in repr(key) and key.base64() not in repr(key)
    assert PublicKey(raw).base64() in repr(PublicKey(raw))


def test_keys_compare_by_value_and_kind() -> None:
    raw = bytes(range(32))
    assert PublicKey(raw) == PublicKey(bytes(raw))
    assert PublicKey(raw) != PresharedKey(raw)
    assert len({PublicKey(raw), PublicKey(bytes(raw))}) == 1
    with pytest.raises(ValueError):
        PublicKey(b"short")


@pytest.mark.parametrize("text", ["ab" * 32, "AB" * 32, "aB" * 32])
def test_hex_key_either_case(text: str) -> None:
    assert parse_hex_key(text, "k") == bytes([0xAB] * 32)


@pytest.mark.parametrize("text", ["", "ab" * 31, "ab" * 33, "zz" * 32, "ab" * 31 + "a ",
                                  " " + "ab" * 31 + "a", "ab" * 16 + " " + "ab" * 15 + "a"])
def test_hex_key_malformed(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_hex_key(text, "k")


def test_base64_key_canonical_only() -> None:
    key = PublicKey(bytes(range(32)))
    assert parse_base64_key(key.base64(), "k") == key.raw
    text = key.base64()
    # Same decoded bytes, but the unused low bits of the last character are set: wg refuses.
    sloppy = text[:42] + chr(ord(text[42]) + 1) + "="
    for bad in (sloppy, text[:-1], text + "=", text[:-1] + "A", "", "!" * 43 + "="):
        with pytest.raises(ConfigError):
            parse_base64_key(bad, "k")


@pytest.mark.parametrize(("text", "value"), [("0", 0), ("0005", 5), ("65535", 65535)])
def test_decimal(text: str, value: int) -> None:
    assert parse_decimal(text, "n", 0xFFFF) == value


@pytest.mark.parametrize("text", ["", "+5", "-1", "65536", " 1", "1 ", "1_0", "0x10", "٣",
                                  "9" * 5000])
def test_decimal_malformed(text: str) -> None:
    # wireguard-go refused listen_port=+5, listen_port= and fwmark=0x10 with errno=-22.
    with pytest.raises(ConfigError):
        parse_decimal(text, "n", 0xFFFF)


def test_true_flag() -> None:
    parse_true("true", "remove")
    for bad in ("false", "True", "1", ""):
        with pytest.raises(ConfigError):
            parse_true(bad, "remove")


@pytest.mark.parametrize(("text", "shown"), [
    ("10.0.0.1/24", "10.0.0.0/24"),  # wireguard-go: allowed_ip=10.0.0.1/24 -> 10.0.0.0/24
    ("fe80::1/64", "fe80::/64"),
    ("0.0.0.0/0", "0.0.0.0/0"),
    ("::/0", "::/0"),
    ("::ffff:1.2.3.4/128", "::ffff:1.2.3.4/128"),  # as Go prints it
])
def test_prefix(text: str, shown: str) -> None:
    assert str(parse_prefix(text)) == shown


@pytest.mark.parametrize("text", [
    "10.0.0.0",  # wireguard-go (netip.ParsePrefix) needs the length
    "10.0.0.0/255.0.0.0", "010.0.0.0/8", "10.0.0.0/33", "::/129", "10.0.0.0/+8",
    "10.0.0.0/08", "fe80::1%lo/64", "10.0.0.0/", "/8", "", "10.0.0.0/8/8", "10.0.0.0 /8",
])
def test_prefix_malformed(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_prefix(text)


@pytest.mark.parametrize(("text", "network", "host_bits"), [
    ("10.0.0.1", "10.0.0.1/32", False),  # wg(8): no length means a host
    ("fd00::1", "fd00::1/128", False),
    ("10.0.0.1/24", "10.0.0.0/24", True),  # only a warning for wg
    ("10.0.0.0/008", "10.0.0.0/8", False),  # strtoul takes leading zeros
])
def test_allowed_ip_entry(text: str, network: str, host_bits: bool) -> None:
    assert parse_allowed_ip_entry(text) == (net(network), host_bits)


@pytest.mark.parametrize(("text", "shown"), [
    ("1.2.3.4:51820", "1.2.3.4:51820"),
    ("1.2.3.4:065535", "1.2.3.4:65535"),  # wireguard-go took the leading zero
    ("1.2.3.4:0", "1.2.3.4:0"),
    ("[::1]:5", "[::1]:5"),
    ("[fe80::1%lo]:51820", "[fe80::1%lo]:51820"),
    ("[::ffff:1.2.3.4]:7", "[::ffff:1.2.3.4]:7"),  # as wireguard-go printed it
])
def test_endpoint(text: str, shown: str) -> None:
    assert str(parse_endpoint(text)) == shown


@pytest.mark.parametrize("text", [
    "localhost:5",  # no names in the UAPI: wg resolves them
    "[1.2.3.4]:5", "::1:5", "1.2.3.4", "1.2.3.4:", "1.2.3.4:65536", "[::1]5", "[::1", "",
    "[::1]:", "1.2.3.4:-1", "[fe80::1%]:5",
])
def test_endpoint_malformed(text: str) -> None:
    # wireguard-go refused localhost:5, [1.2.3.4]:5 and ::1:5 with errno=-22.
    with pytest.raises(ConfigError):
        parse_endpoint(text)


def test_endpoint_port_range() -> None:
    with pytest.raises(ValueError):
        Endpoint(ipaddress.ip_address("1.2.3.4"), 65536)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_value_parsers_raise_only_config_error(text: str) -> None:
    parsers = (lambda t: parse_hex_key(t, "k"), lambda t: parse_base64_key(t, "k"),
               lambda t: parse_decimal(t, "n", 0xFFFFFFFF), parse_prefix,
               parse_allowed_ip_entry, parse_endpoint)
    for parse in parsers:
        with contextlib.suppress(ConfigError):
            parse(text)


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6)), st.integers(0, 65535))
def test_endpoint_round_trip(ip: ipaddress.IPv4Address | ipaddress.IPv6Address,
                             port: int) -> None:
    endpoint = Endpoint(ip, port)
    assert parse_endpoint(str(endpoint)) == endpoint
