"""pywg.Device: one WireGuard interface inside an application's asyncio program.

A thin layer over the driver (pywg._driver.device.Device), which the daemon runs too: every
change is a pywg._config Change, applied whole or not at all by the driver's `apply`; every
reading is the driver's configuration and its data plane's counters. What this layer adds
is the application's vocabulary (typed values, exceptions, a lifecycle), the packet
interface of a device without a TUN, peer events, and the optional UAPI socket.

Lifecycle: the constructor opens everything (the TUN or the packet socketpair, the UDP
sockets, the data plane, the UAPI socket if asked for) and applies the initial
configuration, so that what can fail fails there; `start()` (or entering `async with`)
serves it on the running loop; `close()` (or leaving `async with`) stops and frees it all,
wiping keys. A device is used from its loop's thread only.
"""

from __future__ import annotations

import asyncio
import errno
import os
from collections.abc import Iterable, Sequence
from types import TracebackType

from pywg._api.errors import (
    ClosedError,
    ConfigError,
    DeviceError,
    Error,
    PeerExistsError,
    PeerNotFoundError,
)
from pywg._api.events import Callback, Dispatcher, EventStream, Subscription
from pywg._api.packets import PacketInterface
from pywg._api.peer import (
    EndpointLike,
    KeyLike,
    NetworkLike,
    Peer,
    endpoint_value,
    int_value,
    keepalive_value,
    key_bytes,
    networks_value,
    optional_key,
)
from pywg._api.stats import DeviceStats, PeerStats
from pywg._config.errors import ConfigError as _ApplyError
from pywg._config.model import (
    AddAllowedIP,
    AllowedIP,
    Change,
    DeviceConfig,
    DeviceOp,
    PeerChange,
    PeerConfig,
    PeerOp,
    PresharedKey,
    PrivateKey,
    PublicKey,
    RemovePeer,
    ReplaceAllowedIPs,
    SetEndpoint,
    SetFwmark,
    SetListenPort,
    SetPersistentKeepalive,
    SetPresharedKey,
    SetPrivateKey,
    UpdateOnly,
)
from pywg._constants import (
    API_FWMARK_MAX,
    API_PORT_MAX,
    DEFAULT_MTU,
    MTU_MAX,
    MTU_MIN,
    NSEC_PER_SEC,
    STATUS_ONLINE_S,
)
from pywg._driver import offload
from pywg._driver.device import Device as Driver
from pywg._driver.packet_tun import PacketTun
from pywg._driver.tun import Tun, TunError, validate_ifname
from pywg._driver.uapi_server import UapiServer, UapiServerError

__all__ = ["Device"]

_NO_TUN_NAME = "pywg"  # what the logs call a TUN-less device that was given no name
_CLOSED_REASON = "closed by the application"


class _Keep:
    """The default of update_peer's arguments: leave this setting as it is."""

    def __repr__(self) -> str:
        return "KEEP"


KEEP = _Keep()


