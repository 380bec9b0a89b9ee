"""How long a Prometheus scrape of a big gateway takes.

    python -m bench.scrape [--peers 100000] [--scrapes 3] [--no-per-peer]

Builds one real device in this process (the production driver and C data plane, no TUN, no
root) with `--peers` peers, each with an endpoint and an allowed IP, through the UAPI's own
`set` parser and `Device.apply`; serves its metrics as the daemon does (pywg._driver.metrics
on a loopback port, the device's event loop running); and times whole HTTP scrapes from
another thread, plain and gzipped as Prometheus asks. For each it reports the wall time,
the server process's CPU time (what an idle machine would see as wall time), and how long the
event loop was held for the reading. Not part of `make test`: timing is not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable

import uvloop

from pywg._config.uapi import parse_set
from pywg._driver import metrics
from pywg._driver.device import Device
from pywg._tools import keys


def build(peers: int) -> Device:
    device = Device(None, max_peers=max(peers, 1024))
    lines = [f"private_key={keys.generate_private_key().hex()}"]
    for i in range(peers):
        lines += [f"public_key={os.urandom(32).hex()}",
                  f"endpoint=192.0.2.{i % 250 + 1}:{1024 + i % 60000}",
                  f"allowed_ip=10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}/32"]
    device.apply(parse_set(lines, max_lines=len(lines) + 1))
    return device


def timed_reader(device: Device, loop: asyncio.AbstractEventLoop,
                 held: list[float]) -> Callable[[], metrics.Reading]:
    """metrics.reader_on_loop, timing how long each reading holds the loop."""
    async def take() -> metrics.Reading:
        start = time.perf_counter()
        reading = metrics.take_reading(device)
        held.append(time.perf_counter() - start)
        return reading

    def read() -> metrics.Reading:
        return asyncio.run_coroutine_threadsafe(take(), loop).result()
    return read


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
    device = build(args.peers)
    print(f"  configured in {time.perf_counter() - start:.1f} s")
    held: list[float] = []
    sock = socket.create_server(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    exporter = metrics.Exporter(timed_reader(device, loop, held), per_peer=args.per_peer)
    server = metrics.MetricsServer(sock, exporter)
    server.start()
    try:
        for i in range(args.scrapes):
            for gzipped in (False, True):
                await asyncio.sleep(1.1)  # past METRICS_MIN_READ_INTERVAL_S: a fresh reading
                wall, cpu, size = await loop.run_in_executor(None, scrape, port, gzipped)
                print(f"scrape {i + 1} {'gzip' if gzipped else 'plain'}: {wall:.3f} s wall, "
                      f"{cpu:.3f} s CPU, loop held {held[-1]:.3f} s, {size / 1e6:.1f} MB")
    finally:
        server.close()
        device.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--peers", type=int, default=100_000)
    parser.add_argument("--scrapes", type=int, default=3)
    parser.add_argument("--no-per-peer", dest="per_peer", action="store_false")
    uvloop.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
