"""Probes of what a namespace can reach and serve: ping (with retries, or one echo only),
UDP datagrams sent and received inside a namespace, and a listening TCP port."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator

from tests.harness import netns, procs

PING_INTERVAL_S = "0.2"
# iperf3 and the like are ready once the kernel lists their socket as listening (state 0A).
TCP_LISTEN = "0A"


def ping(ns: str, dest: str, *, count: int = 3, source: str | None = None,
         check: bool = True, deadline: int = 0) -> bool:
    """True when every echo got its reply; bounded by `deadline` seconds (count + 4 if 0)."""
    argv = ["ping", "-n", "-q", "-c", str(count), "-i", PING_INTERVAL_S, "-W", "2",
            "-w", str(deadline or count + 4)]
    if source:
        argv += ["-I", source]
    done = netns.run(ns, [*argv, dest], check=False, timeout=count + 10)
    if check and done.returncode != 0:
        raise procs.CommandError(f"ping {dest} from {ns} failed: {done.stdout.strip()} "
                                 f"{done.stderr.strip()}")
    return done.returncode == 0


def ping_once(ns: str, dest: str, *, source: str | None = None, wait_s: int = 2,
              size: int | None = None) -> bool:
    """One echo request, never repeated: True if its reply came within wait_s. The kernel's
    netns.sh pings so (`ping -c 1 -W 1`); `ping` above retries until its deadline, which
    would hide a first packet that went astray."""
    argv = ["ping", "-n", "-q", "-c", "1", "-W", str(wait_s)]
    if source:
        argv += ["-I", source]
    if size is not None:
        argv += ["-s", str(size)]
    return netns.run(ns, [*argv, dest], check=False, timeout=wait_s + 10).returncode == 0


def flood_ping(ns: str, dest: str, count: int, *, wait_s: int = 1) -> bool:
    """`ping -f -c count`: as fast as replies come (at least every 10 ms); True when every
    echo got its reply."""
    argv = ["ping", "-n", "-q", "-f", "-c", str(count), "-W", str(wait_s), dest]
    return netns.run(ns, argv, check=False, timeout=count * wait_s + 10).returncode == 0


def _family(addr: str) -> int:
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


@contextlib.contextmanager
def udp_listener(ns: str, addr: str, port: int) -> Iterator[socket.socket]:
    """A UDP socket bound to addr:port inside ns (`recv_within` reads it)."""
    sock = netns.socket_in(ns, _family(addr), socket.SOCK_DGRAM)
    try:
        sock.bind((addr, port))
        yield sock
    finally:
        sock.close()


def recv_within(sock: socket.socket, seconds: float) -> bytes | None:
    """The next datagram on sock, or None if none came within `seconds`."""
    sock.settimeout(seconds)
    try:
        return sock.recv(65536)
    except TimeoutError:
        return None


def udp_send(ns: str, dest: str, port: int, data: bytes, *, source: str | None = None) -> None:
    """One datagram from inside ns (from `source` if given) to dest:port."""
    with contextlib.closing(netns.socket_in(ns, _family(dest), socket.SOCK_DGRAM)) as sock:
        if source:
            sock.bind((source, 0))
        sock.sendto(data, (dest, port))


def listening(pid: int, port: int) -> bool:
    """Whether the namespace of process pid has a TCP socket listening on port."""
    want = f":{port:04X}"
    for table in ("tcp", "tcp6"):
        try:
            with open(f"/proc/{pid}/net/{table}", encoding="ascii") as f:
                rows = [r.split() for r in f.read().splitlines()[1:]]
        except OSError:
            continue
        if any(r[1].endswith(want) and r[3] == TCP_LISTEN for r in rows):
            return True
    return False
