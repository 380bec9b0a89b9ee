"""The metrics' text, against prometheus_client's own writer and parser.

pywg writes its per-peer families itself (speed: pywg._driver.metrics' module doc); these
tests hold it to what prometheus_client.generate_latest writes for the same families, byte
for byte, label values that need escaping included, and read it back with
prometheus_client's parser.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.utils import floatToGoString

from pywg._config.model import DeviceConfig, Endpoint, PeerConfig, PrivateKey, PublicKey
from pywg._config.names import Names, parse_names
from pywg._config.uapi import PeerStats
from pywg._driver import metrics
from pywg._driver.counters import HandshakeCounters
from pywg._driver.datapath import Stats
from pywg._driver.device import PeerCounters
from pywg._driver.offload import ALL
from tests.support.nets import net

NS = 1_000_000_000


def _stats(**values: int) -> Stats:
    fields = {name: 0 for name in Stats.__dataclass_fields__}
    fields.update(values)
    return Stats(**fields)


def _counters(peers: list[tuple[PeerConfig, PeerStats]]) -> PeerCounters:
    """What Device.read_peers would read of these peers: the data plane's forms (16-byte
    addresses) of where each is and of its allowed IPs."""
    counters = PeerCounters()
    for row, (config, stats) in enumerate(peers):
        endpoint = stats.endpoint or config.endpoint
        counters.configs.append(config)
        counters.transfers.append(
            (endpoint.ip.version, endpoint.ip.packed.ljust(16, b"\0"), endpoint.port,
             stats.rx_bytes, stats.tx_bytes) if endpoint else
            (0, bytes(16), 0, stats.rx_bytes, stats.tx_bytes))
        counters.handshakes_ns.append(stats.last_handshake_time_ns)
        counters.allowed_ips[row] = [(net.address.ljust(16, b"\0"), net.family, net.cidr)
                                     for net in config.allowed_ips]
    return counters


def _reading(peers: list[tuple[PeerConfig, PeerStats]], *, drops: dict[str, int] | None = None,
             **stats: int) -> metrics.Reading:
    config = DeviceConfig(PrivateKey(os.urandom(32)), 51820, 0, tuple(p for p, _ in peers))
    return metrics.Reading(
        device="wg0", wall_ns=1_700_000_100 * NS, config=config, peers=_counters(peers),
        stats=_stats(**{"handshake_under_load": 1, **stats}),
        handshakes=HandshakeCounters(initiations_sent=3, completed=2),
        handshake_drops=drops or {}, aead="avx2", offloads=ALL, crypto_threads=2)


class _Names:
    def __init__(self, names: Names) -> None:
        self._names = names

    def names(self) -> Names:
        return self._names


def _peer(n: int, endpoint: str | None = "192.0.2.1:51820") -> PeerConfig:
    import ipaddress
    ep = None
    if endpoint:
        host, _, port = endpoint.rpartition(":")
        ep = Endpoint(ipaddress.ip_address(host.strip("[]")), int(port))
    return PeerConfig(PublicKey(bytes([n]) * 32), None, ep, 0,
                      (net(f"10.0.{n}.0/24"),
                       net(f"fd00:{n:x}::/64")))


ODD_NAMES = ['alice', 'quote " and backslash \\ here', "ünïcödé ☃", "new\nline"]


def _families(names: dict[bytes, str], per_peer: bool = True) -> list[object]:
    peers = [(_peer(i + 1), PeerStats(None, (1_700_000_000 + i) * NS, 10**i * 7, 3 * i))
             for i in range(len(ODD_NAMES))]
    peers.append((_peer(9, None), PeerStats()))
    reading = _reading(peers, drops={"BAD_MAC1": 4}, udp_rx_packets=123, drop_decrypt=5)
    collector = metrics.DeviceCollector(lambda: reading, per_peer=per_peer,
                                        names=_Names(Names("", names)))  # type: ignore[arg-type]
    return collector.families(reading)


def test_encoding_is_what_generate_latest_writes():
    names = {bytes([i + 1]) * 32: name for i, name in enumerate(ODD_NAMES)}
    families = _families(names)
    ours = metrics.encode(families)
    theirs = generate_latest(metrics._Families(families))
    assert ours == theirs
    # And a second scrape, from the label blocks kept since the first, too.
    assert metrics.encode(families) == theirs


def test_parsed_back_by_prometheus_client():
    names = {bytes([1]) * 32: "alice", bytes([2]) * 32: 'quote " and backslash \\ here'}
    text = metrics.encode(_families(names)).decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    rx = {s.labels["public_key"]: s for s in families["wireguard_peer_receive_bytes"].samples}
    alice = PublicKey(bytes([1]) * 32).base64()
    assert rx[alice].value == 7 and rx[alice].labels["name"] == "alice"
    assert rx[alice].labels["device"] == "wg0"
    quoted = PublicKey(bytes([2]) * 32).base64()
    assert rx[quoted].labels["name"] == 'quote " and backslash \\ here'
    assert rx[quoted].value == 70
    handshakes = {s.labels["public_key"]: s.value
                  for s in families["wireguard_peer_last_handshake_seconds"].samples}
    assert handshakes[alice] == 1_700_000_000
    assert handshakes[PublicKey(bytes([9]) * 32).base64()] == 0  # never
    info = {s.labels["public_key"]: s.labels for s in families["wireguard_peer_info"].samples}
    assert info[alice]["endpoint"] == "192.0.2.1:51820"
    assert info[alice]["allowed_ips"] == "10.0.1.0/24,fd00:1::/64"
    assert info[PublicKey(bytes([9]) * 32).base64()]["endpoint"] == ""
    assert families["wireguard_peers"].samples[0].value == 5
    ages = {s.labels.get("le"): s.value for s in
            families["wireguard_peer_handshake_age_seconds"].samples if s.name.endswith(
                "_bucket")}
    # Handshakes 100, 99, 98 and 97 s before the reading; one peer never.
    assert ages["60.0"] == 0 and ages["120.0"] == 4 and ages["+Inf"] == 4
    drops = {s.labels["reason"]: s.value for s in families["pywg_dropped_packets"].samples}
    assert drops["decrypt"] == 5 and drops["replay"] == 0
    failed = {s.labels["reason"]: s.value for s in families["pywg_handshakes_failed"].samples}
    assert failed == {"bad_mac1": 4, "attempts_exhausted": 0}
    assert families["pywg_under_load"].samples[0].value == 1
    assert families["pywg_aead_info"].samples[0].labels["backend"] == "avx2"


def test_per_peer_series_can_be_left_out():
    text = metrics.encode(_families({}, per_peer=False)).decode()
    names = {f.name for f in text_string_to_metric_families(text)}
    assert "wireguard_peers" in names and "wireguard_peer_handshake_age_seconds" in names
    assert not names & {"wireguard_peer_info", "wireguard_peer_receive_bytes",
                        "wireguard_peer_transmit_bytes",
                        "wireguard_peer_last_handshake_seconds"}


@given(st.integers(min_value=0, max_value=(1 << 64) - 1))
def test_numbers_as_prometheus_client_writes_them(value):
    assert metrics._go_number(value) == floatToGoString(value)


@pytest.mark.parametrize(("text", "expected"), [
    ("9586", ("127.0.0.1", 9586)),
    (":9586", ("127.0.0.1", 9586)),
    ("0.0.0.0:9586", ("0.0.0.0", 9586)),
    ("[::1]:9586", ("::1", 9586)),
])
def test_listen_addresses(text, expected):
    assert metrics.parse_listen(text) == expected


@pytest.mark.parametrize("text", ["", "0", "65536", "host:9586", "::1:9586", "1.2.3.4:",
                                  "1.2.3.4:http", "[::1]"])
def test_bad_listen_addresses_are_refused(text):
    with pytest.raises(ValueError):
        metrics.parse_listen(text)


def test_names_from_comments():
    a, b = PublicKey(b"\x01" * 32).base64(), PublicKey(b"\x02" * 32).base64()
    names = parse_names(f"""
[Interface]
# Name = Head office gateway
PrivateKey = {PublicKey(b"x" * 32).base64()}

[Peer]
# friendly_name = fallback
# Name = Branch\tLyon
PublicKey = {a}

[peer]
PublicKey = {b}  # trailing comment
# Description = laptop

[Peer]
# Name = no key here
""")
    assert names.interface == "Head office gateway"
    assert names.peers == {b"\x01" * 32: "Branch Lyon", b"\x02" * 32: "laptop"}


@given(st.text(max_size=300))
def test_names_parser_never_fails(text):
    names = parse_names(text)
    assert all(len(n) <= 64 and "\n" not in n for n in names.peers.values())
