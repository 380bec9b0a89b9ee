"""wg(8) and wg-quick(8) configuration files.

The format as wg reads it (tools src/config.c): `#` starts a comment anywhere; all
whitespace is dropped; section headers and keys match without regard to case; `[Interface]`
takes PrivateKey, ListenPort, FwMark; each `[Peer]` takes PublicKey (required),
PresharedKey, AllowedIPs (comma lists, repeatable, `+`/`-` entries for incremental
changes), Endpoint and PersistentKeepalive. wg-quick takes its own keys out of
`[Interface]` first, as its parse_options does (comment cut, value trimmed, not squeezed):
Address, DNS, MTU, Table, PreUp, PostUp, PreDown, PostDown, SaveConfig.

Endpoints are resolved here, as wg resolves them, with its retry rule: a permanent
failure ends at once, a transient one is retried after 1 s, growing by 6/5 to 20 s, at
most WG_ENDPOINT_RESOLUTION_RETRIES times (default 15; `infinity` as wg allows).

parse_conf() returns a ConfFile; ConfFile.change(replace=...) is the transaction that
`wg setconf` (replace=True) or `wg addconf` (replace=False) sends for it. Errors are
ConfigFileError, naming the line number and the line (key values shown as <redacted>).
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from pywg._config.errors import ConfigError, ConfigFileError
from pywg._config.model import (
    AddAllowedIP,
    AllowedIP,
    Change,
    DeviceOp,
    Endpoint,
    IPAddress,
    PeerChange,
    PeerOp,
    PresharedKey,
    PrivateKey,
    PublicKey,
    RemoveAllowedIP,
    ReplaceAllowedIPs,
    ReplacePeers,
    SetEndpoint,
    SetFwmark,
    SetListenPort,
    SetPersistentKeepalive,
    SetPresharedKey,
    SetPrivateKey,
)
from pywg._config.values import (
    is_zero_key,
    parse_allowed_ip_entry,
    parse_base64_key,
    parse_decimal,
    parse_ip,
)
from pywg._constants import (
    CONF_MAX_FILE_LEN,
    CONF_MAX_LINE_LEN,
    ENDPOINT_RESOLUTION_DELAY_MAX_S,
    ENDPOINT_RESOLUTION_DELAY_S,
    ENDPOINT_RESOLUTION_RETRIES,
    MTU_MAX,
    MTU_MIN,
)

__all__ = [
    "ConfFile",
    "ConfPeer",
    "QuickConfig",
    "Resolver",
    "load_conf",
    "parse_conf",
    "resolve_endpoint",
]

Resolver = Callable[[str, str], Endpoint]  # (host, port) -> endpoint, or ConfigError

_SPACE = " \t\n\v\f\r"  # wg's char_is_space, and [[:space:]] to wg-quick's bash
_WHITESPACE = re.compile(f"[{_SPACE}]")
_IFS = re.compile(r"[ \t\n]+")  # where bash splits wg-quick's unquoted lists
_TABLE_NAME = re.compile(r"[A-Za-z0-9_.-]+")
_SECRET_KEYS = ("privatekey", "presharedkey")
# A run of base64 this long in an error message may be a piece of a key (44 characters).
_KEYLIKE = re.compile(r"[A-Za-z0-9+/]{20,}=?")
_QUICK_KEYS = ("address", "dns", "mtu", "table", "preup", "postup", "predown", "postdown",
               "saveconfig")
_INTERFACE_KEYS = ("listenport", "fwmark", "privatekey")
_PEER_KEYS = ("endpoint", "publickey", "allowedips", "persistentkeepalive", "presharedkey")


@dataclass(frozen=True)
class ConfPeer:
    public_key: PublicKey
    preshared_key: PresharedKey | None = None  # None: absent; all zeros: clear it
    endpoint: Endpoint | None = None
    persistent_keepalive: int | None = None  # None: absent; 0: off
    allowed_ips: tuple[tuple[AllowedIP, bool], ...] = ()  # (prefix, remove it)
    replace_allowed_ips: bool = True  # wg replaces unless an entry says + or -

    def ops(self) -> tuple[PeerOp, ...]:
        ops: list[PeerOp] = []
        if self.preshared_key is not None:
            psk = self.preshared_key
            ops.append(SetPresharedKey(None if psk.is_zero() else psk))
        if self.endpoint is not None:
            ops.append(SetEndpoint(self.endpoint))
        if self.persistent_keepalive is not None:
            ops.append(SetPersistentKeepalive(self.persistent_keepalive))
        if self.replace_allowed_ips:
            ops.append(ReplaceAllowedIPs())
        ops.extend(RemoveAllowedIP(n) if rm else AddAllowedIP(n) for n, rm in self.allowed_ips)
        return tuple(ops)


@dataclass(frozen=True)
class QuickConfig:
    """The wg-quick(8) settings; they never reach the device."""

    addresses: tuple[ipaddress.IPv4Interface | ipaddress.IPv6Interface, ...] = ()
    dns: tuple[IPAddress, ...] = ()
    dns_search: tuple[str, ...] = ()
    mtu: int | None = None
    table: str | None = None  # "off", "auto", a number or a routing table's name
    pre_up: tuple[str, ...] = ()
    post_up: tuple[str, ...] = ()
    pre_down: tuple[str, ...] = ()
    post_down: tuple[str, ...] = ()
    save_config: bool = False


@dataclass(frozen=True)
class ConfFile:
    private_key: SetPrivateKey | None = None  # None: absent
    listen_port: int | None = None
    fwmark: int | None = None
    peers: tuple[ConfPeer, ...] = ()
    quick: QuickConfig = QuickConfig()
    warnings: tuple[str, ...] = ()

    def change(self, *, replace: bool) -> Change:
        """The transaction `wg setconf` (replace=True) or `wg addconf` sends for this file."""
        device: list[DeviceOp] = []
        if replace:  # setconf states everything: what is absent is cleared
            device += [self.private_key or SetPrivateKey(None),
                       SetListenPort(self.listen_port or 0), SetFwmark(self.fwmark or 0)]
        else:
            device += [self.private_key] if self.private_key is not None else []
            device += [SetListenPort(self.listen_port)] if self.listen_port is not None else []
            device += [SetFwmark(self.fwmark)] if self.fwmark is not None else []
        if replace:
            device.append(ReplacePeers())
        peers = tuple(PeerChange(p.public_key, p.ops()) for p in self.peers)
        return Change(tuple(device), peers)


# Values that wg(8) reads differently from the UAPI.


def _key(value: str, what: str) -> bytes:
    return parse_base64_key(value, what)


def _listen_port(value: str) -> int:
    if not value:
        raise ConfigError("unable to parse empty port")
    if value.isascii() and value.isdigit():
        return parse_decimal(value, "ListenPort", 0xFFFF)
    try:
        return socket.getservbyname(value, "udp")
    except (OSError, ValueError) as e:  # ValueError: a NUL, a character UTF-8 cannot encode
        raise ConfigError(f"unknown port: {value!r}") from e


def _off_or_number(value: str, what: str, maximum: int, *, hex_ok: bool = False) -> int:
    if value.lower() == "off":
        return 0
    if hex_ok and len(value) > 2 and value.startswith("0x"):
        if not re.fullmatch(r"[0-9a-fA-F]+", value[2:]) or int(value[2:], 16) > maximum:
            raise ConfigError(f"{what} is neither 0/off nor 0-{maximum:#x}: {value!r}")
        return int(value[2:], 16)
    return parse_decimal(value, what, maximum)


def _allowed_ips(value: str) -> Iterator[tuple[AllowedIP, bool, bool, bool]]:
    """(prefix, remove, incremental, host bits set) for each entry; empty: none."""
    for entry in value.split(",") if value else ():
        sign = entry[:1] if entry[:1] in ("+", "-") else ""
        network, host_bits = parse_allowed_ip_entry(entry[len(sign):])
        yield network, sign == "-", bool(sign), host_bits


def _split_endpoint(value: str) -> tuple[str, str]:
    if not value:
        raise ConfigError("unable to parse empty endpoint")
    if value.startswith("["):
        host, bracket, rest = value[1:].partition("]")
        if not bracket:
            raise ConfigError(f"unable to find matching brace of endpoint: {value!r}")
        if not rest.startswith(":") or len(rest) < 2:
            raise ConfigError(f"unable to find port of endpoint: {value!r}")
        return host, rest[1:]
    host, colon, port = value.rpartition(":")
    if not colon or not port:
        raise ConfigError(f"unable to find port of endpoint: {value!r}")
    return host, port


def _resolution_retries() -> int | None:
    """WG_ENDPOINT_RESOLUTION_RETRIES as wg reads it; None: `infinity`."""
    text = os.environ.get("WG_ENDPOINT_RESOLUTION_RETRIES")
    if text is None:
        return ENDPOINT_RESOLUTION_RETRIES
    if text == "infinity":
        return None
    return parse_decimal(text, "WG_ENDPOINT_RESOLUTION_RETRIES", 0x7FFFFFFF)


_PERMANENT_GAI_ERRORS = frozenset(
    getattr(socket, name) for name in ("EAI_NONAME", "EAI_FAIL", "EAI_NODATA")
    if hasattr(socket, name))


def _endpoint_from_sockaddr(sockaddr: tuple[object, ...]) -> Endpoint:
    host, port = str(sockaddr[0]).split("%", 1)[0], sockaddr[1]
    if not isinstance(port, int):
        raise ConfigError("the resolver returned neither IPv4 nor IPv6")
    if len(sockaddr) == 4 and isinstance(sockaddr[3], int) and sockaddr[3]:
        try:
            scope = socket.if_indextoname(sockaddr[3])
        except OSError:
            scope = str(sockaddr[3])
        host = f"{host}%{scope}"
    return Endpoint(ipaddress.ip_address(host), port)


def resolve_endpoint(host: str, port: str, *, retries: int | None = None,
                     sleep: Callable[[float], None] = time.sleep) -> Endpoint:
    """Resolve as wg(8) does (getaddrinfo, UDP, first answer), retrying transient failures.

    `retries` defaults to WG_ENDPOINT_RESOLUTION_RETRIES; None there means without end.
    """
    if "\0" in host + port:  # the C library would read only what comes before it
        raise ConfigError("a NUL byte in an endpoint")
    if retries is None:
        retries = _resolution_retries()
    delay = ENDPOINT_RESOLUTION_DELAY_S
    attempt = 0
    while True:
        try:
            infos = socket.getaddrinfo(host, port, socket.AF_UNSPEC, socket.SOCK_DGRAM,
                                       socket.IPPROTO_UDP)
            return _endpoint_from_sockaddr(infos[0][4])
        except socket.gaierror as e:
            if e.errno in _PERMANENT_GAI_ERRORS or (retries is not None and attempt >= retries):
                raise ConfigError(f"{e.strerror}: {host}:{port}") from e
        except UnicodeError as e:  # the IDNA codec refuses it: no name to look up
            raise ConfigError(f"not a host name: {host!r}") from e
        attempt += 1
        sleep(delay)
        delay = min(ENDPOINT_RESOLUTION_DELAY_MAX_S, delay * 6 / 5)


def _endpoint(value: str, resolve: Resolver) -> Endpoint:
    host, port = _split_endpoint(value)
    if port.isascii() and port.isdigit():
        number = parse_decimal(port, "endpoint port", 0xFFFF)
        try:
            return Endpoint(parse_ip(host, scoped=True), number)
        except ConfigError:
            pass  # not a literal address: a name to resolve
    return resolve(host, port)


# wg-quick's keys.


def _words(value: str) -> list[str]:
    return [word for word in _IFS.split(value.replace(",", " ")) if word]


def _ascii_lower(text: str) -> str:
    """Lower case as wg's strncasecmp and bash's nocasematch (C locale) see it: a key with
    another script's letters in it (a Kelvin sign for a K) matches none."""
    return text.lower() if text.isascii() else text


