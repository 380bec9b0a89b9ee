"""apply(): wireguard-go's `set` semantics on the model, all or nothing, and its effects.

Where a case says "wireguard-go", it is what Debian's wireguard-go 0.0.20220316 did with the
same lines; tests/integration/test_uapi_wg.py checks the two side by side.
"""

import dataclasses
import ipaddress
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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
    apply,
)
from pywg._config.errors import ConfigError
from pywg._config.model import (
    AddAllowedIP,
    AllowedIP,
    Change,
    DeviceConfig,
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
from tests.support.nets import net


def key(n: int) -> PublicKey:
    return PublicKey(bytes([n]) * 32)


A, B, C = key(1), key(2), key(3)
EP = Endpoint(ipaddress.ip_address("192.0.2.1"), 51820)
BASE = DeviceConfig(
    private_key=PrivateKey(bytes([9]) * 32), listen_port=51820,
    peers=(PeerConfig(A, allowed_ips=(net("10.1.0.0/16"), net("10.2.0.0/16"))),
           PeerConfig(B, endpoint=EP, allowed_ips=(net("10.3.0.0/16"),))))


def peers(*sections: tuple[PublicKey, tuple[PeerOp, ...]]) -> Change:
    return Change(peers=tuple(PeerChange(k, ops) for k, ops in sections))


def ips(config: DeviceConfig, k: PublicKey) -> list[str]:
    peer = config.peer(k)
    assert peer is not None
    return [str(n) for n in peer.allowed_ips]


def test_empty_change_changes_nothing() -> None:
    new, effects = apply(BASE, Change())
    assert new == BASE and effects == ()


def test_new_peer_is_added_whole() -> None:
    new, effects = apply(BASE, peers((C, (SetEndpoint(EP), AddAllowedIP(net("10.9.0.0/16"))))))
    assert [p.public_key for p in new.peers] == [A, B, C]
    assert effects == (PeerAdded(PeerConfig(C, endpoint=EP, allowed_ips=(net("10.9.0.0/16"),))),)


def test_replace_peers_recreates_the_peers_named_again() -> None:
    # wg setconf: every peer goes; one named again is a new peer (new session, counters 0).
    change = Change(device=(ReplacePeers(),), peers=(PeerChange(A, (SetEndpoint(EP),)),))
    new, effects = apply(BASE, change)
    assert [p.public_key for p in new.peers] == [A]
    assert new.peers[0] == PeerConfig(A, endpoint=EP)  # its allowed IPs went with it
    assert effects == (PeerRemoved(A), PeerRemoved(B), PeerAdded(PeerConfig(A, endpoint=EP)))


def test_remove_ignores_the_rest_of_its_section() -> None:
    new, effects = apply(BASE, peers((B, (RemovePeer(), AddAllowedIP(net("10.9.0.0/16"))))))
    assert new.peer(B) is None and effects == (PeerRemoved(B),)


def test_remove_of_an_absent_peer_changes_nothing() -> None:
    assert apply(BASE, peers((C, (RemovePeer(),)))) == (BASE, ())


def test_update_only_does_not_create() -> None:
    new, effects = apply(BASE, peers((C, (UpdateOnly(), AddAllowedIP(net("10.1.0.0/16"))))))
    assert new == BASE and effects == ()  # nor does it take 10.1/16 from A


def test_update_only_updates_an_existing_peer() -> None:
    new, effects = apply(BASE, peers((A, (UpdateOnly(), SetPersistentKeepalive(25)))))
    assert new.peer(A) == PeerConfig(A, persistent_keepalive_interval=25,
                                     allowed_ips=(net("10.1.0.0/16"), net("10.2.0.0/16")))
    assert effects == (PersistentKeepaliveChanged(A, 25), SendKeepalive(A))


def test_update_only_after_replace_peers_drops_the_peer() -> None:
    change = Change(device=(ReplacePeers(),), peers=(PeerChange(A, (UpdateOnly(),)),))
    new, effects = apply(BASE, change)
    assert new.peers == () and effects == (PeerRemoved(A), PeerRemoved(B))


def test_section_for_our_own_key_is_ignored() -> None:
    # wireguard-go ignores it silently (errno=0), and it takes no allowed IP from anyone.
    own = BASE.public_key
    assert own is not None
    new, effects = apply(BASE, peers((own, (AddAllowedIP(net("10.1.0.0/16")), SetEndpoint(EP)))))
    assert new == BASE and effects == ()


def test_new_private_key_removes_the_peer_with_its_public_key() -> None:
    secret = PrivateKey(bytes([7]) * 32)
    config = DeviceConfig(peers=(PeerConfig(secret.public_key()), PeerConfig(A)))
    new, effects = apply(config, Change(device=(SetPrivateKey(secret),)))
    assert [p.public_key for p in new.peers] == [A]
    assert effects == (PeerRemoved(secret.public_key()), PrivateKeyChanged(secret))


def test_same_private_key_is_no_change() -> None:
    assert apply(BASE, Change(device=(SetPrivateKey(BASE.private_key),))) == (BASE, ())


def test_clearing_the_private_key() -> None:
    new, effects = apply(BASE, Change(device=(SetPrivateKey(None),)))
    assert new.private_key is None and new.public_key is None
    assert effects == (PrivateKeyChanged(None),)


def test_allowed_ip_moves_from_its_owner() -> None:
    new, effects = apply(BASE, peers((B, (AddAllowedIP(net("10.1.0.0/16")),))))
    assert ips(new, A) == ["10.2.0.0/16"]
    assert ips(new, B) == ["10.3.0.0/16", "10.1.0.0/16"]
    assert effects == (AllowedIPsRemoved(A, (net("10.1.0.0/16"),)),
                       AllowedIPsAdded(B, (net("10.1.0.0/16"),)))


def test_reinserted_allowed_ip_goes_last() -> None:
    # wireguard-go listed 10.0.0.1/24, 10.1.0.0/16, 10.0.0.0/24 as 10.1.0.0/16, 10.0.0.0/24.
    ops = tuple(AddAllowedIP(net(t)) for t in ("10.0.0.0/24", "10.1.0.0/16", "10.0.0.0/24"))
    new, _ = apply(DeviceConfig(), peers((C, ops)))
    assert ips(new, C) == ["10.1.0.0/16", "10.0.0.0/24"]


def test_minus_removes_only_from_its_owner() -> None:
    new, effects = apply(BASE, peers((B, (RemoveAllowedIP(net("10.1.0.0/16")),)),
                                     (A, (RemoveAllowedIP(net("10.2.0.0/16")),))))
    assert ips(new, A) == ["10.1.0.0/16"] and ips(new, B) == ["10.3.0.0/16"]
    assert effects == (AllowedIPsRemoved(A, (net("10.2.0.0/16"),)),)


def test_replace_allowed_ips() -> None:
    new, effects = apply(BASE, peers((A, (ReplaceAllowedIPs(), AddAllowedIP(net("10.2.0.0/16")),
                                          AddAllowedIP(net("fd00::/8"))))))
    assert ips(new, A) == ["10.2.0.0/16", "fd00::/8"]
    assert effects == (AllowedIPsRemoved(A, (net("10.1.0.0/16"),)),
                       AllowedIPsAdded(A, (net("fd00::/8"),)))


def test_endpoint_set_again_is_an_effect() -> None:
    # The peer may have roamed: setting its endpoint, even to the same value, moves it back.
    new, effects = apply(BASE, peers((B, (SetEndpoint(EP),))))
    assert new == BASE and effects == (EndpointChanged(B, EP),)


@pytest.mark.parametrize(("before", "ops", "sends"), [
    (0, (SetPersistentKeepalive(25),), True),
    (25, (SetPersistentKeepalive(30),), False),
    (25, (SetPersistentKeepalive(0),), False),
    (0, (SetPersistentKeepalive(25), SetPersistentKeepalive(0)), False),
    (25, (SetPersistentKeepalive(0), SetPersistentKeepalive(25)), True),
])
def test_keepalive_sent_when_turned_on(before: int, ops: tuple[PeerOp, ...],
                                       sends: bool) -> None:
    config = DeviceConfig(peers=(PeerConfig(A, persistent_keepalive_interval=before),))
    _, effects = apply(config, peers((A, ops)))
    assert (SendKeepalive(A) in effects) == sends


def test_new_peer_with_keepalive_sends_one_after_it_is_added() -> None:
    _, effects = apply(BASE, peers((C, (SetPersistentKeepalive(25),))))
    assert effects == (PeerAdded(PeerConfig(C, persistent_keepalive_interval=25)),
                       SendKeepalive(C))


def test_preshared_key_set_and_cleared() -> None:
    psk = PresharedKey(bytes([5]) * 32)
    new, effects = apply(BASE, peers((A, (SetPresharedKey(psk),))))
    assert effects == (PresharedKeyChanged(A, psk),)
    new, effects = apply(new, peers((A, (SetPresharedKey(None),))))
    assert new == BASE and effects == (PresharedKeyChanged(A, None),)


@pytest.mark.parametrize(("port", "effect"), [(51820, False), (0, True), (51821, True)])
def test_listen_port(port: int, effect: bool) -> None:
    # wg setconf sends listen_port=0 when the file has none: a new random port each time.
    new, effects = apply(BASE, Change(device=(SetListenPort(port),)))
    assert new.listen_port == port
    assert effects == ((ListenPortChanged(port),) if effect else ())


def test_fwmark() -> None:
    new, effects = apply(BASE, Change(device=(SetFwmark(51820),)))
    assert new.fwmark == 51820 and effects == (FwmarkChanged(51820),)
    assert apply(new, Change(device=(SetFwmark(51820),)))[1] == ()


def test_socket_effects_come_first() -> None:
    change = Change(device=(ReplacePeers(), SetFwmark(1), SetListenPort(0)))
    _, effects = apply(BASE, change)
    assert effects == (ListenPortChanged(0), FwmarkChanged(1), PeerRemoved(A), PeerRemoved(B))


def test_limits_refuse_the_whole_change() -> None:
    with pytest.raises(ConfigError) as e:
        apply(BASE, peers((C, ())), max_peers=2)
    assert e.value.errno == 22
    with pytest.raises(ConfigError):
        apply(BASE, peers((C, (AddAllowedIP(net("10.9.0.0/16")),))), max_allowed_ips=3)
    # a change that stays within the limits is fine
    assert apply(BASE, peers((A, (RemovePeer(),)), (C, ())), max_peers=2)[0].peer(C)


# Property: carrying out the effects, in order, on the old state gives the new state,
# and no prefix ever has two owners on the way (what the data plane's trie needs).

KEYS = [key(n) for n in range(1, 5)]
NETS = [net(t) for t in ("10.0.0.0/8", "10.1.0.0/16", "fd00::/8", "0.0.0.0/0")]
peer_ops = st.one_of(
    st.just(UpdateOnly()), st.just(RemovePeer()), st.just(ReplaceAllowedIPs()),
    st.sampled_from(NETS).map(AddAllowedIP), st.sampled_from(NETS).map(RemoveAllowedIP),
    st.integers(0, 2).map(SetPersistentKeepalive), st.just(SetEndpoint(EP)),
    st.sampled_from([None, PresharedKey(bytes(31) + b"\x01")]).map(SetPresharedKey))
changes = st.builds(
    Change,
    st.lists(st.one_of(st.just(ReplacePeers()), st.integers(0, 2).map(SetListenPort)),
             max_size=2).map(tuple),
    st.lists(st.builds(PeerChange, st.sampled_from(KEYS), st.lists(peer_ops, max_size=5)
                       .map(tuple)), max_size=4).map(tuple))


def _replay(old: DeviceConfig, effects: tuple[Effect, ...]) -> dict[PublicKey, PeerConfig]:
    """The effects carried out as the data plane does: each peer's list in order, an insert
    appending (a prefix the peer has moves to the end; another peer's prefix must have been
    taken from it first)."""
    live = {p.public_key: p for p in old.peers}
    lists = {p.public_key: list(p.allowed_ips) for p in old.peers}
    owner = {n: p.public_key for p in old.peers for n in p.allowed_ips}

    def give(k: PublicKey, nets: tuple[AllowedIP, ...]) -> None:
        for n in nets:
            assert owner.get(n, k) == k, "a prefix would have two owners"
            if n in owner:
                lists[k].remove(n)
            owner[n] = k
            lists[k].append(n)

    for e in effects:
        if isinstance(e, PeerRemoved):
            del live[e.public_key]
            for n in lists.pop(e.public_key):
                del owner[n]
        elif isinstance(e, PeerAdded):
            assert e.peer.public_key not in live
            live[e.peer.public_key] = e.peer
            lists[e.peer.public_key] = []
            give(e.peer.public_key, e.peer.allowed_ips)
        elif isinstance(e, AllowedIPsRemoved):
            for n in e.networks:
                assert owner.pop(n) == e.public_key
                lists[e.public_key].remove(n)
        elif isinstance(e, AllowedIPsAdded):
            give(e.public_key, e.networks)
    return {k: PeerConfig(k, allowed_ips=tuple(lists[k])) for k in live}


@settings(max_examples=300, deadline=None)
@given(changes, changes)
def test_effects_replay_to_the_new_state(first: Change, second: Change) -> None:
    old, _ = apply(DeviceConfig(), first)
    new, effects = apply(old, second)
    replayed = _replay(old, effects)
    assert replayed == {p.public_key: PeerConfig(p.public_key, allowed_ips=p.allowed_ips)
                        for p in new.peers}
    owners = [n for p in new.peers for n in p.allowed_ips]
    assert len(owners) == len(set(owners))


class _Table:
    """Allowed IPs kept apart from the PeerConfigs, as a device's data plane keeps them."""

    def __init__(self, state: DeviceConfig) -> None:
        self.lists = {p.public_key: tuple(p.allowed_ips) for p in state.peers}
        self.reads = 0

    def owner(self, network: AllowedIP) -> PublicKey | None:
        self.reads += 1
        return next((k for k, nets in self.lists.items() if network in nets), None)

    def of(self, key: PublicKey) -> Sequence[AllowedIP]:
        self.reads += 1
        return self.lists.get(key, ())

    def count(self) -> int:
        return sum(map(len, self.lists.values()))


def _without_allowed_ips(state: DeviceConfig) -> DeviceConfig:
    return dataclasses.replace(state, peers=tuple(dataclasses.replace(p, allowed_ips=())
                                                  for p in state.peers))


@settings(max_examples=300, deadline=None)
@given(changes, changes)
def test_a_table_of_allowed_ips_gives_the_same_transaction(first: Change,
                                                           second: Change) -> None:
    """Allowed IPs kept in a table (the data plane) rather than in the PeerConfigs: the same
    effects, refusals and new state, whose PeerConfigs carry no allowed IPs."""
    old, _ = apply(DeviceConfig(), first)
    table = _Table(old)
    try:
        new, effects = apply(old, second, max_allowed_ips=6)
    except ConfigError as e:
        with pytest.raises(ConfigError, match=e.message):
            apply(_without_allowed_ips(old), second, max_allowed_ips=6, table=table)
        return
    apart, apart_effects = apply(_without_allowed_ips(old), second, max_allowed_ips=6,
                                 table=table)
    assert apart_effects == effects
    assert apart.peers == _without_allowed_ips(new).peers
    assert apart.private_key == new.private_key and apart.listen_port == new.listen_port


def test_a_prefix_given_again_moves_to_the_end() -> None:
    """As the kernel and wireguard-go list it; the data plane is told to insert it again."""
    new, effects = apply(BASE, peers((A, (AddAllowedIP(net("10.1.0.0/16")),))))
    assert ips(new, A) == ["10.2.0.0/16", "10.1.0.0/16"]
    assert effects == (AllowedIPsAdded(A, (net("10.1.0.0/16"),)),)
    new, effects = apply(BASE, peers((A, (AddAllowedIP(net("10.2.0.0/16")),))))
    assert ips(new, A) == ["10.1.0.0/16", "10.2.0.0/16"]
    assert effects == ()


def test_replace_peers_reads_no_allowed_ip_of_a_table() -> None:
    """wg setconf of a gateway replaces every peer: the old ones' prefixes are never read."""
    table = _Table(BASE)
    apply(_without_allowed_ips(BASE), Change(device=(ReplacePeers(),), peers=(
        PeerChange(A, (AddAllowedIP(net("10.1.0.0/16")),)),)), table=table)
    assert table.reads == 0
