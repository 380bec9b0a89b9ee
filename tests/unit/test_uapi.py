"""The UAPI without sockets: framing, `set` parsing, the `get` reply, errno mapping.

The reference is wireguard-go: the errno values are those it sent to the same bytes
(Debian's 0.0.20220316), and GOLDEN_GET is its reply, byte for byte, to a `get` after the
configuration that golden_snapshot() rebuilds.
"""

import errno
import ipaddress
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pywg._config.apply import apply
from pywg._config.errors import ConfigError
from pywg._config.model import (
    AddAllowedIP,
    Change,
    DeviceConfig,
    Endpoint,
    PeerChange,
    PeerConfig,
    PresharedKey,
    PrivateKey,
    PublicKey,
    RemoveAllowedIP,
    RemovePeer,
    ReplaceAllowedIPs,
    ReplacePeers,
    SetEndpoint,
    SetFwmark,
    SetListenPort,
    SetPersistentKeepalive,
    SetPresharedKey,
    SetPrivateKey,
    UpdateOnly,
)
from pywg._config.uapi import (
    NEED_DATA,
    BadRequest,
    Close,
    DeviceSnapshot,
    Event,
    GetRequest,
    MemoryDevice,
    PeerStats,
    SetRequest,
    UapiError,
    UapiParser,
    format_get,
    format_prefix,
    format_set,
    parse_set,
    respond,
)
from pywg._config.values import parse_prefix
from tests.support.nets import net

K1 = "1ae6bdc96f91eb3f5cd15c82f0a5582383ef9fa9195e61befd25c5c0f7482b3a"
K2 = "f47b4996903fd7b9074701effa2b18573dcfb61ffb828e2fd28764c9dca5c249"
PRIV = "70abc3d12983d8a929d6458a44eb668f29841a46c122950448427b927f77a466"
ZERO = "0" * 64

GOLDEN_GET = (
    f"private_key={PRIV}\nlisten_port=123\n"
    f"public_key={K1}\npreshared_key={ZERO}\nprotocol_version=1\n"
    "endpoint=[::ffff:1.2.3.4]:7\nlast_handshake_time_sec=0\nlast_handshake_time_nsec=0\n"
    "tx_bytes=0\nrx_bytes=0\npersistent_keepalive_interval=25\n"
    "allowed_ip=10.0.0.0/24\nallowed_ip=fe80::/64\nallowed_ip=::ffff:1.2.3.4/128\n"
    "allowed_ip=10.9.0.0/16\n"
    f"public_key={K2}\npreshared_key={ZERO}\nprotocol_version=1\n"
    "last_handshake_time_sec=0\nlast_handshake_time_nsec=0\ntx_bytes=0\nrx_bytes=0\n"
    "persistent_keepalive_interval=0\nallowed_ip=10.1.0.0/16\nerrno=0\n\n"
).encode()


def golden_snapshot() -> DeviceSnapshot:
    n = net
    return DeviceSnapshot(DeviceConfig(
        PrivateKey(bytes.fromhex(PRIV)), 123, 0,
        (PeerConfig(PublicKey(bytes.fromhex(K1)), None,
                    Endpoint(ipaddress.ip_address("::ffff:1.2.3.4"), 7), 25,
                    (n("10.0.0.0/24"), n("fe80::/64"), n("::ffff:1.2.3.4/128"),
                     n("10.9.0.0/16"))),
         PeerConfig(PublicKey(bytes.fromhex(K2)), allowed_ips=(n("10.1.0.0/16"),)))), 123)


def events(parser: UapiParser, data: bytes, *, eof: bool = False) -> list[Event]:
    parser.receive_data(data)
    if eof:
        parser.receive_data(b"")
    out: list[Event] = []
    for _ in range(1000):
        event = parser.next_event()
        out.append(event)
        if event is NEED_DATA or isinstance(event, Close):
            return out
    raise AssertionError("the parser never asked for data nor closed")


def one(data: bytes, *, eof: bool = False) -> Event:
    return events(UapiParser(), data, eof=eof)[0]