def _addresses(value: str) -> tuple[ipaddress.IPv4Interface | ipaddress.IPv6Interface, ...]:
    out = []
    for word in _words(value):
        addr, slash, bits = word.partition("/")
        ip = parse_ip(addr)
        if slash and not (bits.isascii() and bits.isdigit()):
            raise ConfigError(f"not an address with a prefix length: {word!r}")
        length = parse_decimal(bits, "prefix length", ip.max_prefixlen) if slash else None
        out.append(ipaddress.ip_interface((ip, ip.max_prefixlen if length is None else length)))
    return tuple(out)


def _dns(value: str) -> tuple[tuple[IPAddress, ...], tuple[str, ...]]:
    servers: list[IPAddress] = []
    search: list[str] = []
    for word in _words(value):
        # wg-quick's test: digits and dots, or anything with a colon, is an address.
        if re.fullmatch(r"[0-9.]+", word) or ":" in word:
            servers.append(parse_ip(word))
        else:
            search.append(word)
    return tuple(servers), tuple(search)


def _table(value: str) -> str:
    if value.lower() in ("off", "auto"):
        return value.lower()
    if value.isascii() and value.isdigit():
        return str(parse_decimal(value, "Table", 0xFFFFFFFF))
    if not _TABLE_NAME.fullmatch(value):
        raise ConfigError(f"Table is neither off, auto, a number nor a table name: {value!r}")
    return value


