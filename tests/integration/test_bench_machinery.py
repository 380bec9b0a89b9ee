"""The benchmark suite's machinery, end to end at a tiny scale, so that `make bench` cannot rot.

One run of `python -m bench --scale tiny` (8 MB per iperf3 run, a few pings, a handshake
load of a few dozen initiations, 100-peer configurations, a gateway of 8 clients sending 8 MB
each, the scale group at 100 peers) into a temporary directory, then
checks on what it wrote: the JSON's structure, the markdown tables, the PNG plots, and that
its namespaces and daemons are gone. The numbers themselves are not checked (no timing
assertions), except where a real peer's behaviour is the truth: wireguard-go must answer the
load generator's initiations with responses it authenticated for the right peers, and list
every peer of the scale configuration in its dump.

Next to the baseline (Debian's wireguard-go) there is always one more implementation, for
the cross topologies and ratio columns: pywg when its daemon runs, else wireguard-go a second
time under another name, added through WG_IMPLS as a user would add any compatible daemon.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.harness import impls
from tests.harness.skips import require_root, require_tools

REPO = Path(__file__).resolve().parents[2]
RUN_TIMEOUT_S = 240
ALIAS = "wggo2"
Run = tuple[Path, dict[str, Any], str, str]  # output dir, results.json, stderr, other impl
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TRAFFIC_KEYS = ("tcp1_fwd_gbps", "tcp1_rev_gbps", "tcp4_fwd_gbps", "tcp4_rev_gbps",
                "udp1372_gbps", "udp1372_loss_pct", "udp64_kpps", "ping_idle_p50_ms",
                "ping_idle_p99_ms", "ping_load_p50_ms", "ping_load_p99_ms",
                "tcp1_fwd_cpu_sys_s_per_gb")
TUNNEL_KEYS = ("tcp1_fwd_cpu_daemons_s_per_gb", "rss_idle_a_kib", "rss_idle_b_kib",
               "rss_load_a_kib", "rss_load_b_kib")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    require_root()
    require_tools("wireguard-go", "wg", "iperf3", "ping")
    found, _ = impls.available("")
    other = "pywg" if any(i.name == "pywg" for i in found) else ALIAS
    out = tmp_path_factory.mktemp("bench") / "run"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--scale", "tiny", "--out", str(out),
         "--impls", f"wggo,{other}"],
        cwd=REPO, capture_output=True, text=True, timeout=RUN_TIMEOUT_S,
        env={**os.environ, "WG_IMPLS": f"{ALIAS}={shutil.which('wireguard-go')}"})
    assert done.returncode == 0, done.stderr[-2000:]
    doc = json.loads((out / "results.json").read_text())
    return out, doc, done.stderr, other


def test_json_describes_machine_and_implementations(run: Run):
    _, doc, _, other = run
    machine = doc["machine"]
    assert machine["cores"] == os.cpu_count()
    assert machine["kernel"] == os.uname().release
    assert machine["iperf3"].startswith("iperf 3")
    found = {i["name"]: i for i in doc["implementations"]}
    assert found["wggo"]["version"].startswith("wireguard-go")
    assert sorted(found) == sorted(["wggo", other])
    assert doc["settings"]["scale"] == "tiny" and doc["settings"]["runs"] == 1


def test_every_topology_measured_or_explained(run: Run):
    _, doc, _, other = run
    names = [t["name"] for t in doc["topologies"]]
    assert names == ["veth", "wggo-wggo", f"{other}-{other}", f"{other}-wggo", f"wggo-{other}"]
    for name in names:
        # pywg's own failures (a daemon that exits, say) are its tests' business: here it is
        # enough that the suite explains them and goes on.
        assert name in doc["results"]["data"] or name in doc["errors"], name
    measured = names if other == ALIAS else names[:2]
    for name in measured:
        figures = doc["results"]["data"][name]
        for key in TRAFFIC_KEYS + (TUNNEL_KEYS if name != "veth" else ()):
            assert len(figures[key]["runs"]) == 1, (name, key)
            assert figures[key]["min"] <= figures[key]["median"] <= figures[key]["max"]


def test_syscall_paths_counted_for_tunnels(run: Run):
    _, doc, _, _ = run
    if doc["machine"]["perf"] == "not found":
        pytest.skip("perf is not installed: the syscall figures are skipped by design")
    figures = doc["results"]["data"]["wggo-wggo"]
    for path in ("tun_read", "udp_send", "udp_recv", "tun_write"):
        assert figures[f"sys_{path}_calls"]["median"] > 0
        assert figures[f"sys_{path}_pkts_per_call"]["median"] > 0


@pytest.mark.parametrize("which", ["wggo", "other"])
def test_responders_answer_the_load_generator(run: Run, which: str):
    _, doc, _, other = run
    impl = other if which == "other" else which
    if impl not in doc["results"]["control"] and impl == "pywg":
        pytest.skip(f"pywg failed, and the suite said so: {doc['errors'].get('pywg')}")
    control = doc["results"]["control"][impl]
    # Handshakes completed, and every reply was a response whose mac1 proves it was made
    # for the initiator that sent it (or a cookie reply that decrypts with its mac1).
    assert control["hs_per_s"]["median"] > 0
    assert control["hs_bad_replies"]["median"] == 0
    # Whether a tiny flood overwhelms the responder depends on timing: only its presence.
    for key in ("flood_cookies_per_s", "flood_sent_per_s", "config100_apply_s",
                "config100_rss_kib", "rss_fresh_kib", "hs_rss_kib"):
        assert key in control, key


@pytest.mark.parametrize("which", ["wggo", "other"])
def test_gateway_and_scale_measured_or_explained(run: Run, which: str):
    _, doc, _, other = run
    impl = other if which == "other" else which
    # Without the newest wireguard-go (this run's WG_IMPLS has only the alias), Debian's
    # is every gateway's clients.
    assert doc["gateway_clients"]["name"] == "wggo"
    if impl == "pywg" and (f"gateway {impl}" in doc["errors"] or
                           f"scale {impl}" in doc["errors"]):
        pytest.skip(f"pywg failed, and the suite said so: {doc['errors']}")
    gateway = doc["results"]["gateway"][impl]
    for key in ("gw8_up_gbps", "gw8_up_stream_min_gbps", "gw8_up_cpu_sys_s_per_gb",
                "gw8_up_cpu_gateway_s_per_gb", "gw8_rss_kib"):
        assert len(gateway[key]["runs"]) == 1, key
    scale = doc["results"]["scale"][impl]
    for key in ("scale100_setconf_s", "scale100_rss_kib", "scale100_rss_per_peer_kib",
                "scale100_dump_s", "scale100_idle_cpu_pct", "scale100_ka_addconf_s",
                "scale100_ka_initiations_per_s", "scale100_ka_cpu_pct",
                "scale100_ka_set_max_ms"):
        assert len(scale[key]["runs"]) == 1, key
    assert scale["scale100_dump_peers"]["median"] == 100
    # A persistent keepalive turned on with no session starts a handshake: every peer of
    # the storm sent an initiation to its endpoint, as nftables counted them leaving.
    assert scale["scale100_ka_initiations_total"]["median"] >= 100


def test_micro_reports_hooks_or_their_absence(run: Run):
    _, doc, _, _ = run
    micro = doc["results"]["micro"].get("pywg._wgdp", {})
    notes = [n for n in doc["notes"] if n.startswith("micro:")]
    assert micro or notes


def test_markdown_has_tables_and_ratio_columns(run: Run):
    out, doc, _, other = run
    text = (out / "results.md").read_text()
    assert "## Data plane" in text and "## Control plane" in text
    assert "## Gateway" in text and "## Scale" in text
    assert "| wg setconf, 100 peers | s | lower |" in text
    assert "| figure | unit | better | veth | wggo-wggo |" in text
    assert "| TCP 1 stream A→B | Gbit/s | higher |" in text
    for impl in doc["implementations"]:
        if impl["name"] != "wggo":
            assert f"{impl['name']} / wggo" in text
    if other == ALIAS:
        assert doc["ratios"]["data"][other]["tcp1_fwd_gbps"] > 0
        assert doc["ratios"]["control"][other]["hs_per_s"] > 0


def test_plots_are_pngs(run: Run):
    out, doc, _, _ = run
    assert sorted(doc["plots"]) == ["cpu_per_gb.png", "gateway.png", "scale.png",
                                    "throughput.png"]
    for name in doc["plots"]:
        assert (out / name).read_bytes()[:8] == PNG_MAGIC


def test_progress_and_cleanup(run: Run):
    _, doc, stderr, _ = run
    assert "ETA" in stderr and "[  1/" in stderr
    left = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True,
                          timeout=10).stdout
    for name in doc["netns"]:
        assert name not in left
    sockets = os.listdir("/var/run/wireguard") if os.path.isdir("/var/run/wireguard") else []
    tags = {name.split("-")[1] for name in doc["netns"]}
    assert not [s for s in sockets if any(s.endswith(f"{t}.sock") for t in tags)]
