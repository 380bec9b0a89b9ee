"""The C data plane, as typed Python: the only module that imports pywg._wgdp.

The data plane (csrc/, see csrc/wg_dp.h) runs its own threads, which never hold the GIL:
they read the TUN, seal and send, receive, open and write to the TUN. Python configures it
(peers as small integer slots, endpoints, allowed IPs, keypairs), sends handshake messages
and keepalives through its sockets, drains its event ring when `event_fd` is readable, and
reads the per-peer facts the timers need. Every call is one C call, never one per packet.

Every C function returns 0 (or a count) or a negative errno; `_check` turns the latter into
OSError here and nowhere else. cffi values stay inside this module: callers see ipaddress
objects, ints, bytes and the frozen dataclasses below.
"""

from __future__ import annotations

import dataclasses
import enum
import errno
import ipaddress
import os
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from pywg import _constants as constants
from pywg._config.model import AllowedIP
from pywg._driver.offload import ALL as _ALL_OFFLOADS
from pywg._driver.offload import Offload
from pywg._protocol.timers import PeerFacts, Timing
from pywg._wgdp import ffi as _ffi
from pywg._wgdp import lib as _lib

__all__ = [
    "PEER_NONE",
    "ROUTE_MTU_MAX",
    "Answer",
    "DataPlane",
    "Endpoint",
    "Event",
    "EventType",
    "PeerInfo",
    "Settings",
    "Stats",
    "pack_endpoint",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# What DataPlane.answer_handshakes takes of one answered initiation: (peer, the event's
# raw_source, the initiation's length, local index, remote index, send key, receive key,
# birth_ns, the 92-byte response).
Answer = tuple[int, bytes, int, int, int, bytes | bytearray, bytes | bytearray, int, bytes]
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

PEER_NONE: Final[int] = _lib.WG_DP_PEER_NONE
ROUTE_MTU_MAX: Final[int] = _lib.WG_DP_ROUTE_MTU_MAX  # routes set_route_mtus takes at most
_EVENT_DATA_MAX: Final[int] = _lib.WG_DP_EVENT_DATA_MAX


def _check(rc: int) -> int:
    """The one place a C error becomes an exception."""
    if rc < 0:
        raise OSError(-rc, os.strerror(-rc))
    return rc


class EventType(enum.IntEnum):
    HANDSHAKE = _lib.WG_EV_HANDSHAKE  # data: a type 1, 2 or 3 message; source: its sender
    NEED_HANDSHAKE = _lib.WG_EV_NEED_HANDSHAKE  # packets staged, no usable keypair
    KEYPAIR_CONFIRMED = _lib.WG_EV_KEYPAIR_CONFIRMED  # responder's next keypair is current
    REKEY_SEND = _lib.WG_EV_REKEY_SEND  # keepKeyFreshSending
    REKEY_RECV = _lib.WG_EV_REKEY_RECV  # keepKeyFreshReceiving
    ENDPOINT_CHANGED = _lib.WG_EV_ENDPOINT_CHANGED  # roaming: source is the new endpoint
    TUN_GONE = _lib.WG_EV_TUN_GONE  # the interface was removed


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where a peer is reached, or where a datagram came from.

    `source` is our own address the peer last reached (the sticky source replies use);
    None lets the kernel choose.
    """

    address: IPAddress
    port: int
    scope_id: int = 0
    source: IPAddress | None = None
    source_ifindex: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 0xFFFF:
            raise ValueError(f"port out of range: {self.port}")
        if self.source is not None and self.source.version != self.address.version:
            raise ValueError("source and address are of different IP versions")


@dataclass(frozen=True, slots=True)
class Settings:
    """What a data plane is created with. The fds stay the caller's: it closes them."""

    tun_fd: int = -1  # -1: no TUN; any fd that keeps packet boundaries works
    udp4_fd: int = -1
    udp6_fd: int = -1
    mtu: int = constants.DEFAULT_MTU
    max_peers: int = constants.DATAPLANE_MAX_PEERS
    event_ring_size: int = constants.DATAPLANE_EVENT_RING_SIZE
    tun_vnet_hdr: bool = False  # the TUN was opened with IFF_VNET_HDR
    tun_pi: bool = False  # the TUN was opened without IFF_NO_PI (4-byte packet info)
    # What the data plane may use; the socket offloads are probed, the TUN ones need
    # tun_vnet_hdr (and TUN_UDP_GRO a kernel with USO). TUN_TSO/TUN_USO are the TUN's to
    # negotiate (pywg._driver.tun): the data plane splits whatever super-packets it reads.
    offloads: Offload = _ALL_OFFLOADS
    crypto_threads: int = 0  # threads sealing or opening one batch; 0: one per usable core
    timing: Timing = dataclasses.field(default_factory=Timing)


@dataclass(frozen=True, slots=True)
class PeerInfo:
    """One peer's facts as the packet paths keep them; 0 means "never"."""

    endpoint: Endpoint | None
    rx_bytes: int
    tx_bytes: int
    last_tx_auth_ns: int
    last_rx_auth_ns: int
    first_tx_data_since_rx_ns: int
    first_rx_data_since_tx_ns: int
    last_tx_data_ns: int
    last_rx_data_ns: int
    current_birth_ns: int
    current_send_counter: int
    previous_index: int | None  # local (receiver) index of each keypair, None if absent
    current_index: int | None
    next_index: int | None
    current_initiator: bool
    staged: int


@dataclass(frozen=True, slots=True)
class Stats:
    """Device counters (struct wg_dp_stats)."""

    tun_rx_packets: int
    tun_tx_packets: int
    udp_rx_packets: int
    udp_tx_packets: int
    udp_rx_syscalls: int
    udp_tx_syscalls: int
    tun_rx_syscalls: int
    tun_tx_syscalls: int
    drop_no_peer: int
    drop_bad_src: int
    drop_malformed: int
    drop_unknown_index: int
    drop_decrypt: int
    drop_replay: int
    drop_expired: int
    drop_staged_overflow: int
    drop_event_overflow: int
    drop_send_error: int
    keepalives_rx: int
    keepalives_tx: int
    event_ring_used: int
    drop_no_endpoint: int
    drop_staged_cleared: int
    drop_tun_write: int
    icmp_tx: int
    handshakes_rx: int
    udp_tx_gso: int  # UDP_SEGMENT sends of more than one datagram
    udp_gso_refused: int  # refused UDP_SEGMENT sends (then sent one by one)
    udp_rx_gro: int  # coalesced receives split
    tun_rx_gso: int  # super-packets read from the TUN and split
    tun_tx_gro: int  # super-packets written to the TUN
    tun_gro_refused: int  # super-packets the TUN refused (then written one by one)
    drop_handshake_mac: int  # type 1 or 2 with a wrong mac1 (or no key of ours yet)
    handshake_cookies_tx: int  # cookie replies sent under load
    drop_handshake_ratelimit: int  # under load, valid mac2, the source over its budget
    handshake_under_load: int  # 1 while under load (a gauge)
    drop_loop: int  # our own datagram routed back into the TUN towards its peer

    def drops(self) -> dict[str, int]:
        """Every drop counter, by name (drop_REASON)."""
        return {name: getattr(self, name) for name in _STATS_FIELDS if name.startswith("drop_")}


_STATS_FIELDS: Final = tuple(f.name for f in dataclasses.fields(Stats))


class Event:
    """One event of the data plane's ring. Its endpoint stays C's struct wg_endpoint, as
    bytes, until `source` is asked for: a responder hands it back to C as it came
    (`answer_handshakes`), and a gateway takes thousands a second."""

    __slots__ = ("_source", "data", "peer", "raw_source", "time_ns", "type")

    def __init__(self, type: EventType, peer: int | None, time_ns: int, raw_source: bytes,
                 data: bytes) -> None:
        self.type = type
        self.peer = peer  # None for handshake messages and TUN_GONE
        self.time_ns = time_ns
        self.raw_source = raw_source  # struct wg_endpoint
        self.data = data  # HANDSHAKE: the whole message
        self._source: Endpoint | bool | None = False  # False: not parsed yet

    @property
    def source(self) -> Endpoint | None:
        """HANDSHAKE: the sender; ENDPOINT_CHANGED: the new endpoint."""
        if self._source is False:
            self._source = _endpoint_from_fields(*_ENDPOINT.unpack(self.raw_source))
        assert self._source is not True
        return self._source

    @property
    def has_source(self) -> bool:
        return self.raw_source[0] in (4, 6)

    def __repr__(self) -> str:
        return f"Event({self.type.name}, peer={self.peer}, source={self.source})"


def _address(family: int, raw: Any) -> IPAddress:
    return _address_of(family, bytes(_ffi.buffer(raw, 4 if family == 4 else 16)))


def _address_of(family: int, packed: bytes) -> IPAddress:
    # The class by family: ip_address() would try IPv4 then IPv6 (once per handshake event).
    return ipaddress.IPv4Address(packed) if family == 4 else ipaddress.IPv6Address(packed)


def _endpoint_from_c(c: Any) -> Endpoint | None:
    family = int(c.family)
    if family not in (4, 6):
        return None
    source = bytes(_ffi.buffer(c.src_addr, 4 if family == 4 else 16))
    return Endpoint(
        address=_address(family, c.addr),
        port=int(c.port),
        scope_id=int(c.scope_id),
        source=_address_of(family, source) if any(source) else None,
        source_ifindex=int(c.src_ifindex),
    )


def _endpoint_to_c(endpoint: Endpoint | None, c: Any) -> None:
    _ffi.memmove(_ffi.addressof(c), bytes(_ffi.sizeof(c)), _ffi.sizeof(c))
    if endpoint is None:
        return
    c.family = endpoint.address.version
    _ffi.memmove(c.addr, endpoint.address.packed, len(endpoint.address.packed))
    c.port = endpoint.port
    c.scope_id = endpoint.scope_id
    if endpoint.source is not None:
        _ffi.memmove(c.src_addr, endpoint.source.packed, len(endpoint.source.packed))
    c.src_ifindex = endpoint.source_ifindex


def _layout(fields: list[tuple[int, str]]) -> struct.Struct:
    """A struct.Struct that reads the given (offset, struct code) fields, in offset order,
    out of a C struct's bytes: the offsets come from cffi, so it holds on any ABI."""
    fmt, at = ["="], 0
    for offset, code in fields:
        if offset > at:
            fmt.append(f"{offset - at}x")
        fmt.append(code)
        at = offset + struct.calcsize("=" + code)
    return struct.Struct("".join(fmt))


def _transfer_layout() -> struct.Struct:
    def at(*path: str) -> int:
        return int(_ffi.offsetof("struct wg_peer_info", *path))
    return _layout([(at("endpoint", "family"), "B"), (at("endpoint", "addr"), "16s"),
                    (at("endpoint", "port"), "H"), (at("endpoint", "scope_id"), "I"),
                    (at("endpoint", "src_addr"), "16s"), (at("endpoint", "src_ifindex"), "I"),
                    (at("rx_bytes"), "Q"), (at("tx_bytes"), "Q")])


def _facts_layout() -> struct.Struct:
    def at(field: str) -> int:
        return int(_ffi.offsetof("struct wg_peer_info", field))
    return _layout([(int(_ffi.offsetof("struct wg_peer_info", "endpoint", "family")), "B")]
                   + [(at(name), "Q") for name in _FACT_FIELDS]
                   + [(at("has_next"), "B"), (at("current_initiator"), "B"), (at("staged"), "I")])


# What `wg show` and the metrics read of every peer: its endpoint and byte counters.
_TRANSFER: Final = _transfer_layout()
# What the timers read of a peer (PeerFacts, in its order), after the endpoint's family.
_FACT_FIELDS: Final = ("last_tx_auth_ns", "last_rx_auth_ns", "first_tx_data_since_rx_ns",
                       "first_rx_data_since_tx_ns", "last_tx_data_ns", "last_rx_data_ns",
                       "current_birth_ns", "current_send_counter")
_FACTS: Final = _facts_layout()
# struct wg_peer_transfer, as C lays it out (checked against cffi's idea of it below).
_PEER_TRANSFER: Final = struct.Struct("=QQ16sHB5x")
assert _PEER_TRANSFER.size == _ffi.sizeof("struct wg_peer_transfer")
_NO_SOURCE: Final = bytes(16)
# struct wg_allowed_ip.
_ALLOWED_IP: Final = struct.Struct("=16sBB")
assert _ALLOWED_IP.size == _ffi.sizeof("struct wg_allowed_ip")


def _struct_layout(name: str, fields: list[tuple[tuple[str, ...], str]]) -> struct.Struct:
    """_layout of C struct `name` by field paths, padded to the struct's size (so that
    iter_unpack walks an array of them)."""
    layout = _layout([(int(_ffi.offsetof(name, *path)), code) for path, code in fields])
    pad = _ffi.sizeof(name) - layout.size
    return struct.Struct(layout.format + (f"{pad}x" if pad else ""))


_ENDPOINT_SIZE: Final = _ffi.sizeof("struct wg_endpoint")
# struct wg_endpoint, in _endpoint_from_fields's order.
_ENDPOINT: Final = _struct_layout("struct wg_endpoint", [
    (("family",), "B"), (("addr",), "16s"), (("port",), "H"), (("scope_id",), "I"),
    (("src_addr",), "16s"), (("src_ifindex",), "I")])
_EVENT: Final = _struct_layout("struct wg_event", [
    (("type",), "I"), (("peer",), "I"), (("time_ns",), "Q"), (("src",), f"{_ENDPOINT_SIZE}s"),
    (("len",), "I"), (("data",), f"{_EVENT_DATA_MAX}s")])
_EVENT_TYPES: Final = {int(t): t for t in EventType}
# struct wg_handshake_answer, without its result (C's to write).
_RESPONSE_LEN: Final = constants.MESSAGE_RESPONSE_SIZE
_ANSWER: Final = _struct_layout("struct wg_handshake_answer", [
    (("keypair", "local_index"), "I"), (("keypair", "remote_index"), "I"),
    (("keypair", "send_key"), "32s"), (("keypair", "recv_key"), "32s"),
    (("keypair", "initiator"), "B"), (("keypair", "birth_ns"), "Q"),
    (("source",), f"{_ENDPOINT_SIZE}s"), (("peer",), "I"), (("received",), "I"),
    (("response",), f"{_RESPONSE_LEN}s")])
_ANSWER_RESULT: Final = struct.Struct("=i")
_ANSWER_RESULT_AT: Final = int(_ffi.offsetof("struct wg_handshake_answer", "result"))
assert _ffi.sizeof(dict(_ffi.typeof("struct wg_handshake_answer").fields)["response"].type) \
    == _RESPONSE_LEN


def pack_endpoint(endpoint: Endpoint) -> bytes:
    """An endpoint as C's struct wg_endpoint, as Event.raw_source holds one."""
    source = endpoint.source.packed if endpoint.source is not None else b""
    return _ENDPOINT.pack(endpoint.address.version, endpoint.address.packed, endpoint.port,
                          endpoint.scope_id, source, endpoint.source_ifindex)


def _endpoint_from_fields(family: int, addr: bytes, port: int, scope_id: int, src: bytes,
                          src_ifindex: int) -> Endpoint | None:
    if family == 4:
        return Endpoint(ipaddress.IPv4Address(addr[:4]), port, scope_id,
                        None if src[:4] == _NO_SOURCE[:4] else ipaddress.IPv4Address(src[:4]),
                        src_ifindex)
    if family == 6:
        return Endpoint(ipaddress.IPv6Address(addr), port, scope_id,
                        None if src == _NO_SOURCE else ipaddress.IPv6Address(src), src_ifindex)
    return None


def _index(present: int, index: int) -> int | None:
    return int(index) if present else None


def _peer_info_from_c(c: Any) -> PeerInfo:
    return PeerInfo(
        endpoint=_endpoint_from_c(c.endpoint),
        rx_bytes=int(c.rx_bytes),
        tx_bytes=int(c.tx_bytes),
        last_tx_auth_ns=int(c.last_tx_auth_ns),
        last_rx_auth_ns=int(c.last_rx_auth_ns),
        first_tx_data_since_rx_ns=int(c.first_tx_data_since_rx_ns),
        first_rx_data_since_tx_ns=int(c.first_rx_data_since_tx_ns),
        last_tx_data_ns=int(c.last_tx_data_ns),
        last_rx_data_ns=int(c.last_rx_data_ns),
        current_birth_ns=int(c.current_birth_ns),
        current_send_counter=int(c.current_send_counter),
        previous_index=_index(c.has_previous, c.previous_index),
        current_index=_index(c.has_current, c.current_index),
        next_index=_index(c.has_next, c.next_index),
        current_initiator=bool(c.current_initiator),
        staged=int(c.staged),
    )


def _events_from_c(raw: Any) -> list[Event]:
    """The events in a buffer of struct wg_event, in one struct unpack each."""
    kinds = _EVENT_TYPES
    return [Event(kinds[kind], None if peer == PEER_NONE else peer, time_ns, source,
                  data[:min(length, _EVENT_DATA_MAX)])
            for kind, peer, time_ns, source, length, data in _EVENT.iter_unpack(raw)]


_C_OFFLOADS: Final = (
    (Offload.UDP_GSO, _lib.WG_DP_OFFLOAD_UDP_GSO),
    (Offload.UDP_GRO, _lib.WG_DP_OFFLOAD_UDP_GRO),
    (Offload.TUN_TCP_GRO, _lib.WG_DP_OFFLOAD_TUN_TCP_GRO),
    (Offload.TUN_UDP_GRO, _lib.WG_DP_OFFLOAD_TUN_UDP_GRO),
)


def _offloads_to_c(offloads: Offload) -> int:
    return sum(bit for flag, bit in _C_OFFLOADS if flag in offloads)


def _offloads_from_c(bits: int) -> Offload:
    result = Offload.NONE
    for flag, bit in _C_OFFLOADS:
        if bits & bit:
            result |= flag
    return result


def _settings_to_c(settings: Settings) -> Any:
    c = _ffi.new("struct wg_dp_settings *")
    c.tun_fd = settings.tun_fd
    c.tun_vnet_hdr = int(settings.tun_vnet_hdr)
    c.tun_pi = int(settings.tun_pi)
    c.udp4_fd = settings.udp4_fd
    c.udp6_fd = settings.udp6_fd
    c.mtu = settings.mtu
    c.max_peers = settings.max_peers
    c.event_ring_size = settings.event_ring_size
    c.offloads = _offloads_to_c(settings.offloads)
    c.crypto_threads = settings.crypto_threads
    t = settings.timing
    c.timing.rekey_after_time_ns = t.rekey_after_time_ns
    c.timing.reject_after_time_ns = t.reject_after_time_ns
    c.timing.keepalive_timeout_ns = t.keepalive_timeout_ns
    c.timing.rekey_timeout_ns = t.rekey_timeout_ns
    c.timing.rekey_after_messages = t.rekey_after_messages
    c.timing.reject_after_messages = t.reject_after_messages
    return c


def _key(name: str, key: bytes | bytearray | memoryview) -> bytes | bytearray | memoryview:
    if len(key) != constants.NOISE_SYMMETRIC_KEY_LEN:
        raise ValueError(f"{name} must be {constants.NOISE_SYMMETRIC_KEY_LEN} bytes")
    return key


class DataPlane:
    """One device's data plane: create, configure, start; `close` stops and frees it.

    Methods are meant for one thread (the driver's event loop); the C side is safe against
    its own packet threads. Peers are slots in [0, settings.max_peers).
    """

    def __init__(self, settings: Settings) -> None:
        init_aead()  # libsodium's AEADs handed over before the first data plane
        out = _ffi.new("struct wg_dp **")
        _check(_lib.wg_dp_create(_settings_to_c(settings), out))
        self._dp: Any = out[0]
        self._events: Any = _ffi.new("struct wg_event[]", constants.DATAPLANE_EVENTS_PER_READ)
        self._info: Any = _ffi.new("struct wg_peer_info *")
        self._info_bytes: Any = _ffi.buffer(self._info)
        self._endpoint: Any = _ffi.new("struct wg_endpoint *")
        self._addr: Any = _ffi.new("uint8_t[16]")

    # ---- lifetime -----------------------------------------------------------------------
    def close(self) -> None:
        """Stop the threads, wipe every key and free the data plane; idempotent."""
        if self._dp is not None:
            _lib.wg_dp_destroy(self._dp)
            self._dp = None

    def __enter__(self) -> DataPlane:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _handle(self) -> Any:
        if self._dp is None:
            raise ValueError("the data plane is closed")
        return self._dp

    def start(self) -> None:
        _check(_lib.wg_dp_start(self._handle()))

    def stop(self) -> None:
        _check(_lib.wg_dp_stop(self._handle()))

    @property
    def event_fd(self) -> int:
        """Readable while events are queued: register it with the event loop."""
        return int(_lib.wg_dp_event_fd(self._handle()))

    def set_udp(self, udp4_fd: int, udp6_fd: int) -> None:
        """Switch sockets after a rebind; the old fds are unused once this returns."""
        _check(_lib.wg_dp_set_udp(self._handle(), udp4_fd, udp6_fd))

    def set_mtu(self, mtu: int) -> None:
        _check(_lib.wg_dp_set_mtu(self._handle(), mtu))

    def set_route_mtus(self, routes: Sequence[tuple[IPNetwork, int]], overflow_mtu: int = 0,
                       ) -> None:
        """The routes through the TUN that carry an MTU (network, MTU), at most
        ROUTE_MTU_MAX: a packet is padded no further than the MTU of the longest one that
        contains its destination, nor further than `overflow_mtu` (0: no such cap)."""
        table = _ffi.new("struct wg_route_mtu[]", max(len(routes), 1))
        for i, (network, mtu) in enumerate(routes):
            entry = table[i]
            entry.family = network.version
            entry.cidr = network.prefixlen
            packed = network.network_address.packed
            _ffi.memmove(entry.addr, packed, len(packed))
            entry.mtu = mtu
        _check(_lib.wg_dp_set_route_mtus(self._handle(), table, len(routes), overflow_mtu))

    def crypto_threads(self) -> int:
        """Threads that seal (and as many that open) one batch: the setting, or its default."""
        return _check(_lib.wg_dp_crypto_threads(self._handle()))

    def offloads(self) -> Offload:
        """The data plane's offloads in use now: those allowed that the sockets took, and
        the TUN coalescing the TUN has not refused (TUN_TSO/TUN_USO are the TUN's own)."""
        return _offloads_from_c(_check(_lib.wg_dp_offloads(self._handle())))

    # ---- peers --------------------------------------------------------------------------
    def add_peer(self, peer: int) -> None:
        _check(_lib.wg_dp_peer_add(self._handle(), peer))

    def remove_peer(self, peer: int) -> None:
        """Drops the peer's allowed IPs, keypairs and staged packets too."""
        _check(_lib.wg_dp_peer_remove(self._handle(), peer))

    def set_endpoint(self, peer: int, endpoint: Endpoint | None) -> None:
        _endpoint_to_c(endpoint, self._endpoint[0])
        _check(_lib.wg_dp_peer_set_endpoint(self._handle(), peer, self._endpoint))

    def clear_source(self, peer: int) -> None:
        """Forget the sticky source address (the kernel does it before handshake retries)."""
        _check(_lib.wg_dp_peer_clear_src(self._handle(), peer))

    def handshake_received(self, peer: int, length: int, now_ns: int) -> None:
        """Count an authenticated handshake message from the peer: its bytes, and an
        authenticated receive for the timers (C never sees which ones were valid)."""
        _check(_lib.wg_dp_peer_handshake_received(self._handle(), peer, length, now_ns))

    def peer_info(self, peer: int) -> PeerInfo:
        _check(_lib.wg_dp_peer_info(self._handle(), peer, self._info))
        return _peer_info_from_c(self._info)

    def peer_facts(self, peer: int) -> tuple[bool, PeerFacts]:
        """(has an endpoint, what the timers read): the part of peer_info that every timer
        evaluation needs, in one struct unpack (a gateway evaluates thousands a second)."""
        _check(_lib.wg_dp_peer_info(self._handle(), peer, self._info))
        (family, tx_auth, rx_auth, first_tx_data, first_rx_data, tx_data, rx_data, birth,
         counter, has_next, initiator, staged) = _FACTS.unpack_from(self._info_bytes)
        return family != 0, PeerFacts(tx_auth, rx_auth, first_tx_data, first_rx_data, tx_data,
                                      rx_data, birth, counter, bool(initiator), bool(has_next),
                                      staged)

    def peer_transfer(self, peer: int) -> tuple[Endpoint | None, int, int]:
        """(endpoint, rx_bytes, tx_bytes): the part of peer_info that `wg show` and the
        metrics read of every peer, read at a fraction of its cost (one struct unpack)."""
        _check(_lib.wg_dp_peer_info(self._handle(), peer, self._info))
        family, addr, port, scope, src, ifindex, rx, tx = _TRANSFER.unpack_from(
            self._info_bytes)
        return _endpoint_from_fields(family, addr, port, scope, src, ifindex), rx, tx

    def peers_transfer(self, peers: list[int]) -> list[tuple[int, bytes, int, int, int]]:
        """(family, address, port, rx_bytes, tx_bytes) of each peer, in one C call: what a
        `get` reads of every peer. family 0: no endpoint; 255: no such peer."""
        n = len(peers)
        out = _ffi.new("struct wg_peer_transfer[]", max(n, 1))
        _check(_lib.wg_dp_peers_transfer(self._handle(), _ffi.new("uint32_t[]", peers), n, out))
        raw = _ffi.buffer(out, n * _ffi.sizeof("struct wg_peer_transfer"))
        return [(family, addr, port, rx, tx)
                for rx, tx, addr, port, family in _PEER_TRANSFER.iter_unpack(raw)]

    def active_peers(self, limit: int = 4096) -> list[int]:
        """Peers whose facts moved since they were last returned here (the timer tick's
        work list); call again while it returns `limit` peers."""
        buf = _ffi.new("uint32_t[]", limit)
        n = _check(_lib.wg_dp_active_peers(self._handle(), buf, limit))
        return [int(buf[i]) for i in range(n)]

    # ---- cryptokey routing --------------------------------------------------------------
    def _network(self, network: AllowedIP | IPNetwork) -> tuple[int, int]:
        if isinstance(network, AllowedIP):
            family, packed, cidr = network
        else:
            family, packed, cidr = (network.version, network.network_address.packed,
                                    network.prefixlen)
        _ffi.memmove(self._addr, packed, len(packed))
        return family, cidr

    def insert_allowed_ip(self, peer: int, network: AllowedIP | IPNetwork) -> None:
        """Route `network` to `peer` (taking it from any other peer)."""
        family, cidr = self._network(network)
        _check(_lib.wg_dp_allowedips_insert(self._handle(), peer, family, self._addr, cidr))

    def remove_allowed_ip(self, peer: int, network: AllowedIP | IPNetwork) -> None:
        """Remove `network` if `peer` owns it; FileNotFoundError (ENOENT) otherwise."""
        family, cidr = self._network(network)
        _check(_lib.wg_dp_allowedips_remove(self._handle(), peer, family, self._addr, cidr))

    def remove_allowed_ips(self, peer: int) -> None:
        _check(_lib.wg_dp_allowedips_remove_peer(self._handle(), peer))

    def allowed_ip_owner(self, network: AllowedIP | IPNetwork) -> int | None:
        """The peer that owns exactly `network`, or None."""
        family, cidr = self._network(network)
        peer = _ffi.new("uint32_t *")
        rc = _lib.wg_dp_allowedips_owner(self._handle(), family, self._addr, cidr, peer)
        if rc == -errno.ENOENT:
            return None
        _check(rc)
        return int(peer[0])

    def allowed_ips(self, peers: list[int]) -> list[list[AllowedIP]]:
        """Each peer's allowed IPs in the order they were given: the data plane keeps the
        only copy."""
        return [[AllowedIP(family, addr[:4] if family == 4 else addr, cidr)
                 for addr, family, cidr in nets] for nets in self.allowed_ips_raw(peers)]

    def allowed_ips_raw(self, peers: list[int]) -> list[list[tuple[bytes, int, int]]]:
        """allowed_ips as they come out of C, for `get` (a gateway lists millions): each
        prefix (address, family, cidr), the address 16 bytes (the first 4 for IPv4). One C
        call, two when the first guess of room is short."""
        n = len(peers)
        slots = _ffi.new("uint32_t[]", peers)
        counts = _ffi.new("uint32_t[]", max(n, 1))
        room = max(2 * n, 16)
        while True:
            out = _ffi.new("struct wg_allowed_ip[]", room)
            total = _check(_lib.wg_dp_allowedips_list(self._handle(), slots, n, counts, out,
                                                      room))
            if total <= room:
                break
            room = total
        listed = list(_ALLOWED_IP.iter_unpack(_ffi.buffer(out, total * _ALLOWED_IP.size)))
        result, at = [], 0
        for count in _ffi.unpack(counts, n):
            result.append(listed[at:at + count])
            at += count
        return result

    def allowed_ips_count(self) -> int:
        """How many prefixes all peers own together."""
        return _check(_lib.wg_dp_allowedips_count(self._handle()))

    def lookup(self, address: IPAddress) -> int | None:
        """The peer that `address` routes to, or None."""
        _ffi.memmove(self._addr, address.packed, len(address.packed))
        peer = int(_lib.wg_dp_allowedips_lookup(self._handle(), address.version, self._addr))
        return None if peer == PEER_NONE else peer

    # ---- the handshake front line -------------------------------------------------------
    def set_public_key(self, public_key: bytes | None) -> None:
        """Our static public key, for the receive thread's mac1 and cookie checks (None:
        there is none, and every handshake message is dropped there)."""
        if public_key is not None and len(public_key) != 32:
            raise ValueError("a public key is 32 bytes")
        _check(_lib.wg_dp_set_public_key(self._handle(), public_key or _ffi.NULL))

    # ---- keypairs and their indices -----------------------------------------------------
    def new_index(self, peer: int) -> int:
        """A fresh random receiver index for a handshake message to or from `peer`; the
        peer's previous handshake index is released. The data plane owns every index."""
        index = _ffi.new("uint32_t *")
        _check(_lib.wg_dp_index_new(self._handle(), peer, index))
        return int(index[0])

    def install_keypair(
        self,
        peer: int,
        *,
        local_index: int,
        remote_index: int,
        send_key: bytes | bytearray | memoryview,
        receive_key: bytes | bytearray | memoryview,
        initiator: bool,
        birth_ns: int,
    ) -> None:
        """Hand a finished handshake's keys to the data plane, under the handshake's index.
        An initiator's keypair is used at once (send_keepalive then sends the staged
        packets); a responder's waits to be confirmed. OSError(ESTALE) if a newer handshake
        has taken the peer's index since."""
        params = _ffi.new("struct wg_keypair_params *")
        try:
            params.local_index = local_index
            params.remote_index = remote_index
            _ffi.memmove(params.send_key, _key("send_key", send_key), 32)
            _ffi.memmove(params.recv_key, _key("receive_key", receive_key), 32)
            params.initiator = int(initiator)
            params.birth_ns = birth_ns
            _check(_lib.wg_dp_keypair_install(self._handle(), peer, params))
        finally:
            _ffi.memmove(params, bytes(_ffi.sizeof(params[0])), _ffi.sizeof(params[0]))

    def clear_keypairs(self, peer: int) -> None:
        """Wipe every keypair of the peer and release its handshake's index
        (zeroKeyMaterial, a new private key)."""
        _check(_lib.wg_dp_keypairs_clear(self._handle(), peer))

    def clear_staged(self, peer: int) -> None:
        _check(_lib.wg_dp_staged_clear(self._handle(), peer))

    # ---- sending ------------------------------------------------------------------------
    def send_to_peer(self, peer: int, message: bytes) -> None:
        """Send a handshake message to the peer's endpoint (counts as authenticated)."""
        _check(_lib.wg_dp_send_to_peer(self._handle(), peer, message, len(message)))

    def send_to(self, endpoint: Endpoint, message: bytes) -> None:
        """Send any datagram (a cookie reply) to an endpoint."""
        _endpoint_to_c(endpoint, self._endpoint[0])
        _check(_lib.wg_dp_send_to(self._handle(), self._endpoint, message, len(message)))

    def answer_handshakes(self, answers: Sequence[Answer], now_ns: int) -> list[int]:
        """For each answered initiation (peer, the event's raw_source, the initiation's
        length, the session's local and remote index, send and receive key, birth, the
        response), in one C call: the peer roams to the source, the initiation counts as an
        authenticated receive at now_ns, the keypair goes in (as next), the response goes
        out (wg_dp_handshakes_answer). Each one's 0 or -errno: -ESTALE (a newer handshake
        took the index: neither installed nor sent), -ENOENT (no such peer),
        -EAFNOSUPPORT (no source), else the send's error (the keypair is in)."""
        n = len(answers)
        if not n:
            return []
        size = _ANSWER.size
        buf = bytearray(n * size)
        try:
            at = 0
            for peer, source, received, local, remote, send_key, receive_key, birth, \
                    response in answers:
                if len(response) != _RESPONSE_LEN or len(source) != _ENDPOINT_SIZE:
                    raise ValueError("a response is 92 bytes, a source a struct wg_endpoint")
                _ANSWER.pack_into(buf, at, local, remote, _key("send_key", send_key),
                                  _key("receive_key", receive_key), 0, birth, source, peer,
                                  received, response)
                at += size
            _check(_lib.wg_dp_handshakes_answer(self._handle(),
                                                _ffi.from_buffer("struct wg_handshake_answer[]",
                                                                 buf), n, now_ns))
            return [_ANSWER_RESULT.unpack_from(buf, i * size + _ANSWER_RESULT_AT)[0]
                    for i in range(n)]
        finally:
            buf[:] = bytes(len(buf))

    def send_keepalive(self, peer: int) -> None:
        """Send the staged packets, or else a keepalive (staged if no keypair can send)."""
        _check(_lib.wg_dp_send_keepalive(self._handle(), peer))

    # ---- reading ------------------------------------------------------------------------
    def read_events(self) -> list[Event]:
        """Every queued event, oldest first."""
        events: list[Event] = []
        size = constants.DATAPLANE_EVENTS_PER_READ
        while True:
            n = _check(_lib.wg_dp_events_read(self._handle(), self._events, size))
            events += _events_from_c(_ffi.buffer(self._events, n * _EVENT.size))
            if n < size:
                return events

    def stats(self) -> Stats:
        c = _ffi.new("struct wg_dp_stats *")
        _check(_lib.wg_dp_stats_get(self._handle(), c))
        return Stats(**{name: int(getattr(c, name)) for name in _STATS_FIELDS})



def init_aead() -> str:
    """Hand libsodium (pynacl's bundled copy) to the C side: its ChaCha20-Poly1305 as one
    more AEAD backend and its XChaCha20-Poly1305 for cookie replies; let the C side
    self-test every AEAD backend and pick the fastest that passed (or PYWG_AEAD's); returns
    the name of the one in use. Idempotent."""
    from nacl._sodium import ffi as sodium_ffi
    from nacl._sodium import lib as sodium_lib

    def pointer(name: str) -> Any:
        address = int(sodium_ffi.cast("uintptr_t", sodium_ffi.addressof(sodium_lib, name)))
        return _ffi.cast("void *", address)

    # Before it, libsodium runs its slowest code paths. (Through nacl._sodium, pynacl's cffi
    # module: its Python bindings, nacl.bindings, cost an idle daemon about 1.4 MiB.)
    if sodium_lib.sodium_init() < 0:
        raise OSError(errno.EIO, "libsodium failed to initialise")
    _check(_lib.wg_aead_register_sodium(pointer("crypto_aead_chacha20poly1305_ietf_encrypt"),
                                        pointer("crypto_aead_chacha20poly1305_ietf_decrypt")))
    _check(_lib.wg_cookie_register_sodium(
        pointer("crypto_aead_xchacha20poly1305_ietf_encrypt")))
    _check(_lib.wg_aead_init())
    return str(_ffi.string(_lib.wg_aead_name()).decode())


def aead_backends() -> list[tuple[str, int]]:
    """Every ChaCha20-Poly1305 backend compiled in, fastest first, with the result of its
    start-up self-test: 0 (passed), -ENOTSUP (this CPU cannot run it) or -EIO (failed).
    The self-test runs on first asking, for each backend; call init_aead() first so that
    libsodium's is among them."""
    most = 32
    names = _ffi.new("const char *[]", most)
    count = min(int(_lib.wg_aead_backends(names, most)), most)
    out = []
    for i in range(count):
        name = _ffi.string(names[i])
        out.append((name.decode(), int(_lib.wg_aead_status(name))))
    return out