def _bool(value: str, what: str) -> bool:
    if value.lower() not in ("true", "false"):
        raise ConfigError(f"{what}: {value!r} is neither true nor false")
    return value.lower() == "true"


@dataclass
class _Quick:
    addresses: list[ipaddress.IPv4Interface | ipaddress.IPv6Interface] = field(
        default_factory=list)
    dns: list[IPAddress] = field(default_factory=list)
    dns_search: list[str] = field(default_factory=list)
    mtu: int | None = None
    table: str | None = None
    hooks: dict[str, list[str]] = field(default_factory=lambda: {
        "preup": [], "postup": [], "predown": [], "postdown": []})
    save_config: bool = False

    def set(self, key: str, value: str) -> None:
        if key == "address":
            self.addresses += _addresses(value)
        elif key == "dns":
            servers, search = _dns(value)
            self.dns += servers
            self.dns_search += search
        elif key == "mtu":
            self.mtu = parse_decimal(value, "MTU", MTU_MAX)
            if self.mtu < MTU_MIN:
                raise ConfigError(f"MTU below {MTU_MIN}: {value!r}")
        elif key == "table":
            self.table = _table(value)
        elif key == "saveconfig":
            self.save_config = _bool(value, "SaveConfig")
        else:
            self.hooks[key].append(value)

    def freeze(self) -> QuickConfig:
        h = self.hooks
        return QuickConfig(tuple(self.addresses), tuple(self.dns), tuple(self.dns_search),
                           self.mtu, self.table, tuple(h["preup"]), tuple(h["postup"]),
                           tuple(h["predown"]), tuple(h["postdown"]), self.save_config)


