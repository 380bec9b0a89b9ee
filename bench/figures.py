"""What each figure is called in the report, its unit, and which direction is better.

Results are stored under plain keys (`tcp1_fwd_gbps`); this table turns them into rows. Keys
the table does not list (retransmits of every run, raw syscall counts) stay in the JSON only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Row:
    key: str
    label: str
    unit: str
    higher_is_better: bool
    scale: float = 1.0  # stored value * scale = displayed value


KIB_TO_MIB = 1 / 1024

DATA_ROWS = (
    Row("tcp1_fwd_gbps", "TCP 1 stream A→B", "Gbit/s", True),
    Row("tcp1_rev_gbps", "TCP 1 stream B→A", "Gbit/s", True),
    Row("tcp4_fwd_gbps", "TCP 4 streams A→B", "Gbit/s", True),
    Row("tcp4_rev_gbps", "TCP 4 streams B→A", "Gbit/s", True),
    Row("tcp1_fwd_retransmits", "TCP 1 stream A→B retransmits", "segments", False),
    Row("udp1372_gbps", "UDP 1372 B delivered", "Gbit/s", True),
    Row("udp1372_loss_pct", "UDP 1372 B loss", "%", False),
    Row("udp64_kpps", "UDP 64 B delivered", "kpps", True),
    Row("udp64_loss_pct", "UDP 64 B loss", "%", False),
    Row("ping_idle_p50_ms", "ping RTT idle p50", "ms", False),
    Row("ping_idle_p99_ms", "ping RTT idle p99", "ms", False),
    Row("ping_load_p50_ms", "ping RTT under load p50", "ms", False),
    Row("ping_load_p99_ms", "ping RTT under load p99", "ms", False),
    Row("tcp1_fwd_cpu_sys_s_per_gb", "CPU/GB, whole system, TCP 1 A→B", "s/GB", False),
    Row("tcp1_fwd_cpu_daemons_s_per_gb", "CPU/GB, daemons, TCP 1 A→B", "s/GB", False),
    Row("tcp1_rev_cpu_sys_s_per_gb", "CPU/GB, whole system, TCP 1 B→A", "s/GB", False),
    Row("tcp1_rev_cpu_daemons_s_per_gb", "CPU/GB, daemons, TCP 1 B→A", "s/GB", False),
    Row("udp1372_cpu_sys_s_per_gb", "CPU/GB, whole system, UDP 1372 B", "s/GB", False),
    Row("udp1372_cpu_daemons_s_per_gb", "CPU/GB, daemons, UDP 1372 B", "s/GB", False),
    Row("rss_idle_a_kib", "daemon RSS idle, A", "MiB", False, KIB_TO_MIB),
    Row("rss_idle_b_kib", "daemon RSS idle, B", "MiB", False, KIB_TO_MIB),
    Row("rss_load_a_kib", "daemon RSS after load, A", "MiB", False, KIB_TO_MIB),
    Row("rss_load_b_kib", "daemon RSS after load, B", "MiB", False, KIB_TO_MIB),
    Row("sys_tun_read_pkts_per_call", "packets/syscall, A TUN read", "pkts", True),
    Row("sys_udp_send_pkts_per_call", "packets/syscall, A UDP send", "pkts", True),
    Row("sys_udp_recv_pkts_per_call", "packets/syscall, B UDP recv", "pkts", True),
    Row("sys_tun_write_pkts_per_call", "packets/syscall, B TUN write", "pkts", True),
)


def control_rows(config_sizes: tuple[int, ...]) -> tuple[Row, ...]:
    rows = [
        Row("hs_per_s", "handshakes completed", "1/s", True),
        Row("flood_sent_per_s", "flood: initiations offered", "1/s", True),
        Row("flood_cookies_per_s", "flood: cookie replies", "1/s", True),
        Row("flood_hs_per_s", "flood: handshakes completed", "1/s", True),
        Row("hs_rss_kib", "RSS after handshake load", "MiB", False, KIB_TO_MIB),
        Row("rss_fresh_kib", "RSS of a fresh daemon", "MiB", False, KIB_TO_MIB),
    ]
    for size in config_sizes:
        rows += [Row(f"config{size}_apply_s", f"wg setconf of {size:,} peers", "s", False),
                 Row(f"config{size}_rss_kib", f"RSS with {size:,} peers", "MiB", False,
                     KIB_TO_MIB)]
    return tuple(rows)


def gateway_rows(clients: int) -> tuple[Row, ...]:
    """The gateway table: the two-peer figures it is compared with (from the data plane),
    then the gateway's, each direction."""
    rows = [Row("tcp1_fwd_gbps", "two peers: TCP 1 stream A→B (data plane)", "Gbit/s", True),
            Row("tcp1_fwd_cpu_daemons_s_per_gb", "two peers: CPU/GB, daemons, TCP 1 A→B",
                "s/GB", False)]
    for way, label in (("up", f"{clients} clients → gateway"),
                       ("down", f"gateway → {clients} clients")):
        p = f"gw{clients}_{way}"
        rows += [Row(f"{p}_gbps", f"TCP aggregate, {label}", "Gbit/s", True),
                 Row(f"{p}_stream_min_gbps", f"slowest stream, {label}", "Gbit/s", True),
                 Row(f"{p}_cpu_sys_s_per_gb", f"CPU/GB, whole system, {label}", "s/GB", False),
                 Row(f"{p}_cpu_gateway_s_per_gb", f"CPU/GB, gateway daemon, {label}", "s/GB",
                     False),
                 Row(f"{p}_ceiling_gbps", f"ceiling the rest leaves, {label}", "Gbit/s", True)]
    rows.append(Row(f"gw{clients}_rss_kib", "gateway RSS after load", "MiB", False, KIB_TO_MIB))
    return tuple(rows)


