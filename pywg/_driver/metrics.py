"""Prometheus metrics of one interface: `pywg --metrics [ADDR:]PORT IFNAME`, or PYWG_METRICS.

Theory of operation
===================

The daemon imports this module (and prometheus_client) only when metrics are asked for. An
HTTP server runs in its own threads. A scrape asks the event loop for one Reading: the
device's `snapshot()` (what a `wg show` reads), the data plane's counters and the driver's
handshake counters, taken in one go so that they agree. Everything else (names, labels,
text) is done in the HTTP thread. The data plane never waits for a scrape: its threads do
not take the GIL. Scrapes closer together than METRICS_MIN_READ_INTERVAL_S share one
reading, and at most METRICS_MAX_CONCURRENT are served at once, so no number of scrapers
costs the loop more than one reading a second.

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
that can also write their own text with label blocks kept from one scrape to the next.
`encode()` writes every other family with prometheus_client's generate_latest, and the
tests check that the result is byte for byte what generate_latest writes for the same
families.
"""

from __future__ import annotations

import bisect
import concurrent.futures
import contextlib
import dataclasses
import gc
import gzip
import ipaddress
import logging
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

from pywg._config.model import Endpoint as ConfigEndpoint
from pywg._config.model import PeerConfig, PrivateKey, PublicKey, format_network
from pywg._config.names import Names, NamesFile
from pywg._config.uapi import DeviceSnapshot, PeerStats
from pywg._constants import (
    DATAPLANE_EVENT_RING_SIZE,
    METRICS_DEFAULT_HOST,
    METRICS_HANDSHAKE_AGE_BUCKETS,
    METRICS_MAX_CONCURRENT,
    METRICS_MIN_READ_INTERVAL_S,
    METRICS_READ_TIMEOUT_S,
    METRICS_REQUEST_TIMEOUT_S,
    NSEC_PER_SEC,
)
from pywg._driver import offload
from pywg._driver.counters import HandshakeCounters
from pywg._driver.datapath import Stats

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
    "take_reading",
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

@dataclasses.dataclass(frozen=True)
class Reading:
    """What one scrape reports, read on the event loop in one go."""

    device: str
    wall_ns: int
    snapshot: DeviceSnapshot
    stats: Stats
    handshakes: HandshakeCounters
    handshake_drops: Mapping[str, int]  # handshake messages dropped, by reason
    aead: str
    offloads: offload.Offload
    crypto_threads: int


def take_reading(device: Device) -> Reading:
    """Runs on the device's event loop thread."""
    return Reading(
        device=device.name,
        wall_ns=time.time_ns(),
        snapshot=device.snapshot(),
        stats=device.dp.stats(),
        handshakes=device.counters.copy(),
        handshake_drops=dict(device.drops),
        aead=device.aead_name,
        offloads=device.offloads(),
        crypto_threads=device.dp.crypto_threads(),
    )


class ReadError(Exception):
    """The device could not be read (shutting down, or its loop did not answer in time)."""


def reader_on_loop(device: Device, loop: asyncio.AbstractEventLoop,
                   timeout: float = METRICS_READ_TIMEOUT_S) -> Callable[[], Reading]:
    """A function any thread may call that returns a Reading taken on `loop`."""
    def read() -> Reading:
        future: concurrent.futures.Future[Reading] = concurrent.futures.Future()

        def run() -> None:
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(take_reading(device))
                except BaseException as e:  # handed to the scraping thread
                    future.set_exception(e)
        try:
            loop.call_soon_threadsafe(run)
            return future.result(timeout)
        except (RuntimeError, concurrent.futures.TimeoutError) as e:
            future.cancel()
            raise ReadError(f"the device did not answer: {e or 'timed out'}") from e
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


def _block(labels: Mapping[str, str]) -> str:
    """The text between the braces: labels sorted by name, values escaped."""
    return ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(labels.items()))


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
    """A peer's label sets and the beginning of each of its lines, kept from one scrape to
    the next while its configuration, endpoint and name stay the same."""

    config: PeerConfig
    endpoint: ConfigEndpoint | None
    name: str
    series: dict[str, str]  # device, name, public_key
    info: dict[str, str]  # and allowed_ips, endpoint
    starts: tuple[str, ...]  # per family: the line up to its value (info: the whole line)

    @classmethod
    def make(cls, dev: str, peer: PeerConfig, endpoint: ConfigEndpoint | None,
             name: str) -> _PeerLines:
        series = {"device": dev, "name": name, "public_key": peer.public_key.base64()}
        info = dict(series, endpoint="" if endpoint is None else str(endpoint),
                    allowed_ips=",".join(format_network(n) for n in peer.allowed_ips))
        series_block = _block(series)
        starts = [f"{sample}{{{_block(info) if i == _INFO else series_block}}} "
                  for i, (_, _, _, sample) in enumerate(_PEER_FAMILIES)]
        starts[_INFO] += "1.0\n"
        return cls(peer, endpoint, name, series, info, tuple(starts))


