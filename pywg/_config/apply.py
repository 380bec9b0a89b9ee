"""apply(state, change) -> (new_state, effects): a `set` transaction, all or nothing.

Theory of operation. wireguard-go executes a `set` request line by line on the live device
(device/uapi.go), so an error half-way leaves it half-applied. Here the same line-by-line
semantics run on a private working copy, and only a transaction that completes produces a
new state; on any error the caller still holds the old one. The semantics are exactly
wireguard-go's:
- `replace_peers` removes every peer; a peer named again later is a new peer (new
  session, zeroed counters), as wg setconf does to every peer.
- `public_key=` starts a peer section and creates the peer if absent. A section for our
  own public key is parsed but ignored. `update_only` undoes the creation of a peer made by
  this section; `remove` removes the peer and ignores the rest of its section.
- Setting a new private key removes the peer whose public key is the new public key.
- `allowed_ip` inserts a prefix, taking it from any other peer (a prefix has one owner)
  and moving it to the end of this peer's list; `-prefix` removes it if this peer owns it;
  `replace_allowed_ips` clears this peer's list.
- Turning a persistent keepalive on (from 0) sends one keepalive at once.

The effects are what the driver must do to make the running device match new_state, in an
order it can follow one by one: the socket changes that can fail come first (so a driver
that fails there can stop with nothing else changed), then peers removed, the private
key, changes to surviving peers, allowed IPs taken away, peers added (with their whole
configuration), allowed IPs given, and keepalives to send.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from dataclasses import dataclass, field

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
)
from pywg._constants import MAX_ALLOWED_IPS, MAX_PEERS

__all__ = [
    "AllowedIPsAdded",
    "AllowedIPsRemoved",
    "Effect",
    "EndpointChanged",
    "FwmarkChanged",
    "ListenPortChanged",
    "PeerAdded",
    "PeerRemoved",
    "PersistentKeepaliveChanged",
    "PresharedKeyChanged",
    "PrivateKeyChanged",
    "SendKeepalive",
    "apply",
]


# Effects: what the driver must carry out, in the order given.


@dataclass(frozen=True, slots=True)
class ListenPortChanged:
    port: int  # 0: bind a new random port


@dataclass(frozen=True, slots=True)
class FwmarkChanged:
    fwmark: int  # 0: off


@dataclass(frozen=True, slots=True)
class PeerRemoved:
    public_key: PublicKey  # and with it every allowed IP it still had


@dataclass(frozen=True, slots=True)
class PrivateKeyChanged:
    private_key: PrivateKey | None  # every peer's static-static DH and sessions are stale


@dataclass(frozen=True, slots=True)
class PresharedKeyChanged:
    public_key: PublicKey
    preshared_key: PresharedKey | None


@dataclass(frozen=True, slots=True)
class EndpointChanged:
    public_key: PublicKey
    endpoint: Endpoint  # set explicitly: replaces whatever the peer roamed to


@dataclass(frozen=True, slots=True)
class PersistentKeepaliveChanged:
    public_key: PublicKey
    interval: int


@dataclass(frozen=True, slots=True)
class AllowedIPsRemoved:
    public_key: PublicKey
    networks: tuple[AllowedIP, ...]


@dataclass(frozen=True, slots=True)
class PeerAdded:
    peer: PeerConfig  # complete: keys, endpoint, keepalive and allowed IPs


@dataclass(frozen=True, slots=True)
class AllowedIPsAdded:
    public_key: PublicKey
    networks: tuple[AllowedIP, ...]


@dataclass(frozen=True, slots=True)
class SendKeepalive:
    public_key: PublicKey  # its persistent keepalive was just turned on


Effect = (
    ListenPortChanged
    | FwmarkChanged
    | PeerRemoved
    | PrivateKeyChanged
    | PresharedKeyChanged
    | EndpointChanged
    | PersistentKeepaliveChanged
    | AllowedIPsRemoved
    | PeerAdded
    | AllowedIPsAdded
    | SendKeepalive
)


@dataclass
class _Peer:
    """A peer of the working copy; `allowed_ips` is an ordered set (dict keys)."""

    public_key: PublicKey
    preshared_key: PresharedKey | None = None
    endpoint: Endpoint | None = None
    persistent_keepalive_interval: int = 0
    allowed_ips: dict[AllowedIP, None] = field(default_factory=dict)

    @classmethod
    def of(cls, p: PeerConfig) -> _Peer:
        return cls(p.public_key, p.preshared_key, p.endpoint, p.persistent_keepalive_interval,
                   dict.fromkeys(p.allowed_ips))

    def freeze(self) -> PeerConfig:
        return PeerConfig(self.public_key, self.preshared_key, self.endpoint,
                          self.persistent_keepalive_interval, tuple(self.allowed_ips))


class _Working:
    """The copy a transaction runs on, plus what the effects need to know.

    Copy on write: a peer stays the old state's PeerConfig until the transaction changes
    it (`touched`), so a change to one peer of 10^5 copies two dicts, not 10^5 peers.
    """

    def __init__(self, state: DeviceConfig, max_peers: int) -> None:
        self.private_key = state.private_key
        self.public_key = state.public_key
        self.listen_port = state.listen_port
        self.fwmark = state.fwmark
        self.listen_port_set = False
        self.max_peers = max_peers
        # .copy() of the proxies copies the dicts behind them with their stored hashes.
        self.peers: dict[PublicKey, PeerConfig | _Peer] = dict(state.peer_map.copy())
        self.owners: dict[AllowedIP, PublicKey] = state.allowed_ip_owners.copy()
        self.touched: set[PublicKey] = set()
        self.removed: set[PublicKey] = set()  # removed at some point: recreated if back
        self.endpoint_set: set[PublicKey] = set()
        self.keepalive_on: set[PublicKey] = set()

    def mutable(self, key: PublicKey) -> _Peer:
        peer = self.peers[key]
        if isinstance(peer, PeerConfig):
            peer = self.peers[key] = _Peer.of(peer)
            self.touched.add(key)
        return peer

    def remove_peer(self, key: PublicKey) -> None:
        peer = self.peers.pop(key, None)
        if peer is None:
            return
        for net in peer.allowed_ips:
            del self.owners[net]
        self.removed.add(key)
        self.endpoint_set.discard(key)
        self.keepalive_on.discard(key)

    def create_peer(self, key: PublicKey) -> _Peer:
        if len(self.peers) >= self.max_peers:
            raise ConfigError(f"too many peers (at most {self.max_peers})", errno.EINVAL)
        peer = self.peers[key] = _Peer(key)
        self.touched.add(key)
        return peer

    def insert_allowed_ip(self, peer: _Peer, net: AllowedIP) -> None:
        owner = self.owners.get(net)
        if owner is not None:
            del self.mutable(owner).allowed_ips[net]
        peer.allowed_ips[net] = None
        self.owners[net] = peer.public_key

    def remove_allowed_ip(self, peer: _Peer, net: AllowedIP) -> None:
        if self.owners.get(net) == peer.public_key:
            del peer.allowed_ips[net]
            del self.owners[net]

    def clear_allowed_ips(self, peer: _Peer) -> None:
        for net in peer.allowed_ips:
            del self.owners[net]
        peer.allowed_ips.clear()

    def freeze(self) -> DeviceConfig:
        peer_map = {k: p if isinstance(p, PeerConfig) else p.freeze()
                    for k, p in self.peers.items()}
        new = DeviceConfig(self.private_key, self.listen_port, self.fwmark,
                           tuple(peer_map.values()))
        new.preset_lookups(peer_map, self.owners)
        return new


def _apply_device_op(w: _Working, op: DeviceOp) -> None:
    if isinstance(op, SetPrivateKey):
        _set_private_key(w, op.key)
    elif isinstance(op, SetListenPort):
        w.listen_port = op.port
        w.listen_port_set = True
    elif isinstance(op, SetFwmark):
        w.fwmark = op.fwmark
    elif isinstance(op, ReplacePeers):
        for key in list(w.peers):
            w.remove_peer(key)


def _set_private_key(w: _Working, key: PrivateKey | None) -> None:
    if key == w.private_key:
        return  # wireguard-go: an unchanged key changes nothing, not even sessions
    w.private_key = key
    w.public_key = None if key is None else key.public_key()
    if w.public_key is not None:
        w.remove_peer(w.public_key)


class _Section:
    """One peer section being applied; `peer` is None once the section is ignored."""

    def __init__(self, w: _Working, key: PublicKey) -> None:
        self.w = w
        self.peer: _Peer | None = None
        self.created = False
        if key == w.public_key:
            return  # a section for ourselves is parsed but ignored
        if key in w.peers:
            self.peer = w.mutable(key)
        else:
            self.peer = w.create_peer(key)
            self.created = True

    def apply(self, op: PeerOp) -> None:
        peer, w = self.peer, self.w
        if peer is None:
            return
        if isinstance(op, UpdateOnly):
            if self.created:
                w.remove_peer(peer.public_key)
                self.peer = None
        elif isinstance(op, RemovePeer):
            w.remove_peer(peer.public_key)
            self.peer = None
        elif isinstance(op, SetPresharedKey):
            peer.preshared_key = op.key
        elif isinstance(op, SetEndpoint):
            peer.endpoint = op.endpoint
            w.endpoint_set.add(peer.public_key)
        elif isinstance(op, SetPersistentKeepalive):
            self._set_keepalive(peer, op.interval)
        elif isinstance(op, ReplaceAllowedIPs):
            w.clear_allowed_ips(peer)
        elif isinstance(op, AddAllowedIP):
            w.insert_allowed_ip(peer, op.network)
        elif isinstance(op, RemoveAllowedIP):
            w.remove_allowed_ip(peer, op.network)

    def _set_keepalive(self, peer: _Peer, interval: int) -> None:
        # As wireguard-go: the last keepalive line of a section decides whether it sends.
        turned_on = peer.persistent_keepalive_interval == 0 and interval != 0
        peer.persistent_keepalive_interval = interval
        if turned_on:
            self.w.keepalive_on.add(peer.public_key)
        else:
            self.w.keepalive_on.discard(peer.public_key)


def _apply_peer_change(w: _Working, pc: PeerChange) -> None:
    section = _Section(w, pc.public_key)
    for op in pc.ops:
        section.apply(op)


def apply(
    state: DeviceConfig,
    change: Change,
    *,
    max_peers: int = MAX_PEERS,
    max_allowed_ips: int = MAX_ALLOWED_IPS,
) -> tuple[DeviceConfig, tuple[Effect, ...]]:
    """Apply a whole transaction to `state`; raises ConfigError and changes nothing on error."""
    w = _Working(state, max_peers)
    for op in change.device:
        _apply_device_op(w, op)
    for pc in change.peers:
        _apply_peer_change(w, pc)
    if len(w.owners) > max_allowed_ips:
        raise ConfigError(f"too many allowed IPs (at most {max_allowed_ips})", errno.EINVAL)
    new = w.freeze()
    return new, tuple(_effects(state, new, w))


def _effects(old: DeviceConfig, new: DeviceConfig, w: _Working) -> Iterator[Effect]:
    if w.listen_port_set and (new.listen_port == 0 or new.listen_port != old.listen_port):
        yield ListenPortChanged(new.listen_port)
    if new.fwmark != old.fwmark:
        yield FwmarkChanged(new.fwmark)
    for p in old.peers:
        if p.public_key in w.removed or p.public_key not in new.peer_map:
            yield PeerRemoved(p.public_key)
    if new.private_key != old.private_key:
        yield PrivateKeyChanged(new.private_key)
    # Peers that were there before and still are, and that this transaction changed.
    kept = [p for p in new.peers if p.public_key in w.touched and p.public_key in
            old.peer_map and p.public_key not in w.removed]
    for p in kept:
        yield from _peer_changes(old.peer_map[p.public_key], p, w)
    for p in new.peers:
        if p.public_key in w.touched and (p.public_key in w.removed or
                                          p.public_key not in old.peer_map):
            yield PeerAdded(p)
    for p in kept:
        before = set(old.peer_map[p.public_key].allowed_ips)
        added = tuple(net for net in p.allowed_ips if net not in before)
        if added:
            yield AllowedIPsAdded(p.public_key, added)
    for p in new.peers:
        if p.public_key in w.keepalive_on:
            yield SendKeepalive(p.public_key)


def _peer_changes(old: PeerConfig, new: PeerConfig, w: _Working) -> Iterator[Effect]:
    key = new.public_key
    if new.preshared_key != old.preshared_key:
        yield PresharedKeyChanged(key, new.preshared_key)
    if key in w.endpoint_set and new.endpoint is not None:
        yield EndpointChanged(key, new.endpoint)
    if new.persistent_keepalive_interval != old.persistent_keepalive_interval:
        yield PersistentKeepaliveChanged(key, new.persistent_keepalive_interval)
    after = set(new.allowed_ips)
    removed = tuple(net for net in old.allowed_ips if net not in after)
    if removed:
        yield AllowedIPsRemoved(key, removed)