class Device:
    """One WireGuard interface: a TUN named `name` (root), or none, and then the
    application's packet interface (`packets`).

    name: the interface's name; with `tun=True` (the default when a name is given) the
        TUN of that name is created. Without a TUN it names the device in logs and names
        the UAPI socket.
    uapi: also serve /var/run/wireguard/NAME.sock (root), so that `wg show NAME` and
        `wg set NAME ...` work on the device as on any other; needs a name.
    private_key, listen_port (0: any free port), fwmark (0: none), peers: the initial
        configuration, applied as one change.
    mtu: the TUN's MTU, or the largest inner packet a TUN-less device pads to.
    stale_after: seconds without a handshake after which a peer that had one is reported
        stale (PeerStale); `pywg status`'s threshold by default.

    Raises ConfigError for bad values and DeviceError when the system refuses (the TUN or
    the UAPI socket cannot be made, the port is taken); then nothing is left open.
    """

    def __init__(self, name: str | None = None, *, tun: bool | None = None,
                 uapi: bool = False, private_key: KeyLike | None = None,
                 listen_port: int = 0, fwmark: int = 0, peers: Iterable[Peer] = (),
                 mtu: int = DEFAULT_MTU, stale_after: float = STATUS_ONLINE_S) -> None:
        with_tun = name is not None if tun is None else tun
        _check_name(name, with_tun, uapi)
        if isinstance(mtu, bool) or not isinstance(mtu, int) or not MTU_MIN <= mtu <= MTU_MAX:
            raise ConfigError(f"mtu must be an int from {MTU_MIN} to {MTU_MAX}")
        if isinstance(stale_after, bool) or not isinstance(stale_after, int | float) or \
                not stale_after > 0:
            raise ConfigError("stale_after must be a positive number of seconds")
        initial = _configuration(private_key, listen_port, fwmark, tuple(peers))
        self.name = name
        self._closed = False
        self._task: asyncio.Task[str] | None = None
        self._packets: PacketInterface | None = None
        self._uapi: UapiServer | None = None
        self._events = Dispatcher(float(stale_after), self._listen, self._is_peer)
        self._driver = self._open(name, with_tun, mtu)
        try:
            self._apply(initial)
            if uapi:
                assert name is not None
                self._uapi = _bind_uapi(name, self._driver)
        except BaseException:
            self._free()
            raise

    def _open(self, name: str | None, with_tun: bool, mtu: int) -> Driver:
        disabled = offload.parse_disabled(os.environ.get(offload.ENV_DISABLE))
        tun: Tun
        try:
            if with_tun:
                assert name is not None
                tun = Tun.create(name, offloads=offload.ALL & ~disabled, mtu=mtu)
            else:
                tun, theirs = PacketTun.open(name or _NO_TUN_NAME)
                self._packets = PacketInterface(theirs)
        except TunError as e:
            raise DeviceError(e.errno, str(e)) from e
        try:
            driver = Driver(tun, offloads=offload.ALL & ~disabled)
        except BaseException:
            tun.close()
            if self._packets is not None:
                self._packets.close()
            raise
        if not with_tun:
            driver.dp.set_mtu(mtu)  # no link to read it from
        return driver

    # ---- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Serve the device on the running loop (and its UAPI socket, if asked for)."""
        self._check_open()
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._driver.run(), name=f"pywg device {self.name or _NO_TUN_NAME}")
            if self._uapi is not None:
                self._uapi.start()

    async def close(self) -> None:
        """Stop serving and free everything, wiping keys; event streams end, the packet
        interface is closed. Closing again does nothing."""
        if self._closed:
            return
        self._closed = True
        self._events.close()
        if self._uapi is not None:
            await self._uapi.aclose()
        if self._task is not None:
            self._driver.stop(_CLOSED_REASON)
            await self._task
        self._free()

    async def wait_stopped(self) -> str:
        """Until the device stops serving, by close() or because its TUN was deleted (or,
        without a TUN, the application closed its end of the packet socket); returns why."""
        if self._task is None:
            raise Error("the device was never started")
        return await asyncio.shield(self._task)

    async def __aenter__(self) -> Device:
        try:
            await self.start()
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    def _free(self) -> None:
        self._driver.close()
        if self._packets is not None:
            self._packets.close()

    def _check_open(self) -> None:
        if self._closed:
            raise ClosedError("the device was closed")

    @property
    def closed(self) -> bool:
        return self._closed

    # ---- the device's settings ---------------------------------------------------------

    @property
    def public_key(self) -> bytes | None:
        """Ours, from the private key; None while there is none."""
        key = self._driver.config.public_key
        return None if key is None else key.raw

    @property
    def listen_port(self) -> int:
        """The UDP port the device listens on (the one chosen, when 0 was asked for)."""
        self._check_open()
        bind = self._driver.bind
        return bind.port if bind is not None else 0

    @property
    def fwmark(self) -> int:
        return self._driver.config.fwmark

    @property
    def packets(self) -> PacketInterface:
        """IP packets in and out of a device without a TUN (Error for one with a TUN:
        its packets go through the kernel)."""
        if self._packets is None:
            raise Error(f"{self.name} has a TUN: its packets go through the kernel")
        return self._packets

    def set_private_key(self, private_key: KeyLike | None) -> None:
        """A new private key (None, or all zeros: none). Every session ends."""
        key = optional_key(private_key, "private_key")
        self._apply(Change(device=(SetPrivateKey(None if key is None else PrivateKey(key)),)))

    def set_listen_port(self, port: int) -> None:
        """Listen on `port` (0: any free one); DeviceError if it is taken."""
        self._apply(Change(device=(SetListenPort(int_value(port, "listen_port",
                                                           API_PORT_MAX)),)))

    def set_fwmark(self, fwmark: int) -> None:
        """Mark the device's UDP packets (0: no mark), for policy routing."""
        self._apply(Change(device=(SetFwmark(int_value(fwmark, "fwmark", API_FWMARK_MAX)),)))

    # ---- peers -------------------------------------------------------------------------

    def add_peer(self, peer: Peer) -> None:
        """Add a peer. PeerExistsError if there is one with that key; ConfigError for our
        own key. An allowed IP another peer has moves to this one (as in `wg`)."""
        self._check_open()
        _check_new(peer, set(), self._driver.config)
        self._apply(Change(peers=(_peer_change(peer),)))

    def update_peer(self, public_key: KeyLike, *,
                    preshared_key: KeyLike | _Keep | None = KEEP,
                    endpoint: EndpointLike | _Keep = KEEP,
                    allowed_ips: Iterable[NetworkLike] | _Keep = KEEP,
                    persistent_keepalive: int | _Keep = KEEP) -> None:
        """Change some of a peer's settings, the others stay; PeerNotFoundError if it is
        not a peer. preshared_key=None removes the key; allowed_ips replaces the list."""
        key = self._existing(public_key)
        ops: list[PeerOp] = [UpdateOnly()]
        if not isinstance(preshared_key, _Keep):
            psk = optional_key(preshared_key, "preshared_key")
            ops.append(SetPresharedKey(None if psk is None else PresharedKey(psk)))
        if not isinstance(endpoint, _Keep):
            ops.append(SetEndpoint(endpoint_value(endpoint)))
        if not isinstance(persistent_keepalive, _Keep):
            ops.append(SetPersistentKeepalive(keepalive_value(persistent_keepalive)))
        if not isinstance(allowed_ips, _Keep):
            ops.append(ReplaceAllowedIPs())
            ops.extend(AddAllowedIP(AllowedIP.of(n)) for n in networks_value(allowed_ips))
        self._apply(Change(peers=(PeerChange(key, tuple(ops)),)))

    def remove_peer(self, public_key: KeyLike) -> None:
        """Remove a peer, its sessions and its allowed IPs; PeerNotFoundError if absent."""
        self._apply(Change(peers=(PeerChange(self._existing(public_key), (RemovePeer(),)),)))

    def peer(self, public_key: KeyLike) -> PeerStats:
        """One peer's settings and statistics; PeerNotFoundError if it is not a peer."""
        key = self._existing(public_key)
        config = self._driver.config.peer(key)
        assert config is not None
        return self._stats([config])[0]

    def peers(self) -> list[PeerStats]:
        """Every peer's settings and statistics, in the order they were added."""
        self._check_open()
        return self._stats(self._driver.config.peers)

    def stats(self) -> DeviceStats:
        """The device's counters, and its peers' transfer summed."""
        self._check_open()
        driver = self._driver
        configs = driver.config.peers
        transfer = driver.peer_stats(configs)
        counters = driver.dp.stats()
        drops = {name.removeprefix("drop_"): n for name, n in counters.drops().items()}
        drops["handshake"] = sum(driver.drops.values())
        return DeviceStats(
            peers=len(configs),
            rx_bytes=sum(s.rx_bytes for s in transfer),
            tx_bytes=sum(s.tx_bytes for s in transfer),
            rx_packets=counters.udp_rx_packets,
            tx_packets=counters.udp_tx_packets,
            handshakes_completed=driver.counters.completed,
            handshake_initiations_sent=driver.counters.initiations_sent,
            drops=drops,
        )

    # ---- events ------------------------------------------------------------------------

    def subscribe(self, callback: Callback) -> Subscription:
        """Call `callback(event)` on the loop for each peer event (HandshakeCompleted,
        EndpointChanged, PeerStale), soon after it happens, never from inside the device's
        own work: it may change the device. An exception it raises goes to the loop's
        exception handler. The subscription ends with its close() or the device's."""
        self._check_open()
        return self._events.subscribe(callback)

    def events(self) -> EventStream:
        """Peer events as an async iterator (`async with dev.events() as events: async for
        event in events: ...`); it ends when closed or when the device closes."""
        self._check_open()
        return self._events.stream()

    # ---- the driver underneath ---------------------------------------------------------

    def _apply(self, change: Change) -> None:
        self._check_open()
        try:
            self._driver.apply(change)
        except _ApplyError as e:
            if e.errno == errno.EADDRINUSE:
                raise DeviceError(e.errno, e.message) from e
            raise ConfigError(e.message, e.errno) from e

    def _existing(self, public_key: KeyLike) -> PublicKey:
        self._check_open()
        key = PublicKey(key_bytes(public_key, "public_key"))
        if self._driver.config.peer(key) is None:
            raise PeerNotFoundError(f"no peer {key.base64()}")
        return key

    def _stats(self, configs: Sequence[PeerConfig]) -> list[PeerStats]:
        listed = self._driver.allowed_ips(configs)
        return [PeerStats(
            public_key=config.public_key.raw,
            endpoint=stats.endpoint,
            allowed_ips=tuple(n.network for n in nets),
            persistent_keepalive=config.persistent_keepalive_interval,
            last_handshake=stats.last_handshake_time_ns / NSEC_PER_SEC
            if stats.last_handshake_time_ns else None,
            rx_bytes=stats.rx_bytes,
            tx_bytes=stats.tx_bytes,
            has_preshared_key=config.preshared_key is not None,
        ) for config, stats, nets in zip(configs, self._driver.peer_stats(configs), listed,
                                        strict=True)]

    # The dispatcher's hooks: the driver's sink is set only while anybody listens.
    def _listen(self, on: bool) -> None:
        self._driver.events = self._events if on else None
        if on:
            self._watch_recent_handshakes()

    def _watch_recent_handshakes(self) -> None:
        """A first listener also hears of peers that handshook shortly before it came."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return  # not serving yet: there were no handshakes
        configs = self._driver.config.peers
        for config, stats in zip(configs, self._driver.peer_stats(configs), strict=True):
            if stats.last_handshake_time_ns:
                self._events.watch.handshake(config.public_key.raw, stats.last_handshake_time_ns)

    def _is_peer(self, public_key: bytes) -> bool:
        return not self._closed and self._driver.config.peer(PublicKey(public_key)) is not None


def _check_name(name: str | None, with_tun: bool, uapi: bool) -> None:
    if name is None:
        if with_tun:
            raise ConfigError("a device with a TUN needs a name")
        if uapi:
            raise ConfigError("a device that serves the UAPI socket needs a name")
        return
    try:
        validate_ifname(name)
    except TunError as e:
        raise ConfigError(str(e)) from e


def _configuration(private_key: KeyLike | None, listen_port: int, fwmark: int,
                   peers: Sequence[Peer]) -> Change:
    """The constructor's settings as one change, checked before anything is opened."""
    ops: list[DeviceOp] = []
    key = optional_key(private_key, "private_key")
    if key is not None:
        ops.append(SetPrivateKey(PrivateKey(key)))
    if int_value(listen_port, "listen_port", API_PORT_MAX):
        ops.append(SetListenPort(listen_port))
    if int_value(fwmark, "fwmark", API_FWMARK_MAX):
        ops.append(SetFwmark(fwmark))
    after = DeviceConfig(private_key=None if key is None else PrivateKey(key))
    seen: set[PublicKey] = set()
    for peer in peers:
        _check_new(peer, seen, after)
    return Change(device=tuple(ops), peers=tuple(_peer_change(p) for p in peers))