_PeerRow = tuple[_PeerLines, PeerStats]


def _value(column: int, stats: PeerStats) -> int:
    if column == _RX:
        return stats.rx_bytes
    if column == _TX:
        return stats.tx_bytes
    if column == _HANDSHAKE:
        return stats.last_handshake_time_ns // NSEC_PER_SEC
    return 1


class _PeerFamily(Metric):
    """One per-peer family (a column of the peer rows). Its `samples` are built only when
    asked for (generate_latest, registry users); `text()` writes the same exposition as
    generate_latest from line beginnings made once per peer."""

    def __init__(self, column: int, rows: list[_PeerRow]) -> None:
        name, documentation, typ, self._sample_name = _PEER_FAMILIES[column]
        super().__init__(name, documentation, typ)
        self._column = column
        self._rows = rows

    @property
    def samples(self) -> list[Sample]:
        column = self._column
        return [Sample(self._sample_name,
                       dict(lines.info if column == _INFO else lines.series),
                       float(_value(column, stats)), None, None)
                for lines, stats in self._rows]

    @samples.setter
    def samples(self, value: list[Sample]) -> None:
        """Metric.__init__ sets an empty list: the rows are the samples."""

    def text(self) -> str:
        help_text = self.documentation.replace("\\", r"\\").replace("\n", r"\n")
        name, column = self._sample_name, self._column
        head = f"# HELP {name} {help_text}\n# TYPE {name} {self.type}\n"
        if column == _INFO:
            body = [lines.starts[_INFO] for lines, _ in self._rows]
        elif column == _RX:
            body = [f"{lines.starts[_RX]}{_go_number(stats.rx_bytes)}\n"
                    for lines, stats in self._rows]
        elif column == _TX:
            body = [f"{lines.starts[_TX]}{_go_number(stats.tx_bytes)}\n"
                    for lines, stats in self._rows]
        else:
            body = [f"{lines.starts[_HANDSHAKE]}"
                    f"{_go_number(stats.last_handshake_time_ns // NSEC_PER_SEC)}\n"
                    for lines, stats in self._rows]
        return head + "".join(body)


