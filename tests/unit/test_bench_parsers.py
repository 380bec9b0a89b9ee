"""The benchmark suite's parsers of tool output (iperf3, ping, perf, /proc) and of its own
inputs (WG_IMPLS), on real samples and on arbitrary input: bad input is a HarnessError (or is
skipped), never a crash. Also the load generator's reply checking and the micro-benchmark
hook detection. No root, no network."""

from __future__ import annotations

import errno
import hashlib
import json
import shutil
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nacl.bindings import crypto_aead_xchacha20poly1305_ietf_encrypt

from bench import figures as figures_mod
from bench import history, hsload, memory, micro, report, syscalls, sysstat, traffic
from bench.initiation import Initiator, Responder, cookie_receiver, response_receiver
from bench.runner import Results, topology_specs
from bench.settings import SCALES
from pywg._protocol import crypto
from tests.harness import impls, procs
from tests.harness.impls import Impl

# From real runs: iperf3 3.12 -J through Debian's wireguard-go (the `end` sections).
UDP_END = {"sum_sent": {"seconds": 2.000791, "bytes": 94410240, "packets": 1475160,
                        "lost_packets": 0},
           "sum_received": {"seconds": 2.209202, "bytes": 11785024, "packets": 1471556,
                            "lost_packets": 1287415, "bits_per_second": 42676130.11}}
TCP_END = {"sum_sent": {"seconds": 2.000939, "bytes": 254672896, "retransmits": 40232,
                        "bits_per_second": 1018213532.7},
           "sum_received": {"seconds": 2.000101, "bytes": 249307056,
                            "bits_per_second": 997177866.5}}
PING = """PING 10.202.0.2 (10.202.0.2) 56(84) bytes of data.
64 bytes from 10.202.0.2: icmp_seq=1 ttl=64 time=0.305 ms
64 bytes from 10.202.0.2: icmp_seq=2 ttl=64 time=0.298 ms
64 bytes from 10.202.0.2: icmp_seq=4 ttl=64 time=1.229 ms

--- 10.202.0.2 ping statistics ---
4 packets transmitted, 3 received, 25% packet loss, time 31ms
rtt min/avg/max/mdev = 0.229/0.277/0.305/0.034 ms
"""
# /proc/net/dev and /proc/net/snmp samples, with runs of spaces shortened.
NET_DEV = """Inter-| Receive | Transmit
 face |bytes packets errs drop fifo frame compressed multicast|bytes packets errs drop fifo ...
 lo: 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0
 vx1: 144802 107 0 0 0 0 0 0 145052 110 0 0 0 0 0 0
 bad: 1 2 3 4 5 6 7 8 nine 10 0 0 0 0 0 0
garbage line
"""
SNMP = """Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors
Udp: 57 0 25477 58 25477 0 0
"""
PERF = """# started on Wed Nov 25 10:19:00 2026

wireguard-go-101,14654,,syscalls:sys_enter_read,282960532,100.00,,
wireguard-go-102,100,,syscalls:sys_enter_read,282960532,100.00,,
wireguard-go-102,3349,,syscalls:sys_enter_recvmsg,282960532,100.00,,
wireguard-go-999,5,,syscalls:sys_enter_read,282960532,100.00,,
wireguard-go-201,<not counted>,,syscalls:sys_enter_write,0,100.00,,
wireguard-go-201,12333,,syscalls:sys_enter_write,282960532,100.00,,
"""


class NoPids(traffic.CpuWindow):
    def __init__(self) -> None:
        super().__init__([], system_s=2.0)


def test_iperf_tcp_sample():
    out = traffic.tcp_figures(traffic.parse_iperf(json.dumps({"end": TCP_END})), NoPids(),
                              "tcp1_fwd")
    assert out["tcp1_fwd_gbps"] == TCP_END["sum_received"]["bits_per_second"] / 1e9
    assert out["tcp1_fwd_retransmits"] == 40232
    assert out["tcp1_fwd_cpu_sys_s_per_gb"] == 2.0 / (249307056 / 1e9)
    assert "tcp1_fwd_cpu_daemons_s_per_gb" not in out  # no daemons on the bare veth


