"""A handshake flood: well-formed initiations with a valid mac1 for the target's public key
(anyone who knows the key can make them) and random contents elsewhere, as fast as this
process can send them, from one source address or from many, for a bounded time.

Run inside the flooding namespace: `python -m tests.harness.flood SPEC`, SPEC as JSON
{"target": [address, port], "public_key": hex, "sources": [addresses], "seconds": float};
it prints {"sent": N, "seconds": elapsed} as JSON. Every source address must be one of the
namespace's own (and the target's side must route back to it: cookie replies go there, and
are ignored here). `start` runs it from a test.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import time
from typing import Any

from tests.harness import netns

PREBUILT = 4096  # distinct initiations, sent round robin
SEND_BUFFER = 4 << 20


def initiation(mac1_key: bytes) -> bytes:
    body = b"\x01\0\0\0" + os.urandom(112)
    mac1 = hashlib.blake2s(body, key=mac1_key, digest_size=16).digest()
    return body + mac1 + bytes(16)


def flood(spec: dict[str, Any]) -> dict[str, float]:
    key = hashlib.blake2s(b"mac1----" + bytes.fromhex(spec["public_key"])).digest()
    messages = [initiation(key) for _ in range(PREBUILT)]
    socks = []
    for source in spec["sources"]:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
        sock.bind((source, 0))
        sock.setblocking(False)
        socks.append(sock)
    target = tuple(spec["target"])
    sent, start = 0, time.monotonic()
    deadline = start + float(spec["seconds"])
    tried = 0
    while time.monotonic() < deadline:
        for _ in range(256):
            try:
                socks[tried % len(socks)].sendto(messages[tried % PREBUILT], target)
                sent += 1
            except BlockingIOError:
                pass  # the socket's buffer is full: the next one
            tried += 1
    for sock in socks:
        sock.close()
    return {"sent": sent, "seconds": time.monotonic() - start}


def start(ns: str, target: tuple[str, int], public_key: bytes, sources: list[str],
          seconds: float) -> subprocess.Popen[str]:
    """The flood running in ns; `finish` collects its counts."""
    spec = json.dumps({"target": list(target), "public_key": public_key.hex(),
                       "sources": sources, "seconds": seconds})
    return subprocess.Popen(netns.exec_argv(ns, [sys.executable, "-m", "tests.harness.flood",
                                                 spec]),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen[str], timeout: float) -> dict[str, float]:
    out, err = proc.communicate(timeout=timeout)
    if proc.returncode:
        raise RuntimeError(f"the flood failed: {err.strip()}")
    result: dict[str, float] = json.loads(out)
    return result


if __name__ == "__main__":
    print(json.dumps(flood(json.loads(sys.argv[1]))))
