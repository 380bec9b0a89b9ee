"""The UAPI, WireGuard's cross-platform configuration protocol, without any I/O.

Theory of operation. A client (wg(8)) writes `get=1\\n\\n`, or `set=1\\n`, `key=value`
lines and a blank line; the device answers the `get` with `key=value` lines, and both
with `errno=N\\n\\n` (N = 0 or a negative errno, as wireguard-go sends). Several requests
may follow one another on a connection. UapiParser turns received bytes into events
(h11's shape: receive_data(), then next_event() until NEED_DATA). A `set` is read whole,
up to its blank line, and validated into a Change before anything happens; only then is it
applied, by the device, as one transaction. So a bad line anywhere means an errno reply and
an unchanged device, where wireguard-go would have applied the lines before it.

Errors are wireguard-go's (ipc/uapi_unix.go, device/uapi.go): -EPROTO for a line without
'=', -EINVAL for a bad key or value (and for the limits), -EIO for an over-long line,
-EADDRINUSE from a device that cannot bind. Different from wireguard-go, on purpose: a
request cut off before its blank line is refused (-EPROTO), not applied.

The device is anything with snapshot() and apply() (UapiDevice); MemoryDevice is one backed
by the configuration model alone.
"""

from __future__ import annotations

import errno as _errno
import logging
import os
import re
import socket
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Final, Protocol

from pywg._config.apply import Effect, apply
from pywg._config.errors import ConfigError
from pywg._config.model import (
    AddAllowedIP,
    AllowedIP,
    Change,
    DeviceConfig,
    DeviceOp,
    Endpoint,
    PeerChange,
    PeerConfig,
    PeerOp,
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
    format_network,
)
from pywg._config.values import (
    is_zero_key,
    parse_decimal,
    parse_endpoint,
    parse_hex_key,
    parse_prefix,
    parse_true,
)
from pywg._constants import (
    MAX_ALLOWED_IPS,
    MAX_PEERS,
    NSEC_PER_SEC,
    UAPI_MAX_LINE_LEN,
    UAPI_MAX_REQUEST_LINES,
)
from pywg._protocol.endpoint import format_packed

__all__ = [
    "EXTRA_KEY_PREFIX",
    "NEED_DATA",
    "BadRequest",
    "Close",
    "DeviceSnapshot",
    "Event",
    "GetRequest",
    "MemoryDevice",
    "NeedData",
    "PeerStats",
    "SetRequest",
    "UapiDevice",
    "UapiError",
    "UapiParser",
    "format_device",
    "format_endpoint",
    "format_errno",
    "format_get",
    "format_peer",
    "format_set",
    "parse_set",
    "respond",
]

log = logging.getLogger("pywg._config.uapi")

# wireguard-go's code for an error that is none of the others (ipc.IpcErrorUnknown).
ERRNO_UNKNOWN: Final = 55
_ZERO_KEY_HEX: Final = "0" * 64
_EFFECT_LOG_LEN: Final = 4096
_SHOWABLE: Final = re.compile(r"[a-z_]{1,32}|[0-9]{1,8}")
EXTRA_KEY_PREFIX: Final = "pywg_"  # pywg's own `get` keys (drop counters), see format_get
_EXTRA_NAME: Final = re.compile(r"[a-z][a-z0-9_]{0,47}")


class UapiError(ConfigError):
    """A request the device refuses; `errno` is positive, the reply carries -errno."""

    def __init__(self, errno: int, message: str = "") -> None:
        super().__init__(message or os.strerror(errno), errno)


# What the device reports and does: the interface the driver implements.


@dataclass(frozen=True, slots=True)
class PeerStats:
    """A peer's run-time state, which the configuration does not hold."""

    endpoint: Endpoint | None = None  # where it is now (roaming); None: the configured one
    last_handshake_time_ns: int = 0  # wall clock, ns since the epoch; 0: never
    rx_bytes: int = 0
    tx_bytes: int = 0


_NO_STATS: Final = PeerStats()


@dataclass(frozen=True)
class DeviceSnapshot:
    """What `get` reports: the configuration, the port actually bound, per-peer stats, and
    pywg's extra device counters (`extras`, written as `pywg_NAME=N` lines: see
    format_get)."""

    config: DeviceConfig
    listen_port: int  # the bound port (the configured one may be 0: random); 0 if unbound
    stats: Mapping[PublicKey, PeerStats] = field(default_factory=dict)
    extras: Mapping[str, int] = field(default_factory=dict)


