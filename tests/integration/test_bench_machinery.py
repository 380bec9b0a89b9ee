"""The benchmark suite's machinery, end to end at a tiny scale, so that `make bench` cannot rot.

One run of `python -m bench --scale tiny` (8 MB per iperf3 run, a few pings, a handshake
load of a few dozen initiations, 100-peer configurations) into a temporary directory, then
checks on what it wrote: the JSON's structure, the markdown tables, the PNG plots, and that
its namespaces and daemons are gone. The numbers themselves are not checked (no timing
assertions), except where a real peer's behaviour is the truth: wireguard-go must answer the
load generator's initiations with responses it authenticated for the right peers.

Debian's wireguard-go is also added a second time under another name through WG_IMPLS, as a
user would add any compatible daemon: that exercises the topologies and ratio columns every
non-baseline implementation (pywg among them) gets.
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

from tests.support.netns import require_root, require_tools

REPO = Path(__file__).resolve().parents[2]
RUN_TIMEOUT_S = 240
ALIAS = "wggo2"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TRAFFIC_KEYS = ("tcp1_fwd_gbps", "tcp1_rev_gbps", "tcp4_fwd_gbps", "tcp4_rev_gbps",
                "udp1372_gbps", "udp1372_loss_pct", "udp64_kpps", "ping_idle_p50_ms",
                "ping_idle_p99_ms", "ping_load_p50_ms", "ping_load_p99_ms",
                "tcp1_fwd_cpu_sys_s_per_gb")
TUNNEL_KEYS = ("tcp1_fwd_cpu_daemons_s_per_gb", "rss_idle_a_kib", "rss_idle_b_kib",
               "rss_load_a_kib", "rss_load_b_kib")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any], str]:
    require_root()
    require_tools("wireguard-go", "wg", "iperf3", "ping")
    wggo = shutil.which("wireguard-go")
    out = tmp_path_factory.mktemp("bench") / "run"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--scale", "tiny", "--out", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=RUN_TIMEOUT_S,
        env={**os.environ, "WG_IMPLS": f"{ALIAS}={wggo}"})
    assert done.returncode == 0, done.stderr[-2000:]
    doc = json.loads((out / "results.json").read_text())
    return out, doc, done.stderr


def test_json_describes_machine_and_implementations(run: tuple[Path, dict[str, Any], str]):
    _, doc, _ = run
    machine = doc["machine"]
    assert machine["cores"] == os.cpu_count()
    assert machine["kernel"] == os.uname().release
    assert machine["iperf3"].startswith("iperf 3")
    impls = {i["name"]: i for i in doc["implementations"]}
    assert impls["wggo"]["version"].startswith("wireguard-go")
    assert impls[ALIAS]["version"] == impls["wggo"]["version"]
    assert doc["settings"]["scale"] == "tiny" and doc["settings"]["runs"] == 1


def test_every_topology_measured_or_explained(run: tuple[Path, dict[str, Any], str]):
    _, doc, _ = run
    names = [t["name"] for t in doc["topologies"]]
    assert names[:2] == ["veth", "wggo-wggo"]
    for name in names:
        assert name in doc["results"]["data"] or name in doc["errors"], name
    for name in ("veth", "wggo-wggo", f"{ALIAS}-{ALIAS}", f"{ALIAS}-wggo", f"wggo-{ALIAS}"):
        figures = doc["results"]["data"][name]
        for key in TRAFFIC_KEYS + (TUNNEL_KEYS if name != "veth" else ()):
            assert len(figures[key]["runs"]) == 1, (name, key)
            assert figures[key]["min"] <= figures[key]["median"] <= figures[key]["max"]


def test_syscall_paths_counted_for_tunnels(run: tuple[Path, dict[str, Any], str]):
    _, doc, _ = run
    if doc["machine"]["perf"] == "not found":
        pytest.skip("perf is not installed: the syscall figures are skipped by design")
    figures = doc["results"]["data"]["wggo-wggo"]
    for path in ("tun_read", "udp_send", "udp_recv", "tun_write"):
        assert figures[f"sys_{path}_calls"]["median"] > 0
        assert figures[f"sys_{path}_pkts_per_call"]["median"] > 0


@pytest.mark.parametrize("impl", ["wggo", ALIAS])
def test_wireguard_go_answers_the_load_generator(run: tuple[Path, dict[str, Any], str],
                                                 impl: str):
    _, doc, _ = run
    control = doc["results"]["control"][impl]
    # Every initiation was answered, and every reply was a response whose mac1 proves it
    # was made for the initiator that sent it.
    assert control["hs_per_s"]["median"] > 0
    assert control["hs_lost"]["median"] == 0
    assert control["hs_bad_replies"]["median"] == 0
    # The flood overwhelms the responder; it must answer with cookie replies that decrypt.
    assert control["flood_cookies_per_s"]["median"] > 0
    for key in ("config100_apply_s", "config100_rss_kib", "rss_fresh_kib", "hs_rss_kib"):
        assert key in control, key


def test_micro_reports_hooks_or_their_absence(run: tuple[Path, dict[str, Any], str]):
    _, doc, _ = run
    micro = doc["results"]["micro"].get("pywg._wgdp", {})
    notes = [n for n in doc["notes"] if n.startswith("micro:")]
    assert micro or notes


def test_markdown_has_tables_and_ratio_columns(run: tuple[Path, dict[str, Any], str]):
    out, doc, _ = run
    text = (out / "results.md").read_text()
    assert "## Data plane" in text and "## Control plane" in text
    assert "| figure | unit | better | veth | wggo-wggo |" in text
    assert "| TCP 1 stream A→B | Gbit/s | higher |" in text
    for impl in doc["implementations"]:
        if impl["name"] != "wggo":
            assert f"{impl['name']} / wggo" in text
    ratios = doc["ratios"]
    assert ratios["data"][ALIAS]["tcp1_fwd_gbps"] > 0
    assert ratios["control"][ALIAS]["hs_per_s"] > 0


def test_plots_are_pngs(run: tuple[Path, dict[str, Any], str]):
    out, doc, _ = run
    assert sorted(doc["plots"]) == ["cpu_per_gb.png", "throughput.png"]
    for name in doc["plots"]:
        assert (out / name).read_bytes()[:8] == PNG_MAGIC


def test_progress_and_cleanup(run: tuple[Path, dict[str, Any], str]):
    _, doc, stderr = run
    assert "ETA" in stderr and "[  1/" in stderr
    left = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True,
                          timeout=10).stdout
    for name in doc["netns"]:
        assert name not in left
    sockets = os.listdir("/var/run/wireguard") if os.path.isdir("/var/run/wireguard") else []
    tags = {name.split("-")[1] for name in doc["netns"]}
    assert not [s for s in sockets if any(s.endswith(f"{t}.sock") for t in tags)]
