"""The responder's handshake path in-process: `python -m bench.hscore`.

No sockets, no daemon: one HandshakeCore that knows `--peers` distinct initiators takes
prebuilt initiations (bench/initiation.py makes them, as the load generator does) and is
timed per handshake, one `receive` at a time, and in batches through `receive_batch` (whose
C part spreads over the cores). Every initiation must be
answered with a response, or the run fails: a fast path that drops work proves nothing.

The clock the core sees moves 21 ms per round over the peers, so the 20 ms flood rule never
drops an initiation; each round's timestamps are one whitening step newer. The first round
is not timed: it computes the peers' static-static secrets and starts the pool's threads.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from bench.initiation import TIMESTAMP_STEP_NS, Initiator, Responder
from pywg._protocol import crypto
from pywg._protocol.cookie import CookieGenerator
from pywg._protocol.handshake import Action, HandshakeCore, HandshakePeer, SendHandshakeResponse
from pywg._protocol.noise import Handshake

ROUND_NS = 21_000_000


@dataclass(eq=False)
class Record:
    public_key: bytes
    handshake: Handshake = field(init=False)
    cookie: CookieGenerator = field(init=False)

    def __post_init__(self) -> None:
        self.handshake = Handshake(remote_static=self.public_key)
        self.cookie = CookieGenerator(self.public_key)


class Bench:
    def __init__(self, peers: int, rounds: int) -> None:
        private = crypto.generate_private_key()
        self.records: dict[bytes, Record] = {}
        self.core = HandshakeCore(self.records.get, self._new_index)
        self.core.set_private_key(private)
        public = self.core.public_key
        assert public is not None
        responder = Responder(public)
        initiators = [Initiator(bytes(crypto.generate_private_key()), responder)
                      for _ in range(peers)]
        for initiator in initiators:
            self.records[initiator.public] = Record(initiator.public)
        self._next_index = 1
        wall = time.time_ns()
        self.rounds: list[list[bytes]] = [
            [p.initiation((r * peers + i) & 0xFFFFFFFF, wall + r * TIMESTAMP_STEP_NS,
                          os.urandom(32)) for i, p in enumerate(initiators)]
            for r in range(rounds)]

    def _new_index(self, peer: HandshakePeer) -> int:
        self._next_index += 1
        return self._next_index

    def run(self, step: Callable[[Sequence[bytes], int], list[tuple[Action, ...]]],
            ) -> tuple[float, float]:
        """Seconds of wall-clock and of CPU (all threads) for the timed rounds; checks every
        initiation got its response."""
        now = 10 * ROUND_NS
        elapsed = cpu = 0.0
        for round_, packets in enumerate(self.rounds):
            now += ROUND_NS
            started, started_cpu = time.perf_counter(), time.process_time()
            results = step(packets, now)
            if round_:  # the first warms up: static-static secrets, the pool's threads
                elapsed += time.perf_counter() - started
                cpu += time.process_time() - started_cpu
            answered = sum(1 for actions in results
                           if any(isinstance(a, SendHandshakeResponse) for a in actions))
            if answered != len(packets):
                raise SystemExit(f"only {answered} of {len(packets)} initiations answered: "
                                 f"{[a for r in results for a in r][:4]}")
        return elapsed, cpu

    def one_by_one(self, packets: Sequence[bytes], now: int) -> list[tuple[Action, ...]]:
        return [self.core.receive(p, None, now) for p in packets]

    def batched(self, size: int) -> Callable[[Sequence[bytes], int], list[tuple[Action, ...]]]:
        def step(packets: Sequence[bytes], now: int) -> list[tuple[Action, ...]]:
            out: list[tuple[Action, ...]] = []
            for at in range(0, len(packets), size):
                chunk = [(p, None) for p in packets[at:at + size]]
                out += self.core.receive_batch(chunk, now)
            return out
        return step


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.hscore", description=__doc__)
    p.add_argument("--peers", type=int, default=512)
    p.add_argument("--rounds", type=int, default=6, help="rounds over the peers (the first "
                   "is not timed)")
    p.add_argument("--batch", type=int, default=64, help="messages per receive_batch call")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    out: dict[str, float] = {}
    bench = Bench(args.peers, args.rounds)
    n = args.peers * (args.rounds - 1)
    seconds, cpu = bench.run(bench.one_by_one)
    out["receive_us"] = seconds / n * 1e6
    out["receive_cpu_us"] = cpu / n * 1e6
    out["receive_hs_per_s"] = n / seconds
    bench = Bench(args.peers, args.rounds)
    seconds, cpu = bench.run(bench.batched(args.batch))
    out["batch_us"] = seconds / n * 1e6
    out["batch_cpu_us"] = cpu / n * 1e6
    out["batch_hs_per_s"] = n / seconds
    out["batch_threads"] = crypto.workers()
    if args.json:
        print(json.dumps(out))
    else:
        for key, value in out.items():
            print(f"{key:20} {value:10.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
