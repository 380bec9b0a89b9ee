"""Prometheus metrics of one interface: `pywg --metrics [ADDR:]PORT IFNAME`, or PYWG_METRICS.

Theory of operation
===================

The daemon imports this module (and prometheus_client) only when metrics are asked for. An
HTTP server runs in its own threads. A scrape asks the event loop for one Reading: each
peer's byte counters, endpoint and latest handshake (and the allowed IPs of those new or
changed since the last scrape), the data plane's counters and the driver's handshake
counters. The loop reads them METRICS_READ_SLICE_PEERS peers per callback (1-2 ms each:
_SlicedReading says why that is safe), so that handshakes, timers and the UAPI wait for no
more than a slice, not for a gateway's 100,000 peers. Everything else
(names, labels, text, gzip) is done in the HTTP thread and the gzip threads. The data plane
never waits for a scrape: its threads do not take the GIL, and its counters are read under
its own lock, a slice of peers per call. Scrapes closer together than
METRICS_MIN_READ_INTERVAL_S share one reading, and at most METRICS_MAX_CONCURRENT are
served at once, so no number of scrapers costs the loop more than one reading a second.

What is exported (README, "Operating pywg", lists them with their labels):

  per peer, named as the common WireGuard exporter names them so that its dashboards work:
    wireguard_peer_info, wireguard_peer_receive_bytes_total,
    wireguard_peer_transmit_bytes_total, wireguard_peer_last_handshake_seconds
    (labels device, public_key, name; `name` from `# Name = ...` comments in the config
    file, pywg._config.names). `per_peer=False` (PYWG_METRICS_PEERS=off) leaves them out
    for gateways with so many peers that they would swamp a time-series database;
  per device, always: wireguard_device_info, wireguard_peers, and the histogram
    wireguard_peer_handshake_age_seconds;
  pywg's own (pywg_*): packets, system calls and bytes per path, every drop counter by
    reason, handshakes (initiated, answered, completed, failed by reason), cookies and the
    under-load state, rekeys, offload use, the AEAD backend, crypto threads, the event
    ring's fill; and prometheus_client's process_* (resident memory, CPU, fds).

The per-peer families are where the cost is (four lines per peer). prometheus_client builds
a Sample per line and formats it with general-purpose escaping, about 16 us a line: 6 s
for 100,000 peers. So they are `_PeerFamily` objects: real prometheus_client families
(their `samples` are made when someone asks, as generate_latest or a registry user does),
that can also write their own text with label blocks kept from one scrape to the next
(`_PeerLines`: a peer's are made again only when its configuration, endpoint or name
changed). `encode()` writes every other family with prometheus_client's generate_latest,
and the tests check that the result is byte for byte what generate_latest writes for the
same families. The text is written in parts of METRICS_PART_PEERS lines, and a gzipped
scrape deflates each part on other threads while the next is written
(pywg._driver.parallel_gzip).
"""

from __future__ import annotations

import bisect
import concurrent.futures
import contextlib
import dataclasses
import gc
import ipaddress
import logging
import math
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Final, cast
from urllib.parse import urlsplit

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, ProcessCollector
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.exposition import generate_latest
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString as _untyped_go_float

from pywg._config.model import DeviceConfig, PeerConfig, PrivateKey
from pywg._config.names import Names, NamesFile
from pywg._config.uapi import format_prefix, shown_endpoint
from pywg._constants import (
    DATAPLANE_EVENT_RING_SIZE,
    METRICS_DEFAULT_HOST,
    METRICS_GZIP_LEVEL,
    METRICS_GZIP_THREADS,
    METRICS_HANDSHAKE_AGE_BUCKETS,
    METRICS_MAX_CONCURRENT,
    METRICS_MIN_READ_INTERVAL_S,
    METRICS_PART_PEERS,
    METRICS_READ_SLICE_PEERS,
    METRICS_READ_TIMEOUT_S,
    METRICS_REQUEST_TIMEOUT_S,
    NSEC_PER_SEC,
)
from pywg._driver import offload
from pywg._driver.counters import HandshakeCounters
from pywg._driver.datapath import Stats
from pywg._driver.device import PeerCounters
from pywg._driver.parallel_gzip import ParallelGzip

