"""The kernel's netns.sh on keys and cryptokey routing, with pywg as the subject (side a) and
pywg or Debian's wireguard-go as its peer (side b).

- The cryptokey source filter: a gives b the whole tunnel subnet; b's datagrams arrive. A
  second peer gets b's own address (a more specific allowed IP): b's datagrams, still
  authenticated as b's, now come from an address that belongs to another peer and are
  dropped; yet they were b's, so a's endpoint for b follows them (b moved its port).
- A new private key, and at once a handshake: a's sessions made with the old key are gone
  the moment the key changes, so its next packet starts a handshake with the new one
  instead of going out under a key b no longer knows.
- Preshared-key and allowed-IP edits while a TCP transfer flows, with rekeys every few
  seconds (PYWG_TIMING_SCALE): the transfer arrives intact and the handshakes after the
  edit complete with the new preshared key.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.harness import files, topology, wait, wg
from tests.harness.impls import Impl
from tests.harness.probes import ping, ping_once, recv_within, udp_listener, udp_send
from tests.harness.skips import require_impls, require_root, require_tools
from tests.harness.topology import Topology
from tests.harness.transfer import transfer
from tests.harness.wg import KeyPair

MB = 1 << 20
UDP_PORT = 1111
MOVED_PORT = 40097
EDITS = 10
# Every protocol time over 40: a rekey every 3 s, REKEY_TIMEOUT 125 ms.
FAST = {"PYWG_TIMING_SCALE": "0.025"}


@pytest.fixture(scope="module", params=[
    pytest.param(("pywg", "pywg"), id="pywg-pywg"),
    pytest.param(("pywg", "wggo"), id="pywg-wggo", marks=pytest.mark.long)])
def tunnel(request: pytest.FixtureRequest) -> Iterator[Topology]:
    require_root()
    require_tools("wg", "ping")
    a, b = require_impls(*request.param)
    with files.workdir("ckr") as work, topology.tunnel((a, b), "ckr", work) as t:
        yield t


def test_a_more_specific_allowed_ip_on_another_peer_drops_the_first_peers_packets(
        tunnel: Topology) -> None:
    a, b = tunnel.sides()
    tunnel.configure()
    try:
        a.daemon.wg("set", a.ifname, "peer", b.daemon.keys.public, "allowed-ips",
                    "10.72.0.0/24")
        with udp_listener(a.ns, a.inner4, UDP_PORT) as sock:
            udp_send(b.ns, a.inner4, UDP_PORT, b"X")
            assert recv_within(sock, 3) == b"X"
            other = KeyPair.generate().public
            a.daemon.wg("set", a.ifname, "peer", other, "allowed-ips", f"{b.inner4}/32")
            b.daemon.wg("set", b.ifname, "listen-port", str(MOVED_PORT))
            received = a.daemon.dump().peers[b.daemon.keys.public].rx
            udp_send(b.ns, a.inner4, UDP_PORT, b"Y")
            # Authenticated and counted as b's, but not delivered.
            wait.wait_for(lambda: a.daemon.dump().peers[b.daemon.keys.public].rx > received,
                          "a to receive b's datagram", timeout=5)
            assert recv_within(sock, 1) is None, "a packet from another peer's address"
            a.daemon.wg("set", a.ifname, "peer", other, "remove")
        seen = a.daemon.dump().peers[b.daemon.keys.public].endpoint
        assert seen == f"{b.outer4}:{MOVED_PORT}", "the endpoint follows b's packets"
    finally:
        b.daemon.wg("set", b.ifname, "listen-port", str(b.port))


def test_new_private_key_then_a_handshake_at_once(tunnel: Topology) -> None:
    a, b = tunnel.sides()
    psk = wg.genpsk()
    tunnel.configure(psk=psk)
    assert ping_once(a.ns, b.inner4)
    old = a.daemon.keys
    new = KeyPair.generate()
    try:
        wg.set_private_key(a.ns, a.ifname, new)
        b.daemon.wg("set", b.ifname, "peer", new.public, "preshared-key", "/dev/stdin",
                    "allowed-ips", f"{a.inner4}/32", "peer", old.public, "remove",
                    input=psk + "\n")
        assert ping_once(a.ns, b.inner4), "no handshake with the new key at once"
    finally:
        wg.set_private_key(a.ns, a.ifname, old)
        b.daemon.wg("set", b.ifname, "peer", new.public, "remove")


def _handshake_after(t: Topology, since: float) -> bool:
    a, b = t.sides()
    return a.daemon.dump().peers[b.daemon.keys.public].latest_handshake > since


@pytest.fixture
def fast_tunnel() -> Iterator[Topology]:
    """pywg on both sides, every protocol time over 40."""
    require_root()
    require_tools("wg", "ping")
    impls: list[Impl] = require_impls("pywg", "pywg")
    with files.workdir("ckf") as work, \
            topology.tunnel((impls[0], impls[1]), "ckf", work, env=FAST) as t:
        yield t


def test_preshared_key_and_allowed_ip_edits_while_traffic_flows(fast_tunnel: Topology) -> None:
    a, b = fast_tunnel.sides()
    fast_tunnel.configure(psk=wg.genpsk())
    ping(a.ns, b.inner4)
    with transfer(a.ns, b.ns, b.inner4, 30 * MB, seconds=6.0) as t:
        wait.wait_for(lambda: b.daemon.dump().peers[a.daemon.keys.public].rx > 2 * MB,
                      "the transfer to get going", timeout=20)
        for i in range(EDITS):
            # b's own addresses stay; others come and go on both sides, on every edit.
            extra = f"10.200.{i}.0/24,fd00:200:{i:x}::/64"
            for me, other in ((a, b), (b, a)):
                me.daemon.wg("set", me.ifname, "peer", other.daemon.keys.public, "allowed-ips",
                             f"{other.inner4}/32,{other.inner6}/128,{extra}")
        psk = wg.genpsk()
        changed = time.time()
        for me, other in ((a, b), (b, a)):
            me.daemon.wg("set", me.ifname, "peer", other.daemon.keys.public, "preshared-key",
                         "/dev/stdin", input=psk + "\n")
        assert t.running(), "the edits must happen while the transfer is under way"
        sent, received = t.finish(timeout=60)
    assert received == sent, "bytes were lost or changed across the edits"
    # latest-handshake has whole seconds: a handshake after the next one is surely newer.
    # Pings keep traffic going, which is what rekeys (and REJECT_AFTER_TIME forces one).
    wait.wait_for(lambda: ping_once(a.ns, b.inner4, wait_s=1) and
                  _handshake_after(fast_tunnel, changed + 1),
                  "a handshake with the new preshared key", timeout=15)
    for me, other in ((a, b), (b, a)):
        allowed = me.daemon.dump().peers[other.daemon.keys.public].allowed_ips
        assert set(allowed.split(",")) == {f"{other.inner4}/32", f"{other.inner6}/128",
                                           f"10.200.{EDITS - 1}.0/24",
                                           f"fd00:200:{EDITS - 1:x}::/64"}
