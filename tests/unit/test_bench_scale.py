"""The benchmark suite's gateway and scale figures, without root: the option that takes peer
counts, the key cache, the configuration files and the dump counting, the figures made
from iperf3's output and from what a daemon showed, the plan, and the report's tables and
plots (refusals included). Bad input is a ValueError or a HarnessError, never a crash."""

from __future__ import annotations

import base64
import ipaddress
import json
import signal
from pathlib import Path
from typing import Any

import nacl.bindings
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench import peerkeys, report, scale, traffic
from bench.figures import scale_refusal
from bench.gateway import gateway_figures
from bench.runner import Results, Runner, topology_specs
from bench.settings import MAX_SCALE_PEERS, SCALES, parse_peer_counts
from pywg._tools.conffile import parse_conf
from tests.harness import procs
from tests.harness.impls import Impl

# iperf3 3.12 -J `end` sections of two TCP streams (shortened from real runs).
STREAM_A = {"sum_sent": {"bytes": 500_000_000, "retransmits": 12},
            "sum_received": {"seconds": 5.0, "bytes": 400_000_000,
                             "bits_per_second": 640_000_000.0}}
STREAM_B = {"sum_sent": {"bytes": 300_000_000, "retransmits": 0},
            "sum_received": {"seconds": 5.0, "bytes": 100_000_000,
                             "bits_per_second": 160_000_000.0}}


# ---- --scale-peers ---------------------------------------------------------------------------

def test_peer_counts_with_suffixes():
    assert parse_peer_counts("10k,100k 250K") == (10_000, 100_000, 250_000)
    assert parse_peer_counts("1M, 1.5k,1500,7") == (7, 1_500, 1_000_000)
    assert parse_peer_counts(f"{MAX_SCALE_PEERS}") == (MAX_SCALE_PEERS,)


@pytest.mark.parametrize("text", ["", " , ", "0", "-5", "1.0001k", "2M", "ten", "10kk", "1e5",
                                  "1.5", "k", "10 k", "\u0661\u0660"])
def test_peer_counts_refused(text: str):
    with pytest.raises(ValueError):
        parse_peer_counts(text)


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_peer_counts_arbitrary(text: str):
    try:
        counts = parse_peer_counts(text)
    except ValueError:
        return
    assert counts == tuple(sorted(set(counts)))
    assert all(1 <= c <= MAX_SCALE_PEERS for c in counts)


def test_runs_override_caps_the_scale_runs():
    full = SCALES["full"]
    assert full.with_overrides(None, None).scale_runs == full.scale_runs
    assert full.with_overrides(1, None, (5,)).scale_runs == 1
    assert full.with_overrides(None, None, (5,)).scale_peers == (5,)


# ---- the key cache ---------------------------------------------------------------------------

def test_keys_are_cached_extended_and_foreign_files_replaced(tmp_path: Path):
    path = tmp_path / "cache" / "keys.bin"
    notes: list[str] = []
    first = peerkeys.public_keys(3, notes.append, path)
    assert len(first) == len(set(first)) == 3 and all(len(k) == 32 for k in first)
    assert notes and "making 3" in notes[0]
    # Enough cached: the same keys, nothing made.
    notes.clear()
    assert peerkeys.public_keys(2, notes.append, path) == first[:2] and not notes
    # More than cached: the cached ones first, then fresh ones, all kept.
    more = peerkeys.public_keys(5, None, path)
    assert more[:3] == first and len(set(more)) == 5
    assert peerkeys.parse_cache(path.read_bytes()) == more
    # A file that is not ours is made afresh.
    path.write_bytes(b"something else" + bytes(64))
    assert peerkeys.public_keys(2, None, path)[0] not in more


def test_generated_keys_are_public_keys_of_private_ones(monkeypatch: pytest.MonkeyPatch):
    # The private keys are thrown away: catch the random bytes they are made from, and
    # compare with an independent X25519 (RFC 7748's base point multiplication in pynacl's
    # crypto_scalarmult, not the _base variant the generator calls).
    drawn: list[bytes] = []
    real = peerkeys.os.urandom

    def urandom(n: int) -> bytes:
        drawn.append(real(n))
        return drawn[-1]

    monkeypatch.setattr(peerkeys.os, "urandom", urandom)
    keys = peerkeys.generate(4)
    base_point = bytes([9]) + bytes(31)
    assert keys == [nacl.bindings.crypto_scalarmult(k, base_point) for k in drawn]


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_cache_arbitrary_bytes(blob: bytes):
    keys = peerkeys.parse_cache(blob)
    assert all(len(k) == 32 for k in keys)
    assert peerkeys.parse_cache(peerkeys.HEADER + blob) == \
        [blob[i:i + 32] for i in range(0, len(blob) - 31, 32)]


# ---- configurations and dumps ----------------------------------------------------------------