def set_errno(body: str) -> int:
    event = one(f"set=1\n{body}\n\n".encode())
    return event.errno if isinstance(event, BadRequest) else 0


# The `get` reply.


def test_get_reply_is_wireguard_gos_byte_for_byte() -> None:
    assert format_get(golden_snapshot()) == GOLDEN_GET


def test_get_reply_run_time_values() -> None:
    snap = golden_snapshot()
    k1 = PublicKey(bytes.fromhex(K1))
    roamed = Endpoint(ipaddress.ip_address("198.51.100.7"), 4242)
    stats = {k1: PeerStats(roamed, 1_700_000_000_123_456_789, rx_bytes=5, tx_bytes=7)}
    text = format_get(DeviceSnapshot(snap.config, 40000, stats)).decode()
    assert "listen_port=40000\n" in text
    assert ("endpoint=198.51.100.7:4242\nlast_handshake_time_sec=1700000000\n"
            "last_handshake_time_nsec=123456789\ntx_bytes=7\nrx_bytes=5\n") in text


def test_get_reply_of_an_empty_device() -> None:
    # wireguard-go with no key and (here) nothing bound: just the status.
    assert format_get(DeviceSnapshot(DeviceConfig(), 0)) == b"errno=0\n\n"


def test_get_reply_fwmark_and_psk() -> None:
    psk = PresharedKey(bytes(range(32)))
    config = DeviceConfig(fwmark=16, peers=(PeerConfig(PublicKey(bytes(32)), psk),))
    text = format_get(DeviceSnapshot(config, 0)).decode()
    assert text.startswith("fwmark=16\npublic_key=")
    assert f"preshared_key={bytes(range(32)).hex()}\n" in text


# Framing.


def test_get_then_more_requests_on_one_connection() -> None:
    parser = UapiParser()
    got = events(parser, b"get=1\n\nset=1\nlisten_port=5\n\nget=1\n\n")
    assert got == [GetRequest(), SetRequest(Change((SetListenPort(5),))), GetRequest(),
                   NEED_DATA]
    assert events(parser, b"", eof=True) == [Close("end of stream")]


def test_requests_split_anywhere() -> None:
    data = b"get=1\n\nset=1\nlisten_port=5\r\nfwmark=1\n\r\nget=1\n\n"
    whole = [e for e in events(UapiParser(), data) if e is not NEED_DATA]
    parser = UapiParser()
    pieces: list[Event] = []
    for i in range(len(data)):
        pieces += [e for e in events(parser, data[i:i + 1]) if e is not NEED_DATA]
    assert pieces == whole == [GetRequest(), SetRequest(Change((SetListenPort(5), SetFwmark(1)))),
                               GetRequest()]


@pytest.mark.parametrize("data", [b"bogus\n", b"set=1\r\n", b"\n", b"GET=1\n", b"get=1 \n"])
def test_not_an_operation_closes_without_reply(data: bytes) -> None:
    # wireguard-go hung up on `bogus\n` without a word.
    event = one(data)
    assert isinstance(event, Close) and event.malformed


def test_get_with_a_trailing_character() -> None:
    # wireguard-go: get=1\nx -> errno=-22.
    assert one(b"get=1\nx") == BadRequest(errno.EINVAL, "trailing character in UAPI get",
                                          close=True)


def test_end_of_stream_inside_get_closes() -> None:
    assert isinstance(one(b"get=1\n", eof=True), Close)


def test_truncated_set_is_refused_not_applied() -> None:
    # wireguard-go would apply it; we answer -EPROTO and change nothing.
    event = one(b"set=1\nlisten_port=123\n", eof=True)
    assert isinstance(event, BadRequest) and event.errno == errno.EPROTO and event.close


