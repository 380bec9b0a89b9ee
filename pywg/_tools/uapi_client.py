"""The client side of the UAPI: what wg(8) does on /var/run/wireguard/IFNAME.sock.

A `get` is `get=1\\n\\n`, answered by `key=value` lines, `errno=N` and a blank line; a
`set` is `set=1\\n`, the lines of a Change (pywg._config.uapi.format_set) and a blank line,
answered by `errno=N` and a blank line. parse_get() reads a `get` reply as wg's
ipc-uapi.h does: device keys until the first `public_key`, then peer keys; keys it does not
know (protocol_version, and whatever a newer daemon adds) are skipped, except pywg's
`pywg_*` device counters, which land in DeviceSnapshot.extras; a known key with a bad
value, or a reply without its `errno` line, is an error. Replies are read line by line
with bounded lines and a bounded count, and every exchange has a time limit.
"""

from __future__ import annotations

import contextlib
import errno as _errno
import os
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import BinaryIO

from pywg._config.errors import ConfigError
from pywg._config.model import (
    AllowedIP,
    Change,
    DeviceConfig,
    Endpoint,
    PeerConfig,
    PresharedKey,
    PrivateKey,
    PublicKey,
)
from pywg._config.uapi import EXTRA_KEY_PREFIX, DeviceSnapshot, PeerStats, format_set
from pywg._config.values import (
    is_zero_key,
    parse_decimal,
    parse_endpoint,
    parse_hex_key,
    parse_prefix,
)
from pywg._constants import (
    NSEC_PER_SEC,
    UAPI_CLIENT_MAX_REPLY_LINES,
    UAPI_CLIENT_TIMEOUT_S,
    UAPI_MAX_LINE_LEN,
    UAPI_SOCKET_DIR,
)
from pywg._driver.uapi_server import UapiServerError, socket_answers, socket_path

__all__ = ["UapiClientError", "get", "is_wireguard_interface", "parse_get", "set_device"]

_U64_MAX = (1 << 64) - 1
_MAX_EXTRAS = 64  # pywg_* counters kept from one reply


class UapiClientError(ConfigError):
    """The daemon cannot be reached, answers nonsense, or refuses (`errno` positive)."""


def is_wireguard_interface(ifname: str, run_dir: str = UAPI_SOCKET_DIR) -> bool:
    """Whether a userspace WireGuard serves `ifname` (as `wg show interfaces` decides)."""
    try:
        return socket_answers(socket_path(ifname, run_dir))
    except UapiServerError:
        return False


def _exchange(ifname: str, request: bytes, run_dir: str, timeout: float) -> list[str]:
    """Send one request; the reply's lines up to (without) its blank line."""
    try:
        path = socket_path(ifname, run_dir)
    except UapiServerError as e:
        raise UapiClientError(str(e)) from e
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(path)
            sock.sendall(request)
            return _read_reply(sock.makefile("rb"))
        except TimeoutError as e:
            raise UapiClientError(f"{ifname}: no answer within {timeout:.0f} s",
                                  _errno.ETIMEDOUT) from e
        except OSError as e:
            code = e.errno or _errno.EIO
            raise UapiClientError(f"{ifname}: {path}: {os.strerror(code)}", code) from e


def _read_reply(stream: BinaryIO) -> list[str]:
    lines: list[str] = []
    while True:
        raw = stream.readline(UAPI_MAX_LINE_LEN + 1)
        if not raw.endswith(b"\n"):
            what = "an over-long line" if raw else "the connection closed"
            raise UapiClientError(f"incomplete reply: {what}", _errno.EPROTO)
        line = raw[:-1].decode("utf-8", "replace")
        if not line:
            return lines
        if len(lines) >= UAPI_CLIENT_MAX_REPLY_LINES:
            raise UapiClientError("reply too long", _errno.EPROTO)
        lines.append(line)


def _errno_of(lines: list[str]) -> int:
    """The reply's errno (positive; 0: success), which must end it."""
    key, eq, value = lines[-1].partition("=") if lines else ("", "", "")
    if key != "errno" or not eq:
        raise UapiClientError("reply without an errno line", _errno.EPROTO)
    try:  # wireguard-go sends it negative, boringtun positive
        return parse_decimal(value.removeprefix("-"), "errno", 0xFFFFFFFF)
    except ConfigError as e:
        raise UapiClientError("errno is not a number", _errno.EPROTO) from e


def set_device(ifname: str, change: Change, *, run_dir: str = UAPI_SOCKET_DIR,
               timeout: float = UAPI_CLIENT_TIMEOUT_S) -> None:
    """Apply `change` as one `set`; UapiClientError with the daemon's errno if refused."""
    lines = _exchange(ifname, format_set(change), run_dir, timeout)
    code = _errno_of(lines)
    if code:
        raise UapiClientError(f"Unable to modify interface: {os.strerror(code)}", code)


