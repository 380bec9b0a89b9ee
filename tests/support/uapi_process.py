"""A UAPI server in a process of its own, for what a test cannot do to its own process: a
low file-descriptor limit, or a resident size that counts the server alone.

    python -m tests.support.uapi_process RUN_DIR IFNAME NOFILE IDLE_TIMEOUT_S PEERS

serves a MemoryDevice with PEERS peers on RUN_DIR/IFNAME.sock (uvloop), with the soft
RLIMIT_NOFILE at NOFILE (0: unchanged), writes "ready" on stdout once it listens, and
stops when its stdin closes (so it never outlives the test). `serving_process` runs it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import select
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass

from pywg._config.model import AllowedIP, DeviceConfig, PeerConfig, PublicKey
from pywg._config.uapi import MemoryDevice
from pywg._driver.uapi_server import ServerLimits, UapiServer

START_TIMEOUT_S = 30.0


def device_with(peers: int) -> MemoryDevice:
    """A device with `peers` peers, one /32 each (a `get` of about 300 bytes a peer)."""
    return MemoryDevice(DeviceConfig(peers=tuple(
        PeerConfig(PublicKey((i + 1).to_bytes(32, "big")),
                   allowed_ips=(AllowedIP(4, (0x0A000000 + i).to_bytes(4, "big"), 32),))
        for i in range(peers))))


async def _serve(run_dir: str, ifname: str, idle_timeout: float, peers: int) -> None:
    limits = ServerLimits(idle_timeout=idle_timeout)
    loop = asyncio.get_running_loop()
    stdin_closed = asyncio.Event()
    loop.add_reader(sys.stdin.fileno(), stdin_closed.set)
    async with UapiServer.bind(ifname, device_with(peers), limits, run_dir=run_dir):
        print("ready", flush=True)
        await stdin_closed.wait()


def main(argv: list[str]) -> None:
    run_dir, ifname, nofile, idle_timeout, peers = argv
    if int(nofile):
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        resource.setrlimit(resource.RLIMIT_NOFILE, (int(nofile), hard))
    import uvloop

    uvloop.run(_serve(run_dir, ifname, float(idle_timeout), int(peers)))


@dataclass
class ServerProcess:
    path: str
    pid: int

    def rss_kib(self) -> int:
        """Resident set size now, KiB (VmRSS)."""
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise RuntimeError("no VmRSS")


@contextlib.contextmanager
def serving_process(run_dir: str, ifname: str, *, nofile: int = 0, idle_timeout: float = 60.0,
                    peers: int = 0) -> Iterator[ServerProcess]:
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.support.uapi_process", run_dir, ifname, str(nofile),
         str(idle_timeout), str(peers)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        cwd=root, text=True)
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], START_TIMEOUT_S)
        line = proc.stdout.readline() if ready else "(nothing)"
        if line.strip() != "ready":
            raise RuntimeError(f"the UAPI server process did not start: {line!r}")
        yield ServerProcess(os.path.join(run_dir, f"{ifname}.sock"), proc.pid)
    finally:
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            proc.wait(START_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


if __name__ == "__main__":
    main(sys.argv[1:])