def test_config_parses_as_wg_reads_it(tmp_path: Path):
    publics = peerkeys.generate(3) + [bytes(range(32))]
    # Peer indexes around the IPv6 group boundary (65535, 65536) as well as the first ones.
    text = "".join(scale.peer_lines(i, base64.b64encode(k).decode())
                   for i, k in zip((0, 1, 65534, 65535), publics, strict=True))
    path = scale.write_config(tmp_path / "c.conf", bytes(32), publics[:2])
    assert path.stat().st_mode & 0o777 == 0o600
    conf = parse_conf("[Interface]\nListenPort = 1\n" + text, quick=False)
    assert [p.public_key.raw for p in conf.peers] == publics
    net4 = ipaddress.ip_network("10.128.0.0/9")
    for i, peer in zip((0, 1, 65534, 65535), conf.peers, strict=True):
        nets = [str(ip) for ip, removed in peer.allowed_ips if not removed]
        assert nets == [f"{net4.network_address + i + 1}/32",
                        f"{ipaddress.ip_address('fd80::') + i + 1}/128"]
    written = parse_conf(path.read_text(), quick=False)
    assert written.listen_port == scale.LISTEN_PORT and len(written.peers) == 2


def test_dump_lines_counted(tmp_path: Path):
    path = tmp_path / "dump"
    path.write_bytes(b"priv\tpub\t1\toff\n" + b"peer\t(none)\n" * 3)
    assert scale.dump_peers(scale.count_lines(path)) == 3
    path.write_bytes(b"")
    assert scale.dump_peers(scale.count_lines(path)) == 0


def test_refusal_text():
    assert scale.refusal_text(-signal.SIGPIPE, "") == "killed by SIGPIPE"
    assert scale.refusal_text(1, "Unable to modify interface:\n Invalid argument\n") == \
        "exited 1: Unable to modify interface: Invalid argument"
    assert scale.refusal_text(-200, "x") == "killed by signal 200: x"


def test_measured_figures():
    m = scale.Measured(peers=1000, setconf_s=0.5, rss_idle_kib=1000, rss_kib=4000,
                       dump_s=0.1, dump_peers=1000, idle_cpu_s=0.05, idle_window_s=10.0,
                       rss_rest_kib=3900)
    out = m.figures()
    assert out["scale1000_setconf_us_per_peer"] == 500.0
    assert out["scale1000_rss_per_peer_kib"] == 3.0
    assert out["scale1000_dump_us_per_peer"] == 100.0
    assert out["scale1000_idle_cpu_pct"] == 0.5
    gone = scale.Measured(1000, 0.5, None, None, 0.1, 1000, 0.0, 10.0, None).figures()
    assert "scale1000_rss_kib" not in gone and "scale1000_rss_per_peer_kib" not in gone
    refused = scale.refused_figures(100_000, 6.0, 65_536)
    assert scale_refusal(refused, 100_000) == "refused after 6.00 s, kept 65,536"
    assert scale_refusal(out, 1000) == ""


# ---- the gateway's figures -------------------------------------------------------------------

def test_gateway_figures_from_streams():
    out = gateway_figures([STREAM_A, STREAM_B], system_s=5.0, gateway_s=1.0, clients_s=2.0,
                          prefix="gw8_up")
    assert out["gw8_up_gbps"] == 0.8
    assert out["gw8_up_stream_min_gbps"] == 0.16 and out["gw8_up_stream_max_gbps"] == 0.64
    assert out["gw8_up_retransmits"] == 12
    assert out["gw8_up_cpu_sys_s_per_gb"] == 10.0  # 5 s over 0.5 GB received
    assert out["gw8_up_cpu_gateway_s_per_gb"] == 2.0
    assert out["gw8_up_cpu_clients_s_per_gb"] == 4.0
    assert "gw8_up_ceiling_gbps" not in out  # the machine's cores not given
    # 2 cores over the 8 s/GB that were not the gateway's: 0.25 GB/s.
    two_cores = gateway_figures([STREAM_A, STREAM_B], 5.0, 1.0, 2.0, "gw8_up", cores=2)
    assert two_cores["gw8_up_ceiling_gbps"] == 2.0


@settings(max_examples=200, deadline=None)
@given(st.lists(st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
                             lambda kids: st.lists(kids) | st.dictionaries(st.text(), kids),
                             max_leaves=10), max_size=3))
def test_gateway_arbitrary_iperf_output(docs: list[object]):
    try:
        ends = [traffic.parse_iperf(json.dumps({"end": d})) for d in docs]
        gateway_figures(ends, 1.0, 1.0, 1.0, "gw")
    except procs.HarnessError:
        pass


# ---- the plan --------------------------------------------------------------------------------

IMPLS = [Impl("wggo", ("/usr/bin/wireguard-go",), frozenset()),
         Impl("x", ("/x",), frozenset())]