def _check_new(peer: Peer, seen: set[PublicKey], config: DeviceConfig) -> None:
    """`peer` may be added to `config` after the peers in `seen` (which it joins)."""
    if not isinstance(peer, Peer):
        raise ConfigError(f"a peer is a pywg.Peer, not {type(peer).__name__}")
    key = PublicKey(peer.public_key)
    if key in seen or config.peer(key) is not None:
        raise PeerExistsError(f"peer {key.base64()} already exists")
    if key == config.public_key:
        raise ConfigError("a peer cannot have the device's own public key")
    seen.add(key)


def _peer_change(peer: Peer) -> PeerChange:
    ops: list[PeerOp] = []
    if peer.preshared_key is not None:
        ops.append(SetPresharedKey(PresharedKey(peer.preshared_key)))
    if peer.endpoint is not None:
        ops.append(SetEndpoint(peer.endpoint))
    if peer.persistent_keepalive:
        ops.append(SetPersistentKeepalive(peer.persistent_keepalive))
    ops.extend(AddAllowedIP(AllowedIP.of(n)) for n in peer.allowed_ips)
    return PeerChange(PublicKey(peer.public_key), tuple(ops))


def _bind_uapi(name: str, driver: Driver) -> UapiServer:
    try:
        return UapiServer.bind(name, driver)
    except UapiServerError as e:
        raise DeviceError(errno.EADDRINUSE, str(e)) from e
    except OSError as e:
        raise DeviceError(e.errno or errno.EIO, f"cannot serve the UAPI socket: {e}") from e