if TYPE_CHECKING:
    import asyncio

    from pywg._driver.device import Device

__all__ = [
    "Exporter",
    "MetricsServer",
    "Reading",
    "encode",
    "listen",
    "parse_listen",
    "serve",
    "start_reading",
]

# prometheus_client's own number format (Go's), typed.
_go_float = cast(Callable[[float], str], _untyped_go_float)

log = logging.getLogger("pywg")


# ---- where to listen ---------------------------------------------------------------------------

def parse_listen(text: str) -> tuple[str, int]:
    """`PORT`, `:PORT`, `ADDR:PORT` or `[IPV6]:PORT` -> (address, port); ValueError."""
    text = text.strip()
    host, sep, port_text = text.rpartition(":")
    if not sep:
        host, port_text = "", text
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"an IPv6 address needs brackets: [{host}]:{port_text}")
    if not port_text.isdigit() or not 0 < int(port_text) <= 0xFFFF:
        raise ValueError(f"not a TCP port: {port_text!r} (expected [ADDR:]PORT)")
    host = host or METRICS_DEFAULT_HOST
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"not an IP address: {host!r} (expected [ADDR:]PORT)") from None
    return host, int(port_text)


def listen(text: str) -> socket.socket:
    """A listening TCP socket for `[ADDR:]PORT`; OSError if the address is taken."""
    host, port = parse_listen(text)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host, port), family=family)


# ---- one reading of the device -----------------------------------------------------------------

# Which peers' allowed IPs a reading should read (None: nobody's): the exporter keeps each
# peer's labels while its configuration stays the same, and apply replaces a peer's
# PeerConfig whenever its allowed IPs change, so only new and changed peers need them.
WantsAllowedIPs = Callable[[PeerConfig], bool] | None


@dataclasses.dataclass(frozen=True)
class Reading:
    """What one scrape reports, read on the event loop a slice of peers at a time."""

    device: str
    wall_ns: int
    config: DeviceConfig  # as it was when the reading began
    peers: PeerCounters  # those of config.peers still there when their slice was read
    stats: Stats
    handshakes: HandshakeCounters
    handshake_drops: Mapping[str, int]  # handshake messages dropped, by reason
    aead: str
    offloads: offload.Offload
    crypto_threads: int


class ReadError(Exception):
    """The device could not be read (shutting down, or its loop did not answer in time)."""


class _SlicedReading:
    """One Reading, taken on the device's event loop `slice_peers` peers per callback.

    The loop runs the handshakes, the timers and the UAPI; reading 100,000 peers at once
    held it for half a second. So the reading is cut into slices, each a callback of its
    own: between two of them the loop serves I/O, timers and whatever else is due, and a
    slice costs a millisecond or two. Everything is still read on the loop, where the
    device's peers are only ever changed, so a slice sees them whole (a change through the
    UAPI is applied in one callback); across slices the reading is of slightly different
    instants, which Prometheus does not mind. The peers read are those of the configuration
    when the reading began (`Device.config` is replaced by `apply`, never changed in
    place), each once, in its order; one removed before its slice is left out, and one
    added meanwhile waits for the next scrape.
    """

    def __init__(self, device: Device, loop: asyncio.AbstractEventLoop,
                 wants_allowed_ips: WantsAllowedIPs, slice_peers: int) -> None:
        self.future: concurrent.futures.Future[Reading] = concurrent.futures.Future()
        self.abandoned = False  # set by the waiting thread when it gives up
        self._device = device
        self._loop = loop
        self._wants = wants_allowed_ips
        self._slice = max(1, slice_peers)
        self._config = DeviceConfig()  # the device's, when the first slice is read
        self._wall_ns = 0
        self._at = 0
        self._peers = PeerCounters()

    def start(self) -> None:
        """On the loop: the first slice."""
        if self.future.set_running_or_notify_cancel():
            self._config = self._device.config
            self._wall_ns = time.time_ns()
            self._step()

    def _step(self) -> None:
        if self.abandoned:  # nobody waits for it any more
            self.future.set_exception(ReadError("abandoned"))
            return
        try:
            peers = self._config.peers
            self._device.read_peers(peers[self._at:self._at + self._slice], self._peers,
                                    self._wants)
            self._at += self._slice
            if self._at < len(peers):
                self._loop.call_soon(self._step)
                return
            self.future.set_result(self._finish())
        except BaseException as e:  # handed to the scraping thread
            self.future.set_exception(e)

    def _finish(self) -> Reading:
        device = self._device
        return Reading(
            device=device.name,
            wall_ns=self._wall_ns,
            config=self._config,
            peers=self._peers,
            stats=device.dp.stats(),
            handshakes=device.counters.copy(),
            handshake_drops=dict(device.drops),
            aead=device.aead_name,
            offloads=device.offloads(),
            crypto_threads=device.dp.crypto_threads(),
        )


