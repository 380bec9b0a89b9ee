"""A TCP transfer whose sha256 is computed at both ends: run inside a namespace.

    python tcpcheck.py recv ADDR PORT
        listens, prints "ready", accepts one connection, reads to EOF, prints
        {"bytes": N, "sha256": HEX}
    python tcpcheck.py send ADDR PORT NBYTES SEED [SECONDS]
        connects, sends NBYTES pseudo-random bytes from SEED (spread over at least SECONDS
        when given, so a transfer can outlast a timer), prints the same JSON for what it sent

Standard library only, so it runs under any Python. Every wait is bounded by TIMEOUT_S.
"""

import hashlib
import json
import random
import socket
import sys
import time

TIMEOUT_S = 60.0
CHUNK = 1 << 16


def _report(nbytes: int, digest: "hashlib._Hash") -> None:
    print(json.dumps({"bytes": nbytes, "sha256": digest.hexdigest()}), flush=True)


def recv(addr: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in addr else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind((addr, port))
        server.listen(1)
        server.settimeout(TIMEOUT_S)
        print("ready", flush=True)
        conn, _ = server.accept()
    digest, total = hashlib.sha256(), 0
    with conn:
        conn.settimeout(TIMEOUT_S)
        while data := conn.recv(CHUNK):
            digest.update(data)
            total += len(data)
    _report(total, digest)


def _connect(addr: str, port: int) -> socket.socket:
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        try:
            return socket.create_connection((addr, port), timeout=TIMEOUT_S)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def send(addr: str, port: int, nbytes: int, seed: int, seconds: float) -> None:
    rng = random.Random(seed)
    digest, sent = hashlib.sha256(), 0
    start = time.monotonic()
    with _connect(addr, port) as conn:
        while sent < nbytes:
            block = rng.randbytes(min(CHUNK, nbytes - sent))
            conn.sendall(block)
            digest.update(block)
            sent += len(block)
            # Pacing: never ahead of the schedule that spreads nbytes over `seconds`.
            ahead = start + seconds * sent / nbytes - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
        conn.shutdown(socket.SHUT_WR)
        conn.settimeout(TIMEOUT_S)
        while conn.recv(CHUNK):
            pass
    _report(sent, digest)


def main(argv: list[str]) -> None:
    if argv[0] == "recv":
        recv(argv[1], int(argv[2]))
    else:
        send(argv[1], int(argv[2]), int(argv[3]), int(argv[4]),
             float(argv[5]) if len(argv) > 5 else 0.0)


if __name__ == "__main__":
    main(sys.argv[1:])
