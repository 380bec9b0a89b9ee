"""The responder's event-loop thread per handshake, in-process: `python -m bench.hsprofile`.

The figure `make bench` reports (handshakes per second of a daemon in a namespace) swings by
2x between runs on a shared machine. This measures what limits it instead, and measures it
steadily: the CPU time of the thread that runs the event loop (it does all the serial work
of a handshake: the event conversion, the core's rules, the keypair, the endpoint, the
response's send, the timers) per completed handshake.

One real Device (the production driver, the real C data plane, no TUN) is the responder on
the loop of this process's main thread, bound to loopback and configured with `--peers`
peers; the load generator of `make bench` (bench/hsload.py, its closed loop with a window of
`--window` initiations in flight) runs in a child process and plays the peers. The main
thread's CPU (time.thread_time) and the process's (every thread: the data plane's and the
crypto pool's too) are sampled while handshakes complete; the figures are the slopes over
the span in which they completed, so the generator's set-up and drain do not count.

    main_us_per_hs      CPU of the event loop's thread per completed handshake
    core_us_per_hs      of which inside the protocol core (HandshakeCore.receive_batch),
                        with the Noise work the thread shares with the crypto pool
    core_wall_us_per_hs the wall clock the thread spent in the core (more than its CPU when it
                        waits for the pool's other threads, or is off its core)
    answer_us_per_hs    CPU inside the data plane's answer_handshakes (roam, count, install,
                        send the responses), where the build has it
    driver_us_per_hs    the rest: the driver's (events, keypairs, endpoints, sends, timers)
    process_us_per_hs   CPU of every thread of the responder per completed handshake
    generator_us_per_hs CPU of the load generator per completed handshake
    wall_us_per_hs      wall clock per handshake (the rate the generator saw, inverted)
    main_busy           the share of that wall clock the event loop's thread was on a core
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvloop

from pywg._config.uapi import parse_set
from pywg._driver.device import Device
from pywg._protocol import crypto

REPO = Path(__file__).resolve().parent.parent
SAMPLE_S = 0.02


@dataclass
class Samples:
    """(monotonic s, main-thread CPU s, process CPU s, generator CPU s, responses sent)
    while the load runs."""

    rows: list[tuple[float, float, float, float, float, float, float, int]] = field(
        default_factory=list)
    core_s: float = 0.0  # main-thread CPU inside the protocol core so far
    core_wall_s: float = 0.0  # and wall clock
    answer_s: float = 0.0  # main-thread CPU inside the data plane's answer_handshakes

    def take(self, device: Device, generator: int) -> None:
        # Once the generator has exited /proc has nothing: its last reading stands.
        cpu = _cpu_of(generator) or (self.rows[-1][3] if self.rows else 0.0)
        self.rows.append((time.monotonic(), time.thread_time(), time.process_time(), cpu,
                          self.core_s, self.core_wall_s, self.answer_s,
                          device.counters.responses_sent))

    def time_core(self, device: Device) -> None:
        """Count the main thread's CPU inside the core's receive_batch: the Noise work it
        shares with the crypto pool (whose share depends on how busy the machine is),
        and the protocol's rules."""
        receive_batch = device.core.receive_batch

        def timed(*args: Any, **kwargs: Any) -> Any:
            started, wall = time.thread_time(), time.perf_counter()
            try:
                return receive_batch(*args, **kwargs)
            finally:
                self.core_s += time.thread_time() - started
                self.core_wall_s += time.perf_counter() - wall

        device.core.receive_batch = timed  # type: ignore[method-assign]
        answer = getattr(device.dp, "answer_handshakes", None)
        if answer is None:
            return  # a build from before the batched answers

        def timed_answer(*args: Any, **kwargs: Any) -> Any:
            started = time.thread_time()
            try:
                return answer(*args, **kwargs)
            finally:
                self.answer_s += time.thread_time() - started

        device.dp.answer_handshakes = timed_answer  # type: ignore[method-assign]

    def slopes(self) -> dict[str, float]:
        """Per handshake over the span from the sample before the first response to the
        first sample that saw the last one."""
        rows = self.rows
        last = rows[-1][7]
        begin = next(i for i, r in enumerate(rows) if r[7] > 0) - 1
        end = next(i for i, r in enumerate(rows) if r[7] == last)
        (t0, m0, p0, g0, c0, w0, a0, n0) = rows[max(begin, 0)]
        (t1, m1, p1, g1, c1, w1, a1, n1) = rows[end]
        done = max(n1 - n0, 1)
        return {"handshakes": float(done), "main_us_per_hs": (m1 - m0) / done * 1e6,
                "core_us_per_hs": (c1 - c0) / done * 1e6,
                "core_wall_us_per_hs": (w1 - w0) / done * 1e6,
                "answer_us_per_hs": (a1 - a0) / done * 1e6,
                "driver_us_per_hs": ((m1 - m0) - (c1 - c0)) / done * 1e6,
                "process_us_per_hs": (p1 - p0) / done * 1e6,
                "generator_us_per_hs": (g1 - g0) / done * 1e6,
                "wall_us_per_hs": (t1 - t0) / done * 1e6,
                "main_busy": (m1 - m0) / max(t1 - t0, 1e-9)}


