"""Message parsing and building: exact layouts, and a typed error for anything malformed."""

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pywg._protocol import messages
from pywg._protocol.errors import DropReason, MessageError
from pywg._protocol.messages import (
    MessageCookieReply,
    MessageInitiation,
    MessageResponse,
    MessageTransport,
)


def _bytes(n, start=0):
    return bytes((start + i) & 0xFF for i in range(n))


INITIATION = MessageInitiation(sender=0x04030201, ephemeral=_bytes(32, 1),
                               encrypted_static=_bytes(48, 2), encrypted_timestamp=_bytes(28, 3),
                               mac1=_bytes(16, 4), mac2=_bytes(16, 5))
RESPONSE = MessageResponse(sender=1, receiver=0xFFFFFFFF, ephemeral=_bytes(32, 6),
                           encrypted_nothing=_bytes(16, 7), mac1=_bytes(16, 8),
                           mac2=_bytes(16, 9))
COOKIE = MessageCookieReply(receiver=0x11223344, nonce=_bytes(24, 10),
                            encrypted_cookie=_bytes(32, 11))
TRANSPORT = MessageTransport(receiver=5, counter=(1 << 64) - 1, encrypted=_bytes(16, 12))


def test_initiation_layout():
    raw = INITIATION.to_bytes()
    assert len(raw) == 148
    assert raw[:8] == b"\x01\0\0\0\x01\x02\x03\x04"
    assert raw[8:40] == INITIATION.ephemeral and raw[40:88] == INITIATION.encrypted_static
    assert raw[88:116] == INITIATION.encrypted_timestamp
    assert raw[116:132] == INITIATION.mac1 and raw[132:] == INITIATION.mac2


def test_response_layout():
    raw = RESPONSE.to_bytes()
    assert len(raw) == 92
    assert raw[:12] == b"\x02\0\0\0\x01\0\0\0\xff\xff\xff\xff"
    assert raw[12:44] == RESPONSE.ephemeral and raw[44:60] == RESPONSE.encrypted_nothing
    assert raw[60:76] == RESPONSE.mac1 and raw[76:] == RESPONSE.mac2


def test_cookie_and_transport_layout():
    raw = COOKIE.to_bytes()
    assert len(raw) == 64 and raw[:8] == b"\x03\0\0\0\x44\x33\x22\x11"
    assert raw[8:32] == COOKIE.nonce and raw[32:] == COOKIE.encrypted_cookie
    raw = TRANSPORT.to_bytes()
    assert len(raw) == 32 and raw[:16] == b"\x04\0\0\0\x05\0\0\0" + b"\xff" * 8


@pytest.mark.parametrize("message", [INITIATION, RESPONSE, COOKIE, TRANSPORT])
def test_round_trip(message):
    assert messages.parse(message.to_bytes()) == message
    assert messages.parse(bytearray(message.to_bytes())) == message


@pytest.mark.parametrize("message", [INITIATION, RESPONSE, COOKIE])
def test_sizes_are_exact(message):
    raw = message.to_bytes()
    for bad in (raw[:-1], raw + b"\0", raw[:4]):
        with pytest.raises(MessageError):
            messages.parse(bad)


def test_transport_needs_a_tag():
    raw = TRANSPORT.to_bytes()
    with pytest.raises(MessageError):
        messages.parse(raw[:-1])
    assert messages.parse(raw + b"x" * 1000).encrypted == raw[16:] + b"x" * 1000


@pytest.mark.parametrize("header", [
    b"", b"\x01", b"\x01\0\0", b"\0\0\0\0", b"\x05\0\0\0", b"\x01\0\0\x01", b"\x01\x01\0\0",
    b"\xff\xff\xff\xff",
])
def test_unknown_or_short_types(header):
    for data in (header, header + bytes(144)):
        with pytest.raises(MessageError) as e:
            messages.parse(data)
        assert e.value.reason is DropReason.MALFORMED


def test_fields_are_checked_when_building():
    with pytest.raises(MessageError):
        MessageInitiation(sender=1 << 32, ephemeral=bytes(32), encrypted_static=bytes(48),
                          encrypted_timestamp=bytes(28))
    with pytest.raises(MessageError):
        MessageResponse(sender=1, receiver=2, ephemeral=bytes(31), encrypted_nothing=bytes(16))
    with pytest.raises(MessageError):
        MessageTransport(receiver=1, counter=-1, encrypted=bytes(16))


@settings(max_examples=400)
@given(st.binary(max_size=200))
def test_parse_of_arbitrary_bytes_is_a_message_or_a_typed_error(data):
    try:
        message = messages.parse(data)
    except MessageError:
        return
    assert message.to_bytes() == data


@settings(max_examples=200)
@given(st.sampled_from([1, 2, 3, 4]), st.integers(0, 200), st.binary(min_size=200, max_size=200))
def test_parse_of_right_type_any_size(kind, size, filler):
    data = (struct.pack("<I", kind) + filler)[:size]
    expected_size = {1: 148, 2: 92, 3: 64}.get(kind)
    ok = size == expected_size if expected_size else size >= 32
    if ok:
        assert messages.parse(data).to_bytes() == data
    else:
        with pytest.raises(MessageError):
            messages.parse(data)