class UapiDevice(Protocol):
    """What the UAPI server drives. Both methods run on the server's event loop thread."""

    def get(self) -> Iterable[bytes]:
        """The reply to a `get`, in pieces (format_get's, or written with its parts): a
        gateway's reply is hundreds of megabytes, which need not all be held at once."""
        ...

    def apply(self, change: Change) -> None:
        """Apply a whole `set` or nothing; raise UapiError (or ConfigError) to refuse it."""
        ...


class MemoryDevice:
    """A UapiDevice with no data plane: the configuration model, and a log of its effects.

    The listen port it reports is the configured one: it binds nothing.
    """

    def __init__(self, config: DeviceConfig | None = None, *, max_peers: int = MAX_PEERS,
                 max_allowed_ips: int = MAX_ALLOWED_IPS) -> None:
        self.config = config if config is not None else DeviceConfig()
        self.effects: deque[Effect] = deque(maxlen=_EFFECT_LOG_LEN)
        self._max_peers = max_peers
        self._max_allowed_ips = max_allowed_ips

    def snapshot(self) -> DeviceSnapshot:
        return DeviceSnapshot(self.config, self.config.listen_port)

    def get(self) -> Iterable[bytes]:
        return (format_get(self.snapshot()),)

    def apply(self, change: Change) -> None:
        self.config, effects = apply(self.config, change, max_peers=self._max_peers,
                                     max_allowed_ips=self._max_allowed_ips)
        self.effects.extend(effects)


# `get`: the reply, in wireguard-go's order (device/uapi.go IpcGetOperation).


def format_errno(errno: int) -> bytes:
    """The status line and the blank line that end every reply; `errno` is positive."""
    return f"errno={-errno if errno else 0}\n\n".encode()


def format_device(config: DeviceConfig, listen_port: int, extras: Mapping[str, int]) -> list[str]:
    """The device's lines of a `get` reply. pywg's extras come among them, each named
    EXTRA_KEY_PREFIX + name: wg(8), wgctrl and pywg's own client skip keys they do not
    know, so they see what wireguard-go sends."""
    out = []
    if config.private_key is not None:
        out.append(f"private_key={config.private_key.hex()}")
    if listen_port:
        out.append(f"listen_port={listen_port}")
    if config.fwmark:
        out.append(f"fwmark={config.fwmark}")
    out.extend(f"{EXTRA_KEY_PREFIX}{name}={value}" for name, value in extras.items()
               if _EXTRA_NAME.fullmatch(name) and value >= 0)
    return out


def format_peer(peer: PeerConfig, endpoint: str | None, handshake_ns: int, rx_bytes: int,
                tx_bytes: int, allowed_ips: Iterable[AllowedIP | str]) -> str:
    """One peer's lines of a `get` reply (without the last newline), in wireguard-go's
    order. Written as one string: a gateway's reply has a million of them."""
    psk = peer.preshared_key
    secs, nsecs = divmod(handshake_ns, NSEC_PER_SEC)
    lines = (f"public_key={peer.public_key.hex()}\n"
             f"preshared_key={psk.hex() if psk is not None else _ZERO_KEY_HEX}\n"
             "protocol_version=1\n"
             + (f"endpoint={endpoint}\n" if endpoint is not None else "")
             + f"last_handshake_time_sec={secs}\nlast_handshake_time_nsec={nsecs}\n"
             f"tx_bytes={tx_bytes}\nrx_bytes={rx_bytes}\n"
             f"persistent_keepalive_interval={peer.persistent_keepalive_interval}")
    for net in allowed_ips:
        lines += f"\nallowed_ip={net}"
    return lines


def format_prefix(address: bytes, family: int, cidr: int) -> str:
    """An allowed IP as `get` shows it, from the data plane's form (a 16-byte address, the
    first 4 for IPv4): what str(AllowedIP) gives, without making one."""
    if family == 4:  # half of a gateway's prefixes: one call fewer
        return f"{socket.inet_ntop(socket.AF_INET, address[:4])}/{cidr}"
    return f"{format_packed(address)}/{cidr}"


def format_endpoint(family: int, address: bytes, port: int) -> str | None:
    """An endpoint as `get` shows it, from its packed form (None for no endpoint)."""
    if family == 4:
        return f"{format_packed(address[:4])}:{port}"
    if family == 6:
        return f"[{format_packed(address)}]:{port}"
    return None