# The file, line by line.


@dataclass
class _Peer:
    lineno: int
    public_key: PublicKey | None = None
    preshared_key: PresharedKey | None = None
    endpoint: Endpoint | None = None
    persistent_keepalive: int | None = None
    allowed_ips: list[tuple[AllowedIP, bool]] = field(default_factory=list)
    replace_allowed_ips: bool = True


class _Parser:
    def __init__(self, resolve: Resolver, quick: bool) -> None:
        self.resolve = resolve
        self.quick_keys = _QUICK_KEYS if quick else ()
        self.section: str | None = None
        self.private_key: SetPrivateKey | None = None
        self.listen_port: int | None = None
        self.fwmark: int | None = None
        self.peers: list[_Peer] = []
        self.quick = _Quick()
        self.warnings: list[str] = []

    def line(self, lineno: int, raw: str) -> None:
        text = raw.split("#", 1)[0]
        key, eq, value = text.partition("=")
        quick_key = _ascii_lower(key.strip(_SPACE))
        if self.section == "interface" and eq and quick_key in self.quick_keys:
            self.quick.set(quick_key, value.strip(_SPACE))
            return
        squeezed = _WHITESPACE.sub("", text)
        if not squeezed:
            return
        if _ascii_lower(squeezed) in ("[interface]", "[peer]"):
            self.section = _ascii_lower(squeezed[1:-1])
            if self.section == "peer":
                self.peers.append(_Peer(lineno))
            return
        self._wg_line(lineno, squeezed)

    def _wg_line(self, lineno: int, squeezed: str) -> None:
        key, eq, value = squeezed.partition("=")
        key = _ascii_lower(key)
        if eq and value and self.section == "interface" and key in _INTERFACE_KEYS:
            self._interface(key, value)
        elif eq and value and self.section == "peer" and key in _PEER_KEYS:
            self._peer(self.peers[-1], key, value, lineno)
        else:
            raise ConfigError("line unrecognized")

    def _interface(self, key: str, value: str) -> None:
        if key == "listenport":
            self.listen_port = _listen_port(value)
        elif key == "fwmark":
            self.fwmark = _off_or_number(value, "FwMark", 0xFFFFFFFF, hex_ok=True)
        else:
            raw = _key(value, "PrivateKey")
            self.private_key = SetPrivateKey(None if is_zero_key(raw) else PrivateKey(raw))

    def _peer(self, peer: _Peer, key: str, value: str, lineno: int) -> None:
        if key == "publickey":
            peer.public_key = PublicKey(_key(value, "PublicKey"))
        elif key == "presharedkey":
            peer.preshared_key = PresharedKey(_key(value, "PresharedKey"))
        elif key == "endpoint":
            peer.endpoint = _endpoint(value, self.resolve)
        elif key == "persistentkeepalive":
            peer.persistent_keepalive = _off_or_number(value, "PersistentKeepalive", 0xFFFF)
        else:
            self._allowed_ips(peer, value, lineno)

    def _allowed_ips(self, peer: _Peer, value: str, lineno: int) -> None:
        for network, remove, incremental, host_bits in _allowed_ips(value):
            if incremental:
                peer.replace_allowed_ips = False
            if host_bits:
                self.warnings.append(f"line {lineno}: AllowedIP has nonzero host part")
            peer.allowed_ips.append((network, remove))

    def finish(self, lines: list[str]) -> ConfFile:
        peers = []
        for p in self.peers:
            if p.public_key is None:
                raise ConfigFileError("a peer is missing a public key", p.lineno,
                                      lines[p.lineno - 1])
            peers.append(ConfPeer(p.public_key, p.preshared_key, p.endpoint,
                                  p.persistent_keepalive, tuple(p.allowed_ips),
                                  p.replace_allowed_ips))
        return ConfFile(self.private_key, self.listen_port, self.fwmark, tuple(peers),
                        self.quick.freeze(), tuple(self.warnings))


