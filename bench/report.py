"""Results out: results.json (every run), results.md (medians and ratios), PNG plots; and
`python -m bench.report JSON`, which draws the last two again from a recorded JSON.

The ratio columns divide each implementation's median by the baseline's (Debian's
wireguard-go), and by the newest wireguard-go's when the run has one named NEWEST: for the
data plane, the implementation talking to itself over the reference talking to itself.
Whether a ratio above 1 is good depends on the figure; the "better" column says which way.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import syscalls
from bench.figures import (
    DATA_ROWS,
    SCALE_KEY,
    Row,
    aead_table,
    allowedips_rows,
    control_rows,
    fmt,
    gateway_rows,
    scale_refusal,
    scale_rows,
)
from bench.runner import BARE, Results
from bench.settings import GATEWAY_CLIENTS, Scale
from tests.harness import procs
from tests.harness.impls import BASELINE, Impl

SCHEMA = 1
JSON_NAME = "results.json"
MD_NAME = "results.md"
PLOTS = {"throughput": "throughput.png", "cpu": "cpu_per_gb.png", "gateway": "gateway.png",
         "scale": "scale.png"}
# The name anchors/README.md gives the newest wireguard-go in WG_IMPLS: the second reference.
NEWEST = "wggo-new"
REFERENCES = (BASELINE, NEWEST)
# Sections whose targets are implementations (the data plane's are topologies).
IMPL_SECTIONS = ("gateway", "control", "scale")


def _first_line(cmd: list[str]) -> str:
    try:
        done = procs.run(cmd, 10.0, check=False)
    except procs.CommandError:
        return "not found"
    text = (done.stdout or done.stderr).strip()
    return text.splitlines()[0] if text else "unknown"


def _read(path: str, default: str = "n/a") -> str:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return default


def machine_info(load_at_start: float) -> dict[str, Any]:
    """The machine and its tools; the load averages say whether it was otherwise idle."""
    cpuinfo = _read("/proc/cpuinfo", "")
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines()
                  if line.startswith("model name")), platform.processor() or "unknown")
    os_release = dict(line.split("=", 1) for line in _read("/etc/os-release", "").splitlines()
                      if "=" in line)
    return {
        "cpu_model": model,
        "cores": os.cpu_count(),
        "virtualized": " hypervisor " in f" {cpuinfo.replace(chr(10), ' ')} ",
        "governor": _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"),
        "kernel": platform.release(),
        "os": os_release.get("PRETTY_NAME", "unknown").strip('"'),
        "python": platform.python_version(),
        "iperf3": _first_line(["iperf3", "--version"]),
        "wg": _first_line(["wg", "--version"]),
        "perf": _first_line(["perf", "--version"]) if syscalls.perf_path() else "not found",
        "load_1min_start": round(load_at_start, 2),
        "load_1min_end": round(os.getloadavg()[0], 2),
    }


def summarise(values: list[float]) -> dict[str, Any]:
    return {"runs": values, "median": statistics.median(values), "min": min(values),
            "max": max(values)}


def _medians(section: dict[str, dict[str, list[float]]]) -> dict[str, dict[str, Any]]:
    return {target: {k: summarise(v) for k, v in figs.items() if v}
            for target, figs in section.items()}


def _ratio(num: dict[str, Any] | None, den: dict[str, Any] | None, key: str) -> float | None:
    if not num or not den or key not in num or key not in den:
        return None
    bottom = den[key]["median"]
    return float(num[key]["median"] / bottom) if bottom else None


def _target(section: str, impl: str) -> str:
    return f"{impl}-{impl}" if section == "data" else impl


def ratios(summary: dict[str, dict[str, dict[str, Any]]], impls: list[str],
           reference: str = BASELINE) -> dict[str, dict[str, dict[str, float]]]:
    """section -> implementation -> figure -> its median / the reference's median."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for section in ("data", *IMPL_SECTIONS):
        out[section] = {}
        for name in impls:
            if name == reference:
                continue
            got = summary.get(section, {}).get(_target(section, name))
            base = summary.get(section, {}).get(_target(section, reference))
            keys = got.keys() if got else []
            values = {k: _ratio(got, base, k) for k in keys}
            out[section][name] = {k: v for k, v in values.items() if v is not None}
    return out