def get(ifname: str, *, run_dir: str = UAPI_SOCKET_DIR,
        timeout: float = UAPI_CLIENT_TIMEOUT_S) -> DeviceSnapshot:
    """The device as its `get` reply describes it."""
    lines = _exchange(ifname, b"get=1\n\n", run_dir, timeout)
    code = _errno_of(lines)
    if code:
        raise UapiClientError(f"Unable to access interface: {os.strerror(code)}", code)
    return parse_get(lines[:-1])


# A `get` reply, key by key.


@dataclass
class _Peer:
    public_key: PublicKey
    preshared_key: PresharedKey | None = None
    endpoint: Endpoint | None = None
    keepalive: int = 0
    allowed_ips: list[AllowedIP] = field(default_factory=list)
    handshake_sec: int = 0
    handshake_nsec: int = 0
    rx_bytes: int = 0
    tx_bytes: int = 0

    def config(self) -> PeerConfig:
        return PeerConfig(self.public_key, self.preshared_key, self.endpoint, self.keepalive,
                          tuple(self.allowed_ips))

    def stats(self) -> PeerStats:
        return PeerStats(None, self.handshake_sec * NSEC_PER_SEC + self.handshake_nsec,
                         self.rx_bytes, self.tx_bytes)


@dataclass
class _Device:
    private_key: PrivateKey | None = None
    listen_port: int = 0
    fwmark: int = 0
    peers: list[_Peer] = field(default_factory=list)
    extras: dict[str, int] = field(default_factory=dict)

    def line(self, key: str, value: str) -> None:
        if key == "public_key":
            self.peers.append(_Peer(PublicKey(parse_hex_key(value, key))))
        elif self.peers:
            _peer_line(self.peers[-1], key, value)
        elif key == "private_key":
            raw = parse_hex_key(value, key)
            self.private_key = None if is_zero_key(raw) else PrivateKey(raw)
        elif key == "listen_port":
            self.listen_port = parse_decimal(value, key, 0xFFFF)
        elif key == "fwmark":
            self.fwmark = parse_decimal(value, key, 0xFFFFFFFF)
        elif key.startswith(EXTRA_KEY_PREFIX) and len(self.extras) < _MAX_EXTRAS:
            # pywg's own counters; a value that is not a count is skipped, as unknown keys.
            with contextlib.suppress(ConfigError):
                self.extras[key.removeprefix(EXTRA_KEY_PREFIX)] = parse_decimal(
                    value, key, _U64_MAX)

    def snapshot(self) -> DeviceSnapshot:
        peers = tuple(p.config() for p in self.peers)
        keys = [p.public_key for p in peers]
        if len(set(keys)) != len(keys):
            raise ConfigError("a peer is listed twice")
        config = DeviceConfig(self.private_key, self.listen_port, self.fwmark, peers)
        return DeviceSnapshot(config, self.listen_port,
                              {p.public_key: p.stats() for p in self.peers}, self.extras)


def _peer_line(peer: _Peer, key: str, value: str) -> None:
    if key == "preshared_key":
        raw = parse_hex_key(value, key)
        peer.preshared_key = None if is_zero_key(raw) else PresharedKey(raw)
    elif key == "endpoint":
        peer.endpoint = parse_endpoint(value)
    elif key == "persistent_keepalive_interval":
        peer.keepalive = parse_decimal(value, key, 0xFFFF)
    elif key == "allowed_ip":
        peer.allowed_ips.append(parse_prefix(value))
    elif key == "last_handshake_time_sec":
        peer.handshake_sec = parse_decimal(value, key, _U64_MAX)
    elif key == "last_handshake_time_nsec":
        peer.handshake_nsec = parse_decimal(value, key, NSEC_PER_SEC - 1)
    elif key == "rx_bytes":
        peer.rx_bytes = parse_decimal(value, key, _U64_MAX)
    elif key == "tx_bytes":
        peer.tx_bytes = parse_decimal(value, key, _U64_MAX)


def parse_get(lines: Iterable[str]) -> DeviceSnapshot:
    """The snapshot a `get` reply's lines (without `errno=` and the blank) describe.

    Raises ConfigError(EPROTO) for a line without '=', ConfigError(EINVAL) for a bad value.
    """
    device = _Device()
    for count, line in enumerate(lines, 1):
        if count > UAPI_CLIENT_MAX_REPLY_LINES:
            raise ConfigError("reply too long", _errno.EPROTO)
        key, eq, value = line.partition("=")
        if not eq:
            raise ConfigError(f"a line of {len(line)} bytes is not key=value", _errno.EPROTO)
        device.line(key, value)
    return device.snapshot()
