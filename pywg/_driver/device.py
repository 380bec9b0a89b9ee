"""The driver: one WireGuard interface, run on an asyncio (uvloop) event loop.

Theory of operation
===================

Three parts meet here, and this module is the only place that knows all three:

  the C data plane (datapath)   every packet: TUN, UDP, seal/open, allowed IPs, keypairs;
  the protocol core (_protocol)  handshakes, cookies and timer rules, with no I/O;
  the configuration (_config)    what `wg` set, applied all or nothing.

The event loop watches three fds: the data plane's event fd (handshake messages that came
in, and requests such as "this peer has packets and no key"), the rtnetlink socket of the
TUN (MTU changes, deletion) and the UAPI socket (through pywg._driver.uapi_server, which calls
`snapshot` and `apply` here). Nothing in Python runs per data packet.

Timers: the data plane keeps per-peer facts (when data or any authenticated packet last
went each way, the current keypair's age and counter). A coarse tick asks it which peers'
facts moved and runs pywg._protocol.timers.evaluate for them; each evaluation returns the
actions due now and the peer's next deadline, which goes into a heap served by one
precise loop timer. Idle peers cost nothing, so the tick stays flat with many peers.

Peers are data-plane slots (small integers); a peer keeps its slot while it exists. Key
material lives in the protocol core (handshakes) and in C (keypairs); this module only
carries session keys from one to the other and never logs them.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import functools
import heapq
import ipaddress
import logging
import os
import secrets
import socket
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from typing import Final

from pywg import _constants as constants
from pywg._config import uapi
from pywg._config.apply import (
    AllowedIPsAdded,
    AllowedIPsRemoved,
    Effect,
    EndpointChanged,
    FwmarkChanged,
    ListenPortChanged,
    PeerAdded,
    PeerRemoved,
    PersistentKeepaliveChanged,
    PresharedKeyChanged,
    PrivateKeyChanged,
    SendKeepalive,
)
from pywg._config.apply import (
    apply as apply_change,
)
from pywg._config.model import AllowedIP, Change, DeviceConfig, PeerConfig, PublicKey
from pywg._config.uapi import DeviceSnapshot, PeerStats, UapiError
from pywg._driver import datapath, route
from pywg._driver.bind import Bind, open_bind
from pywg._driver.counters import HandshakeCounters
from pywg._driver.datapath import DataPlane, Event, EventType, Settings
from pywg._driver.log import peer_name
from pywg._driver.offload import ALL as ALL_OFFLOADS
from pywg._driver.offload import TUN_OFFLOADS, Offload
from pywg._driver.peer import Peer, PeerContext
from pywg._driver.peer_events import PeerEventSink
from pywg._driver.tun import Tun, get_mtu, in_this_namespace
from pywg._protocol import timers
from pywg._protocol.endpoint import Endpoint
from pywg._protocol.handshake import (
    Action,
    CookieConsumed,
    Drop,
    HandshakeCore,
    HandshakePeer,
    InstallSession,
    SendHandshakeResponse,
    UpdateEndpoint,
)
from pywg._protocol.noise import Session
from pywg._protocol.timers import TimerAction, Timing

__all__ = ["Device", "PeerCounters"]

log = logging.getLogger("pywg")


@dataclasses.dataclass(slots=True)
class PeerCounters:
    """What `Device.read_peers` reads of many peers, a list per figure, a row per peer: the
    metrics' reading of a whole gateway, which a list of PeerStats would take seconds to make."""

    configs: list[PeerConfig] = dataclasses.field(default_factory=list)
    # (family, 16-byte address, port, rx_bytes, tx_bytes): family 0 when there is no endpoint
    transfers: list[tuple[int, bytes, int, int, int]] = dataclasses.field(default_factory=list)
    handshakes_ns: list[int] = dataclasses.field(default_factory=list)  # wall clock; 0: never
    # The allowed IPs (address, family, cidr) of the peers asked for, by row.
    allowed_ips: dict[int, list[tuple[bytes, int, int]]] = dataclasses.field(
        default_factory=dict)