def shown_endpoint(configured: Endpoint | None, family: int, address: bytes,
                   port: int) -> str | None:
    """The endpoint `get` shows: where the data plane sends now (its packed form); the
    configured spelling (a link-local scope, say) while that is where it still points."""
    if configured is not None and port == configured.port and (
            address[:4] if family == 4 else address) == configured.ip.packed:
        return str(configured)
    return format_endpoint(family, address, port)


def format_get(snapshot: DeviceSnapshot) -> bytes:
    """The reply to `get`, as wireguard-go writes it."""
    cfg = snapshot.config
    out = format_device(cfg, snapshot.listen_port, snapshot.extras)
    for peer in cfg.peers:
        stats = snapshot.stats.get(peer.public_key, _NO_STATS)
        endpoint = stats.endpoint or peer.endpoint
        out.append(format_peer(peer, str(endpoint) if endpoint is not None else None,
                               stats.last_handshake_time_ns, stats.rx_bytes, stats.tx_bytes,
                               peer.allowed_ips))
    out.append("")
    return "\n".join(out).encode() + format_errno(0)


# `set`: lines to a Change, validated line by line.


def _short(text: str) -> str:
    """A key name or a version for a message; anything else, which might hold key
    material, only by its length."""
    return repr(text) if _SHOWABLE.fullmatch(text) else f"<{len(text)} bytes>"


# The operations without a value, one of each (wg setconf of a gateway names one per peer).
_REPLACE_PEERS: Final = ReplacePeers()
_REPLACE_ALLOWED_IPS: Final = ReplaceAllowedIPs()
_UPDATE_ONLY: Final = UpdateOnly()
_REMOVE_PEER: Final = RemovePeer()


def _private_key(value: str) -> SetPrivateKey:
    raw = parse_hex_key(value, "private_key")
    return SetPrivateKey(None if is_zero_key(raw) else PrivateKey(raw))


def _device_op(key: str, value: str) -> DeviceOp:
    if key == "private_key":
        return _private_key(value)
    if key == "listen_port":
        return SetListenPort(parse_decimal(value, "listen_port", 0xFFFF))
    if key == "fwmark":
        return SetFwmark(parse_decimal(value, "fwmark", 0xFFFFFFFF))
    if key == "replace_peers":
        parse_true(value, "replace_peers")
        return _REPLACE_PEERS
    raise ConfigError(f"invalid UAPI device key: {_short(key)}")


def _preshared_key(value: str) -> SetPresharedKey:
    raw = parse_hex_key(value, "preshared_key")
    return SetPresharedKey(None if is_zero_key(raw) else PresharedKey(raw))


def _allowed_ip(value: str) -> PeerOp:
    if value.startswith("-"):
        return RemoveAllowedIP(parse_prefix(value[1:]))
    return AddAllowedIP(parse_prefix(value))


def _flag(op: PeerOp, key: str, value: str) -> PeerOp:
    parse_true(value, key)
    return op


def _peer_op(key: str, value: str) -> PeerOp | None:
    """The operation of one peer line; None for protocol_version=1, which changes nothing."""
    if key == "endpoint":
        return SetEndpoint(parse_endpoint(value))
    if key == "allowed_ip":
        return _allowed_ip(value)
    if key == "preshared_key":
        return _preshared_key(value)
    if key == "persistent_keepalive_interval":
        return SetPersistentKeepalive(parse_decimal(value, key, 0xFFFF))
    if key == "replace_allowed_ips":
        return _flag(_REPLACE_ALLOWED_IPS, key, value)
    if key == "update_only":
        return _flag(_UPDATE_ONLY, key, value)
    if key == "remove":
        return _flag(_REMOVE_PEER, key, value)
    if key == "protocol_version":
        if value != "1":
            raise ConfigError(f"invalid protocol version: {_short(value)}")
        return None
    raise ConfigError(f"invalid UAPI peer key: {_short(key)}")