def test_plan_runs_the_scale_group_once_and_the_gateway_every_time(tmp_path: Path):
    s = SCALES["full"]
    runner = Runner(s, ("gateway", "scale"), IMPLS, tmp_path, Results(), IMPLS[0])
    runner.scale_bench.ns = "set-up"
    tasks = runner.plan()
    gateway = [t for t in tasks if t.section == "gateway"]
    assert len(gateway) == s.runs * len(IMPLS) * len(s.gateway_directions)
    scaled = [t for t in tasks if t.section == "scale"]
    assert len(scaled) == len(s.scale_peers) * len(IMPLS) and {t.rep for t in scaled} == {1}
    # Without clients, no gateway; without the namespace, no scale figures.
    bare = Runner(s, ("gateway", "scale"), IMPLS, tmp_path, Results())
    assert bare.plan() == [] and "gateway" in bare.results.notes[0]


def test_remarks_are_made_once():
    results = Results()
    results.remark("a")
    results.remark("a")
    assert results.notes == ["a"]


# ---- the report ------------------------------------------------------------------------------

def _document() -> dict[str, Any]:
    results = Results()
    impls = [*IMPLS, Impl("wggo-new", ("/new",), frozenset())]
    for name, tcp, gw, cpu in (("wggo", 1.0, 2.0, 4.0), ("x", 8.0, 4.0, 1.0),
                               ("wggo-new", 2.0, 2.0, 3.0)):
        results.add("data", f"{name}-{name}", {"tcp1_fwd_gbps": tcp})
        results.add("gateway", name, {"gw8_up_gbps": gw, "gw8_rss_kib": 2048.0,
                                      "gw8_up_cpu_gateway_s_per_gb": cpu,
                                      "gw8_up_ceiling_gbps": 3.0})
    results.add("scale", "wggo", {**scale.refused_figures(100_000, 6.0, 65_536),
                                  "scale10000_setconf_s": 0.5, "scale10000_idle_cpu_pct": 0.0})
    results.add("scale", "x", {"scale10000_setconf_s": 0.25, "scale100000_setconf_s": 3.0,
                               "scale100000_rss_per_peer_kib": 3.5})
    return report.build_document(
        results, impls, [(n, a.name if a else "", b.name if b else "")
                         for n, a, b in topology_specs(impls)],
        "tiny", SCALES["tiny"].with_overrides(None, None, (10_000, 100_000)),
        ("tcp", "gateway", "scale"), 0.0, 1.0, [], 0.5, gateway_clients=impls[2])


def test_markdown_gateway_and_scale_tables():
    doc = _document()
    text = report.render_markdown(doc)
    assert "every client **wggo-new**" in text
    # The data plane's columns are topologies; scale has no wggo-new column: not measured.
    assert "| figure | unit | better | wggo-wggo | x-x | wggo-new-wggo-new | x / wggo | " \
           "wggo-new / wggo | x / wggo-new |" in text
    assert "| figure | unit | better | wggo | x | wggo-new | x / wggo | wggo-new / wggo | " \
           "x / wggo-new |" in text
    assert "| figure | unit | better | wggo | x | x / wggo |" in text
    assert "| TCP aggregate, 8 clients → gateway | Gbit/s | higher | 2.00 | 4.00 | 2.00 | " \
           "2.00 | 1.00 | 2.00 |" in text
    # x's ceiling (3 Gbit/s) over wggo-new's aggregate (2) leaves room for 1.5x, not 4x.
    assert "- x / wggo-new, gateway aggregate: 2.00 clients → gateway; two peers 4.00: " \
           "below the two-peer margin. Out of reach here: the rest of the system left room " \
           "for at most 1.50 clients → gateway, even with a gateway that cost nothing. " \
           "Gateway daemon CPU per GB, wggo-new's over x's: 3.00 clients → gateway." in text
    assert "| ceiling the rest leaves, 8 clients → gateway | Gbit/s | higher | 3.00 |" in text
    assert "| wg setconf, 100,000 peers | s | lower | refused after 6.00 s, kept 65,536 | " \
           "3.00 | - |" in text
    assert "| RSS per peer above idle, 100,000 peers | KiB | lower | refused | 3.50 | - |" in text
    assert "idle CPU with every peer configured, 100,000" not in text  # nothing measured
    assert doc["ratios"]["gateway"]["x"]["gw8_up_gbps"] == 2.0
    assert doc["ratios_newest"]["scale"] == {"wggo": {}, "x": {}}


def test_scale_series_and_plots(tmp_path: Path):
    doc = _document()
    series = report.scale_series(doc["results"]["scale"]["wggo"], "setconf_s")
    assert series == ([10_000], [0.5], [100_000])
    report.write(doc, tmp_path)
    assert {"gateway.png", "scale.png"} <= set(doc["plots"])
    for name in doc["plots"]:
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"
    assert "![scale](scale.png)" in (tmp_path / "results.md").read_text()


def test_old_documents_without_the_new_sections_render(tmp_path: Path):
    doc = _document()
    for section in ("gateway", "scale"):
        del doc["results"][section]
    del doc["settings"]["scale_peers"], doc["gateway_clients"]
    text = report.render_markdown(doc)
    assert "## Gateway" not in text and "## Scale" not in text and "## Data plane" in text
