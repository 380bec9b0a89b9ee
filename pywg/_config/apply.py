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

Where the allowed IPs live: a state's PeerConfigs carry them (the model, MemoryDevice, the
tools), or, given an AllowedIPsTable, the table holds them and the state's PeerConfigs carry
none: a gateway's data plane keeps a million prefixes in its trie, and a second copy here
would cost more than the rest of a peer. Either way the transaction reads the table only for
the prefixes and peers it touches, and the new peers' PeerConfigs in the effects are whole.

The effects are what the driver must do to make the running device match new_state, in an
order it can follow one by one: the socket changes that can fail come first (so a driver
that fails there can stop with nothing else changed), then peers removed, the private
key, changes to surviving peers, allowed IPs taken away, peers added (with their whole
configuration), allowed IPs given, and keepalives to send.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

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
    "AllowedIPsTable",
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
    # Inserted in order, each at the end of the peer's list: a prefix it has moves there.
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


class AllowedIPsTable(Protocol):
    """The allowed IPs of a state whose PeerConfigs do not carry them (a device's data plane
    keeps them): read, never changed, by a transaction."""

    def owner(self, network: AllowedIP) -> PublicKey | None:
        """The peer that owns exactly this prefix."""
        ...

    def of(self, key: PublicKey) -> Sequence[AllowedIP]:
        """A peer's prefixes, in the order they were given."""
        ...

    def count(self) -> int:
        """Prefixes owned by all peers together."""
        ...


class _ConfigTable:
    """The table of a state whose PeerConfigs carry their allowed IPs."""

    def __init__(self, state: DeviceConfig) -> None:
        self._state = state

    def owner(self, network: AllowedIP) -> PublicKey | None:
        return self._state.allowed_ip_owners.get(network)

    def of(self, key: PublicKey) -> Sequence[AllowedIP]:
        peer = self._state.peer(key)
        return peer.allowed_ips if peer is not None else ()

    def count(self) -> int:
        return len(self._state.allowed_ip_owners)


class _EmptyTable:
    """What is left of the table once `replace_peers` has removed every peer."""

    def owner(self, network: AllowedIP) -> PublicKey | None:
        return None

    def of(self, key: PublicKey) -> Sequence[AllowedIP]:
        return ()

    def count(self) -> int:
        return 0


@dataclass(slots=True)
class _Peer:
    """A peer of the working copy; `allowed_ips` is an ordered set (dict keys)."""

    public_key: PublicKey
    preshared_key: PresharedKey | None = None
    endpoint: Endpoint | None = None
    persistent_keepalive_interval: int = 0
    allowed_ips: dict[AllowedIP, None] = field(default_factory=dict)

    @classmethod
    def of(cls, p: PeerConfig, allowed_ips: Sequence[AllowedIP]) -> _Peer:
        return cls(p.public_key, p.preshared_key, p.endpoint, p.persistent_keepalive_interval,
                   dict.fromkeys(allowed_ips))

    def freeze(self, with_allowed_ips: bool = True) -> PeerConfig:
        return PeerConfig(self.public_key, self.preshared_key, self.endpoint,
                          self.persistent_keepalive_interval,
                          tuple(self.allowed_ips) if with_allowed_ips else ())


class _Working:
    """The copy a transaction runs on, plus what the effects need to know.

    Copy on write: a peer stays the old state's PeerConfig until the transaction changes
    it (`touched`), so a change to one peer of 10^5 copies a dict, not 10^5 peers; the
    allowed IPs are read from the table as they are touched, and `owners` holds the
    ownership of those (None: unowned now) over the table's.
    """

    def __init__(self, state: DeviceConfig, max_peers: int, table: AllowedIPsTable) -> None:
        self.private_key = state.private_key
        self.public_key = state.public_key
        self.listen_port = state.listen_port
        self.fwmark = state.fwmark
        self.listen_port_set = False
        self.max_peers = max_peers
        # .copy() of the proxy copies the dict behind it with its stored hashes.
        self.peers: dict[PublicKey, PeerConfig | _Peer] = dict(state.peer_map.copy())
        self.table = table
        self.owners: dict[AllowedIP, PublicKey | None] = {}
        self.count = table.count()  # prefixes owned now
        self.before: dict[PublicKey, Sequence[AllowedIP]] = {}  # of the peers touched
        self.touched: set[PublicKey] = set()
        self.removed: set[PublicKey] = set()  # removed at some point: recreated if back
        self.endpoint_set: set[PublicKey] = set()
        self.keepalive_on: set[PublicKey] = set()

    def mutable(self, key: PublicKey) -> _Peer:
        peer = self.peers[key]
        if isinstance(peer, PeerConfig):
            before = self.before[key] = self.table.of(key)
            peer = self.peers[key] = _Peer.of(peer, before)
            self.touched.add(key)
        return peer

    def owner(self, net: AllowedIP) -> PublicKey | None:
        if net in self.owners:
            return self.owners[net]
        return self.table.owner(net)

    def remove_peer(self, key: PublicKey) -> None:
        peer = self.peers.pop(key, None)
        if peer is None:
            return
        nets = peer.allowed_ips if isinstance(peer, _Peer) else self.table.of(key)
        for net in nets:
            self.owners[net] = None
        self.count -= len(nets)
        self.removed.add(key)
        self.endpoint_set.discard(key)
        self.keepalive_on.discard(key)

    def remove_all_peers(self) -> None:
        # As remove_peer for each, without reading a single prefix: none is left.
        self.removed.update(self.peers)
        self.peers.clear()
        self.table = _EmptyTable()
        self.owners.clear()
        self.count = 0
        self.endpoint_set.clear()
        self.keepalive_on.clear()

    def create_peer(self, key: PublicKey) -> _Peer:
        if len(self.peers) >= self.max_peers:
            raise ConfigError(f"too many peers (at most {self.max_peers})", errno.EINVAL)
        peer = self.peers[key] = _Peer(key)
        self.touched.add(key)
        return peer

    def insert_allowed_ip(self, peer: _Peer, net: AllowedIP) -> None:
        owner = self.owner(net)
        if owner is not None:
            del self.mutable(owner).allowed_ips[net]
        else:
            self.count += 1
        peer.allowed_ips[net] = None
        self.owners[net] = peer.public_key

    def remove_allowed_ip(self, peer: _Peer, net: AllowedIP) -> None:
        if self.owner(net) == peer.public_key:
            del peer.allowed_ips[net]
            self.owners[net] = None
            self.count -= 1

    def clear_allowed_ips(self, peer: _Peer) -> None:
        for net in peer.allowed_ips:
            self.owners[net] = None
        self.count -= len(peer.allowed_ips)
        peer.allowed_ips.clear()

    def freeze(self, with_allowed_ips: bool) -> tuple[DeviceConfig, dict[PublicKey, PeerConfig]]:
        """The new state, and the touched peers' whole PeerConfigs (for the effects)."""
        whole = {k: p.freeze() for k, p in self.peers.items() if isinstance(p, _Peer)}
        kept = whole if with_allowed_ips else {
            k: p.freeze(with_allowed_ips=False) for k, p in self.peers.items()
            if isinstance(p, _Peer)}
        peer_map = {k: p if isinstance(p, PeerConfig) else kept[k]
                    for k, p in self.peers.items()}
        new = DeviceConfig(self.private_key, self.listen_port, self.fwmark,
                           tuple(peer_map.values()))
        new.preset_lookups(peer_map)
        return new, whole