def start_reading(device: Device, loop: asyncio.AbstractEventLoop,
                  wants_allowed_ips: WantsAllowedIPs = None, *,
                  slice_peers: int = METRICS_READ_SLICE_PEERS) -> _SlicedReading:
    """Begin a reading of `device` on `loop` (from any thread); `.future` has it."""
    reading = _SlicedReading(device, loop, wants_allowed_ips, slice_peers)
    loop.call_soon_threadsafe(reading.start)
    return reading


Reader = Callable[[WantsAllowedIPs], Reading]


def reader_on_loop(device: Device, loop: asyncio.AbstractEventLoop,
                   timeout: float = METRICS_READ_TIMEOUT_S, *,
                   slice_peers: int = METRICS_READ_SLICE_PEERS) -> Reader:
    """A function any thread may call that returns a Reading taken on `loop`."""
    def read(wants_allowed_ips: WantsAllowedIPs) -> Reading:
        reading: _SlicedReading | None = None
        try:
            reading = start_reading(device, loop, wants_allowed_ips, slice_peers=slice_peers)
            return reading.future.result(timeout)
        except (RuntimeError, concurrent.futures.TimeoutError) as e:
            if reading is not None:
                reading.abandoned = True
                reading.future.cancel()
            raise ReadError(f"the device did not answer: {e or 'timed out'}") from e
        except ValueError as e:  # its data plane closed under a reading (shutting down)
            raise ReadError(f"the device could not be read: {e}") from e
    return read


# ---- numbers and labels as the text format writes them ----------------------------------------

def _go_number(value: int) -> str:
    """prometheus_client's floatToGoString for a non-negative integer, without the detour
    through float where the integer is exact (below 2**53): the hot path of a scrape."""
    if 0 <= value < 1_000_000:
        return f"{value}.0"
    if value <= 1 << 53:
        digits = str(value)
        mantissa = f"{digits[0]}.{digits[1:]}".rstrip("0.")
        return f"{mantissa}e+{len(digits) - 1:02d}"
    return _go_float(value)


def _escape(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r'\"')


# The per-peer families, in the order they are written: (name, help, type, sample name).
_PEER_FAMILIES: Final = (
    ("wireguard_peer_info", "Metadata about a peer. The public_key label on peer metrics "
     "refers to the peer's public key; not the device's public key.", "gauge",
     "wireguard_peer_info"),
    ("wireguard_peer_receive_bytes", "Number of bytes received from a given peer.",
     "counter", "wireguard_peer_receive_bytes_total"),
    ("wireguard_peer_transmit_bytes", "Number of bytes transmitted to a given peer.",
     "counter", "wireguard_peer_transmit_bytes_total"),
    ("wireguard_peer_last_handshake_seconds", "UNIX timestamp for the last handshake with a "
     "given peer (0: never).", "gauge", "wireguard_peer_last_handshake_seconds"),
)
_INFO, _RX, _TX, _HANDSHAKE = range(4)


