"""Fuzzing the UAPI: the request parser, `set` applied to the configuration model and to a
real Device with its C data plane, and the client's parser of `get` replies.

Properties, for any bytes a client may send, cut into any reads:
- every request gets a reply that ends `errno=N\\n\\n` (a `get` one that parses back), and
  nothing escapes as an exception;
- a refused `set` changes nothing: `get` answers byte for byte as before it;
- an accepted one leaves the device as the model says (pywg._config.apply on the previous
  configuration), and the real Device refuses only what the model refuses or what needs
  the host (a port in use, an unknown interface in an endpoint's scope).
"""

from __future__ import annotations

import atexit
import errno
import re
from collections.abc import Iterator

from hypothesis import example, given
from hypothesis import strategies as st

from pywg._config.errors import ConfigError
from pywg._config.model import (
    Change,
    DeviceConfig,
    PrivateKey,
    SetEndpoint,
    SetFwmark,
    SetListenPort,
)
from pywg._config.uapi import (
    BadRequest,
    Close,
    GetRequest,
    MemoryDevice,
    NeedData,
    SetRequest,
    UapiDevice,
    UapiParser,
    parse_set,
    respond,
)
from pywg._driver.device import Device
from pywg._tools.uapi_client import parse_get
from tests.fuzz.python.common import fuzz_settings, target
from tests.fuzz.python.inputs import mutated, reads

MAX_PEERS = 5  # small, so that the limit is reached
MAX_LINE = 256
MAX_LINES = 64
PRIV = bytes(range(1, 33))
PUB = PrivateKey(PRIV).public_key().hex()
KEYS = [f"{i:02x}" * 32 for i in (0x11, 0x22, 0x33, 0x44, 0x55, 0x66)] + [PUB]
_REPLY = re.compile(rb"errno=(0|-[1-9][0-9]*)\n\n")


# ---- the language: valid lines, nearly valid ones, and the rest ------------------------------

def _mostly(valid: st.SearchStrategy[str], odd: list[str]) -> st.SearchStrategy[str]:
    """Valid values nine times in ten: a `set` must get through whole to reach the device."""
    return st.integers(0, 9).flatmap(lambda n: st.sampled_from(odd) if n == 0 else valid)


_KEY_VALUES = _mostly(st.sampled_from(KEYS),
                      ["0" * 64, PRIV.hex(), KEYS[0].upper(), KEYS[0][:63], KEYS[0] + "0",
                       "g" * 64, "ab" * 32])
_NUMBERS = _mostly(st.integers(0, 70000).map(str), [
    "", "0", "00", "0001", "65535", "65536", "4294967295", "4294967296", "-1", "+1", " 1",
    "1_0", "٣", "9" * 30, "0x10"])
_PORTS = _mostly(st.sampled_from(["0", "1", "9", "65535"]), ["", "65536", "-1", "01"])
_PREFIXES = _mostly(st.one_of(
    st.tuples(st.ip_addresses(v=4).map(str), st.integers(0, 32)).map(lambda t: f"{t[0]}/{t[1]}"),
    st.tuples(st.ip_addresses(v=6).map(str), st.integers(0, 128)).map(lambda t: f"{t[0]}/{t[1]}"),
    st.sampled_from(["10.0.0.0/8", "10.1.2.3/8", "0.0.0.0/0", "::/0", "fd00::/64", "1.2.3.4/32",
                     "::ffff:1.2.3.4/128"])),
    ["10.0.0.1", "10.0.0.0/33", "::/129", "10.0.0.0/08", "10.0.0.0/-1", "010.0.0.0/8",
     "fe80::1%lo/64", "10.0.0.0/255.0.0.0", "10.0.0.0/ 8", "/8", "1.2.3/8"])
_ENDPOINTS = _mostly(
    st.tuples(st.sampled_from(["127.0.0.1", "127.0.0.2", "[::1]", "[::ffff:127.0.0.1]",
                               "[fe80::1%lo]", "[fe80::1%1]", "[fe80::1%nosuchif0]",
                               "[fe80::1%²]", "[fe80::1%4294967296]", "[fe80::1%0]"]),
              _PORTS).map(lambda t: f"{t[0]}:{t[1]}"),
    ["[fe80::1%]:5", "[fe80::1%lo%lo]:5", "127.0.0.1", "127.0.0.1:", ":5", "[::1:5", "::1:5",
     "[::1]5", "[127.0.0.1]:5", "localhost:5", "127.1:5", "127.0.0.01:5"])
_FLAGS = _mostly(st.just("true"), ["false", "TRUE", "", "1"])