def build_document(results: Results, impls: list[Impl], topologies: list[tuple[str, str, str]],
                   scale_name: str, scale: Scale, groups: tuple[str, ...],
                   started: float, finished: float, netns: list[str],
                   load_at_start: float, versions: dict[str, str] | None = None,
                   gateway_clients: Impl | None = None) -> dict[str, Any]:
    """The run as one JSON document; `versions` maps implementation names to what their
    `--version` said."""
    summary = {s: _medians(v) for s, v in results.sections.items()}
    names = [i.name for i in impls]
    clients = None if gateway_clients is None else {
        "name": gateway_clients.name, "binary": gateway_clients.binary,
        "version": (versions or {}).get(gateway_clients.name, "unknown")}
    return {
        "schema": SCHEMA,
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "duration_s": round(finished - started, 1),
        "machine": machine_info(load_at_start),
        "settings": {"scale": scale_name, **dataclasses.asdict(scale), "groups": list(groups),
                     "gateway_peers": GATEWAY_CLIENTS},
        "gateway_clients": clients,
        "implementations": [{"name": i.name, "binary": i.binary,
                             "version": (versions or {}).get(i.name, "unknown")}
                            for i in impls],
        "topologies": [{"name": n, "a": a, "b": b} for n, a, b in topologies],
        "netns": netns,
        "results": summary,
        "ratios": ratios(summary, names),
        "ratios_newest": ratios(summary, names, NEWEST) if NEWEST in names else {},
        "errors": results.errors,
        "notes": results.notes,
    }


# ---- markdown -------------------------------------------------------------------------

Cell = Callable[[dict[str, Any] | None, Row], str]


def _cell(summary: dict[str, Any] | None, row: Row) -> str:
    if not summary or row.key not in summary:
        return "-"
    return fmt(summary[row.key]["median"] * row.scale)


def _scale_cell(summary: dict[str, Any] | None, row: Row) -> str:
    """A figure, or for the peer count an implementation refused: its refusal (in the
    setconf row) or "refused"."""
    m = SCALE_KEY.match(row.key)
    if summary and m:
        refusal = scale_refusal({k: v["median"] for k, v in summary.items()}, int(m["size"]))
        if refusal:
            return refusal if m["what"] == "setconf_s" else "refused"
    return _cell(summary, row)


def _ratio_columns(section: dict[str, dict[str, Any]], impls: list[str],
                   target: Callable[[str], str]) -> list[tuple[str, dict[str, float]]]:
    """"name / reference" columns: every measured implementation's medians over each
    reference's (Debian's wireguard-go, the newest one), where the reference was measured;
    not one reference over the other twice."""
    columns = []
    for ref in REFERENCES:
        base = section.get(target(ref))
        if not base:
            continue
        for name in impls:
            got = section.get(target(name))
            if name == ref or not got or (ref != BASELINE and name in REFERENCES):
                continue
            values = {k: _ratio(got, base, k) for k in got}
            columns.append((f"{name} / {ref}", {k: v for k, v in values.items()
                                                if v is not None}))
    return columns