@dataclasses.dataclass(slots=True)
class _PeerLines:
    """A peer's labels as the text format writes them, kept from one scrape to the next
    while its configuration (apply replaces it when its allowed IPs change), its current
    endpoint and its name stay the same: escaping them anew for 100,000 peers would take
    most of a scrape."""

    config: PeerConfig
    family: int  # the endpoint as the data plane had it
    address: bytes
    port: int
    name: str
    public_key: str
    endpoint: str
    allowed_ips: str
    series: str  # `{device="..",name="..",public_key=".."} `: a value line but its name and value
    info: str  # the whole wireguard_peer_info line

    @classmethod
    def make(cls, dev: str, config: PeerConfig, family: int, address: bytes, port: int,
             name: str, allowed_ips: str) -> _PeerLines:
        # The labels in the order generate_latest writes them (by name); a key in base64
        # needs no escaping. A gateway's first scrape makes 100,000 of these.
        key = config.public_key.base64()
        endpoint = shown_endpoint(config.endpoint, family, address, port) or ""
        dev_, name_ = _escape(dev), _escape(name)
        series = f'{{device="{dev_}",name="{name_}",public_key="{key}"}} '
        info = (f'{_PEER_FAMILIES[_INFO][3]}{{allowed_ips="{_escape(allowed_ips)}",'
                f'device="{dev_}",endpoint="{_escape(endpoint)}",name="{name_}",'
                f'public_key="{key}"}} 1.0\n')
        return cls(config, family, address, port, name, key, endpoint, allowed_ips, series,
                   info)

    def labels(self, dev: str, info: bool) -> dict[str, str]:
        series = {"device": dev, "name": self.name, "public_key": self.public_key}
        return dict(series, endpoint=self.endpoint, allowed_ips=self.allowed_ips) if info \
            else series


