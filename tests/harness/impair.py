"""An impaired link in the middle of a chain (topology.chain: a ==== mid ==== b): random loss
and duplication by nftables, reordering and delay by a small relay process, since this
kernel has no netem qdisc.

    a ---- vA [mid: forward -> TUN -> relay (delay, reorder) -> TUN -> forward] vB ---- b
                                                     nft: loss, then duplication

The relay owns a TUN in mid. Policy routing sends every packet mid forwards from either
veth into the TUN; what the relay writes back comes in on the TUN and is routed by the main
table to the other veth. Every packet crosses the relay once, in either direction, and one
datagram at a time: the TUN splits the senders' UDP_SEGMENT super-packets, which a veth
would carry whole (and nftables would then drop or copy 40 datagrams at once).

- loss (nftables `numgen random`): packets leaving the relay are dropped with the given
  probability, counted per direction;
- duplication (nftables `dup`): packets leaving the relay that were not lost get a copy
  sent out of the veth at once, counted per direction and per WireGuard message type (data
  or not): every copy of a data message is a replay its receiver must drop;
- delay: each packet waits a uniform random time in [delay - jitter, delay + jitter] and
  keeps its place in line (a packet never leaves before one that came in before it);
- reordering: with the given probability a packet is held back an extra `hold_ms` and
  leaves its place in line, so later packets overtake it.

Run inside mid: `python -m tests.harness.impair SPEC` (SPEC as JSON, `Impairment.spec()`)
creates the TUN, prints "ready", relays until SIGTERM, then prints its counts as JSON. The
relay's queue is bounded (MAX_QUEUED packets; beyond, it drops and counts). `Impaired`
sets all of this up in a chain and takes it down again.
"""

from __future__ import annotations

import contextlib
import fcntl
import heapq
import json
import os
import random
import select
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

from tests.harness import netns, procs

MAX_QUEUED = 100_000
READ_BURST = 256
TUNSETIFF = 0x400454CA
IFF_TUN, IFF_NO_PI = 0x0001, 0x1000
RELAY_TABLE = "200"
NFT_TABLE = "wgimpair"
READY_TIMEOUT_S = 10.0
PERMILLE = 1000


@dataclass(frozen=True)
class Impairment:
    loss: float = 0.0          # probability, per packet entering mid
    duplicate: float = 0.0     # probability, per packet leaving the relay
    reorder: float = 0.0       # probability that a packet is held back and overtaken
    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    hold_ms: float = 5.0       # how long a reordered packet is held back, on top
    seed: int = 1

    def spec(self, tun: str) -> str:
        return json.dumps({**asdict(self), "tun": tun})


# ---- the relay, inside mid ----------------------------------------------------------------

def _open_tun(name: str) -> int:
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH22x", name.encode(), IFF_TUN | IFF_NO_PI))
    return fd


class Relay:
    def __init__(self, imp: Impairment, fd: int) -> None:
        self.imp = imp
        self.fd = fd
        self.rng = random.Random(imp.seed)
        self.queue: list[tuple[float, int, bytes]] = []
        self.serial = 0
        self.last_in_line = 0.0
        self.counts = {"relayed": 0, "reordered": 0, "overflow": 0, "write_errors": 0}

    def _due(self, now: float) -> tuple[float, bool]:
        imp = self.imp
        wait = (imp.delay_ms + self.rng.uniform(-imp.jitter_ms, imp.jitter_ms)) / 1e3
        if imp.reorder and self.rng.random() < imp.reorder:
            return now + max(wait, 0.0) + imp.hold_ms / 1e3, True
        self.last_in_line = max(now + max(wait, 0.0), self.last_in_line)
        return self.last_in_line, False

    def take(self, now: float) -> None:
        for _ in range(READ_BURST):
            try:
                packet = os.read(self.fd, 65536)
            except BlockingIOError:
                return
            if len(self.queue) >= MAX_QUEUED:
                self.counts["overflow"] += 1
                continue
            due, held = self._due(now)
            self.counts["reordered"] += held
            self.serial += 1
            heapq.heappush(self.queue, (due, self.serial, packet))

    def give(self, now: float) -> None:
        while self.queue and self.queue[0][0] <= now:
            _, _, packet = heapq.heappop(self.queue)
            try:
                os.write(self.fd, packet)
                self.counts["relayed"] += 1
            except OSError:
                self.counts["write_errors"] += 1

    def run(self, stop: list[bool]) -> None:
        poller = select.poll()
        poller.register(self.fd, select.POLLIN)
        while not stop:
            now = time.monotonic()
            timeout_ms = 100 if not self.queue else max(0.0, (self.queue[0][0] - now) * 1e3)
            if poller.poll(timeout_ms):
                self.take(time.monotonic())
            self.give(time.monotonic())


def main(spec: dict[str, Any]) -> None:
    tun = spec.pop("tun")
    relay = Relay(Impairment(**spec), _open_tun(tun))
    stop: list[bool] = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    print("ready", flush=True)
    relay.run(stop)
    print(json.dumps(relay.counts), flush=True)


# ---- setting it up, from the test ---------------------------------------------------------