class _Families:
    """A fixed list of families, in the shape generate_latest reads (a collector)."""

    def __init__(self, families: Sequence[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterable[Metric]:
        return self._families


def encode(families: Sequence[Metric]) -> bytes:
    """The text exposition of `families`: what prometheus_client.generate_latest writes
    for them, with the per-peer families written by themselves (see the module doc)."""
    out: list[bytes] = []
    plain: list[Metric] = []
    for family in families:
        if isinstance(family, _PeerFamily):
            if plain:
                out.append(generate_latest(_Families(plain)))
                plain = []
            out.append(family.text().encode())
        else:
            plain.append(family)
    if plain:
        out.append(generate_latest(_Families(plain)))
    return b"".join(out)


# ---- the families ------------------------------------------------------------------------------

_NO_STATS = PeerStats()
_DROP_FIELDS = tuple(f.name for f in dataclasses.fields(Stats) if f.name.startswith("drop_"))
_PATHS = (("tun", "rx"), ("tun", "tx"), ("udp", "rx"), ("udp", "tx"))
_OFFLOAD_BATCHES = (("udp_tx_gso", "udp-gso"), ("udp_rx_gro", "udp-gro"),
                    ("tun_rx_gso", "tun-tso"), ("tun_tx_gro", "tun-gro"))
_OFFLOAD_REFUSED = (("udp_gso_refused", "udp-gso"), ("tun_gro_refused", "tun-gro"))


class DeviceCollector:
    """A prometheus_client collector for one device: every family, from one Reading."""

    def __init__(self, read: Callable[[], Reading], *, per_peer: bool = True,
                 names: NamesFile | None = None) -> None:
        self._read = read
        self.per_peer = per_peer
        self._names = names
        self._peer_lines: dict[PublicKey, _PeerLines] = {}
        self._private: PrivateKey | None = None
        self._public = ""

    def collect(self) -> Iterator[Metric]:
        return iter(self.families(self._read()))

    def families(self, reading: Reading) -> list[Metric]:
        names = self._names.names() if self._names else Names()
        families = self._device_families(reading)
        families += self._pywg_families(reading)
        if self.per_peer:
            families += self._peer_families(reading, names)
        else:
            self._peer_lines.clear()
        return families

    def _public_key(self, reading: Reading) -> str:
        config = reading.snapshot.config
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
        peers.add_metric([dev], len(r.snapshot.config.peers))
        return [info, peers, self._handshake_ages(r)]

    def _handshake_ages(self, r: Reading) -> Metric:
        """How long ago each peer's last handshake was; peers that never had one are not
        counted (wireguard_peers minus the count is how many)."""
        bounds = METRICS_HANDSHAKE_AGE_BUCKETS
        counts = [0] * (len(bounds) + 1)
        total = 0.0
        for stats in r.snapshot.stats.values():
            if stats.last_handshake_time_ns:
                age = max(0, r.wall_ns - stats.last_handshake_time_ns) / NSEC_PER_SEC
                counts[bisect.bisect_left(bounds, age)] += 1
                total += age
        buckets: list[tuple[str, float]] = []
        running = 0
        for bound, count in zip((*bounds, float("inf")), counts, strict=True):
            running += count
            buckets.append((_go_float(bound), running))
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
        peer_stats = r.snapshot.stats.values()
        octets = CounterMetricFamily(
            "pywg_bytes", "Bytes of authenticated datagrams from and to peers (the sum of "
            "the peers' counters, handshakes included).", labels=["device", "path",
                                                                  "direction"])
        octets.add_metric([dev, "udp", "rx"], sum(p.rx_bytes for p in peer_stats))
        octets.add_metric([dev, "udp", "tx"], sum(p.tx_bytes for p in peer_stats))
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
        dev = r.device
        old_lines, lines_now = self._peer_lines, {}
        rows: list[_PeerRow] = []
        all_stats = r.snapshot.stats
        peer_names = names.peers
        for peer in r.snapshot.config.peers:
            key = peer.public_key
            stats = all_stats.get(key, _NO_STATS)
            endpoint = stats.endpoint or peer.endpoint
            name = peer_names.get(key.raw, "")
            lines = old_lines.get(key)
            if lines is None or lines.config is not peer or lines.name != name or (
                    lines.endpoint is not endpoint and lines.endpoint != endpoint):
                lines = _PeerLines.make(dev, peer, endpoint, name)
            lines_now[key] = lines
            rows.append((lines, stats))
        self._peer_lines = lines_now
        return [_PeerFamily(column, rows) for column in range(len(_PEER_FAMILIES))]


# ---- the exporter and its HTTP server ---------------------------------------------------------

class Exporter:
    """The registry of one device (its families and the process's) and its exposition."""

    def __init__(self, read: Callable[[], Reading], *, per_peer: bool = True,
                 names: NamesFile | None = None) -> None:
        self._read = read
        self._lock = threading.Lock()
        self._last: tuple[float, Reading] | None = None
        self.registry = CollectorRegistry(auto_describe=False)
        ProcessCollector(registry=self.registry)
        self.collector = DeviceCollector(self._shared_read, per_peer=per_peer, names=names)
        self.registry.register(self.collector)

    def _shared_read(self) -> Reading:
        with self._lock:
            now = time.monotonic()
            if self._last is not None and now - self._last[0] < METRICS_MIN_READ_INTERVAL_S:
                return self._last[1]
            reading = self._read()
            self._last = (time.monotonic(), reading)
            return reading

    def render(self) -> bytes:
        with _collection_paused():
            return encode(list(self.registry.collect()))


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
        try:
            with self.server.render_lock:
                body = self.server.exporter.render()
        except ReadError as e:
            self.send_error(503, str(e))
            return
        gzipped = "gzip" in self.headers.get("Accept-Encoding", "")
        if gzipped:
            body = gzip.compress(body, compresslevel=1)
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
        self.render_lock = threading.Lock()  # the label cache serves one scrape at a time
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


def serve(device: Device, loop: asyncio.AbstractEventLoop, sock: socket.socket, *,
          per_peer: bool = True, names_path: str | None = None) -> MetricsServer:
    """Start serving `device`'s metrics on `sock` (listening); `close()` stops it."""
    names = NamesFile(names_path) if names_path else None
    exporter = Exporter(reader_on_loop(device, loop), per_peer=per_peer, names=names)
    server = MetricsServer(sock, exporter)
    server.start()
    return server