def test_iperf_udp_sample():
    out = traffic.udp_figures(UDP_END, NoPids(), 64, "udp64")
    delivered = 11785024 // 64
    assert out["udp64_kpps"] == delivered / 2.209202 / 1e3
    assert out["udp64_loss_pct"] == 100.0 * (1 - delivered / 1475160)


@pytest.mark.parametrize("text", ["", "not json", "[]", '{"error": "unable to connect"}',
                                  '{"start": {}}', '{"end": 3}'])
def test_iperf_bad_output(text: str):
    with pytest.raises(procs.HarnessError):
        traffic.parse_iperf(text)


@pytest.mark.parametrize("end", [{}, {"sum_received": {"bytes": "many"}},
                                 {"sum_received": {"bytes": 1, "seconds": 0.0}},
                                 {"sum_received": {"bits_per_second": True, "bytes": 1}}])
def test_iperf_bad_sections(end: dict[str, Any]):
    with pytest.raises(procs.HarnessError):
        traffic.tcp_figures(end, NoPids(), "tcp1_fwd")
    with pytest.raises(procs.HarnessError):
        traffic.udp_figures(end, NoPids(), 64, "udp64")


@settings(max_examples=200, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
                    lambda kids: st.lists(kids) | st.dictionaries(st.text(), kids),
                    max_leaves=20))
def test_iperf_arbitrary_json(doc: object):
    try:
        end = traffic.parse_iperf(json.dumps({"end": doc}))
        traffic.tcp_figures(end, NoPids(), "t")
        traffic.udp_figures(end, NoPids(), 64, "u")
    except procs.HarnessError:
        pass


def test_ping_sample_and_percentiles():
    assert traffic.parse_ping(PING) == [0.305, 0.298, 1.229]
    values = [float(v) for v in range(1, 101)]
    assert traffic.percentile(values, 50) == 50.0
    assert traffic.percentile(values, 99) == 99.0
    assert traffic.percentile([7.0], 99) == 7.0


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_ping_arbitrary(text: str):
    assert all(v >= 0 for v in traffic.parse_ping(text))


def test_unicode_digits_are_not_counts():
    assert syscalls.parse_perf("x-²,5,,syscalls:sys_enter_read\nx-1,³,,syscalls:sys_enter_read",
                               {1: 1}) == {}
    assert sysstat.parse_net_dev("a\nb\n e: ¹ 0 0 0 0 0 0 0 0 0\n") == {}


def test_net_dev_and_snmp_samples():
    devs = sysstat.parse_net_dev(NET_DEV)
    assert devs["vx1"] == sysstat.IfCounters(144802, 107, 145052, 110)
    assert set(devs) == {"lo", "vx1"}
    assert sysstat.udp_in_errors(SNMP) == 25477
    assert sysstat.udp_in_errors("Udp: InDatagrams\nUdp: 1\n") == 0


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_proc_parsers_arbitrary(text: str):
    sysstat.parse_net_dev(text)
    assert sysstat.udp_in_errors(text) >= 0


def test_perf_sample_maps_threads_to_processes():
    counts = syscalls.parse_perf(PERF, {101: 1, 102: 1, 201: 2})
    assert counts == {1: {"read": 14754, "recvmsg": 3349}, 2: {"write": 12333}}


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_perf_arbitrary(text: str):
    syscalls.parse_perf(text, {1: 1})


def test_syscall_figures_correct_for_receive_drops():
    dev = sysstat.IfCounters
    before = {1: syscalls.Snapshot({"wga": dev(0, 0, 0, 0), "va": dev(0, 0, 0, 0)}, 0),
              2: syscalls.Snapshot({"wgb": dev(0, 0, 0, 0), "vb": dev(0, 0, 0, 0)}, 0)}
    frame = syscalls.VETH_FRAME
    after = {1: syscalls.Snapshot({"wga": dev(0, 0, 1420 * 100, 100),
                                   "va": dev(0, 0, frame * 100, 100)}, 0),
             2: syscalls.Snapshot({"wgb": dev(1420 * 80, 80, 0, 0),
                                   "vb": dev(frame * 100, 100, 0, 0)}, 20)}
    counts = {1: {"read": 100, "sendmmsg": 4}, 2: {"recvmsg": 80, "writev": 10}}
    out = syscalls.figures_from(syscalls.Window(counts, before, after), 1, 2, "wga", "wgb",
                                "va", "vb")
    assert out["sys_tun_read_pkts_per_call"] == 1.0
    assert out["sys_udp_send_pkts_per_call"] == 25.0
    assert out["sys_udp_recv_pkts_per_call"] == 1.0  # 20 of 100 were dropped before recv
    assert out["sys_tun_write_pkts_per_call"] == 8.0