def _line(key: str, values: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return values.map(lambda v: f"{key}={v}")


_DEVICE_LINES = st.one_of(
    _line("private_key", _KEY_VALUES), _line("listen_port", _PORTS),
    _line("fwmark", _NUMBERS), _line("replace_peers", _FLAGS))
_PEER_LINES = st.one_of(
    _line("preshared_key", _KEY_VALUES), _line("endpoint", _ENDPOINTS),
    _line("persistent_keepalive_interval", _NUMBERS),
    _line("allowed_ip", _PREFIXES), _line("allowed_ip", _PREFIXES.map(lambda p: "-" + p)),
    _line("replace_allowed_ips", _FLAGS), _line("update_only", _FLAGS),
    _line("remove", _FLAGS), _line("protocol_version", _mostly(st.just("1"), ["2", "01", ""])))
_ODD_LINES = st.sampled_from(["x", "=", "=1", "get=1", "set=1", "private_key", "listen_port=1\r",
                              "last_handshake_time_sec=1", "errno=0", "a" * 300,
                              "public_key=" + KEYS[1] + "\r"])


@st.composite
def _set_request(draw: st.DrawFn) -> bytes:
    lines = draw(st.lists(_DEVICE_LINES, max_size=3))
    for _ in range(draw(st.integers(0, 4))):
        lines.append("public_key=" + draw(_KEY_VALUES))
        lines += draw(st.lists(_PEER_LINES, max_size=5))
    if draw(st.integers(0, 9)) == 0:
        lines.insert(draw(st.integers(0, len(lines))), draw(_ODD_LINES))
    end = draw(st.sampled_from(["\n", "\n", "\n", "\r\n", ""]))  # "": cut off
    return ("set=1\n" + "".join(f"{line}\n" for line in lines) + end).encode()


_GET = st.sampled_from([b"get=1\n\n", b"get=1\n\n", b"get=1\nx", b"get=1\r\n\r\n", b"get=2\n\n"])
requests = st.one_of(_set_request(), _GET)


@st.composite
def streams(draw: st.DrawFn) -> list[bytes]:
    """What one connection sends: requests, perhaps mutated, perhaps ended, in reads."""
    parts = draw(st.lists(requests, min_size=1, max_size=3))
    data = b"".join(parts)
    choice = draw(st.integers(0, 4))
    if choice == 0:
        data = draw(mutated([data]))
    elif choice == 1:
        data = draw(st.binary(max_size=200))
    pieces = draw(reads(data))
    return pieces + [b""] if draw(st.booleans()) else pieces


# ---- running a connection --------------------------------------------------------------------

def _events(parser: UapiParser, pieces: list[bytes]) -> Iterator[
        GetRequest | SetRequest | BadRequest | Close]:
    for piece in pieces:
        parser.receive_data(piece)
        while not isinstance(event := parser.next_event(), NeedData):
            yield event
            if isinstance(event, Close):
                return


def _get(device: UapiDevice) -> bytes:
    reply = b"".join(device.get())
    assert reply.endswith(b"errno=0\n\n"), reply[-40:]
    return reply


def _check_get_reply(reply: bytes) -> DeviceConfig:
    """The reply of a `get` parses back (pywg's client, as strict as wg(8))."""
    lines = reply.decode().split("\n")
    assert lines[-3:] == ["errno=0", "", ""]
    return parse_get(lines[:-3]).config


def converse(device: UapiDevice, twin: MemoryDevice | None, pieces: list[bytes]) -> None:
    """Run one connection's bytes against `device`, checking each reply; `twin` (the model),
    if given, is kept in step with every `set` the device accepts."""
    parser = UapiParser(MAX_LINE, MAX_LINES)
    for event in _events(parser, pieces):
        if isinstance(event, Close):
            return
        before = _get(device)
        reply = b"".join(respond(device, event))
        if isinstance(event, GetRequest):
            assert reply.endswith(b"errno=0\n\n")
            _check_get_reply(reply)
            continue
        match = _REPLY.fullmatch(reply)
        assert match, reply
        code = -int(match.group(1))
        after = _get(device)
        if code:
            assert after == before, "a refused set changed the device"
        if isinstance(device, Device):
            _check_device_records(device)
        if twin is not None:
            _check_against_model(twin, event, code, after)
        if isinstance(event, BadRequest) and event.close:
            return


def _check_against_model(twin: MemoryDevice, event: SetRequest | BadRequest, code: int,
                         after: bytes) -> None:
    if isinstance(event, BadRequest):
        assert code == event.errno
        return
    model_code = 0
    try:
        twin.apply(event.change)
    except ConfigError as e:
        model_code = e.errno
    if model_code:
        assert code == model_code, (code, model_code)
    elif code:
        # Refusals only the host can make.
        assert code in (errno.EADDRINUSE, errno.EINVAL), code
        assert _has_host_dependent_line(event), event
        return
    config = _check_get_reply(after)
    assert config.peers == twin.config.peers
    assert config.private_key == twin.config.private_key
    assert config.fwmark == twin.config.fwmark


def _check_device_records(device: Device) -> None:
    """The driver's peer records are the configuration's peers, no more, no fewer (a `set`
    carried out in part would leave records the configuration does not name)."""
    records = set(device._peers)
    assert records == {p.public_key.raw for p in device.config.peers}
    assert sum(p is not None for p in device._slots) == len(records)


def _has_host_dependent_line(event: SetRequest) -> bool:
    if any(isinstance(op, SetListenPort | SetFwmark) for op in event.change.device):
        return True
    return any(isinstance(op, SetEndpoint) and "%" in str(op.endpoint)
               for peer in event.change.peers for op in peer.ops)


_BASE = parse_set([
    f"private_key={PRIV.hex()}", "fwmark=0", "replace_peers=true",
    f"public_key={KEYS[0]}", "endpoint=127.0.0.1:9", "allowed_ip=10.0.0.0/8",
    "persistent_keepalive_interval=0",
    f"public_key={KEYS[1]}", "allowed_ip=fd00::/64", "preshared_key=" + "ab" * 32])


# ---- the targets -----------------------------------------------------------------------------

@target("py-uapi")
@fuzz_settings
@given(streams())
def test_uapi_requests_against_the_model(pieces: list[bytes]) -> None:
    """The parser and the configuration model alone (MemoryDevice)."""
    device = MemoryDevice(max_peers=MAX_PEERS, max_allowed_ips=8)
    device.apply(_BASE)
    converse(device, None, pieces)


_DEVICE: list[Device] = []


def _device() -> Device:
    """One real Device for the whole run (its data plane and sockets are costly to make)."""
    if not _DEVICE:
        device = Device(None, max_peers=MAX_PEERS)
        _DEVICE.append(device)
        atexit.register(lambda: device.close() if device in _DEVICE else None)
    return _DEVICE[0]


def _scoped(scope: str) -> list[bytes]:
    """A `set` whose endpoint names an interface that is not there, after a port change."""
    return [f"set=1\nlisten_port=0\npublic_key={KEYS[3]}\nallowed_ip=10.9.0.0/16\n"
            f"endpoint=[fe80::1%{scope}]:5\n\n".encode(),
            f"set=1\npublic_key={KEYS[0]}\nendpoint=[fe80::1%{scope}]:5\n\n".encode()]


@target("py-uapi-device")
@fuzz_settings
@given(streams())
# Found here: the interface of an endpoint's scope was looked up while the `set` was being
# carried out, so an unknown one left it half done (the port changed, a peer's record made
# and not configured) and OSError/ValueError/OverflowError escaped.
@example(_scoped("nosuchif0"))
@example(_scoped("²"))
@example(_scoped("4294967296"))
# Found here: a fwmark of 2^31 or more was refused (setsockopt took it for a C int).
@example([b"set=1\nfwmark=4294967295\n\n", b"get=1\n\n"])
def test_uapi_requests_against_a_real_device(pieces: list[bytes]) -> None:
    """The same requests against a real Device (the C data plane, UDP sockets, the
    handshake core), with the model as the judge of what it accepts."""
    device = _device()
    port = device.bind.port if device.bind else 0
    device.apply(_BASE)
    # The device's configuration with its allowed IPs (the data plane keeps them).
    twin = MemoryDevice(device.snapshot().config, max_peers=MAX_PEERS)
    try:
        converse(device, twin, pieces)
    except BaseException:
        # Whatever it did to the device, the next input gets a new one.
        _DEVICE.pop().close()
        raise
    # Back to its own port, so that a port a request took is let go at once.
    if device.bind is None or device.bind.port != port:
        device.apply(Change((SetListenPort(port),)))


_GET_SEEDS = [
    b"private_key=" + PRIV.hex().encode() + b"\nlisten_port=51820\nfwmark=3\npywg_drop_x=4\n"
    b"public_key=" + KEYS[0].encode() + b"\npreshared_key=" + b"0" * 64 + b"\nprotocol_version=1\n"
    b"endpoint=[fe80::1%lo]:5\nlast_handshake_time_sec=1\nlast_handshake_time_nsec=2\n"
    b"tx_bytes=3\nrx_bytes=4\npersistent_keepalive_interval=25\nallowed_ip=10.0.0.0/8\n"
    b"allowed_ip=::/0\npublic_key=" + KEYS[1].encode() + b"\nendpoint=1.2.3.4:5\n",
]


@target("py-uapi-client")
@fuzz_settings
@given(st.one_of(mutated(_GET_SEEDS, 6), st.binary(max_size=300)))
def test_get_replies_parse_or_are_refused(data: bytes) -> None:
    """pywg's client reads what a daemon answers: a snapshot, or ConfigError."""
    lines = data.decode("utf-8", "surrogateescape").split("\n")
    try:
        snapshot = parse_get(lines)
    except ConfigError:
        return
    keys = [p.public_key for p in snapshot.config.peers]
    assert len(set(keys)) == len(keys)
