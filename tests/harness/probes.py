"""Probes of what a namespace can reach and serve: ping, and a listening TCP port."""

from __future__ import annotations

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