def test_wg_impls_parsing():
    pairs, errors = impls.parse_wg_impls(
        "new=/opt/wg-go  bad  =/x wggo=/y new=/z white space=/q x!=/w,n=/a, m=/b,")
    assert pairs == [("new", "/opt/wg-go"), ("space", "/q"), ("n", "/a"), ("m", "/b")]
    assert len(errors) == 6


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_wg_impls_arbitrary(text: str):
    pairs, errors = impls.parse_wg_impls(text)
    assert len(pairs) + len(errors) == len(text.replace(",", " ").split())


def test_an_implementation_needs_only_an_executable(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch):
    script = tmp_path / "fails"
    script.write_text("#!/bin/sh\nexit 3\n")
    script.chmod(0o755)
    monkeypatch.setenv("WG_IMPLS", f"gone={tmp_path / 'missing'},fails={script}")
    why = impls.get("gone")
    assert isinstance(why, str) and "not an executable" in why
    assert "not known" in str(impls.get("other"))
    found = impls.get("fails")
    assert isinstance(found, Impl) and found.argv == (str(script),)
    assert impls.version(found) == "unknown"


# ---- the handshake load generator's checks of what comes back -------------------------------

def _pool(peers: int = 2) -> tuple[hsload.Pool, bytes]:
    responder_private = crypto.generate_private_key()
    responder_public = crypto.public_key(responder_private)
    responder = Responder(responder_public)
    pool = hsload.Pool(responder, [Initiator(bytes(crypto.generate_private_key()), responder)
                                   for _ in range(peers)], base_index=0xFFFFFFF0)
    pool.build(4, 1_700_000_000 * 10**9)
    return pool, responder_public


def test_cookie_reply_for_our_initiation_counts():
    pool, responder_public = _pool()
    j = 3  # an index past the 32-bit wrap of the sender indexes
    index = (pool.base_index + j) & 0xFFFFFFFF
    # A cookie reply as a responder makes one (whitepaper 5.4.7), sealed to this
    # initiation's mac1.
    cookie_key = hashlib.blake2s(b"cookie--" + responder_public).digest()
    nonce = bytes(range(24))
    mac1 = pool.packets[j][-32:-16]
    sealed = crypto_aead_xchacha20poly1305_ietf_encrypt(bytes(16), mac1, nonce, cookie_key)
    reply = struct.pack("<II", 3, index) + nonce + sealed
    counts = hsload.Counts()
    assert hsload.classify(reply, pool, counts) == j
    assert counts.cookies == 1 and counts.bad == 0
    # The same reply claiming another initiation does not decrypt: counted as bad.
    other = reply[:4] + struct.pack("<I", pool.base_index) + reply[8:]
    assert hsload.classify(other, pool, counts) is None and counts.bad == 1


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_replies_are_counted_bad(packet: bytes):
    pool, _ = _POOL
    counts = hsload.Counts()
    hsload.classify(packet, pool, counts)
    assert counts.completed + counts.cookies + counts.bad == 1
    response_receiver(packet)
    cookie_receiver(packet)


_POOL = _pool()


# ---- micro-benchmark hooks ------------------------------------------------------------------

def test_hooks_absent_or_present_with_reasons():
    hooks = micro.find_hooks()
    assert set(hooks.present) | set(hooks.missing) == set(micro.HOOKS)


