"""Handshake load generator: many distinct initiators against one responder, over real UDP.

Run by bench/control.py inside the client namespace as `python -m bench.hsload`, with a JSON
spec on stdin (the responder's address and public key, the initiators' private keys, the
sizes) and its counts as JSON on stdout. Two phases against the same responder:

- closed: at most `window` initiations in flight, each answered or timed out before the next
  is sent. The window stays well below the responder's "under load" threshold (wireguard-go:
  128 queued handshakes) so this is the rate at which it completes plain handshakes. Only
  responses whose mac1 was made with the right initiator's key count as completed.
- flood: initiations as fast as this process can send them (fresh ones, cycled). A responder
  under load answers with cookie replies; only those that decrypt with our mac1 count.

All initiations are built before the clock starts. A peer's successive initiations are
`len(peers)` positions apart, and the closed loop never sends one less than 30 ms after the
previous one of the same peer, so the responder's per-peer flood check (20 ms) never
discards them; `peer_spacing_waits` counts the times that held the loop back (with enough
peers, none: the responder is then the only limit).
"""

from __future__ import annotations

import json
import os
import select
import socket
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from bench.initiation import (
    TIMESTAMP_STEP_NS,
    Initiator,
    Responder,
    cookie_opens,
    cookie_receiver,
    response_receiver,
)

BURST = 64
RECV_BUF = 4 << 20
MAX_DATAGRAM = 2048
# The protocol drops a peer's initiation that comes within 20 ms of its previous one; keep
# a margin for queueing at the responder.
PEER_SPACING_S = 0.030
DRAIN_IDLE_S = 0.3
DRAIN_MAX_S = 2.0
# Replies kept for checking after a flood (about 50 MB of Python bytes at most).
MAX_STORED = 1 << 19


