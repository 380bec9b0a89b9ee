"""The UAPI client (pywg._tools.uapi_client): `get` replies parsed back into what format_get wrote,
malformed replies refused with a typed error, and get/set against pywg's own UAPI server on
a socket in a temporary directory (no root)."""

from __future__ import annotations

import contextlib
import errno
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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
    SetListenPort,
    SetPrivateKey,
)
from pywg._config.uapi import DeviceSnapshot, MemoryDevice, PeerStats, format_get
from pywg._constants import UAPI_MAX_LINE_LEN
from pywg._tools.uapi_client import (
    UapiClientError,
    get,
    is_wireguard_interface,
    parse_get,
    set_device,
)
from tests.support.nets import net
from tests.support.uapi import serving

keys = st.binary(min_size=32, max_size=32)
networks = st.one_of(
    st.tuples(st.ip_addresses(v=4), st.integers(0, 32)),
    st.tuples(st.ip_addresses(v=6), st.integers(0, 128)),
).map(net)
peers = st.builds(
    PeerConfig, keys.map(PublicKey), st.one_of(st.none(), keys.filter(any).map(PresharedKey)),
    st.one_of(st.none(), st.builds(Endpoint, st.ip_addresses(), st.integers(0, 65535))),
    st.integers(0, 65535), st.lists(networks, max_size=4, unique=True).map(tuple))
stats = st.builds(PeerStats, st.none(), st.integers(0, 2**63), st.integers(0, 2**64 - 1),
                  st.integers(0, 2**64 - 1))


@st.composite
def snapshots(draw: st.DrawFn) -> DeviceSnapshot:
    port = draw(st.integers(0, 65535))
    config = DeviceConfig(draw(st.one_of(st.none(), keys.filter(any).map(PrivateKey))), port,
                          draw(st.integers(0, 2**32 - 1)),
                          tuple(draw(st.lists(peers, max_size=3,
                                              unique_by=lambda p: p.public_key))))
    return DeviceSnapshot(config, port, {p.public_key: draw(stats) for p in config.peers})


def _lines(snapshot: DeviceSnapshot) -> list[str]:
    text = format_get(snapshot).decode()
    assert text.endswith("errno=0\n\n")
    return text[: -len("errno=0\n\n")].splitlines()


@settings(max_examples=80, deadline=None)
@given(snapshots())
def test_parse_get_reads_back_format_get(snapshot: DeviceSnapshot) -> None:
    parsed = parse_get(_lines(snapshot))
    assert parsed.config == snapshot.config
    assert parsed.listen_port == snapshot.listen_port
    assert dict(parsed.stats) == dict(snapshot.stats)


def test_parse_get_skips_keys_it_does_not_know() -> None:
    line = f"public_key={'11' * 32}"
    parsed = parse_get(["future_device_key=1", line, "protocol_version=1", "future_peer=x"])
    assert parsed.config.peers == (PeerConfig(PublicKey(bytes([0x11] * 32))),)


@pytest.mark.parametrize(("lines", "code"), [
    (["listen_port"], errno.EPROTO),
    (["listen_port=65536"], errno.EINVAL),
    (["private_key=zz"], errno.EINVAL),
    ([f"public_key={'11' * 32}", "allowed_ip=10.0.0.1/33"], errno.EINVAL),
    ([f"public_key={'11' * 32}", "endpoint=nowhere"], errno.EINVAL),
    ([f"public_key={'11' * 32}", "last_handshake_time_nsec=1000000000"], errno.EINVAL),
    ([f"public_key={'11' * 32}", f"public_key={'11' * 32}"], errno.EINVAL),
])
def test_parse_get_refuses_bad_values(lines: list[str], code: int) -> None:
    with pytest.raises(ConfigError) as e:
        parse_get(lines)
    assert e.value.errno == code


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(
    st.text(max_size=40),
    st.builds("{}={}".format, st.sampled_from([
        "private_key", "listen_port", "fwmark", "public_key", "preshared_key", "endpoint",
        "allowed_ip", "persistent_keepalive_interval", "rx_bytes", "tx_bytes",
        "last_handshake_time_sec", "last_handshake_time_nsec"]),
        st.one_of(st.text(max_size=70), st.sampled_from(["0", "1", "11" * 32, "[::1]:1"])))),
    max_size=10))
def test_parse_get_never_fails_otherwise(lines: list[str]) -> None:
    with contextlib.suppress(ConfigError):
        parse_get(lines)


# ---- over a socket ---------------------------------------------------------------------------

def test_set_then_get_through_pywgs_server(tmp_path: Path) -> None:
    device = MemoryDevice(max_peers=1)
    private = PrivateKey(bytes(range(32)))
    peer = PublicKey(bytes(32 * [7]))
    change = Change((SetPrivateKey(private), SetListenPort(4242)),
                    (PeerChange(peer, (AddAllowedIP(net("10.0.0.0/8")),)),))
    with serving(device, "wgc0", run_dir=str(tmp_path)):
        assert is_wireguard_interface("wgc0", str(tmp_path))
        set_device("wgc0", change, run_dir=str(tmp_path))
        snap = get("wgc0", run_dir=str(tmp_path))
        with pytest.raises(UapiClientError, match="Unable to modify interface") as e:
            set_device("wgc0", Change((), (PeerChange(PublicKey(bytes(32 * [8]))),)),
                       run_dir=str(tmp_path))  # a second peer, over the device's limit
    assert e.value.errno == errno.EINVAL
    assert snap.config == device.config
    assert snap.config.private_key == private and snap.listen_port == 4242
    assert not is_wireguard_interface("wgc0", str(tmp_path))
    assert not is_wireguard_interface("bad/name", str(tmp_path))


def test_no_daemon(tmp_path: Path) -> None:
    with pytest.raises(UapiClientError) as e:
        get("wgnone", run_dir=str(tmp_path))
    assert e.value.errno == errno.ENOENT


@contextlib.contextmanager
def replying(path: Path, reply: bytes) -> Iterator[None]:
    """A socket that answers one connection with `reply`, then closes it."""
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)
    server.settimeout(10)

    def answer() -> None:
        with contextlib.suppress(OSError):
            conn, _ = server.accept()
            with conn:
                conn.recv(4096)
                conn.sendall(reply)

    thread = threading.Thread(target=answer)
    thread.start()
    try:
        yield
    finally:
        thread.join(10)
        server.close()


@pytest.mark.parametrize(("reply", "message"), [
    (b"listen_port=1\n\n", "without an errno line"),
    (b"errno=x\n\n", "errno is not a number"),
    (b"listen_port=1\n", "the connection closed"),
    (b"x" * (UAPI_MAX_LINE_LEN + 10) + b"\n\n", "over-long line"),
    (b"errno=-71\n\n", "Protocol error"),
])
def test_bad_replies(tmp_path: Path, reply: bytes, message: str) -> None:
    with replying(tmp_path / "wgr.sock", reply), pytest.raises(UapiClientError,
                                                               match=message):
        get("wgr", run_dir=str(tmp_path))
