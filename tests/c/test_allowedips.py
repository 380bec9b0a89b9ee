"""The C allowed-IPs tries against the obviously-right reference (tests/support/allowedips.py).

Random prefixes of every length, IPv4 and IPv6, inserts that replace owners, removals (one
prefix, or every prefix of a peer), then lookups of addresses inside the inserted prefixes
and of random ones. The same lookup answers "which peer gets this destination" on send and
"may this peer use this source" on receive.
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


def address_in(rng: random.Random, net: Network) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    host_bits = net.max_prefixlen - net.prefixlen
    return net.network_address + rng.getrandbits(host_bits) if host_bits else net.network_address


def check_lookups(dp: DataPlane, ref: AllowedIPs[int], rng: random.Random, nets: list[Network]):
    for _ in range(3000):
        if rng.random() < 0.7:
            addr = address_in(rng, rng.choice(nets))
        else:
            version = rng.choice([4, 6])
            bits = 32 if version == 4 else 128
            addr = ipaddress.ip_address(rng.getrandbits(bits).to_bytes(bits // 8, "big"))
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