class _SetBuilder:
    """Collects a `set` request line by line; remembers the first error and goes on
    reading (without keeping anything) to the blank line, so the stream stays in step."""

    def __init__(self, max_lines: int) -> None:
        self.device: list[DeviceOp] = []
        self.peers: list[PeerChange] = []
        self.ops: list[PeerOp] = []
        self.error: ConfigError | None = None
        self.lines = 0
        self.max_lines = max_lines

    def feed(self, line: str) -> None:
        self.lines += 1
        if self.error is not None:
            return
        if self.lines > self.max_lines:
            self.error = ConfigError(f"request longer than {self.max_lines} lines")
            return
        try:
            self._line(line)
        except ConfigError as e:
            self.error = e

    def _line(self, line: str) -> None:
        key, eq, value = line.partition("=")
        if not eq:
            # Not echoed: a line in an unknown shape might hold a key.
            raise ConfigError(f"a line of {len(line)} bytes is not key=value", _errno.EPROTO)
        if key == "public_key":
            self._close_section()
            self.peers.append(PeerChange(PublicKey(parse_hex_key(value, "public_key"))))
        elif not self.peers:
            self.device.append(_device_op(key, value))
        else:
            op = _peer_op(key, value)
            if op is not None:
                self.ops.append(op)

    def _close_section(self) -> None:
        if self.peers:
            self.peers[-1] = PeerChange(self.peers[-1].public_key, tuple(self.ops))
        self.ops = []

    def finish(self) -> Change:
        if self.error is not None:
            raise self.error
        self._close_section()
        return Change(tuple(self.device), tuple(self.peers))


def _format_device_op(op: DeviceOp) -> str:
    if isinstance(op, SetPrivateKey):
        return f"private_key={op.key.hex() if op.key is not None else _ZERO_KEY_HEX}"
    if isinstance(op, SetListenPort):
        return f"listen_port={op.port}"
    if isinstance(op, SetFwmark):
        return f"fwmark={op.fwmark}"
    return "replace_peers=true"


def _format_peer_op(op: PeerOp) -> str:
    if isinstance(op, SetPresharedKey):
        return f"preshared_key={op.key.hex() if op.key is not None else _ZERO_KEY_HEX}"
    if isinstance(op, SetEndpoint):
        return f"endpoint={op.endpoint}"
    if isinstance(op, SetPersistentKeepalive):
        return f"persistent_keepalive_interval={op.interval}"
    if isinstance(op, AddAllowedIP):
        return f"allowed_ip={format_network(op.network)}"
    if isinstance(op, RemoveAllowedIP):
        return f"allowed_ip=-{format_network(op.network)}"
    flags = {UpdateOnly: "update_only", RemovePeer: "remove", ReplaceAllowedIPs:
             "replace_allowed_ips"}
    return f"{flags[type(op)]}=true"


def format_set(change: Change) -> bytes:
    """The `set` request for a Change (what a client such as wg(8) would send)."""
    lines = ["set=1"]
    lines += (_format_device_op(op) for op in change.device)
    for peer in change.peers:
        lines.append(f"public_key={peer.public_key.hex()}")
        lines += (_format_peer_op(op) for op in peer.ops)
    return ("\n".join(lines) + "\n\n").encode()


def parse_set(lines: Iterable[str], max_lines: int = UAPI_MAX_REQUEST_LINES) -> Change:
    """The Change that the lines of a `set` body (without `set=1` and the blank) describe."""
    builder = _SetBuilder(max_lines)
    for line in lines:
        builder.feed(line)
    return builder.finish()


# The connection: bytes in, events out.


class NeedData:
    """next_event() needs more bytes (or the end of the stream) first."""


NEED_DATA: Final = NeedData()


@dataclass(frozen=True, slots=True)
class GetRequest:
    pass


@dataclass(frozen=True, slots=True)
class SetRequest:
    change: Change


@dataclass(frozen=True, slots=True)
class BadRequest:
    """Reply `errno=-errno`; then close the connection if `close`."""

    errno: int
    message: str
    close: bool = False


@dataclass(frozen=True, slots=True)
class Close:
    """Close the connection without a reply (end of stream, or not a UAPI operation)."""

    reason: str
    malformed: bool = False  # the client sent something that is not the protocol


Event = NeedData | GetRequest | SetRequest | BadRequest | Close

_AWAIT_OP, _IN_GET, _IN_SET, _CLOSED = range(4)


