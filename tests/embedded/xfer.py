"""A bounded TCP transfer with a checksum at each end, for the tunnel test.

    python3 xfer.py recv PORT TIMEOUT        listen, take one connection, read to EOF
    python3 xfer.py send HOST PORT BYTES SEED TIMEOUT

Each prints "<bytes> <sha256 hex>" of what it received or sent; the test compares them.
The data is pseudo-random from SEED, so neither end can pass by sending zeros.
"""

from __future__ import annotations

import hashlib
import random
import socket
import sys

CHUNK = 65536


def recv(port: int, timeout: float) -> None:
    with socket.create_server(("", port), family=socket.AF_INET) as server:
        server.settimeout(timeout)
        conn, _ = server.accept()
        with conn:
            conn.settimeout(timeout)
            digest, total = hashlib.sha256(), 0
            while data := conn.recv(CHUNK):
                digest.update(data)
                total += len(data)
    print(total, digest.hexdigest(), flush=True)


def send(host: str, port: int, nbytes: int, seed: int, timeout: float) -> None:
    rnd = random.Random(seed)
    digest = hashlib.sha256()
    with socket.create_connection((host, port), timeout=timeout) as conn:
        left = nbytes
        while left:
            data = rnd.randbytes(min(CHUNK, left))
            conn.sendall(data)
            digest.update(data)
            left -= len(data)
        conn.shutdown(socket.SHUT_WR)
        conn.recv(1)  # the receiver's close: everything arrived
    print(nbytes, digest.hexdigest(), flush=True)


def main(argv: list[str]) -> None:
    if argv[:1] == ["recv"] and len(argv) == 3:
        recv(int(argv[1]), float(argv[2]))
    elif argv[:1] == ["send"] and len(argv) == 6:
        send(argv[1], int(argv[2]), int(argv[3]), int(argv[4]), float(argv[5]))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