def test_over_long_line() -> None:
    long = b"x" * 2000
    event = one(b"set=1\nlisten_port=" + long + b"\n\n")
    assert isinstance(event, BadRequest) and event.errno == errno.EIO and event.close
    event = one(b"set=1\nlisten_port=" + long)  # no newline yet: no need to wait for one
    assert isinstance(event, BadRequest) and event.errno == errno.EIO
    assert isinstance(one(long), Close)
    assert isinstance(one(b"set=1\n" + b"=" * 1024 + b"\n\n"), BadRequest)  # at the limit


def test_a_refused_set_leaves_the_stream_in_step() -> None:
    got = events(UapiParser(), b"set=1\nfoo\nlisten_port=1\n\nget=1\n\n")
    assert got[0] == BadRequest(errno.EPROTO, "a line of 3 bytes is not key=value")
    assert got[1:] == [GetRequest(), NEED_DATA]


def test_too_many_lines() -> None:
    parser = UapiParser(max_lines=3)
    event = events(parser, b"set=1\n" + b"listen_port=1\n" * 4 + b"\nget=1\n\n")
    assert isinstance(event[0], BadRequest) and event[0].errno == errno.EINVAL
    assert event[1] == GetRequest()


# `set` lines: errno per case, as wireguard-go answered them.


@pytest.mark.parametrize(("body", "code"), [
    ("foo", errno.EPROTO),
    ("foo=1", errno.EINVAL),
    ("=1", errno.EINVAL),
    ("listen_port=", errno.EINVAL),
    ("listen_port=+5", errno.EINVAL),
    ("listen_port=65536", errno.EINVAL),
    ("fwmark=0x10", errno.EINVAL),
    ("fwmark=4294967296", errno.EINVAL),
    ("private_key=abc", errno.EINVAL),
    ("replace_peers=false", errno.EINVAL),
    ("endpoint=1.2.3.4:5", errno.EINVAL),  # a peer key before any public_key
    (f"public_key={K1}\nlisten_port=5", errno.EINVAL),  # a device key in a peer section
    (f"public_key={K1}\nprotocol_version=2", errno.EINVAL),
    (f"public_key={K1}\nremove=false", errno.EINVAL),
    (f"public_key={K1}\nupdate_only=1", errno.EINVAL),
    (f"public_key={K1}\nreplace_allowed_ips=yes", errno.EINVAL),
    (f"public_key={K1}\npersistent_keepalive_interval=65536", errno.EINVAL),
    (f"public_key={K1}\nallowed_ip=10.0.0.0/255.0.0.0", errno.EINVAL),
    (f"public_key={K1}\nallowed_ip=010.0.0.0/8", errno.EINVAL),
    (f"public_key={K1}\nallowed_ip=10.0.0.0", errno.EINVAL),
    (f"public_key={K1}\nendpoint=localhost:5", errno.EINVAL),
    (f"public_key={K1}\npreshared_key=xyz", errno.EINVAL),
    (f"public_key={K1}\nbogus=1", errno.EINVAL),
    ("public_key=12", errno.EINVAL),
    ("listen_port=0005", 0),
    (f"public_key={K1.upper()}\nprotocol_version=1", 0),
    (f"public_key={K1}\nendpoint=1.2.3.4:065535", 0),
])
def test_set_errno(body: str, code: int) -> None:
    assert set_errno(body) == code


def test_set_every_key() -> None:
    k1, k2 = PublicKey(bytes.fromhex(K1)), PublicKey(bytes.fromhex(K2))
    psk = PresharedKey(bytes(range(32)))
    body = (f"private_key={PRIV}\nlisten_port=51820\nfwmark=0\nreplace_peers=true\n"
            f"public_key={K1}\nupdate_only=true\npreshared_key={psk.hex()}\n"
            "endpoint=[fe80::1%lo]:51820\npersistent_keepalive_interval=25\n"
            "replace_allowed_ips=true\nallowed_ip=10.0.0.1/24\nallowed_ip=-fd00::/8\n"
            f"protocol_version=1\npublic_key={K2}\npreshared_key={ZERO}\nremove=true\n"
            f"public_key={K1}\nprivate_key={PRIV}")
    with pytest.raises(ConfigError):
        parse_set(body.split("\n"))  # private_key is a device key: not in a peer section
    change = parse_set(body.split("\n")[:-1])
    n = net
    assert change == Change(
        (SetPrivateKey(PrivateKey(bytes.fromhex(PRIV))), SetListenPort(51820), SetFwmark(0),
         ReplacePeers()),
        (PeerChange(k1, (UpdateOnly(), SetPresharedKey(psk),
                         SetEndpoint(Endpoint(ipaddress.ip_address("fe80::1%lo"), 51820)),
                         SetPersistentKeepalive(25), ReplaceAllowedIPs(),
                         AddAllowedIP(n("10.0.0.0/24")), RemoveAllowedIP(n("fd00::/8")))),
         PeerChange(k2, (SetPresharedKey(None), RemovePeer())),
         PeerChange(k1, ())))