# A stand-in for _wgdp_test with the hooks' exact signatures and trivial C loops: it checks
# that the suite finds hooks by signature, skips unusable backends and calibrates its loops.
HOOK_DECLS = """
int wg_aead_register_sodium(void *encrypt, void *decrypt);
int wg_aead_init(void);
int wg_aead_backends(const char **names, size_t max);
int wg_aead_status(const char *name);
const char *wg_aead_name(void);
int wg_aead_bench(const char *backend, int open, size_t len, uint64_t iterations,
                  uint64_t *elapsed_ns);
int wg_allowedips_bench(int family, size_t prefixes, uint64_t lookups, uint64_t seed,
                        uint64_t *elapsed_ns);
int wg_allowedips_bench_build(int family, size_t prefixes, uint64_t seed, uint64_t *elapsed_ns,
                              uint64_t *heap_bytes);
"""
HOOK_SOURCE = r"""
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
static uint64_t now(void) {
    struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}
static bool sodium;
int wg_aead_register_sodium(void *e, void *d) { sodium = e && d; return 0; }
int wg_aead_init(void) { return 0; }
int wg_aead_backends(const char **names, size_t max) {
    static const char *all[] = {"fast", "sodium", "missing"};
    size_t n = max < 3 ? max : 3;
    for (size_t i = 0; i < n; i++) names[i] = all[i];
    return (int)n;
}
int wg_aead_status(const char *name) {
    if (!strcmp(name, "fast")) return 0;
    if (!strcmp(name, "sodium")) return sodium ? 0 : -ENOTSUP;
    return -ENOTSUP;
}
const char *wg_aead_name(void) { return "fast"; }
int wg_aead_bench(const char *b, int open, size_t len, uint64_t n, uint64_t *ns) {
    volatile uint64_t x = 0; uint64_t t = now();
    if (wg_aead_status(b)) return -ENOTSUP;
    for (uint64_t i = 0; i < n * len / 64; i++) x += i + (uint64_t)open;
    *ns = now() - t; return 0;
}
int wg_allowedips_bench(int f, size_t p, uint64_t n, uint64_t s, uint64_t *ns) {
    volatile uint64_t x = 0; uint64_t t = now();
    if (f != 4) return -EAFNOSUPPORT;
    for (uint64_t i = 0; i < n; i++) x += i ^ p ^ s;
    *ns = now() - t; return 0;
}
int wg_allowedips_bench_build(int f, size_t p, uint64_t s, uint64_t *ns, uint64_t *heap) {
    if (f != 4) return -EAFNOSUPPORT;
    *ns = 3 * p; *heap = p == 10 ? 0 : 50 * p; return 0;
}
"""


def test_hooks_used_when_signatures_match(tmp_path: Path):
    if shutil.which("cc") is None and shutil.which("gcc") is None:
        pytest.skip("needs a C compiler")
    build = (f"from cffi import FFI\nffi = FFI()\nffi.cdef({HOOK_DECLS!r})\n"
             f"ffi.set_source('fakehooks', {HOOK_SOURCE!r})\n"
             f"ffi.compile(tmpdir={str(tmp_path)!r})\n")
    subprocess.run([sys.executable, "-c", build], check=True, capture_output=True, timeout=120)
    sys.path.insert(0, str(tmp_path))
    try:
        import fakehooks  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(tmp_path))
    hooks = micro.find_hooks(fakehooks)
    assert hooks.present == set(micro.HOOKS)
    figures, notes = micro.aead(hooks, 0.002)
    assert sorted(figures) == sorted(f"aead_{b}_{op}{size}_{unit}" for b in ("fast", "sodium")
                                     for op in ("seal", "open") for size in micro.AEAD_SIZES
                                     for unit in ("ns", "gbps"))
    assert all(v > 0 for v in figures.values())
    assert notes == [f"aead missing: not measured (status {-errno.ENOTSUP})",
                     "aead: the data plane selects fast"]
    figures, notes = micro.allowedips(hooks, (10, 20), 0.002)
    # Where the heap cannot be measured (0), no bytes figure.
    assert sorted(figures) == ["allowedips_v4_10_insert_ns", "allowedips_v4_10_mlps",
                               "allowedips_v4_20_bytes", "allowedips_v4_20_insert_ns",
                               "allowedips_v4_20_mlps"]
    assert figures["allowedips_v4_20_insert_ns"] == 3 and figures["allowedips_v4_20_bytes"] == 50
    assert len(notes) == 2 and all("v6" in n for n in notes)
    rows = figures_mod.allowedips_rows(figures)
    assert [(f, n, i, b) for f, n, _, i, b in rows] == [("v4", 10, 3, None), ("v4", 20, 3, 50)]


