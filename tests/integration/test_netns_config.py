"""The kernel's netns.sh on configuration, against pywg through the real `wg` tool:

- replies that span many reads: one peer with 130,560 allowed IPs (a /16 and a /128 for
  each of 255 x 256 values), and 40 peers with 52 allowed IPs each. `wg show allowed-ips`
  counts them all; `wg showconf` gives them all back, and the file it writes, applied with
  `wg syncconf`, changes nothing (for 130,560 allowed IPs a long test: pywg takes seconds
  to replace them all); an edited file (a peer removed, prefixes removed and
  added) leaves exactly the edited set.
- the seven low-order Curve25519 points as peer keys, each with a persistent keepalive and
  an endpoint: the shared secret with such a key is zero, so no handshake may ever be
  made with them and no packet may leave. A peer with an ordinary key, configured the same
  way, does send one: the listener would have seen it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.harness import daemons, files, links, netns, wg
from tests.harness.daemons import Daemon
from tests.harness.impls import PYWG
from tests.harness.probes import recv_within, udp_listener
from tests.harness.skips import require_impls, require_root, require_tools
from tests.harness.wg import KeyPair

LOW_ORDER = [
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
    "AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
    "4Ot6fDtBuK4WVuP68Z/EatoJjeucMrH9hmIFFl9JuAA=",
    "X5yVvKNQjCSx0LFVnIPvWwREXMRYHI6G2CJO3dCfEVc=",
    "7P///////////////////////////////////////38=",
    "7f///////////////////////////////////////38=",
    "7v///////////////////////////////////////38=",
]
LISTEN_PORT = 1111
QUIET_S = 2.5
MANY_PEERS, PER_PEER = 40, 52


@pytest.fixture
def dev() -> Iterator[Daemon]:
    require_root()
    require_tools("wg")
    require_impls("pywg")
    with files.workdir("conf") as work, netns.namespace("cf") as ns, \
            daemons.running(PYWG, ns, netns.unique("wgK"), work) as d:
        yield d


def _showconf(d: Daemon) -> dict[str, set[str]]:
    """Each peer's allowed IPs as `wg showconf` writes them."""
    peers: dict[str, set[str]] = {}
    current: set[str] = set()
    for line in d.wg("showconf", d.ifname, quiet=True).stdout.splitlines():
        key, _, value = (x.strip() for x in line.partition("="))
        if key == "PublicKey":
            current = peers.setdefault(value, set())
        elif key == "AllowedIPs":
            current.update(p.strip() for p in value.split(","))
    return peers


def _file(private: str, peers: dict[str, list[str]]) -> str:
    lines = ["[Interface]", f"PrivateKey = {private}"]
    for public, allowed in peers.items():
        lines += ["[Peer]", f"PublicKey = {public}"]
        lines += [f"AllowedIPs = {p}" for p in allowed]
    return "\n".join(lines) + "\n"


def _syncconf_of_showconf(d: Daemon) -> None:
    wg.setconf(d.link_ns, d.ifname, d.wg("showconf", d.ifname, quiet=True).stdout, "syncconf")


def _one_peer_with_130560(dev: Daemon) -> dict[str, set[str]]:
    peer = KeyPair.generate().public
    # Written as wg writes them back (inet_ntop's forms), so sets of strings compare.
    allowed = [p for a in range(1, 256) for b in range(256)
               for p in (f"{a}.{b}.0.0/16", f"{a}::{b}/128" if b else f"{a}::/128")]
    wg.setconf(dev.link_ns, dev.ifname, _file(dev.keys.private, {peer: allowed}))
    return {peer: set(allowed)}


def test_one_peer_with_130560_allowed_ips(dev: Daemon) -> None:
    want = _one_peer_with_130560(dev)
    shown = dev.wg("show", dev.ifname, "allowed-ips", quiet=True).stdout.split()
    assert len(shown) == 255 * 256 * 2 + 1
    assert _showconf(dev) == want


@pytest.mark.long
def test_one_peer_with_130560_allowed_ips_through_syncconf(dev: Daemon) -> None:
    want = _one_peer_with_130560(dev)
    _syncconf_of_showconf(dev)
    assert _showconf(dev) == want, "syncconf of showconf changed something"


def test_forty_peers_with_52_allowed_ips_each(dev: Daemon) -> None:
    peers = {KeyPair.generate().public: [f"{a}.{b}.0.0/16" for b in range(1, PER_PEER + 1)]
             for a in range(1, MANY_PEERS + 1)}
    wg.setconf(dev.link_ns, dev.ifname, _file(dev.keys.private, peers))
    lines = dev.wg("show", dev.ifname, "allowed-ips").stdout.splitlines()
    assert len(lines) == MANY_PEERS
    assert all(len(line.split()) == PER_PEER + 1 for line in lines)
    want = {k: set(v) for k, v in peers.items()}
    assert _showconf(dev) == want
    before = dev.dump()
    _syncconf_of_showconf(dev)
    assert dev.dump() == before, "syncconf of showconf changed something"
    # An edited file: the first peer gone, the second with half its prefixes and new ones.
    _first, second, *rest = peers
    edited = {second: peers[second][::2] + [f"2.{b}.1.0/24" for b in range(100)],
              **{k: peers[k] for k in rest}}
    wg.setconf(dev.link_ns, dev.ifname, _file(dev.keys.private, edited), "syncconf")
    assert _showconf(dev) == {k: set(v) for k, v in edited.items()}


def test_low_order_public_keys_make_no_handshake(dev: Daemon) -> None:
    ns = dev.link_ns
    dev.set_private_key()
    netns.run(ns, ["ip", "link", "set", "dev", dev.ifname, "down"])
    for key in LOW_ORDER:
        dev.wg("set", dev.ifname, "peer", key, "persistent-keepalive", "1",
               "endpoint", f"127.0.0.1:{LISTEN_PORT}")
    assert sorted(dev.wg("show", dev.ifname, "peers").stdout.split()) == sorted(LOW_ORDER)
    with udp_listener(ns, "127.0.0.1", LISTEN_PORT) as sock:
        links.configure(ns, dev.ifname)
        assert recv_within(sock, QUIET_S) is None, "a packet left for a low-order key"
        ordinary = KeyPair.generate().public
        dev.wg("set", dev.ifname, "peer", ordinary, "persistent-keepalive", "1",
               "endpoint", f"127.0.0.1:{LISTEN_PORT}")
        sent = recv_within(sock, QUIET_S)
        assert sent is not None and sent[0] == 1, "no initiation for an ordinary key"