def _table(rows: tuple[Row, ...], columns: list[str], section: dict[str, dict[str, Any]],
           ratio_cols: list[tuple[str, dict[str, float]]], cell: Cell = _cell) -> list[str]:
    head = ["figure", "unit", "better", *columns, *(name for name, _ in ratio_cols)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        cells = [cell(section.get(c), row) for c in columns]
        rats = [fmt(r[row.key]) if row.key in r else "-" for _, r in ratio_cols]
        if all(c in ("-", "refused") for c in cells):
            continue  # nothing measured (a refusal shows in full in its setconf row)
        better = "higher" if row.higher_is_better else "lower"
        lines.append("| " + " | ".join([row.label, row.unit, better, *cells, *rats]) + " |")
    return lines


def _header(doc: dict[str, Any]) -> list[str]:
    m, st = doc["machine"], doc["settings"]
    impls = "; ".join(f"**{i['name']}** = {i['version']} (`{i['binary']}`)"
                      for i in doc["implementations"]) or "none"
    return [
        f"- Machine: {m['cpu_model']}, {m['cores']} cores"
        f"{' (virtual machine)' if m['virtualized'] else ''}, governor {m['governor']}; "
        f"Linux {m['kernel']}, {m['os']}; Python {m['python']}; load average "
        f"{m.get('load_1min_start', 'n/a')} at the start, {m.get('load_1min_end', 'n/a')} at "
        "the end (other work on the machine lowers every figure)",
        f"- Tools: {m['iperf3']}; {m['wg']}; {m['perf']}",
        f"- Implementations: {impls}",
        f"- Settings: scale {st['scale']}, {st['runs']} run(s) per figure (median shown), "
        f"{_length(st)} per iperf3 run, interleaved across implementations; "
        f"total {doc['duration_s']:.0f} s",
    ]


def _length(settings: dict[str, Any]) -> str:
    return f"{settings['iperf_bytes']}B" if settings.get("iperf_bytes") else \
        f"{settings['duration_s']} s"


def render_markdown(doc: dict[str, Any], image_dir: str = "", title_level: int = 1) -> str:
    h = "#" * title_level
    res = doc["results"]
    all_impls = [i["name"] for i in doc["implementations"]]
    topo_names = [t["name"] for t in doc["topologies"] if t["name"] in res["data"]]
    impl_names = [n for n in all_impls if n in res["control"]]
    out = [f"{h} WireGuard implementations side by side, {doc['started']}", "", *_header(doc)]
    if topo_names:
        data_ratios = _ratio_columns(res["data"], all_impls, lambda n: f"{n}-{n}")
        out += ["", f"{h}# Data plane", "",
                "Two network namespaces joined by a veth pair (MTU 1500), a daemon in each "
                "(tunnel MTU 1420); `a-b` means a in namespace A, b in B; traffic starts in A. "
                f"`{BARE}` is the bare veth, the ceiling.", "",
                *_table(DATA_ROWS, topo_names, res["data"], data_ratios)]
    out += _gateway(doc, h)
    if impl_names:
        sizes = tuple(doc["settings"]["config_sizes"])
        control_ratios = _ratio_columns(res["control"], all_impls, str)
        out += ["", f"{h}# Control plane", "",
                "Handshakes: a load generator with many distinct peers, at most 32 initiations "
                "in flight; the flood sends as fast as it can and counts cookie replies that "
                "decrypt. Configurations are applied with `wg setconf` to a running daemon.", "",
                *_table(control_rows(sizes), impl_names, res["control"], control_ratios)]
    out += _scale(doc, h)
    if "micro" in doc["settings"]["groups"]:
        micro = {k: v["median"] for k, v in res["micro"].get("pywg._wgdp", {}).items()}
        out += ["", f"{h}# Micro-benchmarks (pywg's C data plane)", "", *_micro(micro)]
    out += _notes(doc, image_dir)
    return "\n".join(out) + "\n"


def _gateway_view(doc: dict[str, Any]) -> tuple[list[str], dict[str, dict[str, Any]]]:
    """The implementations measured as gateways, and per implementation its gateway figures
    with its two-peer TCP figures (from the data plane) beside them."""
    res = doc["results"]
    gateways = res.get("gateway", {})
    names = [i["name"] for i in doc["implementations"] if i["name"] in gateways]
    view = {}
    for name in names:
        pair = res["data"].get(f"{name}-{name}", {})
        view[name] = {**{k: pair[k] for k in ("tcp1_fwd_gbps", "tcp1_fwd_cpu_daemons_s_per_gb")
                         if k in pair}, **gateways[name]}
    return names, view


def _gateway(doc: dict[str, Any], h: str) -> list[str]:
    names, view = _gateway_view(doc)
    if not names:
        return []
    peers = doc["settings"].get("gateway_peers", GATEWAY_CLIENTS)
    clients = doc.get("gateway_clients") or {}
    length = _length(doc["settings"])
    return ["", f"{h}# Gateway", "",
            f"One gateway namespace serving {peers} client namespaces (a peer each, a veth "
            f"each); the gateway runs the implementation of the column, every client "
            f"**{clients.get('name', '?')}** ({clients.get('version', 'unknown')}) whatever the "
            f"gateway. One TCP stream per client, all at once, {length} each; the aggregate "
            "is the sum of the streams. CPU/GB counts the whole system's busy time and the "
            "gateway daemon's own per GB received. The ceiling is what all the machine's "
            "cores could carry at the CPU per GB that was not the gateway daemon's: the "
            "aggregate of a gateway that cost nothing, with these clients. The two-peer rows "
            "are the data plane's (the implementation on both sides), for the margin.", "",
            *_table(gateway_rows(peers), names, view, _ratio_columns(view, names, str)),
            *_margins(view, names, peers)]


def _margins(view: dict[str, dict[str, Any]], names: list[str], peers: int) -> list[str]:
    """Whether each implementation's gateway margin over the newest wireguard-go (else the
    baseline) is at least its two-peer margin; where it is not, whether the ceiling that the
    rest of the system left (bench/gateway.py) allowed it, and the gateway daemons' CPU per GB
    beside it."""
    ref = next((r for r in (NEWEST, BASELINE) if r in view), None)
    if ref is None:
        return []
    lines = []
    for name in names:
        if name in REFERENCES:
            continue
        two = _ratio(view[name], view[ref], "tcp1_fwd_gbps")
        found = _by_way(peers, functools.partial(_ratio, view[name], view[ref]), "gbps")
        if not found:
            continue
        line = f"- {name} / {ref}, gateway aggregate: {_per_way(found)}; "
        if two is None:
            line += "no two-peer figure to compare with."
        elif all(r >= two for _, r in found):
            line += f"two peers {fmt(two)}: at least the two-peer margin."
        else:
            line += f"two peers {fmt(two)}: below the two-peer margin." + _why_below(
                view, name, ref, peers, two)
        lines.append(line)
    return ["", *lines] if lines else []


def _why_below(view: dict[str, dict[str, Any]], name: str, ref: str, peers: int,
               two: float) -> str:
    """Whether the ceiling left room for the margin (name's ceiling over ref's aggregate: the
    most name could have reached against ref in this run, whatever its gateway cost), and
    the gateway daemons' CPU per GB."""
    def room(key: str) -> float | None:
        ceiling = view[name].get(key)
        base = view[ref].get(key.replace("_ceiling_gbps", "_gbps"))
        return ceiling["median"] / base["median"] if ceiling and base and base["median"] else None

    rooms = [(way, r) for way, r in _by_way(peers, room, "ceiling_gbps") if r < two]
    cpus = _by_way(peers, functools.partial(_ratio, view[ref], view[name]),
                   "cpu_gateway_s_per_gb")
    text = ""
    if rooms:
        text += (f" Out of reach here: the rest of the system left room for at most "
                 f"{_per_way(rooms)}, even with a gateway that cost nothing.")
    if cpus:
        text += f" Gateway daemon CPU per GB, {ref}'s over {name}'s: {_per_way(cpus)}."
    return text


def _by_way(peers: int, value: Callable[[str], float | None],
            suffix: str) -> list[tuple[str, float]]:
    """[(way, value(key of that way's figure))] for the directions where it is known."""
    found = [(way, value(f"gw{peers}_{way}_{suffix}")) for way in ("up", "down")]
    return [(way, v) for way, v in found if v is not None]


def _per_way(pairs: list[tuple[str, float]]) -> str:
    return ", ".join(f"{fmt(v)} {'clients → gateway' if way == 'up' else 'gateway → clients'}"
                     for way, v in pairs)


def _scale(doc: dict[str, Any], h: str) -> list[str]:
    scale = doc["results"].get("scale", {})
    names = [i["name"] for i in doc["implementations"] if i["name"] in scale]
    sizes = tuple(doc["settings"].get("scale_peers", ()))
    if not names or not sizes:
        return []
    return ["", f"{h}# Scale", "",
            "A fresh daemon, its interface up, given one configuration file of N peers with "
            "`wg setconf` from the root namespace; each peer has a real X25519 public key and "
            "two allowed IPs (an IPv4 /32, an IPv6 /128). RSS per peer counts what the "
            "daemon grew by; the dump's output goes to a file; idle CPU is the daemon's own "
            f"time over {doc['settings'].get('scale_idle_s', 0):g} s once everything is "
            "configured. \"refused\": `wg setconf` failed; what the daemon kept is counted "
            "from its dump. The keepalive storm then gives every peer, with `wg addconf`, an "
            "endpoint where nothing answers and a persistent keepalive: each starts "
            "initiating and retries every 5 s, so the timers owe about N / 5.17 "
            "initiations a second (counted by nftables as they leave), over "
            f"{doc['settings'].get('scale_storm_s', 0):g} s, while a one-line `wg set` is "
            "timed every half second.", "",
            *_table(scale_rows(sizes), names, scale, _ratio_columns(scale, names, str),
                    _scale_cell)]


def _micro(figures: dict[str, float]) -> list[str]:
    columns, aead = aead_table(figures)
    lookups = allowedips_rows(figures)
    out: list[str] = []
    if aead:
        out += ["ChaCha20-Poly1305, one packet per call in a C loop, ns per packet "
                "(Gbit/s in brackets):", "",
                "| backend | " + " | ".join(columns) + " |", "|" + "---|" * (len(columns) + 1)]
        for backend, cells in aead.items():
            texts = [f"{fmt(cells[c])} ({fmt(int(c.split()[1]) * 8 / cells[c])})"
                     if c in cells else "-" for c in columns]
            out.append(f"| {backend} | " + " | ".join(texts) + " |")
    else:
        out.append("AEAD: not available (see the notes).")
    out.append("")
    if lookups:
        out += ["| allowed-IPs lookups | prefixes | million lookups/s | ns per insert "
                "| heap bytes per prefix |", "|---|---|---|---|---|"]
        out += [f"| {family} | {size:,} | {fmt(rate)} | {_maybe(insert)} | {_maybe(heap)} |"
                for family, size, rate, insert, heap in lookups]
    else:
        out.append("Allowed-IPs lookups: not available (see the notes).")
    return out


def _maybe(value: float | None) -> str:
    return "-" if value is None else fmt(value)


def _notes(doc: dict[str, Any], image_dir: str) -> list[str]:
    out: list[str] = []
    if doc["notes"]:
        out += ["", "Notes:", ""] + [f"- {n}" for n in doc["notes"]]
    plots = [(label, name) for label, name in PLOTS.items() if name in doc.get("plots", [])]
    if plots:
        out += [""] + [f"![{label}]({image_dir}{name})" for label, name in plots]
    return out


# ---- plots ----------------------------------------------------------------------------

_THROUGHPUT = (("tcp1_fwd_gbps", "TCP 1 A→B"), ("tcp1_rev_gbps", "TCP 1 B→A"),
               ("tcp4_fwd_gbps", "TCP 4 A→B"), ("tcp4_rev_gbps", "TCP 4 B→A"),
               ("udp1372_gbps", "UDP 1372 B"))
_CPU = (("tcp1_fwd_cpu_sys_s_per_gb", "system, TCP 1 A→B"),
        ("tcp1_fwd_cpu_daemons_s_per_gb", "daemons, TCP 1 A→B"),
        ("tcp1_rev_cpu_sys_s_per_gb", "system, TCP 1 B→A"),
        ("tcp1_rev_cpu_daemons_s_per_gb", "daemons, TCP 1 B→A"),
        ("udp1372_cpu_sys_s_per_gb", "system, UDP 1372 B"),
        ("udp1372_cpu_daemons_s_per_gb", "daemons, UDP 1372 B"))


def _null_locator() -> Any:
    from matplotlib.ticker import NullLocator
    return NullLocator()


_SCALE_PANELS = (("setconf_s", "wg setconf (s)", 1.0),
                 ("rss_per_peer_kib", "RSS per peer above idle (KiB)", 1.0),
                 ("dump_s", "wg show dump (s)", 1.0),
                 ("idle_cpu_pct", "idle CPU (% of a core)", 1.0))


def _bars(ax: Any, data: dict[str, dict[str, Any]], keys: tuple[tuple[str, str], ...],
          topologies: list[str], ylabel: str) -> None:
    width = 0.8 / max(len(topologies), 1)
    for n, topo in enumerate(topologies):
        figs = data.get(topo, {})
        xs, hs, lo, hi = [], [], [], []
        for i, (key, _) in enumerate(keys):
            if key in figs:
                xs.append(i + (n - (len(topologies) - 1) / 2) * width)
                med = figs[key]["median"]
                hs.append(med)
                lo.append(med - figs[key]["min"])
                hi.append(figs[key]["max"] - med)
        if xs:
            ax.bar(xs, hs, width, yerr=[lo, hi], capsize=2, label=topo)
            # The median's label sits above the error bar, where it cannot be hidden.
            for x, h, up in zip(xs, hs, hi, strict=True):
                ax.annotate(fmt(h), (x, h + up), xytext=(0, 2), textcoords="offset points",
                            ha="center", va="bottom", fontsize=6, rotation=90)
    ax.set_xticks(range(len(keys)), [label for _, label in keys], fontsize=8)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=7)