def test_zero_private_key_clears() -> None:
    assert parse_set([f"private_key={ZERO}"]) == Change((SetPrivateKey(None),))


# The glue: atomicity, and the device's own refusals.


def test_an_error_anywhere_leaves_the_device_untouched() -> None:
    device = MemoryDevice()
    device.apply(parse_set([f"private_key={PRIV}", f"public_key={K1}",
                            "allowed_ip=10.1.0.0/16"]))
    before = device.config
    # wireguard-go created K2 and moved 10.1.0.0/16 to it before failing on the last line.
    event = one(f"set=1\nlisten_port=9\npublic_key={K2}\nallowed_ip=10.1.0.0/16\n"
                "allowed_ip=bad\n\n".encode())
    assert isinstance(event, BadRequest)
    assert b"".join(respond(device, event)) == b"errno=-22\n\n"
    assert device.config == before


def test_limit_in_the_device_refuses_whole() -> None:
    device = MemoryDevice(max_peers=1)
    event = one(f"set=1\nlisten_port=9\npublic_key={K1}\npublic_key={K2}\n\n".encode())
    assert isinstance(event, SetRequest)
    assert b"".join(respond(device, event)) == b"errno=-22\n\n"
    assert device.config == DeviceConfig()


class FailingDevice:
    def __init__(self, error: Exception) -> None:
        self.error = error

    def get(self) -> Iterator[bytes]:
        raise self.error
        yield b""  # a generator, as a device's get is

    def apply(self, change: Change) -> None:
        raise self.error


def test_device_refusals_become_errno_replies() -> None:
    assert b"".join(respond(FailingDevice(UapiError(errno.EADDRINUSE)), SetRequest(Change()))) == \
        b"errno=-98\n\n"
    assert b"".join(respond(FailingDevice(RuntimeError("bug")), GetRequest())) == b"errno=-55\n\n"


class HalfwayDevice:
    """A device whose `get` fails after its first part (a bug): the reply stops there,
    without a status line, so the server closes the connection."""

    def get(self) -> Iterator[bytes]:
        yield b"private_key=00\n"
        raise RuntimeError("bug")

    def apply(self, change: Change) -> None:
        pass


def test_a_get_failing_halfway_ends_without_a_status() -> None:
    assert b"".join(respond(HalfwayDevice(), GetRequest())) == b"private_key=00\n"


@pytest.mark.parametrize("body", [
    f"private_key {PRIV}",  # a typo for '='
    f"private_key={PRIV}x",
    f"{PRIV}={PRIV}",
    f"public_key={K1}\npreshared_key={PRIV[:-1]}",
    f"public_key={K1}\n{PRIV}",
])
def test_refusals_never_log_a_key(caplog: pytest.LogCaptureFixture, body: str) -> None:
    caplog.set_level("DEBUG", logger="pywg._config.uapi")
    parser = UapiParser()
    for event in events(parser, f"set=1\n{body}\n\n{PRIV}\n".encode()):
        if isinstance(event, BadRequest):
            assert b"".join(respond(MemoryDevice(), event)).startswith(b"errno=-")
            assert PRIV[:16] not in event.message
        if isinstance(event, Close):
            assert PRIV[:16] not in event.reason
    assert PRIV[:16] not in caplog.text