class UapiParser:
    """Turns the bytes of one connection into events. Feed it only after NEED_DATA:
    it then holds at most one read plus one partial line."""

    def __init__(self, max_line: int = UAPI_MAX_LINE_LEN,
                 max_lines: int = UAPI_MAX_REQUEST_LINES) -> None:
        self._buf = bytearray()
        self._pos = 0
        self._eof = False
        self._state = _AWAIT_OP
        self._set = _SetBuilder(max_lines)
        self._max_line = max_line
        self._max_lines = max_lines

    @property
    def in_request(self) -> bool:
        """Whether a request has begun and not ended (for the server's timeouts)."""
        return self._state in (_IN_GET, _IN_SET) or self._pos < len(self._buf)

    def receive_data(self, data: bytes) -> None:
        """Bytes from the client; b"" means it will send no more."""
        if self._pos:
            del self._buf[: self._pos]
            self._pos = 0
        if data:
            self._buf += data
        else:
            self._eof = True

    def next_event(self) -> Event:
        while True:
            event = self._step()
            if event is not None:
                return event

    def _step(self) -> Event | None:
        if self._state == _CLOSED:
            return Close("closed")
        if self._state == _IN_GET:
            return self._get_terminator()
        line = self._next_line()
        if line is None:
            return self._no_line()
        if self._state == _AWAIT_OP:
            return self._operation(line)
        return self._set_line(line)

    def _next_line(self) -> bytes | None:
        """The next complete line, without its newline; None if there is none yet."""
        end = self._buf.find(b"\n", self._pos)
        if end < 0 or end - self._pos > self._max_line:
            return None
        line = bytes(self._buf[self._pos : end])
        self._pos = end + 1
        return line

    def _no_line(self) -> Event:
        pending = len(self._buf) - self._pos
        newline = self._buf.find(b"\n", self._pos) >= 0
        if pending > self._max_line or newline:  # newline too: it was beyond the limit
            return self._fail_close(_errno.EIO, "line too long")
        if self._eof:
            if self._state == _IN_SET:
                return self._fail_close(_errno.EPROTO, "request ended before its blank line")
            self._state = _CLOSED
            return Close("end of stream")
        return NEED_DATA

    def _fail_close(self, errno: int, message: str) -> Event:
        was_set = self._state == _IN_SET
        self._state = _CLOSED
        if was_set:
            return BadRequest(errno, message, close=True)
        return Close(message, malformed=True)  # no operation named: wireguard-go hangs up

    def _operation(self, line: bytes) -> Event | None:
        if line == b"get=1":
            self._state = _IN_GET
            return None
        if line == b"set=1":
            self._state = _IN_SET
            self._set = _SetBuilder(self._max_lines)
            return None
        self._state = _CLOSED
        return Close(f"not a UAPI operation: a line of {len(line)} bytes", malformed=True)

    def _get_terminator(self) -> Event:
        if self._pos >= len(self._buf):
            if self._eof:
                self._state = _CLOSED
                return Close("end of stream in a get")
            return NEED_DATA
        byte = self._buf[self._pos]
        self._pos += 1
        if byte != ord("\n"):
            self._state = _CLOSED
            return BadRequest(_errno.EINVAL, "trailing character in UAPI get", close=True)
        self._state = _AWAIT_OP
        return GetRequest()

    def _set_line(self, raw: bytes) -> Event | None:
        # Go's line scanner drops one '\r' before the '\n', so "\r\n" is a blank line too.
        line = raw[:-1] if raw.endswith(b"\r") else raw
        if line:
            self._set.feed(line.decode("latin-1"))
            return None
        self._state = _AWAIT_OP
        try:
            return SetRequest(self._set.finish())
        except ConfigError as e:
            return BadRequest(e.errno, e.message)
        finally:
            self._set = _SetBuilder(self._max_lines)


# The glue: one request, one reply.


def respond(device: UapiDevice, event: GetRequest | SetRequest | BadRequest) -> Iterator[bytes]:
    """The reply to a request, in pieces; the device's refusals become errno replies, never
    raise. A `get` that fails half-way (a bug) ends its reply early: the caller closes the
    connection, as the reply is incomplete."""
    if isinstance(event, BadRequest):
        log.info("UAPI: refused a request: %s (errno %d)", event.message, -event.errno)
        yield format_errno(event.errno)
        return
    sent = False
    try:
        if isinstance(event, GetRequest):
            for piece in device.get():
                sent = True
                yield piece
            return
        device.apply(event.change)
        yield format_errno(0)
    except ConfigError as e:
        log.info("UAPI: refused a request: %s (errno %d)", e.message, -e.errno)
        yield format_errno(e.errno)
    except Exception:  # a bug in the device must not take the server down with it
        log.exception("UAPI: the device failed a request")
        if not sent:
            yield format_errno(ERRNO_UNKNOWN)
