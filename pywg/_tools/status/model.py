"""What `pywg status` shows, read from the UAPI sockets, the links and the config files.

A Sampler reads every interface it is asked about (or every one that answers in
/var/run/wireguard, as `wg show` finds userspace interfaces) through the UAPI, so it shows
wireguard-go's interfaces as well as pywg's; pywg's daemons add their drop counters to the
reply (`pywg_*` keys), which the others do not have (`drops` is then None). Addresses and
MTU come from the link in this network namespace (unknown for a link that lives in
another); friendly names and the tunnel's description from `# Name = ...` comments in
CONFIG_DIR/IFNAME.conf (pywg._config.names). Rates are the difference between this reading
and the Sampler's previous one.

Nothing secret is kept: the private key is turned into the public key at once and the
preshared keys are not read into the model at all.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from pywg._config.errors import ConfigError
from pywg._config.model import PeerConfig, format_network
from pywg._config.names import Names, NamesFile, config_path
from pywg._config.uapi import DeviceSnapshot, PeerStats
from pywg._constants import (
    NSEC_PER_SEC,
    QUICK_CONFIG_DIR,
    STATUS_ONLINE_S,
    STATUS_STALE_S,
    UAPI_SOCKET_DIR,
)
from pywg._tools.uapi_client import get, is_wireguard_interface

__all__ = ["PeerStatus", "Sampler", "Status", "TunnelStatus", "list_interfaces", "state_of"]

ONLINE, STALE, OFFLINE = "online", "stale", "offline"


@dataclass(frozen=True)
class PeerStatus:
    public_key: str  # base64
    name: str  # friendly name, "" if the config file gives none
    endpoint: str  # "" if none
    allowed_ips: list[str]
    latest_handshake: int  # Unix time in seconds, 0: never
    state: str  # online, stale or offline
    rx_bytes: int
    tx_bytes: int
    rx_rate: float | None  # bytes per second since the previous reading; None: unknown
    tx_rate: float | None
    persistent_keepalive: int  # seconds, 0: off


@dataclass(frozen=True)
class TunnelStatus:
    name: str
    description: str  # from the config file's [Interface] comment, "" if none
    public_key: str  # "" while the device has no private key
    listen_port: int
    fwmark: int
    addresses: list[str] | None  # None: the link is not in this network namespace
    mtu: int | None
    rx_bytes: int
    tx_bytes: int
    rx_rate: float | None
    tx_rate: float | None
    drops: dict[str, int] | None  # pywg's drop counters by reason; None: not reported
    peers: list[PeerStatus] = field(default_factory=list)
    error: str = ""  # why the interface could not be read ("" if it was)


@dataclass(frozen=True)
class Status:
    time: float  # Unix time of the reading
    tunnels: list[TunnelStatus]

    def as_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)


def state_of(latest_handshake: int, now: float) -> str:
    """online: the session's keys are still valid; stale: they expired, not yet wiped;
    offline: no handshake, or one so old that the keys are gone."""
    if not latest_handshake:
        return OFFLINE
    age = now - latest_handshake
    if age < STATUS_ONLINE_S:
        return ONLINE
    if age < STATUS_STALE_S:
        return STALE
    return OFFLINE


def list_interfaces(run_dir: str = UAPI_SOCKET_DIR) -> list[str]:
    """Interfaces whose UAPI socket answers, sorted (`wg show interfaces`, userspace)."""
    try:
        entries = os.listdir(run_dir)
    except OSError:
        return []
    names = (e.removesuffix(".sock") for e in entries if e.endswith(".sock"))
    return sorted(n for n in names if is_wireguard_interface(n, run_dir))


def _link(ifname: str) -> tuple[list[str] | None, int | None]:
    """The link's addresses and MTU in this namespace; (None, None) if it is not here."""
    try:
        index = socket.if_nametoindex(ifname)
    except OSError:
        return None, None
    from pyroute2 import IPRoute  # only `pywg status` pays for netlink

    with IPRoute() as ip:
        links = ip.get_links(index)
        mtu = links[0].get_attr("IFLA_MTU") if links else None
        addresses = []
        for msg in ip.get_addr(index=index):
            address = msg.get_attr("IFA_ADDRESS")
            if address:
                addresses.append(str(ipaddress.ip_interface(f"{address}/{msg['prefixlen']}")))
    return addresses, int(mtu) if mtu is not None else None


