"""The schedule: set every topology up once, then repeat each figure across all of them.

Repetitions are the outer loop and implementations the inner one, rotated each repetition, so
that drift on the machine (other load, thermal state) spreads over every implementation
instead of landing on whichever ran last. A target whose daemon dies or whose measurement
fails is reported and left out of the rest of the run's figures of that section (a gateway
that fails still has its control-plane figures measured); the others go on.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench import micro, syscalls, sysstat, traffic
from bench.control import ControlBench
from bench.gateway import Gateway
from bench.progress import Progress
from bench.scale import ScaleBench
from bench.settings import (
    CONTROL_GROUPS,
    DATA_GROUPS,
    GATEWAY_CLIENTS,
    GATEWAY_GROUPS,
    SCALE_GROUPS,
    Scale,
)
from bench.target import Target
from tests.harness import procs
from tests.harness.impls import BASELINE, Impl

Figures = dict[str, float]
BARE = "veth"
SECTIONS = ("data", "gateway", "control", "scale", "micro")
# Seconds a star of a gateway and its clients takes to set up, about.
GATEWAY_SETUP_S = 6.0


@dataclass
class Results:
    """Every value of every run: section -> target -> figure -> [one value per run]."""

    sections: dict[str, dict[str, dict[str, list[float]]]] = field(
        default_factory=lambda: {s: {} for s in SECTIONS})
    errors: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def add(self, section: str, target: str, figures: Figures) -> None:
        store = self.sections[section].setdefault(target, {})
        for key, value in figures.items():
            store.setdefault(key, []).append(value)

    def error(self, target: str, text: str) -> None:
        self.errors.setdefault(target, []).append(text)

    def remark(self, text: str) -> None:
        """A note, once however often it is made (every repetition may make it)."""
        if text not in self.notes:
            self.notes.append(text)


@dataclass
class Task:
    label: str
    section: str
    target: str
    estimate_s: float
    run: Callable[[], Figures]
    rep: int = 0


def topology_specs(impls: list[Impl]) -> list[tuple[str, Impl | None, Impl | None]]:
    """veth; each implementation with itself; each other one with the baseline both ways."""
    specs: list[tuple[str, Impl | None, Impl | None]] = [(BARE, None, None)]
    specs += [(f"{i.name}-{i.name}", i, i) for i in impls]
    base = next((i for i in impls if i.name == BASELINE), None)
    if base is not None:
        for i in impls:
            if i is not base:
                specs += [(f"{i.name}-{base.name}", i, base), (f"{base.name}-{i.name}", base, i)]
    return specs


def rotated(items: list[str], rep: int) -> list[str]:
    if not items:
        return items
    k = rep % len(items)
    return items[k:] + items[:k]


class Runner:
    def __init__(self, scale: Scale, groups: tuple[str, ...], impls: list[Impl],
                 logdir: Path, results: Results, gateway_clients: Impl | None = None) -> None:
        self.scale = scale
        self.groups = groups
        self.impls = {i.name: i for i in impls}
        self.logdir = logdir
        self.results = results
        rid = os.urandom(3).hex()[:5]
        self.topologies = {name: Target(name, f"{n}{rid}", left, right, logdir)
                           for n, (name, left, right) in enumerate(topology_specs(impls))}
        self.gateways: dict[str, Gateway] = {}
        if any(g in groups for g in GATEWAY_GROUPS):
            if gateway_clients is None:
                results.notes.append("gateway: no implementation for the clients, not measured")
            else:
                self.gateways = {i.name: Gateway(i, gateway_clients, GATEWAY_CLIENTS,
                                                 f"g{n}{rid}", logdir)
                                 for n, i in enumerate(impls)}
        self.control = ControlBench(f"c{rid}", logdir)
        self.scale_bench = ScaleBench(f"s{rid}", logdir, remark=results.remark)
        # (section, target): a failure leaves the target out of the rest of that section.
        self.failed: set[tuple[str, str]] = set()
        if "syscalls" in groups and syscalls.perf_path() is None:
            results.notes.append("syscalls: perf not found (Debian: linux-perf), so packets "
                                 "per syscall are not measured")

    def netns_names(self) -> list[str]:
        made = [t.namespaces for t in self.topologies.values()] + \
            [g.namespaces for g in self.gateways.values()] + \
            [self.control.namespaces, self.scale_bench.namespaces]
        return [name for names in made for name in names]

    # ---- plan ----------------------------------------------------------------------

    def _data_tasks(self, group: str, topo: Target) -> list[Task]:
        s, name = self.scale, topo.name
        d = traffic.Length(s.duration_s, s.iperf_bytes)
        run_s = 0.5 if s.iperf_bytes else s.duration_s + 1.0
        ping_s = s.ping_count * s.ping_interval_s
        specs: list[tuple[str, float, Callable[[], Figures]]] = []
        if group == "tcp":
            for streams in (1, 4):
                for rev in (False, True):
                    specs.append((f"tcp{streams} {'rev' if rev else 'fwd'}", run_s,
                                  functools.partial(traffic.tcp, topo, d, streams, rev)))
        elif group == "udp":
            specs.append(("udp 1372 B", run_s,
                          functools.partial(traffic.udp, topo, d, traffic.UDP_PAYLOAD, "udp1372")))
        elif group == "pps":
            specs.append(("udp 64 B", run_s,
                          functools.partial(traffic.udp, topo, d, traffic.PPS_PAYLOAD, "udp64")))
        elif group == "ping":
            specs.append(("ping idle", ping_s + 0.5, functools.partial(
                traffic.ping, topo, s.ping_count, s.ping_interval_s, "ping_idle")))
            specs.append(("ping under load", ping_s + 1.0, functools.partial(
                traffic.ping_under_load, topo, s.ping_count, s.ping_interval_s)))
        elif group == "syscalls" and topo.tunnel and syscalls.perf_path():
            specs.append(("packets per syscall", s.syscall_window_s + 1.5,
                          functools.partial(syscalls.measure, topo, s.syscall_window_s)))
        return [Task(label, "data", name, est, fn) for label, est, fn in specs]

    def _gateway_tasks(self, name: str) -> list[Task]:
        s, gw = self.scale, self.gateways.get(name)
        if gw is None or ("gateway", name) in self.failed:
            return []
        d = traffic.Length(s.duration_s, s.iperf_bytes)
        run_s = 1.0 if s.iperf_bytes else s.duration_s + 1.5
        return [Task(f"gateway, {GATEWAY_CLIENTS} streams {way}", "gateway", name, run_s,
                     functools.partial(gw.measure, d, way)) for way in s.gateway_directions]

    def _scale_tasks(self, rep: int) -> list[Task]:
        s = self.scale
        if rep >= s.scale_runs or not self.scale_bench.namespaces:
            return []
        tasks = []
        for size in s.scale_peers:
            # wg setconf, the dump, the idle window, wg addconf and the storm, start and
            # stop; about.
            est = 2.0 + size * 1.8e-4 + s.scale_idle_s + min(1.0, s.scale_idle_s) + \
                size * 1e-4 + s.scale_storm_s
            for name in rotated(list(self.impls), rep):
                tasks.append(Task(f"scale: {size:,} peers", "scale", name, est,
                                  functools.partial(self.scale_bench.measure, self.impls[name],
                                                    size, s.scale_idle_s,
                                                    s.scale_storm_s)))
        return tasks

    def _control_tasks(self, group: str, impl: Impl) -> list[Task]:
        s, c = self.scale, self.control
        if group == "handshake":
            est = (s.hs_count + s.flood_count) * 1e-4 + s.hs_duration_s + s.flood_duration_s + 2
            return [Task("handshakes", "control", impl.name, est, functools.partial(
                c.handshakes, impl, s.hs_peers, s.hs_count, s.hs_duration_s, s.flood_count,
                s.flood_duration_s))]
        if group == "config":
            return [Task(f"setconf {n} peers", "control", impl.name, 0.5 + n * 1e-4,
                         functools.partial(c.apply_config, impl, n)) for n in s.config_sizes]
        return []

    def plan(self) -> list[Task]:
        tasks: list[Task] = []
        topo_names = [n for n in self.topologies if ("data", n) not in self.failed]
        impl_names = list(self.impls)
        for rep in range(self.scale.runs):
            batch: list[Task] = []
            for group in self.groups:
                for name in rotated(topo_names, rep):
                    batch += self._data_tasks(group, self.topologies[name])
                for name in rotated(impl_names, rep):
                    batch += self._control_tasks(group, self.impls[name])
                    if group in GATEWAY_GROUPS:
                        batch += self._gateway_tasks(name)
                if group in SCALE_GROUPS:
                    batch += self._scale_tasks(rep)
                if group == "micro":
                    batch.append(Task("micro (in-process C loops)", "micro", "pywg._wgdp",
                                      1.0 + 24 * self.scale.micro_target_s, self._micro))
            for task in batch:
                task.rep = rep + 1
            tasks += batch
        return tasks

    # ---- run -----------------------------------------------------------------------

    def setup_estimate(self) -> tuple[int, float]:
        """Steps of `setup` and their estimated seconds, for the progress line."""
        steps, seconds = 0, 0.0
        if any(g in self.groups for g in DATA_GROUPS):
            steps, seconds = len(self.topologies), 2.0 * len(self.topologies)
        steps += len(self.gateways)
        seconds += GATEWAY_SETUP_S * len(self.gateways)
        if self._scale_wanted():
            steps += 1
            seconds += 1.0 + 2.5e-5 * max(self.scale.scale_peers)
        return steps, seconds

    def _scale_wanted(self) -> bool:
        return any(g in self.groups for g in SCALE_GROUPS) and bool(self.impls) and \
            bool(self.scale.scale_peers) and self.scale.scale_runs > 0

    def setup(self, progress: Progress) -> None:
        self.scale_bench.note = progress.note
        if any(g in self.groups for g in DATA_GROUPS):
            for topo in self.topologies.values():
                progress.begin(f"set up {topo.name}", 2.0)
                try:
                    topo.setup()
                    self._record_rss(topo, "idle")
                except procs.HarnessError as exc:
                    self._fail("data", topo.name, f"set-up failed: {exc}")
                    topo.teardown()
                progress.end()
        else:
            self.topologies.clear()
        for name, gw in self.gateways.items():
            progress.begin(f"set up gateway {name} ({GATEWAY_CLIENTS} clients: "
                           f"{gw.clients.name})", GATEWAY_SETUP_S)
            try:
                gw.setup()
            except procs.HarnessError as exc:
                self._fail("gateway", name, f"set-up failed: {exc}")
                gw.teardown()
            progress.end()
        if any(g in self.groups for g in CONTROL_GROUPS) and self.impls:
            self.control.setup()
        if self._scale_wanted():
            most = max(self.scale.scale_peers)
            progress.begin(f"scale: namespace and keys for {most:,} peers",
                           1.0 + 2.5e-5 * most)
            try:
                self.scale_bench.setup(most)
            except procs.HarnessError as exc:
                self.results.notes.append(f"scale: set-up failed, not measured: {exc}")
                self.scale_bench.teardown()
                self.scale_bench.ns = ""
            progress.end()

    def _record_rss(self, topo: Target, when: str) -> None:
        figures: Figures = {}
        for side, daemon in zip("ab", topo.daemons, strict=False):
            rss = sysstat.rss_kib(daemon.pid)
            if rss is not None:
                figures[f"rss_{when}_{side}_kib"] = float(rss)
        self.results.add("data", topo.name, figures)

    def _fail(self, section: str, target: str, text: str) -> None:
        self.failed.add((section, target))
        # Data targets are topologies and control ones implementations: their names say
        # which; the gateway and scale sections' targets are implementations too.
        name = target if section in ("data", "control", "micro") else f"{section} {target}"
        self.results.error(name, text)
        self.results.notes.append(f"{name}: {text}; left out of the rest of the run")

    def execute(self, tasks: list[Task], progress: Progress) -> None:
        self.scale_bench.note = progress.note
        for task in tasks:
            progress.begin(f"rep {task.rep}/{self.scale.runs}  {task.label}  [{task.target}]",
                           task.estimate_s)
            if (task.section, task.target) not in self.failed:
                try:
                    self.results.add(task.section, task.target, task.run())
                except Exception as exc:  # one broken measurement must not lose the run
                    why = str(exc) if isinstance(exc, procs.HarnessError) else \
                        f"{type(exc).__name__}: {exc}"
                    self._fail(task.section, task.target, f"{task.label}: {why}")
                    progress.note(f"    failed: {why}")
            progress.end()

    def finish(self) -> None:
        for topo in self.topologies.values():
            if ("data", topo.name) not in self.failed and topo.daemons:
                self._record_rss(topo, "load")
            topo.teardown()
        for gw in self.gateways.values():
            gw.teardown()
        self.control.teardown()
        self.scale_bench.teardown()

    def _micro(self) -> Figures:
        hooks = micro.find_hooks()
        figures, notes = micro.aead(hooks, self.scale.micro_target_s)
        more, more_notes = micro.allowedips(hooks, self.scale.allowedips_sizes,
                                            self.scale.micro_target_s)
        figures.update(more)
        for note in (f"micro: {n}" for n in notes + more_notes):
            if note not in self.results.notes:
                self.results.notes.append(note)
        return figures