def _apply_device_op(w: _Working, op: DeviceOp) -> None:
    if isinstance(op, SetPrivateKey):
        _set_private_key(w, op.key)
    elif isinstance(op, SetListenPort):
        w.listen_port = op.port
        w.listen_port_set = True
    elif isinstance(op, SetFwmark):
        w.fwmark = op.fwmark
    elif isinstance(op, ReplacePeers):
        w.remove_all_peers()


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
    table: AllowedIPsTable | None = None,
) -> tuple[DeviceConfig, tuple[Effect, ...]]:
    """Apply a whole transaction to `state`; raises ConfigError and changes nothing on error.

    With a `table`, the allowed IPs are the table's (the state's PeerConfigs carry none, and
    neither do the new state's); the effects say how to bring the table along."""
    w = _Working(state, max_peers, table if table is not None else _ConfigTable(state))
    for op in change.device:
        _apply_device_op(w, op)
    for pc in change.peers:
        _apply_peer_change(w, pc)
    if w.count > max_allowed_ips:
        raise ConfigError(f"too many allowed IPs (at most {max_allowed_ips})", errno.EINVAL)
    new, whole = w.freeze(with_allowed_ips=table is None)
    return new, tuple(_effects(state, new, whole, w))


def _effects(old: DeviceConfig, new: DeviceConfig, whole: dict[PublicKey, PeerConfig],
             w: _Working) -> Iterator[Effect]:
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
    kept = [whole[p.public_key] for p in new.peers if p.public_key in w.touched and
            p.public_key in old.peer_map and p.public_key not in w.removed]
    for p in kept:
        yield from _peer_changes(old.peer_map[p.public_key], p, w)
    for p in new.peers:
        if p.public_key in w.touched and (p.public_key in w.removed or
                                          p.public_key not in old.peer_map):
            yield PeerAdded(whole[p.public_key])
    for p in kept:
        added = _given(w.before[p.public_key], p.allowed_ips)
        if added:
            yield AllowedIPsAdded(p.public_key, added)
    for p in new.peers:
        if p.public_key in w.keepalive_on:
            yield SendKeepalive(p.public_key)


def _given(before: Sequence[AllowedIP], after: tuple[AllowedIP, ...]) -> tuple[AllowedIP, ...]:
    """What to insert, in order, into a list that was `before` and has lost what `after`
    lacks, to make it `after`. Each insert appends, or moves a prefix the peer has to the
    end; what stays in place is the longest start of `after` that `before` holds in that
    order, so a list given again unchanged inserts nothing."""
    shared = 0
    for net in before:
        if shared < len(after) and net == after[shared]:
            shared += 1
    return after[shared:]


def _peer_changes(old: PeerConfig, new: PeerConfig, w: _Working) -> Iterator[Effect]:
    key = new.public_key
    if new.preshared_key != old.preshared_key:
        yield PresharedKeyChanged(key, new.preshared_key)
    if key in w.endpoint_set and new.endpoint is not None:
        yield EndpointChanged(key, new.endpoint)
    if new.persistent_keepalive_interval != old.persistent_keepalive_interval:
        yield PersistentKeepaliveChanged(key, new.persistent_keepalive_interval)
    after = set(new.allowed_ips)
    removed = tuple(net for net in w.before[key] if net not in after)
    if removed:
        yield AllowedIPsRemoved(key, removed)