def test_memory_device_logs_effects() -> None:
    device = MemoryDevice()
    device.apply(parse_set(["listen_port=7"]))
    assert list(device.effects)[-1].__class__.__name__ == "ListenPortChanged"
    assert device.snapshot().listen_port == 7


# Properties.

keys = st.binary(min_size=32, max_size=32)
nets = st.one_of(st.ip_addresses(v=4).map(lambda a: net(f"{a}/24")),
                 st.ip_addresses(v=6).map(lambda a: net(f"{a}/64")))
peer_ops = st.one_of(
    st.just(UpdateOnly()), st.just(RemovePeer()), st.just(ReplaceAllowedIPs()),
    nets.map(AddAllowedIP), nets.map(RemoveAllowedIP), st.integers(0, 65535).map(
        SetPersistentKeepalive),
    st.builds(Endpoint, st.ip_addresses(), st.integers(0, 65535)).map(SetEndpoint),
    st.one_of(st.none(), keys.filter(any).map(PresharedKey)).map(SetPresharedKey))
device_ops = st.one_of(st.just(ReplacePeers()), st.integers(0, 65535).map(SetListenPort),
                       st.integers(0, 2**32 - 1).map(SetFwmark),
                       st.one_of(st.none(), keys.map(PrivateKey)).map(SetPrivateKey))
changes = st.builds(Change, st.lists(device_ops, max_size=4).map(tuple),
                    st.lists(st.builds(PeerChange, keys.map(PublicKey),
                                       st.lists(peer_ops, max_size=5).map(tuple)),
                             max_size=4).map(tuple))


@settings(max_examples=200, deadline=None)
@given(changes)
def test_format_set_round_trips(change: Change) -> None:
    assert one(format_set(change)) == SetRequest(change)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=300), max_size=8), st.booleans())
def test_garbage_never_raises(chunks: list[bytes], eof: bool) -> None:
    parser = UapiParser(max_line=64, max_lines=16)
    device = MemoryDevice()
    for chunk in [*chunks, b""] if eof else chunks:
        for event in events(parser, chunk):
            if isinstance(event, GetRequest | SetRequest | BadRequest):
                assert b"".join(respond(device, event)).endswith(b"\n\n")
            if isinstance(event, Close):
                return


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from([
    "listen_port=1", "fwmark=2", "replace_peers=true", f"public_key={K1}", f"public_key={K2}",
    "allowed_ip=10.0.0.0/8", "allowed_ip=-10.0.0.0/8", "remove=true", "update_only=true",
    "endpoint=1.2.3.4:5", "persistent_keepalive_interval=3", "protocol_version=1",
    "replace_allowed_ips=true", "x", "a=b", f"private_key={PRIV}"]), max_size=12))
def test_a_set_is_applied_whole_or_not_at_all(lines: list[str]) -> None:
    device = MemoryDevice()
    device.apply(parse_set([f"public_key={K1}", "allowed_ip=10.0.0.0/8"]))
    before = device.config
    event = one(("set=1\n" + "".join(line + "\n" for line in lines) + "\n").encode())
    reply = b"".join(respond(device, event))  # type: ignore[arg-type]
    if reply != b"errno=0\n\n":
        assert device.config == before
    else:
        assert isinstance(event, SetRequest)
        assert device.config == apply(before, event.change)[0]


@pytest.mark.parametrize("text", ["10.1.2.3/32", "0.0.0.0/0", "255.255.255.0/24", "::/0",
                                  "::1.2.3.4/128", "::ffff:1.2.3.4/128", "fd00::1:0:0:1/128",
                                  "2001:db8::/32", "fe80::1/64"])
def test_format_prefix_is_str_of_allowed_ip(text: str) -> None:
    """get formats the data plane's (16-byte address, family, cidr) as str(AllowedIP) does."""
    prefix = parse_prefix(text)
    assert format_prefix(prefix.address.ljust(16, b"\0"), prefix.family, prefix.cidr) == str(prefix)