def _shown(line: str) -> str:
    """The line for an error message, with the value of a key line hidden, and anything
    elsewhere that may be (part of) a key: a key misspelt, or under another name."""
    key = _ascii_lower(_WHITESPACE.sub("", line.split("=", 1)[0]))
    if key in _SECRET_KEYS + ("publickey",) and "=" in line:
        return f"{line.split('=', 1)[0].rstrip()} = <redacted>"
    return _redacted(line)


def _redacted(text: str) -> str:
    return _KEYLIKE.sub("<redacted>", text)


def parse_conf(text: str, *, resolve: Resolver = resolve_endpoint,
               quick: bool = True) -> ConfFile:
    """Parse a configuration file's text: wg-quick(8)'s, or with quick=False wg(8)'s, which
    refuses the wg-quick keys as `wg setconf` does."""
    lines = text.split("\n")  # wg reads lines up to "\n"; a stray "\r" is whitespace
    parser = _Parser(resolve, quick)
    for lineno, line in enumerate(lines, 1):
        if len(line) > CONF_MAX_LINE_LEN:
            raise ConfigFileError("line too long", lineno, _redacted(line[:80]) + "...")
        try:
            parser.line(lineno, line)
        except ConfigFileError:
            raise
        except ConfigError as e:
            raise ConfigFileError(_redacted(e.message), lineno, _shown(line)) from e
    return parser.finish([_shown(line) for line in lines])


def load_conf(path: str, *, resolve: Resolver = resolve_endpoint,
              quick: bool = True) -> ConfFile:
    """Read and parse a configuration file (at most CONF_MAX_FILE_LEN bytes, UTF-8)."""
    with open(path, "rb") as f:
        data = f.read(CONF_MAX_FILE_LEN + 1)
    if len(data) > CONF_MAX_FILE_LEN:
        raise ConfigError(f"{path}: larger than {CONF_MAX_FILE_LEN} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text") from e
    return parse_conf(text, resolve=resolve, quick=quick)