# What the scale group measures at each peer count: key suffix, label, unit, scale, and
# whether higher is better.
SCALE_FIGURES = (
    ("setconf_s", "wg setconf", "s", 1.0, False),
    ("setconf_us_per_peer", "wg setconf per peer", "µs", 1.0, False),
    ("rss_kib", "RSS after setconf", "MiB", KIB_TO_MIB, False),
    ("rss_per_peer_kib", "RSS per peer above idle", "KiB", 1.0, False),
    ("dump_s", "wg show dump", "s", 1.0, False),
    ("dump_us_per_peer", "wg show dump per peer", "µs", 1.0, False),
    ("idle_cpu_pct", "idle CPU with every peer configured", "% of a core", 1.0, False),
    # bench/keepalive.py: every peer given an endpoint that never answers and a keepalive.
    ("ka_addconf_s", "keepalive storm: wg addconf", "s", 1.0, False),
    ("ka_initiations_per_s", "keepalive storm: initiations sent", "1/s", 1.0, True),
    ("ka_owed_pct", "keepalive storm: initiations, % of what the timers owe", "%", 1.0, True),
    ("ka_cpu_pct", "keepalive storm: daemon CPU", "% of a core", 1.0, False),
    ("ka_set_p50_ms", "keepalive storm: one-line wg set, median", "ms", 1.0, False),
    ("ka_set_max_ms", "keepalive storm: one-line wg set, longest", "ms", 1.0, False),
)
SCALE_KEY = re.compile(r"scale(?P<size>\d+)_(?P<what>[a-z_]+)$")


def scale_rows(sizes: tuple[int, ...]) -> tuple[Row, ...]:
    """Each scale figure at each peer count, figure by figure."""
    return tuple(Row(f"scale{size}_{what}", f"{label}, {size:,} peers", unit, higher, factor)
                 for what, label, unit, factor, higher in SCALE_FIGURES for size in sizes)


def scale_refusal(summary: dict[str, float], size: int) -> str:
    """"refused after 5.8 s, kept 65,536" if the medians of one implementation's scale
    figures say it refused `size` peers, else ""."""
    if summary.get(f"scale{size}_refused", 0.0) < 0.5:
        return ""
    after = summary.get(f"scale{size}_refused_after_s")
    kept = summary.get(f"scale{size}_kept_peers")
    text = "refused" + (f" after {fmt(after)} s" if after is not None else "")
    return text + (f", kept {kept:,.0f}" if kept is not None else "")


AEAD_KEY = re.compile(r"aead_(?P<backend>.+)_(?P<op>seal|open)(?P<size>\d+)_(?P<unit>ns|gbps)$")
ALLOWEDIPS_KEY = re.compile(
    r"allowedips_(?P<family>v[46])_(?P<size>\d+)_(?P<unit>mlps|insert_ns|bytes)$")


def aead_table(figures: dict[str, float]) -> tuple[list[str], dict[str, dict[str, float]]]:
    """Micro AEAD figures -> (column names, backend -> column -> ns per packet)."""
    columns: list[str] = []
    table: dict[str, dict[str, float]] = {}
    for key, value in figures.items():
        m = AEAD_KEY.match(key)
        if m is None or m["unit"] != "ns":
            continue
        column = f"{m['op']} {m['size']} B"
        if column not in columns:
            columns.append(column)
        table.setdefault(m["backend"], {})[column] = value
    return columns, table


def allowedips_rows(
        figures: dict[str, float]) -> list[tuple[str, int, float, float | None, float | None]]:
    """Micro allowed-IPs figures -> [(family, prefixes, million lookups per second, ns per
    insert or None, heap bytes per prefix or None)]."""
    cells: dict[tuple[str, int], dict[str, float]] = {}
    for key, value in figures.items():
        m = ALLOWEDIPS_KEY.match(key)
        if m is not None:
            cells.setdefault((m["family"], int(m["size"])), {})[m["unit"]] = value
    return sorted((family, size, c["mlps"], c.get("insert_ns"), c.get("bytes"))
                  for (family, size), c in cells.items() if "mlps" in c)


def fmt(value: float) -> str:
    """Three significant digits, without scientific notation for ordinary magnitudes."""
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    if magnitude >= 0.001:
        return f"{value:.3g}"
    return f"{value:.2e}"