@dataclasses.dataclass(slots=True)
class _PeerTable:
    """The per-peer families' rows: each peer's lines and its figures (row by row)."""

    device: str
    lines: list[_PeerLines]
    peers: PeerCounters

    def values(self, column: int) -> list[int]:
        if column == _RX:
            return [t[3] for t in self.peers.transfers]
        if column == _TX:
            return [t[4] for t in self.peers.transfers]
        if column == _HANDSHAKE:
            return [ns // NSEC_PER_SEC for ns in self.peers.handshakes_ns]
        return [1] * len(self.lines)


class _PeerFamily(Metric):
    """One per-peer family (a column of the peer table). Its `samples` are built only when
    asked for (generate_latest, registry users); `text()` writes the same exposition as
    generate_latest from the label blocks kept for each peer."""

    def __init__(self, column: int, table: _PeerTable) -> None:
        name, documentation, typ, self._sample_name = _PEER_FAMILIES[column]
        super().__init__(name, documentation, typ)
        self._column = column
        self._table = table

    @property
    def samples(self) -> list[Sample]:
        table, info = self._table, self._column == _INFO
        return [Sample(self._sample_name, lines.labels(table.device, info), float(value),
                       None, None)
                for lines, value in zip(table.lines, table.values(self._column), strict=True)]

    @samples.setter
    def samples(self, value: list[Sample]) -> None:
        """Metric.__init__ sets an empty list: the table's rows are the samples."""

    def text(self) -> str:
        return "".join(self.parts())

    def parts(self, rows: int = METRICS_PART_PEERS) -> Iterator[str]:
        """The family's exposition in parts of `rows` lines (the first with its head)."""
        help_text = self.documentation.replace("\\", r"\\").replace("\n", r"\n")
        name, table = self._sample_name, self._table
        head = f"# HELP {name} {help_text}\n# TYPE {name} {self.type}\n"
        values = table.values(self._column)
        number = _go_number
        # Peers shake hands every two minutes: a gateway's latest handshakes fall on a few
        # hundred distinct seconds, each written out once a scrape.
        memo: dict[int, str] = {}
        known = memo.get

        def learn(value: int) -> str:
            text = memo[value] = number(value)
            return text

        for start in range(0, max(len(table.lines), 1), rows):
            lines = table.lines[start:start + rows]
            if self._column == _INFO:
                body = "".join([peer.info for peer in lines])
            elif self._column == _HANDSHAKE:
                body = "".join([
                    f"{name}{peer.series}{known(value) or learn(value)}\n"
                    for peer, value in zip(lines, values[start:start + rows], strict=True)])
            else:
                # The hot loop of a scrape (300,000 lines): one f-string a line, and the
                # common case of _go_number (below a million) written out, saving a call.
                body = "".join([
                    f"{name}{peer.series}{value}.0\n" if value < 1_000_000 else
                    f"{name}{peer.series}{number(value)}\n"
                    for peer, value in zip(lines, values[start:start + rows], strict=True)])
            yield head + body if start == 0 else body


class _Families:
    """A fixed list of families, in the shape generate_latest reads (a collector)."""

    def __init__(self, families: Sequence[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterable[Metric]:
        return self._families


def encode(families: Sequence[Metric]) -> bytes:
    """The text exposition of `families`: what prometheus_client.generate_latest writes
    for them, with the per-peer families written by themselves (see the module doc)."""
    return b"".join(encode_parts(families))


def encode_parts(families: Sequence[Metric]) -> Iterator[bytes]:
    """encode(families), a part at a time (a per-peer family in several)."""
    plain: list[Metric] = []
    for family in families:
        if isinstance(family, _PeerFamily):
            if plain:
                yield generate_latest(_Families(plain))
                plain = []
            for part in family.parts():
                yield part.encode()
        else:
            plain.append(family)
    if plain:
        yield generate_latest(_Families(plain))


# ---- the families ------------------------------------------------------------------------------

_DROP_FIELDS = tuple(f.name for f in dataclasses.fields(Stats) if f.name.startswith("drop_"))
_PATHS = (("tun", "rx"), ("tun", "tx"), ("udp", "rx"), ("udp", "tx"))
_OFFLOAD_BATCHES = (("udp_tx_gso", "udp-gso"), ("udp_rx_gro", "udp-gro"),
                    ("tun_rx_gso", "tun-tso"), ("tun_tx_gro", "tun-gro"))
_OFFLOAD_REFUSED = (("udp_gso_refused", "udp-gso"), ("tun_gro_refused", "tun-gro"))


class DeviceCollector:
    """A prometheus_client collector for one device: every family, from one Reading."""

    def __init__(self, read: Reader, *, per_peer: bool = True,
                 names: NamesFile | None = None) -> None:
        self._read = read
        self._per_peer = per_peer
        self._names = names
        self._peer_lines: dict[bytes, _PeerLines] = {}  # by public key
        self._private: PrivateKey | None = None
        self._public = ""

    def collect(self) -> Iterator[Metric]:
        return iter(self.families(self._read(self.wants_allowed_ips if self._per_peer
                                             else None)))

    @property
    def per_peer(self) -> bool:
        """Fixed for the collector's life: a reading made without per-peer series has no
        allowed IPs in it, and one is shared by the scrapes of a second."""
        return self._per_peer

    def wants_allowed_ips(self, config: PeerConfig) -> bool:
        """Whether a reading should read this peer's allowed IPs: it is new, or its
        configuration changed, since the last scrape. Called on the event loop while the
        scraping thread waits for the reading, so the lines it looks at stay put."""
        lines = self._peer_lines.get(config.public_key.raw)
        return lines is None or lines.config is not config

    def families(self, reading: Reading) -> list[Metric]:
        names = self._names.names() if self._names else Names()
        families = self._device_families(reading)
        families += self._pywg_families(reading)
        if self._per_peer:
            families += self._peer_families(reading, names)
        else:
            self._peer_lines.clear()
        return families

    def _public_key(self, reading: Reading) -> str:
        config = reading.config
        if config.private_key is not self._private:
            self._private = config.private_key
            public = config.public_key
            self._public = public.base64() if public is not None else ""
        return self._public

    def _device_families(self, r: Reading) -> list[Metric]:
        dev = r.device
        info = GaugeMetricFamily("wireguard_device_info", "Metadata about a device.",
                                 labels=["device", "public_key"])
        info.add_metric([dev, self._public_key(r)], 1)
        peers = GaugeMetricFamily("wireguard_peers", "Number of peers configured.",
                                  labels=["device"])
        peers.add_metric([dev], len(r.config.peers))
        return [info, peers, self._handshake_ages(r)]

    def _handshake_ages(self, r: Reading) -> Metric:
        """How long ago each peer's last handshake was; peers that never had one are not
        counted (wireguard_peers minus the count is how many)."""
        now = r.wall_ns
        # Sorted, each bucket's count is one bisection: 100,000 peers cost one C sort.
        ages = sorted([max(0, now - ns) / NSEC_PER_SEC for ns in r.peers.handshakes_ns if ns])
        buckets: list[tuple[str, float]] = [
            (_go_float(bound), bisect.bisect_right(ages, bound))
            for bound in METRICS_HANDSHAKE_AGE_BUCKETS]
        buckets.append((_go_float(float("inf")), len(ages)))
        total = math.fsum(ages)
        family = HistogramMetricFamily(
            "wireguard_peer_handshake_age_seconds",
            "Seconds since each peer's last handshake (peers that never had one are not "
            "counted).", labels=["device"])
        family.add_metric([r.device], buckets, total)
        return family

    def _pywg_families(self, r: Reading) -> list[Metric]:
        return [*self._path_families(r), *self._drop_families(r),
                *self._handshake_families(r), *self._plane_families(r)]

    def _path_families(self, r: Reading) -> list[Metric]:
        s, dev = r.stats, r.device
        packets = CounterMetricFamily(
            "pywg_packets", "Packets through each path: TUN reads (rx) and writes (tx), UDP "
            "datagrams received and sent.", labels=["device", "path", "direction"])
        syscalls = CounterMetricFamily(
            "pywg_syscalls", "System calls that moved those packets (batching makes them "
            "fewer).", labels=["device", "path", "direction"])
        for path, direction in _PATHS:
            packets.add_metric([dev, path, direction],
                               getattr(s, f"{path}_{direction}_packets"))
            syscalls.add_metric([dev, path, direction],
                                getattr(s, f"{path}_{direction}_syscalls"))
        transfers = r.peers.transfers
        octets = CounterMetricFamily(
            "pywg_bytes", "Bytes of authenticated datagrams from and to peers (the sum of "
            "the peers' counters, handshakes included).", labels=["device", "path",
                                                                  "direction"])
        octets.add_metric([dev, "udp", "rx"], sum([t[3] for t in transfers]))
        octets.add_metric([dev, "udp", "tx"], sum([t[4] for t in transfers]))
        keepalives = CounterMetricFamily("pywg_keepalives", "Keepalive packets.",
                                         labels=["device", "direction"])
        keepalives.add_metric([dev, "rx"], s.keepalives_rx)
        keepalives.add_metric([dev, "tx"], s.keepalives_tx)
        icmp = CounterMetricFamily(
            "pywg_icmp_sent", "ICMP errors written to the TUN (no route to a peer, too big).",
            labels=["device"])
        icmp.add_metric([dev], s.icmp_tx)
        return [packets, syscalls, octets, keepalives, icmp]

    def _drop_families(self, r: Reading) -> list[Metric]:
        drops = CounterMetricFamily(
            "pywg_dropped_packets", "Packets the data plane dropped, by reason.",
            labels=["device", "reason"])
        for field in _DROP_FIELDS:
            drops.add_metric([r.device, field.removeprefix("drop_")], getattr(r.stats, field))
        return [drops]

    def _handshake_families(self, r: Reading) -> list[Metric]:
        h, dev = r.handshakes, r.device

        def counter(name: str, doc: str, value: int) -> Metric:
            family = CounterMetricFamily(name, doc, labels=["device"])
            family.add_metric([dev], value)
            return family

        received = counter("pywg_handshake_messages_received",
                           "Handshake messages (initiations, responses, cookie replies) the "
                           "data plane handed to the control plane.", r.stats.handshakes_rx)
        failed = CounterMetricFamily(
            "pywg_handshakes_failed", "Handshakes that failed: messages dropped, by reason, "
            "and peers whose attempts ran out (attempts_exhausted).",
            labels=["device", "reason"])
        for reason, count in sorted(r.handshake_drops.items()):
            failed.add_metric([dev, reason.lower()], count)
        failed.add_metric([dev, "attempts_exhausted"], h.attempts_exhausted)
        under_load = GaugeMetricFamily(
            "pywg_under_load", "1 while handshake messages queue up fast enough that the "
            "data plane answers with cookies first.", labels=["device"])
        under_load.add_metric([dev], r.stats.handshake_under_load)
        return [
            received,
            counter("pywg_handshake_initiations_sent", "Handshake initiations sent.",
                    h.initiations_sent),
            counter("pywg_handshake_responses_sent", "Handshake responses sent.",
                    h.responses_sent),
            counter("pywg_handshakes_completed", "Handshakes completed (sessions "
                    "confirmed, as initiator or responder).", h.completed),
            failed,
            counter("pywg_cookie_replies_sent", "Cookie replies sent (under load).",
                    r.stats.handshake_cookies_tx),
            counter("pywg_cookie_replies_received", "Cookie replies received and used.",
                    h.cookie_replies_received),
            under_load,
            counter("pywg_rekeys_requested", "New handshakes asked for because a keypair "
                    "aged or carried enough messages.", h.rekeys_requested),
        ]

    def _plane_families(self, r: Reading) -> list[Metric]:
        s, dev = r.stats, r.device
        enabled = GaugeMetricFamily("pywg_offload_enabled", "1 for each offload in use.",
                                    labels=["device", "offload"])
        for name, flag in offload.NAMES.items():
            enabled.add_metric([dev, name], int(flag in r.offloads))
        batches = CounterMetricFamily(
            "pywg_offload_batches", "Packets moved as one by an offload: UDP_SEGMENT sends, "
            "coalesced UDP receives, TUN super-packets read and written.",
            labels=["device", "offload"])
        for field, name in _OFFLOAD_BATCHES:
            batches.add_metric([dev, name], getattr(s, field))
        refused = CounterMetricFamily(
            "pywg_offload_refused", "Offloaded writes the kernel refused (then done one by "
            "one).", labels=["device", "offload"])
        for field, name in _OFFLOAD_REFUSED:
            refused.add_metric([dev, name], getattr(s, field))
        aead = InfoMetricFamily("pywg_aead", "The ChaCha20-Poly1305 implementation in use.",
                                labels=["device"])
        aead.add_metric([dev], {"backend": r.aead})
        threads = GaugeMetricFamily("pywg_crypto_threads",
                                    "Threads that seal (and as many that open) a batch.",
                                    labels=["device"])
        threads.add_metric([dev], r.crypto_threads)
        ring = GaugeMetricFamily(
            "pywg_event_ring_used", "Events waiting in the ring from the data plane to the "
            "control plane.", labels=["device"])
        ring.add_metric([dev], s.event_ring_used)
        ring_size = GaugeMetricFamily("pywg_event_ring_size", "The event ring's capacity.",
                                      labels=["device"])
        ring_size.add_metric([dev], DATAPLANE_EVENT_RING_SIZE)
        return [enabled, batches, refused, aead, threads, ring, ring_size]

    # ---- per peer -------------------------------------------------------------------------

    def _peer_families(self, r: Reading, names: Names) -> list[Metric]:
        dev, peers = r.device, r.peers
        old_lines, lines_now = self._peer_lines, {}
        rows: list[_PeerLines] = []
        peer_names = names.peers
        for row, (config, (family, address, port, _, _)) in enumerate(
                zip(peers.configs, peers.transfers, strict=True)):
            key = config.public_key.raw
            name = peer_names.get(key, "")
            lines = old_lines.get(key)
            if lines is None or lines.config is not config or lines.name != name or \
                    lines.port != port or lines.address != address or lines.family != family:
                if lines is None or lines.config is not config:
                    # The reading has them: wants_allowed_ips asked for this peer's.
                    allowed = ",".join([format_prefix(*net) for net in peers.allowed_ips[row]])
                else:
                    allowed = lines.allowed_ips
                lines = _PeerLines.make(dev, config, family, address, port, name, allowed)
            lines_now[key] = lines
            rows.append(lines)
        self._peer_lines = lines_now
        table = _PeerTable(dev, rows, peers)
        return [_PeerFamily(column, table) for column in range(len(_PEER_FAMILIES))]


# ---- the exporter and its HTTP server ---------------------------------------------------------

class Exporter:
    """The registry of one device (its families and the process's) and its exposition."""

    def __init__(self, read: Reader, *, per_peer: bool = True,
                 names: NamesFile | None = None,
                 min_read_interval: float = METRICS_MIN_READ_INTERVAL_S) -> None:
        self._read = read
        self._min_interval = min_read_interval
        self._lock = threading.Lock()
        self._render_lock = threading.Lock()  # the label cache serves one scrape at a time
        self._last: tuple[float, Reading] | None = None
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self.registry = CollectorRegistry(auto_describe=False)
        ProcessCollector(registry=self.registry)
        self.collector = DeviceCollector(self._shared_read, per_peer=per_peer, names=names)
        self.registry.register(self.collector)

    def _shared_read(self, wants_allowed_ips: WantsAllowedIPs) -> Reading:
        with self._lock:
            now = time.monotonic()
            if self._last is not None and now - self._last[0] < self._min_interval:
                return self._last[1]  # its peers' labels were all kept by the last scrape
            reading = self._read(wants_allowed_ips)
            self._last = (time.monotonic(), reading)
            return reading

    def render(self, gzipped: bool = False) -> bytes:
        """The exposition, gzipped if asked (by parts, on other threads, while the next part
        is written: pywg._driver.parallel_gzip)."""
        with self._render_lock, _collection_paused():
            parts = encode_parts(list(self.registry.collect()))
            if not gzipped:
                return b"".join(parts)
            gzip = ParallelGzip(self._gzip_pool(), METRICS_GZIP_LEVEL)
            try:
                for part in parts:
                    gzip.add(part)
                return gzip.finish()
            except BaseException:
                gzip.cancel()
                raise

    def _gzip_pool(self) -> concurrent.futures.Executor:
        if self._pool is None:
            self._pool = concurrent.futures.ThreadPoolExecutor(
                max_workers=min(METRICS_GZIP_THREADS, os.cpu_count() or 1),
                thread_name_prefix="pywg-metrics-gzip")
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)


@contextlib.contextmanager
def _collection_paused() -> Iterator[None]:
    """A scrape of many peers makes millions of short-lived objects, none in a cycle, so
    reference counting frees them all; meanwhile the cyclic collector would walk the whole
    heap (every peer's state) again and again, tripling the scrape's time. It resumes, and
    catches up at once, when the scrape ends."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    timeout = METRICS_REQUEST_TIMEOUT_S
    server_version = "pywg-metrics"

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path not in ("/metrics", "/"):
            self.send_error(404, "only /metrics is served here")
            return
        gzipped = "gzip" in self.headers.get("Accept-Encoding", "")
        try:
            body = self.server.exporter.render(gzipped)
        except ReadError as e:
            self.send_error(503, str(e))
            return
        self.send_response(200)
        self.send_header("Content-Type", CONTENT_TYPE_LATEST)
        if gzipped:
            self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("metrics: %s %s", self.address_string(), format % args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, sock: socket.socket, exporter: Exporter) -> None:
        super().__init__(sock.getsockname()[:2], _Handler, bind_and_activate=False)
        self.socket.close()
        self.socket = sock
        self.exporter = exporter
        self._slots = threading.BoundedSemaphore(METRICS_MAX_CONCURRENT)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            with contextlib.suppress(OSError):
                request.sendall(b"HTTP/1.0 503 Service Unavailable\r\n"
                                b"Content-Length: 0\r\n\r\n")
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()


class MetricsServer:
    """Serves an Exporter on a listening socket from a thread of its own."""

    def __init__(self, sock: socket.socket, exporter: Exporter) -> None:
        self.exporter = exporter
        self._server = _Server(sock, exporter)
        self.address: tuple[str, int] = sock.getsockname()[:2]
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.25,),
                                        name="pywg-metrics", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()
        self.exporter.close()


def serve(device: Device, loop: asyncio.AbstractEventLoop, sock: socket.socket, *,
          per_peer: bool = True, names_path: str | None = None) -> MetricsServer:
    """Start serving `device`'s metrics on `sock` (listening); `close()` stops it."""
    names = NamesFile(names_path) if names_path else None
    exporter = Exporter(reader_on_loop(device, loop), per_peer=per_peer, names=names)
    server = MetricsServer(sock, exporter)
    server.start()
    return server