def _nft_rules(imp: Impairment, tun: str, ends: dict[str, tuple[str, str]]) -> str:
    """ends: side name -> (mid's veth towards it, its address)."""
    loss = round(imp.loss * PERMILLE)
    dup = round(imp.duplicate * PERMILLE)
    lines = [f"table ip {NFT_TABLE} {{", " chain forward {",
             "  type filter hook forward priority 0;"]
    for side, (veth, _) in ends.items():
        if loss:
            lines.append(f'  iifname "{tun}" oifname "{veth}" meta l4proto udp numgen random '
                         f'mod {PERMILLE} < {loss} counter drop comment "loss-to-{side}"')
    for side, (veth, addr) in ends.items():
        if dup:
            # Each packet meets one draw: the two rules take disjoint message types.
            for name, match in (("data", "@th,64,8 4"), ("other", "@th,64,8 != 4")):
                lines.append(f'  iifname "{tun}" oifname "{veth}" meta l4proto udp {match} '
                             f'numgen random mod '
                             f'{PERMILLE} < {dup} counter dup to {addr} device "{veth}" '
                             f'comment "dup-{name}-to-{side}"')
    lines += [" }", "}"]
    return "\n".join(lines) + "\n"


def _run(ns: str, *argv: str, check: bool = True) -> None:
    netns.run(ns, list(argv), check=check)


class Impaired:
    """The impairment in place in a chain's mid; `counts()` reads nftables' counters and
    `stop()` takes everything down (the relay's own counts come back from it)."""

    def __init__(self, mid_ns: str, tun: str, ends: dict[str, tuple[str, str]],
                 imp: Impairment) -> None:
        self.ns, self.tun, self.ends, self.imp = mid_ns, tun, ends, imp
        self.relay: subprocess.Popen[str] | None = None
        self.relay_counts: dict[str, int] = {}

    def start(self) -> None:
        self._start_relay()
        netns.run(self.ns, ["nft", "-f", "-"], input=_nft_rules(self.imp, self.tun, self.ends))

    def _start_relay(self) -> None:
        self.relay = subprocess.Popen(
            netns.exec_argv(self.ns, [sys.executable, "-m", "tests.harness.impair",
                                      self.imp.spec(self.tun)]),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
        assert self.relay.stdout is not None
        ready, _, _ = select.select([self.relay.stdout], [], [], READY_TIMEOUT_S)
        if not ready or self.relay.stdout.readline().strip() != "ready":
            self.stop()
            raise procs.HarnessError("the impairment relay did not start")
        for key in ("net.ipv4.conf.all.rp_filter", f"net.ipv4.conf.{self.tun}.rp_filter"):
            _run(self.ns, "sysctl", "-q", "-w", f"{key}=0")
        _run(self.ns, "ip", "link", "set", "dev", self.tun, "up")
        for family in ("-4", "-6"):
            _run(self.ns, "ip", family, "route", "add", "default", "dev", self.tun,
                 "table", RELAY_TABLE)
            _run(self.ns, "ip", family, "rule", "add", "iif", self.tun, "lookup", "main",
                 "pref", "100")
            for veth, _ in self.ends.values():
                _run(self.ns, "ip", family, "rule", "add", "iif", veth, "lookup", RELAY_TABLE,
                     "pref", "101")

    def counts(self) -> dict[str, int]:
        """nftables' counters by comment: loss-from-SIDE, dup-data-to-SIDE, dup-other-to-SIDE
        (packets)."""
        shown = netns.run(self.ns, ["nft", "-j", "list", "table", "ip", NFT_TABLE],
                          check=False)
        found: dict[str, int] = {}
        if shown.returncode:
            return found
        for item in json.loads(shown.stdout)["nftables"]:
            rule = item.get("rule")
            if not rule or "comment" not in rule:
                continue
            counter = next((e["counter"] for e in rule["expr"] if "counter" in e), None)
            if counter is not None:
                found[rule["comment"]] = counter["packets"]
        return found

    def stop(self) -> None:
        netns.run(self.ns, ["nft", "delete", "table", "ip", NFT_TABLE], check=False)
        for family in ("-4", "-6"):
            for _ in range(1 + len(self.ends)):
                _run(self.ns, "ip", family, "rule", "del", "pref", "100", check=False)
                _run(self.ns, "ip", family, "rule", "del", "pref", "101", check=False)
        if self.relay is not None:
            if self.relay.poll() is None:
                self.relay.terminate()
            try:
                out, _ = self.relay.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                self.relay.kill()
                out, _ = self.relay.communicate(timeout=10)
            lines = [x for x in out.splitlines() if x.startswith("{")]
            self.relay_counts = json.loads(lines[-1]) if lines else {}
            self.relay = None


@contextlib.contextmanager
def impaired(mid_ns: str, tun: str, ends: dict[str, tuple[str, str]],
             imp: Impairment) -> Iterator[Impaired]:
    """The impairment in place for the body; taken down (relay stopped, rules removed)
    however the body ends."""
    state = Impaired(mid_ns, tun, ends, imp)
    try:
        state.start()
        yield state
    finally:
        state.stop()


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
