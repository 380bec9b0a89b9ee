"""The C allowed-IPs tries against the obviously-right reference (tests/support/allowedips.py).

Random prefixes of every length (/0 and host routes included), IPv4 and IPv6, inserts that
replace owners, removals (one prefix, or every prefix of a peer), in random sequences; then
lookups of addresses inside the prefixes, at their edges (first, last, one before, one
after) and of random ones. Every length on one path, across the trie's byte boundaries.
The same lookup answers "which peer gets this destination" on send and "may this peer use
this source" on receive.
"""

from __future__ import annotations

import errno
import ipaddress
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pywg._driver.datapath import DataPlane, Settings
from tests.support.allowedips import AllowedIPs

PEERS = 64
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@pytest.fixture
def dp():
    with DataPlane(Settings(max_peers=PEERS)) as plane:
        for peer in range(PEERS):
            plane.add_peer(peer)
        yield plane


def random_network(rng: random.Random, version: int) -> Network:
    bits = 32 if version == 4 else 128
    # Short prefixes are few by nature; bias towards the interesting lengths.
    cidr = rng.choice([rng.randint(0, bits), rng.randint(bits - 8, bits), rng.randint(8, 24)])
    cidr = min(cidr, bits)
    addr = ipaddress.ip_address(rng.getrandbits(bits).to_bytes(bits // 8, "big"))
    return ipaddress.ip_network(f"{addr}/{cidr}", strict=False)


def address_in(rng: random.Random, net: Network) -> Address:
    host_bits = net.max_prefixlen - net.prefixlen
    return net.network_address + rng.getrandbits(host_bits) if host_bits else net.network_address


def edges(net: Network) -> list[Address]:
    """The first and last address of net, and the ones just outside it."""
    out: list[Address] = [net.network_address, net.broadcast_address]
    if int(net.network_address) > 0:
        out.append(net.network_address - 1)
    if int(net.broadcast_address) < 2**net.max_prefixlen - 1:
        out.append(net.broadcast_address + 1)
    return out


def random_address(rng: random.Random) -> Address:
    version = rng.choice([4, 6])
    bits = 32 if version == 4 else 128
    return ipaddress.ip_address(rng.getrandbits(bits).to_bytes(bits // 8, "big"))


def check_listing(dp: DataPlane, ref: AllowedIPs[int], rng: random.Random,
                  nets: list[Network]) -> None:
    """Each peer's prefixes as `wg show` lists them, in the order given; the exact owner of
    prefixes seen; the count."""
    listed = dp.allowed_ips([*range(PEERS), PEERS + 1])  # an empty and a bad slot: none
    assert [[n.network for n in peer] for peer in listed] == [
        ref.listed(peer) for peer in range(PEERS)] + [[]]
    for net in rng.sample(nets, min(len(nets), 300)):
        assert dp.allowed_ip_owner(net) == ref.owner(net), net
    assert dp.allowed_ips_count() == len(ref)


def check_lookups(dp: DataPlane, ref: AllowedIPs[int], rng: random.Random, nets: list[Network],
                  count: int = 3000) -> None:
    for _ in range(count):
        pick = rng.random()
        if pick < 0.5:
            addrs = [address_in(rng, rng.choice(nets))]
        elif pick < 0.75:
            addrs = edges(rng.choice(nets))
        else:
            addrs = [random_address(rng)]
        for addr in addrs:
            assert dp.lookup(addr) == ref.lookup(addr), addr


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_against_reference(dp: DataPlane, seed: int) -> None:
    rng = random.Random(seed)
    ref: AllowedIPs[int] = AllowedIPs()
    nets: list[Network] = []
    owner: dict[Network, int] = {}
    for _ in range(10_000):
        net = random_network(rng, rng.choice([4, 6]))
        peer = rng.randrange(PEERS)
        dp.insert_allowed_ip(peer, net)
        ref.insert(net, peer)
        nets.append(net)
        owner[net] = peer
    check_lookups(dp, ref, rng, nets)

    # Remove a third of the prefixes one by one, each by its owner.
    for net in rng.sample(sorted(owner, key=str), len(owner) // 3):
        dp.remove_allowed_ip(owner.pop(net), net)
    ref = AllowedIPs()
    for net, peer in owner.items():
        ref.insert(net, peer)
    check_lookups(dp, ref, rng, nets)

    # Then every prefix of a few peers.
    gone = set(rng.sample(range(PEERS), 8))
    for peer in gone:
        dp.remove_allowed_ips(peer)
    ref = AllowedIPs()
    for net, peer in owner.items():
        if peer not in gone:
            ref.insert(net, peer)
    check_lookups(dp, ref, rng, nets)


def nested_network(rng: random.Random, bases: dict[int, list[int]]) -> Network:
    """A prefix near one of a few base addresses, so that prefixes nest and collide; every
    length is possible, with /0, host routes and the byte boundaries (8k - 1, 8k, 8k + 1)
    weighted up."""
    version = rng.choice([4, 6])
    bits = 32 if version == 4 else 128
    pick = rng.random()
    if pick < 0.03:
        cidr = 0
    elif pick < 0.2:
        cidr = bits
    elif pick < 0.5:
        cidr = min(bits, max(0, rng.randrange(8, bits + 1, 8) + rng.choice((-1, 0, 1))))
    else:
        cidr = rng.randint(0, bits)
    # Keep a random number of the base's leading bits, randomise the rest.
    keep = rng.randint(0, bits)
    noise = rng.getrandbits(bits) & ((1 << (bits - keep)) - 1)
    value = rng.choice(bases[version]) ^ noise
    return ipaddress.ip_network((value, cidr), strict=False)


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_random_operations_against_reference(dp: DataPlane, seed: int) -> None:
    """Inserts, owner changes, removals by the owner and by others, and whole peers removed,
    interleaved in random order, both families at once; lookups checked along the way."""
    rng = random.Random(seed)
    bases = {v: [rng.getrandbits(32 if v == 4 else 128) for _ in range(6)] for v in (4, 6)}
    ref: AllowedIPs[int] = AllowedIPs()
    owner: dict[Network, int] = {}
    nets: list[Network] = []
    for _ in range(4):
        for _ in range(3000):
            pick = rng.random()
            if pick < 0.55 or not nets:
                net, peer = nested_network(rng, bases), rng.randrange(PEERS)
                nets.append(net)
            elif pick < 0.7:  # a new owner for a prefix seen before
                net, peer = rng.choice(nets), rng.randrange(PEERS)
            else:
                net, peer = rng.choice(nets), -1
            if peer >= 0:
                dp.insert_allowed_ip(peer, net)
                ref.insert(net, peer)
                owner[net] = peer
            elif pick < 0.96 and net in owner:
                other = (owner[net] + rng.randrange(1, PEERS)) % PEERS
                with pytest.raises(FileNotFoundError):
                    dp.remove_allowed_ip(other, net)
                dp.remove_allowed_ip(owner.pop(net), net)
                ref.remove(net)
            elif pick < 0.96:
                with pytest.raises(FileNotFoundError):
                    dp.remove_allowed_ip(rng.randrange(PEERS), net)
            elif pick < 0.97:
                gone = rng.randrange(PEERS)
                dp.remove_allowed_ips(gone)
                for n in [n for n, p in owner.items() if p == gone]:
                    del owner[n]
                    ref.remove(n)
        check_lookups(dp, ref, rng, nets, 2000)
        check_listing(dp, ref, rng, nets)
    for peer in range(PEERS):
        dp.remove_allowed_ips(peer)
    assert all(dp.lookup(a) is None for net in nets[:500] for a in edges(net))


@pytest.mark.parametrize("version", [4, 6])
def test_every_length_on_one_path(dp: DataPlane, version: int) -> None:
    """Every prefix length on one address and each one's sibling (same length, last bit
    flipped), inserted and removed in random order; after each step every address that
    leaves the path at any bit is looked up, and so is the path itself."""
    rng = random.Random(version)
    bits = 32 if version == 4 else 128
    for _ in range(2):
        path = rng.getrandbits(bits)
        nets = [ipaddress.ip_network((path, cidr), strict=False) for cidr in range(bits + 1)]
        nets += [ipaddress.ip_network((path ^ (1 << (bits - cidr)), cidr), strict=False)
                 for cidr in range(1, bits + 1)]
        probes = [ipaddress.ip_address(path.to_bytes(bits // 8, "big"))]
        probes += [ipaddress.ip_address((path ^ (1 << k)).to_bytes(bits // 8, "big"))
                   for k in range(bits)]
        ref: AllowedIPs[int] = AllowedIPs()
        order = rng.sample(range(len(nets)), len(nets))
        for step, i in enumerate(order):
            dp.insert_allowed_ip(i % PEERS, nets[i])
            ref.insert(nets[i], i % PEERS)
            if step % 5 == 0 or step == len(order) - 1:
                assert [dp.lookup(a) for a in probes] == [ref.lookup(a) for a in probes]
        for step, i in enumerate(rng.sample(order, len(order))):
            dp.remove_allowed_ip(i % PEERS, nets[i])
            ref.remove(nets[i])
            if step % 5 == 0:
                assert [dp.lookup(a) for a in probes] == [ref.lookup(a) for a in probes]
        assert all(dp.lookup(a) is None for a in probes)


@pytest.mark.parametrize("version", [4, 6])
def test_dense_host_routes(dp: DataPlane, version: int) -> None:
    """A gateway's block of 256 host routes under shorter prefixes, removed in random order
    (a dense node keeps removed entries dead in place until half of it is dead, then is
    rebuilt), with some coming back under other owners."""
    rng = random.Random(version)
    block = ipaddress.ip_network("10.7.7.0/24" if version == 4 else "fd00:7::700/120")
    hosts = list(block.subnets(new_prefix=block.max_prefixlen))
    above = [block.supernet(8), block, next(block.subnets(1))]
    ref: AllowedIPs[int] = AllowedIPs()
    owner: dict[Network, int] = {}

    def insert(net: Network, peer: int) -> None:
        dp.insert_allowed_ip(peer, net)
        ref.insert(net, peer)
        owner[net] = peer

    for i, net in enumerate(above + hosts):
        insert(net, i % PEERS)
    probes = [a for net in hosts for a in edges(net)]
    removed: list[Network] = []
    for step, net in enumerate(rng.sample(hosts, len(hosts))):
        dp.remove_allowed_ip(owner.pop(net), net)
        ref.remove(net)
        removed.append(net)
        if step % 5 == 4:
            back = removed.pop(rng.randrange(len(removed)))
            insert(back, rng.randrange(PEERS))
        if step % 16 == 0:
            assert [dp.lookup(a) for a in probes] == [ref.lookup(a) for a in probes]
    assert [dp.lookup(a) for a in probes] == [ref.lookup(a) for a in probes]
    for peer in set(owner.values()):
        dp.remove_allowed_ips(peer)
    assert all(dp.lookup(a) is None for a in probes)


def test_insert_clears_host_bits_and_replaces_owner(dp: DataPlane) -> None:
    dp.insert_allowed_ip(1, ipaddress.ip_network("10.1.2.3/16", strict=False))
    assert dp.lookup(ipaddress.ip_address("10.1.200.200")) == 1
    dp.insert_allowed_ip(2, ipaddress.ip_network("10.1.0.0/16"))
    assert dp.lookup(ipaddress.ip_address("10.1.200.200")) == 2
    # Peer 1 no longer owns it, so it cannot remove it.
    with pytest.raises(FileNotFoundError):
        dp.remove_allowed_ip(1, ipaddress.ip_network("10.1.0.0/16"))
    dp.remove_allowed_ip(2, ipaddress.ip_network("10.1.0.0/16"))
    assert dp.lookup(ipaddress.ip_address("10.1.200.200")) is None


def test_default_routes_and_families_are_separate(dp: DataPlane) -> None:
    dp.insert_allowed_ip(3, ipaddress.ip_network("0.0.0.0/0"))
    dp.insert_allowed_ip(4, ipaddress.ip_network("::/0"))
    dp.insert_allowed_ip(5, ipaddress.ip_network("::ffff:0:0/96"))
    assert dp.lookup(ipaddress.ip_address("192.0.2.1")) == 3
    assert dp.lookup(ipaddress.ip_address("2001:db8::1")) == 4
    # A v4-mapped IPv6 address is IPv6 here, as in the kernel's tries.
    assert dp.lookup(ipaddress.ip_address("::ffff:192.0.2.1")) == 5


def test_errors(dp: DataPlane) -> None:
    with pytest.raises(OSError):
        dp.insert_allowed_ip(PEERS, ipaddress.ip_network("10.0.0.0/8"))
    with pytest.raises(FileNotFoundError):
        dp.remove_allowed_ip(0, ipaddress.ip_network("10.0.0.0/8"))
    dp.remove_peer(7)
    with pytest.raises(FileNotFoundError):
        dp.insert_allowed_ip(7, ipaddress.ip_network("10.0.0.0/8"))


def test_remove_peer_takes_its_prefixes(dp: DataPlane) -> None:
    dp.insert_allowed_ip(9, ipaddress.ip_network("10.9.0.0/16"))
    dp.insert_allowed_ip(9, ipaddress.ip_network("fd09::/64"))
    dp.insert_allowed_ip(8, ipaddress.ip_network("10.0.0.0/8"))
    dp.remove_peer(9)
    assert dp.lookup(ipaddress.ip_address("10.9.1.1")) == 8
    assert dp.lookup(ipaddress.ip_address("fd09::1")) is None


ops = st.lists(
    st.tuples(
        st.sampled_from(["insert", "remove", "remove_peer"]),
        st.integers(0, 3),  # peer
        st.integers(0, 2**32 - 1),
        st.integers(0, 32),
    ),
    max_size=60,
)


@settings(max_examples=60, deadline=None)
@given(ops=ops, probes=st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=20))
def test_small_tries_with_hypothesis(ops, probes) -> None:
    """Dense small tries over few peers stress splicing and compaction."""
    with DataPlane(Settings(max_peers=4)) as dp:
        for peer in range(4):
            dp.add_peer(peer)
        owner: dict[Network, int] = {}
        for op, peer, value, cidr in ops:
            # Few distinct high bits so prefixes nest and collide.
            net = ipaddress.ip_network(f"{ipaddress.IPv4Address(value & 0xF0F00000)}/{cidr}",
                                       strict=False)
            if op == "insert":
                dp.insert_allowed_ip(peer, net)
                owner[net] = peer
            elif op == "remove":
                if owner.get(net) == peer:
                    dp.remove_allowed_ip(peer, net)
                    del owner[net]
                else:
                    with pytest.raises(FileNotFoundError):
                        dp.remove_allowed_ip(peer, net)
            else:
                dp.remove_allowed_ips(peer)
                owner = {n: p for n, p in owner.items() if p != peer}
        ref: AllowedIPs[int] = AllowedIPs()
        for net, peer in owner.items():
            ref.insert(net, peer)
        addrs = [ipaddress.IPv4Address(v & 0xF0F0FFFF) for v in probes]
        for addr in addrs + [n.network_address for n in owner]:
            assert dp.lookup(addr) == ref.lookup(addr)


ops6 = st.lists(
    st.tuples(
        st.sampled_from(["insert", "remove", "remove_peer"]),
        st.integers(0, 3),  # peer
        st.integers(0, 2**128 - 1),
        st.integers(0, 128),
    ),
    max_size=60,
)
# Few distinct bits, at and around byte boundaries, so that IPv6 prefixes nest and collide.
MASK6 = sum(1 << (128 - b) for b in (1, 8, 9, 16, 17, 63, 64, 65, 120, 121, 127, 128))


@settings(max_examples=60, deadline=None)
@given(ops=ops6, probes=st.lists(st.integers(0, 2**128 - 1), min_size=1, max_size=20))
def test_small_ipv6_tries_with_hypothesis(ops, probes) -> None:
    with DataPlane(Settings(max_peers=4)) as dp:
        for peer in range(4):
            dp.add_peer(peer)
        owner: dict[Network, int] = {}
        for op, peer, value, cidr in ops:
            net = ipaddress.ip_network((value & MASK6, cidr), strict=False)
            if op == "insert":
                dp.insert_allowed_ip(peer, net)
                owner[net] = peer
            elif op == "remove":
                if owner.get(net) == peer:
                    dp.remove_allowed_ip(peer, net)
                    del owner[net]
                else:
                    with pytest.raises(FileNotFoundError):
                        dp.remove_allowed_ip(peer, net)
            else:
                dp.remove_allowed_ips(peer)
                owner = {n: p for n, p in owner.items() if p != peer}
        ref: AllowedIPs[int] = AllowedIPs()
        for net, peer in owner.items():
            ref.insert(net, peer)
        addrs = [ipaddress.IPv6Address(v & (MASK6 | 0xFFFF)) for v in probes]
        for addr in addrs + [a for n in owner for a in edges(n)]:
            assert dp.lookup(addr) == ref.lookup(addr)


def test_bench_hook_arguments() -> None:
    """The micro-benchmark hook `make bench` uses: bad arguments refused, good ones timed."""
    from _wgdp_test import ffi, lib

    elapsed = ffi.new("uint64_t *")
    assert lib.wg_allowedips_bench(5, 10, 10, 1, elapsed) == -errno.EINVAL
    assert lib.wg_allowedips_bench(4, 10, 0, 1, elapsed) == -errno.EINVAL
    assert lib.wg_allowedips_bench(4, 10, 10, 1, ffi.NULL) == -errno.EINVAL
    for family in (4, 6):
        assert lib.wg_allowedips_bench(family, 1000, 10000, 3, elapsed) == 0
        assert elapsed[0] > 0


def test_listing_keeps_the_order_given(dp: DataPlane) -> None:
    """A prefix given again, by its owner, moves to the end of the owner's list; given to
    another peer, to the end of that one's; removed and given again, to the end."""
    a, b, c, d = (ipaddress.ip_network(t) for t in ("10.0.0.0/8", "fd00::/64", "10.1.0.0/16",
                                                     "192.0.2.1/32"))
    for net in (a, b, c, d):
        dp.insert_allowed_ip(0, net)
    dp.insert_allowed_ip(0, a)
    assert [n.network for n in dp.allowed_ips([0])[0]] == [b, c, d, a]
    dp.insert_allowed_ip(1, c)
    dp.insert_allowed_ip(0, c)
    dp.remove_allowed_ip(0, b)
    dp.insert_allowed_ip(0, b)
    assert [[n.network for n in p] for p in dp.allowed_ips([0, 1])] == [[d, a, c, b], []]
    assert dp.allowed_ip_owner(ipaddress.ip_network("10.1.0.0/17")) is None
    assert dp.allowed_ip_owner(ipaddress.ip_network("fd00::/64")) == 0
    assert dp.allowed_ips_count() == 4
    dp.remove_allowed_ips(0)
    assert dp.allowed_ips([0, 1]) == [[], []] and dp.allowed_ips_count() == 0


def test_listing_many_peers_at_once_grows_its_buffer(dp: DataPlane) -> None:
    """More prefixes than the first guess of room (two a peer): listed whole."""
    for i in range(40):
        dp.insert_allowed_ip(3, ipaddress.ip_network(f"10.3.{i}.0/24"))
    listed = dp.allowed_ips([2, 3, 2])
    assert listed[0] == listed[2] == []
    assert [str(n) for n in listed[1]] == [f"10.3.{i}.0/24" for i in range(40)]