@dataclass
class Pool:
    """Prebuilt initiations and, per sender index, who sent which."""

    responder: Responder
    peers: list[Initiator]
    base_index: int
    packets: list[bytes] = field(default_factory=list)

    def build(self, count: int, wall_ns: int) -> None:
        n = len(self.peers)
        for j in range(len(self.packets), len(self.packets) + count):
            # Each round over the peers moves their timestamps one whitening step later.
            stamp_ns = wall_ns + (j // n) * TIMESTAMP_STEP_NS
            self.packets.append(self.peers[j % n].initiation(
                (self.base_index + j) & 0xFFFFFFFF, stamp_ns, os.urandom(32)))

    def item(self, index: int) -> int | None:
        j = (index - self.base_index) & 0xFFFFFFFF
        return j if j < len(self.packets) else None


@dataclass
class Counts:
    sent: int = 0
    completed: int = 0
    cookies: int = 0
    bad: int = 0
    lost: int = 0
    unchecked: int = 0  # received beyond MAX_STORED: counted nowhere else


def classify(packet: bytes, pool: Pool, counts: Counts) -> int | None:
    """Counts one reply; returns the pool item it answers, if it is a valid one."""
    receiver = response_receiver(packet)
    if receiver is not None:
        j = pool.item(receiver)
        if j is not None and pool.peers[j % len(pool.peers)].response_ok(packet):
            counts.completed += 1
            return j
    receiver = cookie_receiver(packet)
    if receiver is not None:
        j = pool.item(receiver)
        if j is not None and cookie_opens(packet, pool.responder, pool.packets[j]):
            counts.cookies += 1
            return j
    counts.bad += 1
    return None


def drain(sock: socket.socket, pool: Pool, counts: Counts) -> list[int]:
    answered: list[int] = []
    while True:
        try:
            packet = sock.recv(MAX_DATAGRAM)
        except BlockingIOError:
            return answered
        except OSError:
            continue  # an ICMP error for an earlier datagram: reported once, then gone
        j = classify(packet, pool, counts)
        if j is not None:
            answered.append(j)


def closed_loop(sock: socket.socket, pool: Pool, first: int, count: int, window: int,
                duration: float, timeout: float) -> dict[str, float]:
    counts = Counts()
    pending: dict[int, float] = {}  # pool item -> send time, oldest first
    peer_sent = [float("-inf")] * len(pool.peers)
    waits = 0
    nxt, end = first, first + count
    start = last = time.monotonic()
    deadline = start + duration
    while time.monotonic() < deadline and (nxt < end or pending):
        wait = 0.05
        while len(pending) < window and nxt < end:
            now = time.monotonic()
            peer = nxt % len(pool.peers)
            if now - peer_sent[peer] < PEER_SPACING_S:
                # Sooner, the responder would drop it as an initiation flood from this peer.
                wait = min(wait, PEER_SPACING_S - (now - peer_sent[peer]))
                waits += 1
                break
            peer_sent[peer] = now
            try:
                sock.send(pool.packets[nxt])
            except OSError:
                # A full buffer, or an ICMP error from an earlier datagram reported here.
                counts.lost += 1
            else:
                pending[nxt] = now
                counts.sent += 1
            nxt += 1
        select.select([sock], [], [], wait)
        for j in drain(sock, pool, counts):
            if pending.pop(j, None) is not None:
                last = time.monotonic()
        expire_before = time.monotonic() - timeout
        while pending and pending[next(iter(pending))] < expire_before:
            pending.pop(next(iter(pending)))
            counts.lost += 1
    elapsed = max(last - start, 1e-9)
    return {"sent": counts.sent, "completed": counts.completed, "cookies": counts.cookies,
            "bad": counts.bad, "lost": counts.lost + len(pending), "elapsed_s": elapsed,
            "handshakes_per_s": counts.completed / elapsed, "peer_spacing_waits": waits}


def receive_raw(sock: socket.socket, store: list[bytes], counts: Counts) -> int:
    """Takes every waiting datagram without looking at it (checked after the flood, so the
    generator's own checking does not limit the rate it measures); returns how many."""
    got = 0
    while True:
        try:
            packet = sock.recv(MAX_DATAGRAM)
        except BlockingIOError:
            return got
        except OSError:
            continue  # an ICMP error for an earlier datagram
        got += 1
        if len(store) < MAX_STORED:
            store.append(packet)
        else:
            counts.unchecked += 1


def flood(sock: socket.socket, pool: Pool, first: int, count: int,
          duration: float) -> dict[str, float]:
    counts = Counts()
    store: list[bytes] = []
    start = time.monotonic()
    deadline = start + duration
    k = 0
    while time.monotonic() < deadline:
        for _ in range(BURST):
            try:
                sock.send(pool.packets[first + k % count])
            except OSError:
                break  # a full buffer, or an ICMP error reported late: try the next burst
            k += 1
            counts.sent += 1
        receive_raw(sock, store, counts)
    quiet_since = time.monotonic()
    while (time.monotonic() - quiet_since < DRAIN_IDLE_S
           and time.monotonic() < deadline + DRAIN_MAX_S):
        select.select([sock], [], [], DRAIN_IDLE_S)
        if receive_raw(sock, store, counts):
            quiet_since = time.monotonic()
    elapsed = quiet_since - start
    for packet in store:
        classify(packet, pool, counts)
    return {"sent": counts.sent, "completed": counts.completed, "cookies": counts.cookies,
            "bad": counts.bad, "unchecked": counts.unchecked, "elapsed_s": elapsed,
            "sent_per_s": counts.sent / duration, "handshakes_per_s": counts.completed / elapsed,
            "cookies_per_s": counts.cookies / elapsed}


def open_socket(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECV_BUF)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, RECV_BUF)
    sock.connect((host, port))
    sock.setblocking(False)
    return sock


def run(spec: dict[str, Any]) -> dict[str, Any]:
    responder = Responder(bytes.fromhex(spec["responder_public"]))
    peers = [Initiator(bytes.fromhex(k), responder) for k in spec["peer_privates"]]
    pool = Pool(responder, peers, int.from_bytes(os.urandom(4), "little"))
    closed, flooded = spec["closed"], spec["flood"]
    started = time.monotonic()
    pool.build(closed["count"] + flooded["count"], time.time_ns())
    out: dict[str, Any] = {"build_s": time.monotonic() - started, "peers": len(peers)}
    sock = open_socket(spec["host"], spec["port"])
    with sock:
        out["closed"] = closed_loop(sock, pool, 0, closed["count"], closed["window"],
                                    closed["duration"], closed["timeout"])
        if flooded["count"] > 0:
            out["flood"] = flood(sock, pool, closed["count"], flooded["count"],
                                 flooded["duration"])
    return out


def main() -> int:
    spec = json.load(sys.stdin)
    json.dump(run(spec), sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
