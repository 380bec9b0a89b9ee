"""How long a Prometheus scrape of a big gateway takes, and how long it holds the event loop.

    python -m bench.scrape [--peers 100000] [--scrapes 3] [--no-per-peer] [--idle]

Builds one real device in this process (the production driver and C data plane, no TUN, no
root) with `--peers` peers, each with an endpoint and an allowed IP, through the UAPI's own
`set` parser and `Device.apply`; gives each peer received bytes (through the data plane's
own counter) and a latest handshake, so that the numbers are written as big numbers are
(`--idle`: every figure 0, as the first version of this bench had them); serves its metrics
as the daemon does (pywg._driver.metrics on a loopback port, the device's event loop
running); and times whole HTTP scrapes from another process, plain and gzipped as Prometheus
asks. For each it reports the wall time, the server process's CPU time (all its threads),
the longest slice of the reading on the loop (wall, and the loop thread's CPU time in it:
the wall includes waiting for the GIL and for a core), and the loop's lag: how late a 1 ms
timer on the loop fired at worst while the scrape ran (waiting for the GIL and, on a shared
machine, for a core included), against the same measure over an idle second before it. Not
part of `make test`: timing is not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Sequence

import uvloop

from pywg._config.model import PeerConfig
from pywg._config.uapi import parse_set
from pywg._driver import metrics
from pywg._driver.device import Device, PeerCounters
from pywg._tools import keys


def build(peers: int, idle: bool) -> Device:
    device = Device(None, max_peers=max(peers, 1024))
    lines = [f"private_key={keys.generate_private_key().hex()}"]
    for i in range(peers):
        lines += [f"public_key={os.urandom(32).hex()}",
                  f"endpoint=192.0.2.{i % 250 + 1}:{1024 + i % 60000}",
                  f"allowed_ip=10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}/32"]
    device.apply(parse_set(lines, max_lines=len(lines) + 1))
    if not idle:
        now_ns, wall_ns = time.monotonic_ns(), time.time_ns()
        for i, config in enumerate(device.config.peers):
            record = device._peers[config.public_key.raw]
            device.dp.handshake_received(record.slot, 1_000_000 + 7919 * i, now_ns)
            # The time a handshake would have set: within the last 10 minutes.
            record.last_handshake_wall_ns = wall_ns - (i % 600) * 1_000_000_000
    return device


class LoopWatch:
    """The longest slice of a reading (time spent in Device.read_peers, one call a slice),
    and how late a timer on the loop fired at worst, since `reset()`."""

    def __init__(self, device: Device) -> None:
        self.slice_max = 0.0
        self.slice_cpu_max = 0.0  # the loop thread's own CPU time in it
        self.lag_max = 0.0
        self.slices = 0
        read_peers = device.read_peers

        def timed(configs: Sequence[PeerConfig], into: PeerCounters,
                  wants_allowed_ips: metrics.WantsAllowedIPs = None) -> None:
            start, cpu = time.perf_counter(), time.thread_time()
            read_peers(configs, into, wants_allowed_ips)
            self.slice_max = max(self.slice_max, time.perf_counter() - start)
            self.slice_cpu_max = max(self.slice_cpu_max, time.thread_time() - cpu)
            self.slices += 1
        device.read_peers = timed  # type: ignore[method-assign]

    def reset(self) -> None:
        self.slice_max = self.slice_cpu_max = self.lag_max = 0.0
        self.slices = 0

    async def run(self) -> None:
        """Wake every millisecond (a timer, as the device's are) and time how late."""
        tick = 0.001
        while True:
            start = time.perf_counter()
            await asyncio.sleep(tick)
            self.lag_max = max(self.lag_max, time.perf_counter() - start - tick)


# The scraper is another process, as Prometheus is: its reading of the reply must not
# compete with the server for this process's GIL.
_CLIENT = """
import sys, time, urllib.request
request = urllib.request.Request(sys.argv[1])
if sys.argv[2] == "gzip":
    request.add_header("Accept-Encoding", "gzip")
start = time.perf_counter()
with urllib.request.urlopen(request, timeout=300) as reply:
    size = len(reply.read())
print(time.perf_counter() - start, size)
"""


def scrape(port: int, gzipped: bool) -> tuple[float, float, int]:
    """(wall seconds, this process's CPU seconds, bytes) of one scrape."""
    cpu = time.process_time()
    done = subprocess.run([sys.executable, "-c", _CLIENT, f"http://127.0.0.1:{port}/metrics",
                           "gzip" if gzipped else "plain"],
                          capture_output=True, text=True, check=True, timeout=600)
    wall, size = done.stdout.split()
    return float(wall), time.process_time() - cpu, int(size)


async def run(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    print(f"building a device with {args.peers} peers ...", flush=True)
    start = time.perf_counter()
    device = build(args.peers, args.idle)
    print(f"  configured in {time.perf_counter() - start:.1f} s")
    watch = LoopWatch(device)
    watcher = asyncio.ensure_future(watch.run())
    sock = socket.create_server(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    exporter = metrics.Exporter(metrics.reader_on_loop(device, loop), per_peer=args.per_peer)
    server = metrics.MetricsServer(sock, exporter)
    server.start()
    try:
        for i in range(args.scrapes):
            for gzipped in (False, True):
                await asyncio.sleep(0.1)
                watch.reset()
                await asyncio.sleep(1.0)  # past METRICS_MIN_READ_INTERVAL_S: a fresh reading
                idle_lag = watch.lag_max
                watch.reset()
                wall, cpu, size = await loop.run_in_executor(None, scrape, port, gzipped)
                print(f"scrape {i + 1} {'gzip' if gzipped else 'plain'}: {wall:.3f} s wall, "
                      f"{cpu:.3f} s CPU, {watch.slices} slices, longest "
                      f"{watch.slice_max * 1e3:.1f} ms ({watch.slice_cpu_max * 1e3:.1f} ms CPU), "
                      f"loop lag {watch.lag_max * 1e3:.1f} ms "
                      f"(idle {idle_lag * 1e3:.1f} ms), {size / 1e6:.1f} MB", flush=True)
    finally:
        watcher.cancel()
        server.close()
        device.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--peers", type=int, default=100_000)
    parser.add_argument("--scrapes", type=int, default=3)
    parser.add_argument("--no-per-peer", dest="per_peer", action="store_false")
    parser.add_argument("--idle", action="store_true",
                        help="leave every peer's figures at 0 (no bytes, no handshake)")
    uvloop.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