class Device:
    """One interface: create, `await run()`, and drive it with `apply` (the UAPI does)."""

    def __init__(
        self,
        tun: Tun | None,
        *,
        timing: Timing | None = None,
        max_peers: int = constants.DEVICE_MAX_PEERS,
        monotonic_ns: Callable[[], int] = time.monotonic_ns,
        wall_ns: Callable[[], int] = time.time_ns,
        rand_below: Callable[[int], int] = secrets.randbelow,
        offloads: Offload = ALL_OFFLOADS,
        crypto_threads: int = 0,
    ) -> None:
        self.tun = tun
        self.name = tun.name if tun else "(no tun)"
        self.timing = timing or Timing()
        self.config = DeviceConfig()
        self.core = HandshakeCore(self._peers_get, self._new_index)
        self._peer_context = PeerContext(self.timing, rand_below)
        self.bind: Bind | None = None
        self.drops: Counter[str] = Counter()  # handshake messages dropped, by reason
        self.counters = HandshakeCounters()  # for metrics (pywg._driver.metrics)
        # An embedding application's listener (pywg._api); None: nobody listens, and the
        # places that would tell it cost one test each.
        self.events: PeerEventSink | None = None
        self._now = monotonic_ns
        self._wall = wall_ns
        self._rand_below = rand_below
        self._max_peers = max_peers
        self._peers: dict[bytes, Peer] = {}  # by public key
        # By slot, up to the highest slot used: 8 bytes a peer (a dict would take 50).
        self._slots: list[Peer | None] = []
        # Slots never used are counted, not listed: 65,536 ints would cost 2 MB at rest.
        self._free_slots: list[int] = []  # slots of removed peers, reused first
        self._unused_slot = 0  # slots from here to max_peers have never held a peer
        self._heap: list[tuple[int, int, int]] = []  # (deadline, serial, slot)
        self._serial = 0
        self._heap_timer: asyncio.TimerHandle | None = None
        self._tick_handle: asyncio.Handle | None = None
        self._active: list[int] = []  # peers handed over by the data plane, not yet seen
        self._active_more = False  # and the data plane has more
        self._visit_handle: asyncio.Handle | None = None  # the next slice, if any
        # Events read from the data plane and not yet handled; while any wait, the event fd
        # is not watched, so a backlog waits in the data plane's bounded ring.
        self._backlog: deque[Event] = deque()
        self._backlog_handle: asyncio.Handle | None = None
        self._tick_ns = max(1_000_000, min(constants.DEVICE_TICK_MAX_NS,
                                           self.timing.rekey_timeout_ns // 20))
        self._ring_size = constants.DATAPLANE_EVENT_RING_SIZE
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped = asyncio.Event()
        self._stop_reason = ""
        self._mtu = constants.DEFAULT_MTU
        self._next_link_poll_ns = 0
        self._routes: route.RouteMonitor | None = None
        self._route_check: asyncio.TimerHandle | None = None
        self._route_mtus_stale = False  # routes through the TUN changed since the last look
        self._route_mtus: tuple[list[route.RouteMtu], int] = ([], 0)  # what C has
        self._route_mtus_overflow_told = False
        self.aead_name = datapath.init_aead()
        self.dp = DataPlane(Settings(
            tun_fd=tun.fd if tun else -1,
            tun_vnet_hdr=bool(tun and tun.vnet_hdr),
            tun_pi=bool(tun and tun.pi),
            max_peers=max_peers,
            event_ring_size=self._ring_size,
            # The TUN's own: what it negotiated; the sockets': what the caller allows.
            offloads=(offloads & ~TUN_OFFLOADS) | (tun.offloads if tun else Offload.NONE),
            crypto_threads=crypto_threads,
            timing=self.timing,
        ))
        self._open_bind(0)

    # ---- lifetime -------------------------------------------------------------------------

    async def run(self) -> str:
        """Serve until `stop()` or until the TUN disappears; returns why it stopped.
        Everything started here is stopped before it returns."""
        loop = self._loop = asyncio.get_running_loop()
        self.dp.start()
        loop.add_reader(self.dp.event_fd, self._on_events)
        self._tick_handle = loop.call_soon(self._tick)
        self._watch_routes(loop)
        self._update_route_mtus()
        self._arm_heap_timer()  # deadlines of a configuration applied before the loop ran
        try:
            await self._stopped.wait()
        finally:
            self._unwatch_routes(loop)
            self._tick_handle.cancel()
            for handle in (self._heap_timer, self._visit_handle, self._backlog_handle):
                if handle is not None:
                    handle.cancel()
            loop.remove_reader(self.dp.event_fd)
            self.dp.stop()
        return self._stop_reason

    def stop(self, reason: str) -> None:
        if not self._stop_reason:
            self._stop_reason = reason
        self._stopped.set()

    def offloads(self) -> Offload:
        """Every offload in use: the TUN's negotiated ones and the data plane's."""
        tun = self.tun.offloads & (Offload.TUN_TSO | Offload.TUN_USO) if self.tun else \
            Offload.NONE
        return tun | self.dp.offloads()

    def close(self) -> None:
        """Free the data plane (wiping keys), the sockets and the TUN."""
        self.dp.close()
        if self.bind is not None:
            self.bind.close()
            self.bind = None
        self.core.set_private_key(None)
        if self.tun is not None:
            self.tun.close()

    # ---- UAPI: pywg._config.uapi.UapiDevice ----------------------------------------------

    def snapshot(self) -> DeviceSnapshot:
        """The configuration with its allowed IPs (the data plane's), and each peer's
        figures; made whole for each call (metrics, tests): `get` reads in parts."""
        configs = self.config.peers
        listed = self.allowed_ips(configs)
        config = dataclasses.replace(self.config, peers=tuple(
            dataclasses.replace(c, allowed_ips=tuple(nets))
            for c, nets in zip(configs, listed, strict=True)))
        stats = {}
        for peer in self._peers.values():
            endpoint, rx_bytes, tx_bytes = self.dp.peer_transfer(peer.slot)
            stats[PublicKey(peer.public_key)] = PeerStats(
                endpoint=_config_endpoint(endpoint),
                last_handshake_time_ns=peer.last_handshake_wall_ns,
                rx_bytes=rx_bytes,
                tx_bytes=tx_bytes,
            )
        return DeviceSnapshot(config, self.bind.port if self.bind else 0, stats)

    def allowed_ips(self, configs: Sequence[PeerConfig]) -> list[list[AllowedIP]]:
        """Some configured peers' allowed IPs, in the order given: they live in the data
        plane only (self.config does not repeat them)."""
        return self.dp.allowed_ips([self._peers[c.public_key.raw].slot for c in configs])

    def peer_stats(self, configs: Sequence[PeerConfig]) -> list[PeerStats]:
        """The run-time state of some configured peers (of self.config) in one data-plane
        call: where each is now, its latest handshake, its transfer. For a reader of a few
        peers of many (pywg's API), which a whole snapshot would cost too much."""
        records = [self._peers[c.public_key.raw] for c in configs]
        moved = self.dp.peers_transfer([r.slot for r in records])
        return [PeerStats(endpoint=_current_endpoint(config.endpoint, family, address, port),
                          last_handshake_time_ns=record.last_handshake_wall_ns,
                          rx_bytes=rx, tx_bytes=tx)
                for config, record, (family, address, port, rx, tx)
                in zip(configs, records, moved, strict=True)]

    def read_peers(self, configs: Sequence[PeerConfig], into: PeerCounters,
                   wants_allowed_ips: Callable[[PeerConfig], bool] | None = None) -> None:
        """Add to `into` the figures of those of `configs` (peers of this configuration or of
        an earlier one) that are still here, and the allowed IPs of those that
        `wants_allowed_ips` picks, in a few data-plane calls. For the metrics, which read a
        gateway's 100,000 peers a slice at a time between turns of the loop; a peer removed
        before its slice is read is left out, as `get` leaves it out."""
        peers = self._peers
        present = [(c, r) for c in configs if (r := peers.get(c.public_key.raw)) is not None]
        slots = [r.slot for _, r in present]
        start = len(into.configs)
        into.configs += [c for c, _ in present]
        into.transfers += self.dp.peers_transfer(slots)
        into.handshakes_ns += [r.last_handshake_wall_ns for _, r in present]
        if wants_allowed_ips is not None:
            rows = [i for i, (c, _) in enumerate(present) if wants_allowed_ips(c)]
            if rows:
                nets = self.dp.allowed_ips_raw([slots[i] for i in rows])
                into.allowed_ips.update(zip([start + i for i in rows], nets, strict=True))

    def get(self) -> Iterator[bytes]:
        """The reply to a UAPI `get`, a part at a time: the configuration, each peer's
        endpoint (where it is now), latest handshake and transfer, and pywg's drop
        counters. The data plane's part of many peers comes in one call, and a part of the
        reply is a few thousand peers: a gateway has a million."""
        cfg = self.config  # not changed in place: the reply describes this configuration
        extras = self.dp.stats().drops()
        extras["drop_handshake"] = sum(self.drops.values())  # dropped by the handshake core
        head = uapi.format_device(cfg, self.bind.port if self.bind else 0, extras)
        yield "".join(f"{line}\n" for line in head).encode()
        for start in range(0, len(cfg.peers), constants.UAPI_GET_PEERS_PER_PART):
            yield self._format_peers(cfg.peers[start:start + constants.UAPI_GET_PEERS_PER_PART])
        yield uapi.format_errno(0)

    def _format_peers(self, configs: Sequence[PeerConfig]) -> bytes:
        # A peer removed since the reply began has no record any more: it is left out.
        present = [(c, r) for c in configs if (r := self._peers.get(c.public_key.raw))]
        slots = [r.slot for _, r in present]
        moved = self.dp.peers_transfer(slots)
        nets = self.dp.allowed_ips_raw(slots)
        prefix, shown = uapi.format_prefix, uapi.shown_endpoint
        lines = [uapi.format_peer(config, shown(config.endpoint, family, address, port),
                                  record.last_handshake_wall_ns, rx, tx,
                                  [prefix(*net) for net in allowed])
                 for (config, record), (family, address, port, rx, tx), allowed in zip(
                     present, moved, nets, strict=True)]
        return "".join(f"{text}\n" for text in lines).encode()

    def apply(self, change: Change) -> None:
        """Apply a validated `set` whole; what can fail is looked up or done first (every
        endpoint's scope, then the socket effects), so a refusal leaves everything as it was."""
        new, effects = apply_change(self.config, change, max_peers=self._max_peers,
                                    table=_AllowedIPsTable(self))
        _check_scopes(effects)
        now = self._now()
        touched: set[PublicKey] = set()
        for effect in effects:
            self._carry_out(effect, new, now, touched)
        self.config = new
        for key in touched:
            peer = self._peers.get(key.raw)
            if peer is not None:
                self._evaluate(peer, now)

    def _carry_out(self, effect: Effect, new: DeviceConfig, now: int,
                   touched: set[PublicKey]) -> None:
        match effect:
            case ListenPortChanged(port=port):
                self._rebind(port, new.fwmark)
            case FwmarkChanged(fwmark=fwmark):
                if self.bind is not None:
                    try:
                        self.bind.set_mark(fwmark)
                    except OSError as e:  # wireguard-go's code for it: EADDRINUSE
                        raise UapiError(errno.EADDRINUSE,
                                        f"cannot set fwmark: {e.strerror}") from e
                # The routes our datagrams take depend on the mark: the next one must
                # not leave through the old route's interface.
                self._check_sources(fwmark)
            case PeerRemoved(public_key=key):
                self._remove_peer(key)
            case PrivateKeyChanged(private_key=key):
                self.core.set_private_key(key.raw if key else None)
                self.dp.set_public_key(self.core.public_key)
                for peer in self._peers.values():
                    self._zero_keys(peer)
                    peer.new_identity()
            case PresharedKeyChanged(public_key=key, preshared_key=psk):
                self._peers[key.raw].set_preshared_key(psk.raw if psk else None)
            case EndpointChanged(public_key=key, endpoint=endpoint):
                self.dp.set_endpoint(self._peers[key.raw].slot, _dp_endpoint(endpoint))
            case PersistentKeepaliveChanged(public_key=key, interval=interval):
                timers.set_persistent_keepalive(self._peers[key.raw].timers,
                                                interval * constants.NSEC_PER_SEC)
                touched.add(key)
            case AllowedIPsRemoved(public_key=key, networks=networks):
                slot = self._peers[key.raw].slot
                for network in networks:
                    self.dp.remove_allowed_ip(slot, network)
            case PeerAdded(peer=config):
                self._add_peer(config)
                if config.persistent_keepalive_interval:
                    # The only timer a new peer has before any traffic: the rest start
                    # with events from the data plane.
                    touched.add(config.public_key)
            case AllowedIPsAdded(public_key=key, networks=networks):
                slot = self._peers[key.raw].slot
                for network in networks:
                    self.dp.insert_allowed_ip(slot, network)
            case SendKeepalive():
                # The timer state asked for it when the keepalive was turned on
                # (set_persistent_keepalive); one keepalive, not two.
                pass

    # ---- sockets ---------------------------------------------------------------------------

    def _open_bind(self, port: int) -> None:
        self.bind = open_bind(port, self.config.fwmark)
        self.dp.set_udp(self.bind.fd4, self.bind.fd6)

    def _rebind(self, port: int, fwmark: int) -> None:
        old = self.bind
        if old is not None and port != 0 and port == old.port:
            return
        if old is not None and port != 0:
            # The new port may be the one the old sockets hold on the other family only,
            # so let go of them first, as wireguard-go's BindUpdate does.
            self.dp.set_udp(-1, -1)
            old.close()
            self.bind = None
        try:
            bind = open_bind(port, fwmark)
        except OSError as e:
            if old is not None and self.bind is None:
                self._open_bind(old.port)  # put back what was there
            raise UapiError(errno.EADDRINUSE, f"cannot bind port {port}: {e.strerror}") from e
        self.dp.set_udp(bind.fd4, bind.fd6)
        if self.bind is not None:
            self.bind.close()
        self.bind = bind
        log.info("UDP bind has been updated: port %d", bind.port)

    # ---- peers -----------------------------------------------------------------------------

    def _add_peer(self, config: PeerConfig) -> None:
        slot = self._take_slot()
        self.dp.add_peer(slot)
        peer = Peer(config.public_key.raw, slot, self._peer_context,
                    config.preshared_key.raw if config.preshared_key else None)
        self._peers[peer.public_key] = peer
        if slot == len(self._slots):
            self._slots.append(peer)
        else:
            self._slots[slot] = peer
        if config.endpoint is not None:
            self.dp.set_endpoint(slot, _dp_endpoint(config.endpoint))
        for network in config.allowed_ips:
            self.dp.insert_allowed_ip(slot, network)
        if config.persistent_keepalive_interval:
            timers.set_persistent_keepalive(
                peer.timers, config.persistent_keepalive_interval * constants.NSEC_PER_SEC)
        log.info("%s - UAPI: Created", peer)

    def _take_slot(self) -> int:
        if self._free_slots:
            return self._free_slots.pop()
        if self._unused_slot < self._max_peers:
            self._unused_slot += 1
            return self._unused_slot - 1
        raise UapiError(errno.ENOSPC, "too many peers")

    def _remove_peer(self, key: PublicKey) -> None:
        peer = self._peers.pop(key.raw)
        self._slots[peer.slot] = None
        self.dp.remove_peer(peer.slot)  # its keypairs and indices go with it
        peer.wipe()
        self._free_slots.append(peer.slot)
        peer.deadline_ns = None
        log.info("%s - UAPI: Removing", peer)

    def _zero_keys(self, peer: Peer) -> None:
        self.dp.clear_keypairs(peer.slot)
        peer.clear_handshake()

    def _peer_at(self, slot: int | None) -> Peer | None:
        if slot is None or not 0 <= slot < len(self._slots):
            return None
        return self._slots[slot]

    # The handshake core's view of the peers (see HandshakeCore).
    def _peers_get(self, public_key: bytes) -> Peer | None:
        return self._peers.get(public_key)

    def _new_index(self, peer: HandshakePeer) -> int:
        return self.dp.new_index(self._peers[peer.public_key].slot)

    # ---- events from the data plane --------------------------------------------------------

    def _on_events(self) -> None:
        """Handle the data plane's events, a slice at a time (a handshake message costs a
        few hundred microseconds: a full ring would hold the loop for a second)."""
        self._backlog_handle = None
        if not self._backlog:
            self._backlog.extend(self.dp.read_events())
        now = self._now()
        end = now + constants.DEVICE_TIMER_SLICE_NS
        while self._backlog and self._now() <= end:
            if self._backlog[0].type is EventType.HANDSHAKE:
                self._on_handshake_messages(self._take_handshake_messages(), now)
                continue
            event = self._backlog.popleft()
            try:
                self._on_event(event, now)
            except Exception:  # one bad event must not take the device down
                log.exception("event %s failed", event.type.name)
        assert self._loop is not None
        if self._backlog:
            self._loop.remove_reader(self.dp.event_fd)
            self._backlog_handle = self._loop.call_soon(self._on_events)
        else:
            self._loop.add_reader(self.dp.event_fd, self._on_events)

    def _take_handshake_messages(self) -> list[Event]:
        """The handshake messages at the head of the backlog, up to a batch of them."""
        batch: list[Event] = []
        backlog = self._backlog
        while (backlog and backlog[0].type is EventType.HANDSHAKE
               and len(batch) < constants.DEVICE_HANDSHAKE_BATCH):
            batch.append(backlog.popleft())
        return batch

    def _on_event(self, event: Event, now: int) -> None:
        if event.type is EventType.TUN_GONE:
            self._on_link_gone()
            return
        peer = self._peer_at(event.peer)
        if peer is None:
            return
        match event.type:
            case EventType.NEED_HANDSHAKE:
                timers.request_handshake(peer.timers)
            case EventType.REKEY_SEND:
                self.counters.rekeys_requested += 1
                timers.request_handshake(peer.timers)
            case EventType.REKEY_RECV:
                self.counters.rekeys_requested += 1
                timers.request_last_minute_handshake(peer.timers)
            case EventType.KEYPAIR_CONFIRMED:
                self._handshake_complete(peer, now)
            case EventType.ENDPOINT_CHANGED:
                log.info("%s - Endpoint changed to %s", peer, _show(event.source))
                if self.events is not None and event.source is not None:
                    _tell_if_moved(self.events, peer.public_key, None, event.source)
        self._evaluate(peer, now)

    def _on_handshake_messages(self, events: list[Event], now: int) -> None:
        """Messages of types 1-3 that passed the data plane's front line, through the core
        in one batch (the same actions as one at a time, the Noise work over every core).
        The initiations answered go to the data plane together (`_answer`), in order with
        the rest."""
        events = [e for e in events if e.has_source]
        peers = [self._peer_at(e.peer) for e in events]
        try:
            results = self.core.receive_batch(
                [(e.data, peer) for e, peer in zip(events, peers, strict=True)], now)
        except Exception:  # a bad batch must not take the device down
            log.exception("handshake messages failed")
            return
        answers: list[tuple[Event, Session, bytes]] = []
        for event, actions in zip(events, results, strict=True):
            answer = _answered(actions)
            if answer is not None:
                answers.append((event, *answer))
                continue
            self._answer(answers, now)
            try:
                self._act_on(event, actions, now)
            except Exception:
                log.exception("handshake message from %s failed", _show(event.source))
        self._answer(answers, now)

    def _answer(self, answers: list[tuple[Event, Session, bytes]], now: int) -> None:
        """Carry out the actions of answered initiations (UpdateEndpoint, InstallSession,
        SendHandshakeResponse: `_act_on`'s for each, in that order) in one data-plane call;
        empties `answers`."""
        if not answers:
            return
        peers: list[Peer] = []
        results: list[int] = []
        try:
            peers = [self._peers[session.peer] for _, session, _ in answers]
            if self.events is not None:
                for (event, _, _), peer in zip(answers, peers, strict=True):
                    if event.source is not None:
                        _tell_if_moved(self.events, peer.public_key,
                                       self.dp.peer_transfer(peer.slot)[0], event.source)
            results = self.dp.answer_handshakes(
                [(peer.slot, event.raw_source, len(event.data), session.local_index,
                  session.remote_index, session.send_key, session.receive_key, session.birth_ns,
                  packet) for (event, session, packet), peer in zip(answers, peers, strict=True)],
                now)
        except Exception:  # a bad batch must not take the device down
            log.exception("handshake responses failed")
        finally:
            for _, session, _ in answers:
                session.wipe()
        for peer, rc in zip(peers, results, strict=False):
            if rc in _NOT_INSTALLED:
                log.debug("%s - Handshake response not sent: %s", peer, os.strerror(-rc))
                continue
            timers.session_derived(peer.timers, now)
            self._evaluate(peer, now)
            self.counters.responses_sent += 1
            if rc:
                # No endpoint yet, or the network refused: the timers retry.
                log.debug("send failed: %s", os.strerror(-rc))
            log.debug("%s - Sending handshake response", peer)
        answers.clear()

    def _act_on(self, event: Event, actions: tuple[Action, ...], now: int) -> None:
        """What the core decided about one handshake message."""
        source = event.source
        assert source is not None
        for action in actions:
            match action:
                case Drop(reason=reason, detail=detail):
                    self.drops[reason.name] += 1
                    if log.isEnabledFor(logging.DEBUG):
                        log.debug("Dropped handshake message from %s: %s %s", _show(source),
                                  reason.name, detail)
                case UpdateEndpoint(peer=key):
                    # Only an authenticated initiation or response says this.
                    slot = self._peers[key].slot
                    if self.events is not None:
                        _tell_if_moved(self.events, key, self.dp.peer_transfer(slot)[0], source)
                    self.dp.set_endpoint(slot, source)
                    self.dp.handshake_received(slot, len(event.data), now)
                case InstallSession(session=session):
                    self._install(self._peers[session.peer], session, now)
                case SendHandshakeResponse(peer=key, packet=packet):
                    responder = self._peers[key]
                    self.counters.responses_sent += 1
                    self._send(functools.partial(self.dp.send_to_peer, responder.slot, packet))
                    log.debug("%s - Sending handshake response", responder)
                case CookieConsumed(peer=raw):
                    self.counters.cookie_replies_received += 1
                    log.debug("%s - Received cookie reply", peer_name(raw))

    def _install(self, peer: Peer, session: Session, now: int) -> None:
        try:
            self.dp.install_keypair(
                peer.slot, local_index=session.local_index, remote_index=session.remote_index,
                send_key=session.send_key, receive_key=session.receive_key,
                initiator=session.initiator, birth_ns=session.birth_ns)
        finally:
            session.wipe()
        timers.session_derived(peer.timers, now)
        if session.initiator:
            self._handshake_complete(peer, now)
            # The staged packets, or else a keepalive that confirms the session to the
            # responder (the kernel's receive.c after wg_noise_handshake_begin_session).
            self._send(lambda: self.dp.send_keepalive(peer.slot))
        self._evaluate(peer, now)

    def _handshake_complete(self, peer: Peer, now: int) -> None:
        timers.handshake_complete(peer.timers, now)
        peer.last_handshake_wall_ns = self._wall()
        self.counters.completed += 1
        log.info("%s - Handshake completed, keys rotated", peer)
        if self.events is not None:
            self.events.handshake_completed(peer.public_key, peer.last_handshake_wall_ns)

    def _send(self, send: Callable[[], None]) -> None:
        try:
            send()
        except OSError as e:
            # No endpoint yet, or the network refused: the timers retry.
            log.debug("send failed: %s", e.strerror or e)

    # ---- timers ----------------------------------------------------------------------------

    def _tick(self) -> None:
        assert self._loop is not None
        try:
            if self._visit_handle is None:  # else a slice is already on its way
                self._visit_active_peers()
        finally:
            # Whatever happened this time, the timers must keep running.
            self._tick_handle = self._loop.call_later(self._tick_ns / 1e9, self._tick)

    def _visit_active_peers(self) -> None:
        """Evaluate the peers whose facts moved, a slice at a time: what is left of a slice
        (the data plane hands each peer over once) waits for the next turn of the loop."""
        self._visit_handle = None
        now = self._now()
        end = now + constants.DEVICE_TIMER_SLICE_NS
        if not self._active:
            self._active = self.dp.active_peers(constants.DEVICE_TIMER_SLICE)
            self._active_more = len(self._active) == constants.DEVICE_TIMER_SLICE
        while self._active and self._now() <= end:
            peer = self._peer_at(self._active.pop())
            if peer is not None:
                self._evaluate(peer, now)
        if (self._active or self._active_more) and self._loop is not None:
            self._visit_handle = self._loop.call_soon(self._visit_active_peers)
            return
        if now >= self._next_link_poll_ns:
            self._next_link_poll_ns = now + constants.LINK_POLL_NS
            self._poll_link()

    def _evaluate(self, peer: Peer, now: int) -> None:
        try:
            reachable, facts = self.dp.peer_facts(peer.slot)
            decision = timers.evaluate(peer.timers, facts, now)
            for action in decision.actions:
                self._timer_action(peer, action, now, reachable)
        except Exception:  # one peer's failure must not stop the others' timers
            log.exception("%s - timers failed", peer.name)
            return
        self._schedule(peer, decision.next_deadline_ns)

    def _timer_action(self, peer: Peer, action: TimerAction, now: int, reachable: bool) -> None:
        match action:
            case TimerAction.SEND_INITIATION:
                self._send_initiation(peer, now, reachable)
            case TimerAction.CLEAR_ENDPOINT_SOURCE:
                self.dp.clear_source(peer.slot)
            case TimerAction.SEND_KEEPALIVE:
                self._send(lambda: self.dp.send_keepalive(peer.slot))
            case TimerAction.FLUSH_STAGED:
                self.dp.clear_staged(peer.slot)
                self.counters.attempts_exhausted += 1
                log.info("%s - Handshake did not complete after %d attempts, giving up",
                         peer, self.timing.max_timer_handshakes + 2)
            case TimerAction.ZERO_KEY_MATERIAL:
                self._zero_keys(peer)
                log.info("%s - Removing all keys, since we haven't received a new one in %d "
                         "seconds", peer, self.timing.zero_key_material_ns // 10**9)

    def _send_initiation(self, peer: Peer, now: int, reachable: bool) -> None:
        if self.core.public_key is None:
            return
        if not reachable:
            # The timers count the attempt as the kernel does, but with nowhere to send it
            # the message is not made: its two X25519 would buy nothing (a gateway may hold
            # a million peers that have never been seen).
            log.debug("%s - No endpoint: handshake initiation not sent", peer)
            return
        message = self.core.create_initiation(peer, now, self._wall())
        self.counters.initiations_sent += 1
        self._send(lambda: self.dp.send_to_peer(peer.slot, message))
        log.debug("%s - Sending handshake initiation", peer)

    def _schedule(self, peer: Peer, deadline: int | None) -> None:
        """Make sure the peer is evaluated by `deadline`. A peer keeps one live entry in the
        heap, its earliest: a later deadline waits for it (evaluating early does no harm),
        so a busy peer whose deadlines move on every packet adds nothing to the heap."""
        if deadline is None or (peer.deadline_ns is not None and peer.deadline_ns <= deadline):
            return
        peer.deadline_ns = deadline
        self._serial += 1
        heapq.heappush(self._heap, (deadline, self._serial, peer.slot))
        if self._heap[0][1] == self._serial:
            self._arm_heap_timer()

    def _arm_heap_timer(self) -> None:
        if self._loop is None or not self._heap:
            return
        if self._heap_timer is not None:
            self._heap_timer.cancel()
        delay = self._heap[0][0] - self._now()
        # The loop's clock ticks in milliseconds and may wake a little early: a wake-up
        # before the deadline would find nothing due and only arm the timer again.
        if delay > 0:
            delay += constants.EVENT_LOOP_RESOLUTION_NS
        self._heap_timer = self._loop.call_later(max(0, delay) / 1e9, self._run_deadlines)

    def _run_deadlines(self) -> None:
        """Evaluate the peers whose deadline has come, a slice at a time."""
        self._heap_timer = None
        now = self._now()
        end = now + constants.DEVICE_TIMER_SLICE_NS
        try:
            for _ in range(constants.DEVICE_TIMER_SLICE):
                if not self._heap or self._heap[0][0] > now or self._now() > end:
                    break
                deadline, _serial, slot = heapq.heappop(self._heap)
                peer = self._peer_at(slot)
                # Entries are never removed, only outdated: act on the live ones.
                if peer is not None and peer.deadline_ns == deadline:
                    peer.deadline_ns = None
                    self._evaluate(peer, now)
        finally:
            self._arm_heap_timer()

    # ---- routes: the sticky source and the padding follow them ----------------------------

    def _watch_routes(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            self._routes = route.RouteMonitor()
        except OSError as e:
            log.info("Route changes are not watched: %s", e.strerror or e)
            return
        loop.add_reader(self._routes.fileno(), self._on_routes)

    def _unwatch_routes(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._route_check is not None:
            self._route_check.cancel()
        if self._routes is not None:
            loop.remove_reader(self._routes.fileno())
            self._routes.close()
            self._routes = None

    def _on_routes(self) -> None:
        if self._routes is None:
            return
        changes = self._routes.changes()
        if self.tun is not None and changes.touch(self.tun.ifindex):
            self._route_mtus_stale = True
        if changes.seen:
            self._schedule_source_check()

    def _schedule_source_check(self) -> None:
        # Routes change in bursts (an address brings several): one check after a burst.
        if self._route_check is None and self._loop is not None:
            self._route_check = self._loop.call_later(constants.ROUTE_CHECK_DELAY_S,
                                                      self._routes_changed)

    def _routes_changed(self) -> None:
        self._route_check = None
        self._check_sources(self.config.fwmark)
        if self._route_mtus_stale:
            self._update_route_mtus()

    def _update_route_mtus(self) -> None:
        """Hand the data plane the routes through the TUN that carry an MTU, for padding.
        After a move to another namespace the TUN's routes are out of sight and the last
        ones known stay (as the MTU does)."""
        self._route_mtus_stale = False
        if self.tun is None or not in_this_namespace(self.tun.ifindex, self.tun.name):
            return
        try:
            found = route.route_mtus(self.tun.ifindex)
        except OSError as e:
            log.debug("Routes through %s not read: %s", self.tun.name, e.strerror or e)
            return
        kept, overflow = route.bound_route_mtus(found, datapath.ROUTE_MTU_MAX)
        if overflow and not self._route_mtus_overflow_told:
            self._route_mtus_overflow_told = True
            log.warning("More than %d routes through %s have an MTU: padding is capped at "
                        "%d for the rest", datapath.ROUTE_MTU_MAX, self.tun.name, overflow)
        if (kept, overflow) != self._route_mtus:
            self.dp.set_route_mtus(kept, overflow)
            self._route_mtus = (kept, overflow)
            log.info("Route MTUs updated: %s", ", ".join(
                f"{r.network} {r.mtu}" for r in kept) or "none")

    def _check_sources(self, fwmark: int) -> None:
        """Forget each sticky source whose peer is now routed through another interface
        than the source's, as the kernel module does when it next sends."""
        for peer in list(self._peers.values()):
            endpoint, _, _ = self.dp.peer_transfer(peer.slot)
            if endpoint is None or endpoint.source is None or not endpoint.source_ifindex:
                continue
            oif = route.output_interface(endpoint.address, endpoint.source, fwmark)
            if oif is not None and oif != endpoint.source_ifindex:
                self.dp.clear_source(peer.slot)

    # ---- the link --------------------------------------------------------------------------

    def _poll_link(self) -> None:
        """The MTU (padding depends on it) and whether the interface still exists. After a
        move to another namespace the MTU is out of sight and the last one known stays."""
        if self.tun is None:
            return
        mtu = get_mtu(self.tun.ifindex, self.tun.name)
        if mtu is not None and mtu != self._mtu:
            self._mtu = mtu
            self.dp.set_mtu(mtu)
            log.info("MTU updated: %d", mtu)
        self._on_link_gone()

    def _on_link_gone(self) -> None:
        # The data plane reports a TUN read error; a deletion is told from other errors
        # (and from a move to another namespace) by the TUN fd itself.
        if self.tun is not None and not self.tun.exists():
            self.stop("the interface was removed")


class _AllowedIPsTable:
    """The device's allowed IPs as a transaction reads them (apply's AllowedIPsTable): the
    data plane's trie and per-peer lists, the only copy."""

    def __init__(self, device: Device) -> None:
        self._device = device

    def owner(self, network: AllowedIP) -> PublicKey | None:
        slot = self._device.dp.allowed_ip_owner(network)
        peer = self._device._peer_at(slot)
        return PublicKey(peer.public_key) if peer is not None else None

    def of(self, key: PublicKey) -> Sequence[AllowedIP]:
        peer = self._device._peers.get(key.raw)
        return self._device.dp.allowed_ips([peer.slot])[0] if peer is not None else ()

    def count(self) -> int:
        return self._device.dp.allowed_ips_count()


# ---- conversions between the three planes' ideas of an endpoint ------------------------------

def _dp_endpoint(endpoint: Endpoint) -> datapath.Endpoint:
    ip = endpoint.ip
    scope = 0
    if isinstance(ip, ipaddress.IPv6Address) and ip.scope_id:
        scope = _scope_index(ip.scope_id)
    return datapath.Endpoint(ip, endpoint.port, scope_id=scope)


def _scope_index(scope: str) -> int:
    """The interface an IPv6 endpoint's scope names (a number, as Go takes it, or a name);
    UapiError(EINVAL) if there is none such."""
    if scope.isascii() and scope.isdigit():
        if int(scope) <= constants.SCOPE_ID_MAX:
            return int(scope)
    else:
        with contextlib.suppress(OSError, ValueError):
            return socket.if_nametoindex(scope)
    raise UapiError(errno.EINVAL, "an endpoint's scope names no interface")


def _check_scopes(effects: Sequence[Effect]) -> None:
    """Look up the scope of every endpoint a `set` gives, before anything is carried out:
    besides the port, the one refusal that only the host can make."""
    for effect in effects:
        if isinstance(effect, EndpointChanged):
            _dp_endpoint(effect.endpoint)
        elif isinstance(effect, PeerAdded) and effect.peer.endpoint is not None:
            _dp_endpoint(effect.peer.endpoint)


def _current_endpoint(configured: Endpoint | None, family: int, address: bytes,
                      port: int) -> Endpoint | None:
    """Where the data plane sends now; the configured value (with its scope) while it is
    still that."""
    if family not in (4, 6):
        return None
    packed = address[:4] if family == 4 else address
    if configured is not None and port == configured.port and packed == configured.ip.packed:
        return configured
    return Endpoint(ipaddress.ip_address(packed), port)


def _config_endpoint(endpoint: datapath.Endpoint | None) -> Endpoint | None:
    if endpoint is None:
        return None
    return Endpoint(endpoint.address, endpoint.port)


def _tell_if_moved(sink: PeerEventSink, key: bytes, before: datapath.Endpoint | None,
                   now: datapath.Endpoint) -> None:
    if before is None or (before.address, before.port) != (now.address, now.port):
        sink.endpoint_changed(key, Endpoint(now.address, now.port))


# What answer_handshakes says of an answer it did not install (nor send).
_NOT_INSTALLED: Final = frozenset((-errno.ESTALE, -errno.ENOENT, -errno.EAFNOSUPPORT))


def _answered(actions: tuple[Action, ...]) -> tuple[Session, bytes] | None:
    """(session, response) if `actions` are an accepted initiation's (see
    pywg._protocol.handshake), else None."""
    if len(actions) == 3:
        update, install, send = actions
        if (isinstance(update, UpdateEndpoint) and isinstance(install, InstallSession)
                and isinstance(send, SendHandshakeResponse) and not install.session.initiator
                and update.peer == send.peer == install.session.peer):
            return install.session, send.packet
    return None


def _show(endpoint: datapath.Endpoint | None) -> str:
    if endpoint is None:
        return "(none)"
    if endpoint.address.version == 6:
        return f"[{endpoint.address}]:{endpoint.port}"
    return f"{endpoint.address}:{endpoint.port}"