def _cpu_of(pid: int) -> float:
    """A process's CPU seconds (user and system) so far, from /proc; 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _configure(device: Device, peers: int) -> tuple[bytes, list[bytes]]:
    """Our private key and `peers` peers; returns our public key and the peers' private keys."""
    private = bytes(crypto.generate_private_key())
    privates = [bytes(crypto.generate_private_key()) for _ in range(peers)]
    lines = [f"private_key={private.hex()}"]
    lines += [f"public_key={crypto.public_key(k).hex()}" for k in privates]
    device.apply(parse_set(lines))
    public = device.core.public_key
    assert public is not None
    return public, privates


async def _one_run(args: argparse.Namespace) -> dict[str, Any]:
    device = Device(None, crypto_threads=args.threads)
    try:
        public, privates = _configure(device, args.peers)
        assert device.bind is not None
        spec = {"host": "127.0.0.1", "port": device.bind.port,
                "responder_public": public.hex(), "peer_privates": [k.hex() for k in privates],
                "closed": {"count": args.count, "window": args.window,
                           "duration": args.duration, "timeout": 1.0},
                "flood": {"count": 0, "duration": 0}}
        runner = asyncio.create_task(device.run())
        samples = Samples()
        samples.time_core(device)
        generator = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.hsload", cwd=REPO, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE)
        talk = asyncio.create_task(generator.communicate(json.dumps(spec).encode()))
        while not talk.done():
            samples.take(device, generator.pid)
            await asyncio.sleep(SAMPLE_S)
        samples.take(device, generator.pid)
        out, _ = await talk
        device.stop("done")
        await runner
    finally:
        device.close()
    result = json.loads(out)
    figures = samples.slopes()
    figures["generator_hs_per_s"] = float(result["closed"]["handshakes_per_s"])
    figures["lost"] = float(result["closed"]["lost"])
    return figures


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.hsprofile", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--peers", type=int, default=512)
    p.add_argument("--count", type=int, default=20000, help="initiations a run sends")
    p.add_argument("--window", type=int, default=32, help="initiations in flight")
    p.add_argument("--duration", type=float, default=30.0, help="a run's longest")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--threads", type=int, default=0,
                   help="the data plane's crypto threads (0: one a core)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    runs = [uvloop.run(_one_run(args)) for _ in range(args.runs)]
    keys = list(runs[0])
    summary = {k: statistics.median(r[k] for r in runs) for k in keys}
    if args.json:
        print(json.dumps({"runs": runs, "median": summary}))
        return 0
    print(f"{'figure':20}" + "".join(f"{'run ' + str(i + 1):>11}" for i in range(len(runs)))
          + f"{'median':>11}")
    for k in keys:
        print(f"{k:20}" + "".join(f"{r[k]:11.2f}" for r in runs) + f"{summary[k]:11.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