def plot(doc: dict[str, Any], outdir: Path) -> list[str]:
    """Writes the PNGs; returns their file names (none if matplotlib is missing)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        doc["notes"].append("plots skipped: matplotlib is not installed")
        return []
    written = _plot_data(doc, outdir, plt)
    written += _plot_gateway(doc, outdir, plt)
    written += _plot_scale(doc, outdir, plt)
    return written


def _plot_data(doc: dict[str, Any], outdir: Path, plt: Any) -> list[str]:
    data = doc["results"]["data"]
    topologies = [t["name"] for t in doc["topologies"] if t["name"] in data]
    if not topologies:
        return []
    written = []
    for name, keys, ylabel, title, log in (
            (PLOTS["throughput"], _THROUGHPUT, "Gbit/s (log scale)", "Throughput", True),
            (PLOTS["cpu"], _CPU, "CPU seconds per GB", "CPU per GB moved", False)):
        if not any(key in data[t] for t in topologies for key, _ in keys):
            continue
        fig, ax = plt.subplots(figsize=(10, 4.8))
        _bars(ax, data, keys, topologies, ylabel)
        if log:
            ax.set_yscale("log")
        # Headroom for the labels above the tallest error bars.
        bottom, top = ax.get_ylim()
        ax.set_ylim(bottom, top * (3.0 if log else 1.12))
        ax.set_title(f"{title}: median of {doc['settings']['runs']} run(s), "
                     f"bars span min-max; {doc['started']}", fontsize=9)
        fig.tight_layout()
        fig.savefig(outdir / name, dpi=110)
        plt.close(fig)
        written.append(name)
    return written


def _plot_gateway(doc: dict[str, Any], outdir: Path, plt: Any) -> list[str]:
    names, view = _gateway_view(doc)
    if not names:
        return []
    peers = doc["settings"].get("gateway_peers", GATEWAY_CLIENTS)
    keys = tuple((key, label) for key, label in (
        (f"gw{peers}_up_gbps", f"{peers} clients → gateway"),
        (f"gw{peers}_down_gbps", f"gateway → {peers} clients"),
        ("tcp1_fwd_gbps", "two peers, 1 stream A→B")) if any(key in view[n] for n in names))
    fig, ax = plt.subplots(figsize=(8, 4.8))
    _bars(ax, view, keys, names, "Gbit/s, sum of the streams")
    bottom, top = ax.get_ylim()
    ax.set_ylim(bottom, top * 1.15)
    clients = (doc.get("gateway_clients") or {}).get("name", "?")
    ax.set_title(f"Gateway aggregate, {peers} TCP streams at once (clients: {clients}); median "
                 f"of {doc['settings']['runs']} run(s), bars span min-max; {doc['started']}",
                 fontsize=8)
    fig.tight_layout()
    fig.savefig(outdir / PLOTS["gateway"], dpi=110)
    plt.close(fig)
    return [PLOTS["gateway"]]


def scale_series(summary: dict[str, dict[str, Any]], what: str, factor: float = 1.0,
                 ) -> tuple[list[int], list[float], list[int]]:
    """One implementation's medians of one scale figure: (peer counts, values) where it
    was measured, sorted by count, and the counts it refused."""
    points: dict[int, float] = {}
    refused = []
    for key, value in summary.items():
        m = SCALE_KEY.match(key)
        if m is None:
            continue
        if m["what"] == what:
            points[int(m["size"])] = value["median"] * factor
        elif m["what"] == "refused" and value["median"] >= 0.5:
            refused.append(int(m["size"]))
    xs = sorted(points)
    return xs, [points[x] for x in xs], sorted(refused)


def _plot_scale(doc: dict[str, Any], outdir: Path, plt: Any) -> list[str]:
    scale = doc["results"].get("scale", {})
    names = [i["name"] for i in doc["implementations"] if i["name"] in scale]
    if not names:
        return []
    sizes = sorted(doc["settings"].get("scale_peers", ()))
    fig, axes = plt.subplots(2, 2, figsize=(10, 7))
    for ax, (what, ylabel, factor) in zip(axes.flat, _SCALE_PANELS, strict=True):
        for name in names:
            xs, ys, refused = scale_series(scale[name], what, factor)
            label = name + (f" (refused {', '.join(f'{r:,}' for r in refused)})"
                            if refused else "")
            ax.plot(xs, ys, marker="o", label=label)
        ax.set_xscale("log")
        if sizes:
            # Every count asked for, measured or refused, so a refusal shows as a gap.
            ax.set_xlim(sizes[0] / 1.5, sizes[-1] * 1.5)
            ax.set_xticks(sizes, [f"{n:,}" for n in sizes], fontsize=7)
            ax.xaxis.set_minor_locator(_null_locator())
        if what.endswith("_s") and any(y > 0 for line in ax.get_lines()
                                       for y in line.get_ydata()):
            ax.set_yscale("log")
        else:
            ax.set_ylim(bottom=0)
        ax.set_xlabel("peers")
        ax.set_ylabel(ylabel, fontsize=8)
        ax.grid(True, which="both", alpha=0.3)
    axes.flat[0].legend(fontsize=7)
    fig.suptitle(f"Scale: median of {doc['settings'].get('scale_runs', 1)} run(s); "
                 f"{doc['started']}", fontsize=9)
    fig.tight_layout()
    fig.savefig(outdir / PLOTS["scale"], dpi=110)
    plt.close(fig)
    return [PLOTS["scale"]]


def write(doc: dict[str, Any], outdir: Path, plots: bool = True) -> None:
    outdir.mkdir(parents=True, exist_ok=True)
    doc["plots"] = plot(doc, outdir) if plots else []
    for name in set(PLOTS.values()) - set(doc["plots"]):
        (outdir / name).unlink(missing_ok=True)  # a previous run's, in a reused directory
    (outdir / JSON_NAME).write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    (outdir / MD_NAME).write_text(render_markdown(doc), encoding="utf-8")


# ---- drawn again from a recorded JSON ----------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    """`python -m bench.report JSON [--out DIR]`: results.md and the plots of a run, again."""
    parser = argparse.ArgumentParser(prog="python -m bench.report", description=main.__doc__)
    parser.add_argument("json", type=Path, help="a run's results.json (bench/history/*/)")
    parser.add_argument("--out", type=Path, default=None,
                        help="where to write (default: bench/results/<the run's directory>)")
    args = parser.parse_args(argv)
    doc: dict[str, Any] = json.loads(args.json.read_text(encoding="utf-8"))
    outdir = args.out or Path(__file__).resolve().parent / "results" / args.json.parent.name
    write(doc, outdir)
    print(outdir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