@dataclass
class _Previous:
    time: float
    tunnel: dict[str, tuple[int, int]] = field(default_factory=dict)
    peers: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict)


def _rate(now: int, before: int | None, seconds: float) -> float | None:
    if before is None or seconds <= 0 or now < before:
        return None  # no earlier reading, or the counter started again (peer re-added)
    return (now - before) / seconds


class Sampler:
    """Reads the interfaces; each `sample()` gives rates against the one before it."""

    def __init__(self, interfaces: Sequence[str] = (), *, config_dir: str = QUICK_CONFIG_DIR,
                 run_dir: str = UAPI_SOCKET_DIR) -> None:
        self.interfaces = list(interfaces)
        self.config_dir = config_dir
        self.run_dir = run_dir
        self._names: dict[str, NamesFile] = {}
        self._previous: _Previous | None = None

    def _names_of(self, ifname: str) -> Names:
        if ifname not in self._names:
            self._names[ifname] = NamesFile(config_path(ifname, self.config_dir))
        return self._names[ifname].names()

    def sample(self) -> Status:
        now = time.time()
        names = self.interfaces or list_interfaces(self.run_dir)
        previous, current = self._previous, _Previous(now)
        seconds = now - previous.time if previous else 0.0
        tunnels = [self._tunnel(n, now, previous, current, seconds) for n in names]
        self._previous = current
        return Status(now, tunnels)

    def _tunnel(self, ifname: str, now: float, previous: _Previous | None,
                current: _Previous, seconds: float) -> TunnelStatus:
        addresses, mtu = _link(ifname)
        try:
            snapshot = get(ifname, run_dir=self.run_dir)
        except ConfigError as e:
            return TunnelStatus(ifname, "", "", 0, 0, addresses, mtu, 0, 0, None, None, None,
                                error=str(e))
        names = self._names_of(ifname)
        peers = [self._peer(ifname, config, snapshot.stats.get(config.public_key, _NO_STATS),
                            names, now, previous, current, seconds)
                 for config in snapshot.config.peers]
        rx = sum(p.rx_bytes for p in peers)
        tx = sum(p.tx_bytes for p in peers)
        before = previous.tunnel.get(ifname) if previous else None
        current.tunnel[ifname] = (rx, tx)
        public = snapshot.config.public_key
        return TunnelStatus(
            name=ifname, description=names.interface,
            public_key=public.base64() if public is not None else "",
            listen_port=snapshot.listen_port, fwmark=snapshot.config.fwmark,
            addresses=addresses, mtu=mtu, rx_bytes=rx, tx_bytes=tx,
            rx_rate=_rate(rx, before[0] if before else None, seconds),
            tx_rate=_rate(tx, before[1] if before else None, seconds),
            drops=_drops(snapshot), peers=peers)

    def _peer(self, ifname: str, config: PeerConfig, stats: PeerStats, names: Names,
              now: float, previous: _Previous | None, current: _Previous, seconds: float,
              ) -> PeerStatus:
        key = config.public_key.base64()
        handshake = stats.last_handshake_time_ns // NSEC_PER_SEC
        before = previous.peers.get((ifname, key)) if previous else None
        current.peers[(ifname, key)] = (stats.rx_bytes, stats.tx_bytes)
        endpoint = stats.endpoint or config.endpoint
        return PeerStatus(
            public_key=key, name=names.peers.get(config.public_key.raw, ""),
            endpoint=str(endpoint) if endpoint is not None else "",
            allowed_ips=[format_network(n) for n in config.allowed_ips],
            latest_handshake=handshake, state=state_of(handshake, now),
            rx_bytes=stats.rx_bytes, tx_bytes=stats.tx_bytes,
            rx_rate=_rate(stats.rx_bytes, before[0] if before else None, seconds),
            tx_rate=_rate(stats.tx_bytes, before[1] if before else None, seconds),
            persistent_keepalive=config.persistent_keepalive_interval)


_NO_STATS = PeerStats()


def _drops(snapshot: DeviceSnapshot) -> dict[str, int] | None:
    """pywg's drop counters by reason, from its `pywg_drop_*` keys; None when the daemon
    sends none (wireguard-go)."""
    if not snapshot.extras:
        return None
    return {name.removeprefix("drop_"): value for name, value in snapshot.extras.items()
            if name.startswith("drop_")}