# ---- reports and the recorded history -------------------------------------------------------

def _document(tcp_gbps: float) -> dict[str, Any]:
    results = Results()
    results.add("data", "veth", {"tcp1_fwd_gbps": 10.0, "udp64_kpps": 5.0})
    results.add("data", "wggo-wggo", {"tcp1_fwd_gbps": tcp_gbps})
    results.add("data", "x-x", {"tcp1_fwd_gbps": 2 * tcp_gbps})
    results.add("control", "wggo", {"hs_per_s": 100.0})
    results.add("control", "x", {"hs_per_s": 50.0})
    chosen = [Impl("wggo", ("/usr/bin/wireguard-go",), frozenset()),
              Impl("x", ("/x",), frozenset())]
    return report.build_document(
        results, chosen, [(n, a.name if a else "", b.name if b else "")
                          for n, a, b in topology_specs(chosen)],
        "tiny", SCALES["tiny"], ("tcp", "handshake"), 0.0, 1.0, [], 0.5)


def test_markdown_ratios_and_missing_cells():
    text = report.render_markdown(_document(1.0))
    # Topologies with no results (x-wggo, wggo-x) get no column; missing values are "-".
    assert "| figure | unit | better | veth | wggo-wggo | x-x | x / wggo |" in text
    assert "| TCP 1 stream A→B | Gbit/s | higher | 10.0 | 1.00 | 2.00 | 2.00 |" in text
    assert "| UDP 64 B delivered | kpps | higher | 5.00 | - | - | - |" in text
    assert "| handshakes completed | 1/s | higher | 100 | 50.0 | 0.5 |" in text
    assert "Micro" not in text  # not among the groups run


def test_history_is_newest_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(history, "RESULTS_MD", tmp_path / "RESULTS.md")
    monkeypatch.setattr(history, "HISTORY", tmp_path / "history")
    for stamp, gbps in (("20260101-000000", 1.0), ("20260102-000000", 3.0)):
        run = tmp_path / "results" / stamp
        report.write(_document(gbps), run)
        history.record(run)
        # Only the JSON is kept; what is drawn from it is drawn again, the same.
        assert sorted(p.name for p in (tmp_path / "history" / stamp).iterdir()) == \
            ["results.json"]
        again = tmp_path / "again" / stamp
        assert report.main([str(tmp_path / "history" / stamp / "results.json"),
                            "--out", str(again)]) == 0
        assert (again / "results.md").read_text() == (run / "results.md").read_text()
        assert (again / "throughput.png").exists()
    text = (tmp_path / "RESULTS.md").read_text()
    assert text.index(history.MARKER) < text.index("3.00") < text.index("| 1.00 |")
    assert ".png" not in text
    assert "[history/20260102-000000/results.json](history/20260102-000000/results.json)" in text


def _memory_run(rss_a: list[int]) -> memory.Run:
    run = memory.Run("pywg", 10)
    for n, kib in enumerate(rss_a):
        run.samples.append(memory.Sample(20.0 * (n + 1), [kib, 40_000], 10.0 * n))
    return run


def test_memory_report_judges_the_second_half() -> None:
    # Pools warming early, then flat: nothing over the second half.
    flat = memory.report(_memory_run([40_000, 41_024, 45_120] + [46_080] * 9))
    assert "(+0.0 MiB over the second half)" in flat.split("Side A:")[1].split("\n")[0]
    # Still climbing at the end: the growth shows.
    leak = memory.report(_memory_run([40_000 + 1024 * n for n in range(12)]))
    assert "(+5.0 MiB over the second half)" in leak.split("Side A:")[1].split("\n")[0]
