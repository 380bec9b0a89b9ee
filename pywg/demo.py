"""`make demo` / `python -m pywg.demo`: a live pywg tunnel between two network namespaces.

What it does, printing each step: creates two namespaces joined by a veth pair, starts a
pywg daemon in each (exactly as `wireguard-go IFNAME` would be started), configures both
with the real `wg` tool, brings the interfaces up with `ip`, pings across the tunnel over
IPv4 and IPv6, runs a short iperf3, shows `wg show` on both sides, and removes everything
it made, also on Ctrl-C. Needs root; without it, it runs the in-process walkthrough of the
protocol instead (python -m tests.scenario.walkthrough).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["main"]

OUTER = ("192.168.241.1", "192.168.241.2")
INNER = ("10.200.200.1", "10.200.200.2")
INNER6 = ("fd00:200::1", "fd00:200::2")
PORTS = (51821, 51822)
STEP_TIMEOUT_S = 30


@dataclass
class Side:
    label: str
    ns: str
    ifname: str
    veth: str
    outer: str
    inner: str
    inner6: str
    port: int
    private_key: str = ""
    public_key: str = ""


def say(text: str) -> None:
    print(text, flush=True)


def step(title: str) -> None:
    say(f"\n== {title}")


def run(cmd: list[str], *, ns: str | None = None, check: bool = True, show: bool = False,
        stdin: str | None = None, timeout: float = STEP_TIMEOUT_S,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = ["ip", "netns", "exec", ns, *cmd] if ns else cmd
    if show:
        say(f"$ {'ip netns exec ' + ns + ' ' if ns else ''}{' '.join(cmd)}")
    result = subprocess.run(full, input=stdin, capture_output=True, text=True,
                            timeout=timeout, check=False, env=env)
    if show and (result.stdout or result.stderr):
        say((result.stdout + result.stderr).rstrip())
    if check and result.returncode != 0:
        raise RuntimeError(f"`{' '.join(full)}` failed: {result.stderr.strip()}")
    return result


def pywg_command() -> list[str]:
    return [sys.executable, "-m", "pywg"]


def make_sides() -> tuple[Side, Side]:
    tag = secrets.token_hex(2)
    return tuple(  # type: ignore[return-value]
        Side(label, f"pywg-demo-{label.lower()}-{tag}", f"wgdemo{label}{tag}",
             f"vdemo{label}{tag}", OUTER[i], INNER[i], INNER6[i], PORTS[i])
        for i, label in enumerate(("A", "B")))


@contextlib.contextmanager
def namespaces(a: Side, b: Side) -> Iterator[None]:
    try:
        for side in (a, b):
            run(["ip", "netns", "add", side.ns], show=True)
            run(["ip", "link", "set", "lo", "up"], ns=side.ns)
        run(["ip", "link", "add", a.veth, "netns", a.ns, "type", "veth", "peer", "name",
             b.veth, "netns", b.ns], show=True)
        for side in (a, b):
            run(["ip", "addr", "add", f"{side.outer}/24", "dev", side.veth], ns=side.ns,
                show=True)
            run(["ip", "link", "set", side.veth, "up"], ns=side.ns)
        yield
    finally:
        step("Cleaning up")
        for side in (a, b):
            # Deleting the interface is what makes a WireGuard daemon exit.
            run(["ip", "link", "del", side.ifname], ns=side.ns, check=False, show=True)
        for side in (a, b):
            wait_for_exit(side)
            run(["ip", "netns", "del", side.ns], check=False, show=True)


def daemon_pids(side: Side) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                argv = (entry / "cmdline").read_bytes().split(b"\0")
                if b"pywg" in argv and side.ifname.encode() in argv:
                    pids.append(int(entry.name))
    return pids


def wait_for_exit(side: Side, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while daemon_pids(side) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in daemon_pids(side):  # ours: it names our unique interface
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, 15)


def start_daemons(a: Side, b: Side, logdir: Path) -> None:
    for side in (a, b):
        side.private_key = run(pywg_command() + ["genkey"]).stdout.strip()
        side.public_key = run(pywg_command() + ["pubkey"], stdin=side.private_key).stdout.strip()
        say(f"{side.label}: public key {side.public_key}")
    for side in (a, b):
        env = dict(os.environ, LOG_LEVEL="info")
        log = logdir / f"{side.ifname}.log"
        with open(log, "w") as out:
            started = subprocess.run(["ip", "netns", "exec", side.ns, *pywg_command(),
                                      side.ifname], stdout=out, stderr=out, env=env,
                                     timeout=STEP_TIMEOUT_S, check=False)
        say(f"$ ip netns exec {side.ns} pywg {side.ifname}   -> exit {started.returncode}")
        if started.returncode != 0:
            raise RuntimeError(f"pywg did not start: {log.read_text()}")


def configure(a: Side, b: Side, workdir: Path) -> None:
    for me, other in ((a, b), (b, a)):
        conf = workdir / f"{me.ifname}.conf"
        conf.write_text(
            f"[Interface]\nPrivateKey = {me.private_key}\nListenPort = {me.port}\n\n"
            f"[Peer]\nPublicKey = {other.public_key}\n"
            f"AllowedIPs = {other.inner}/32, {other.inner6}/128\n"
            f"Endpoint = {other.outer}:{other.port}\n")
        conf.chmod(0o600)
        run(["wg", "setconf", me.ifname, str(conf)], ns=me.ns, show=True)
        run(["ip", "addr", "add", f"{me.inner}/24", "dev", me.ifname], ns=me.ns, show=True)
        run(["ip", "-6", "addr", "add", f"{me.inner6}/64", "dev", me.ifname, "nodad"],
            ns=me.ns, show=True)
        run(["ip", "link", "set", me.ifname, "up"], ns=me.ns, show=True)


def traffic(a: Side, b: Side, seconds: int) -> None:
    step("Ping through the tunnel (the first packet starts the handshake)")
    run(["ping", "-c", "3", "-i", "0.3", "-W", "5", b.inner], ns=a.ns, show=True)
    run(["ping", "-6", "-c", "3", "-i", "0.3", "-W", "5", a.inner6], ns=b.ns, show=True)
    if shutil.which("iperf3") is None:
        say("(iperf3 is not installed: skipping the throughput run)")
        return
    step(f"iperf3: one TCP stream for {seconds} s, A -> B through the tunnel")
    server = subprocess.Popen(["ip", "netns", "exec", b.ns, "iperf3", "-s", "-1"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        result = run(["iperf3", "-c", b.inner, "-t", str(seconds), "-J"], ns=a.ns,
                     timeout=seconds + STEP_TIMEOUT_S)
        end = json.loads(result.stdout)["end"]
        sent, received = end["sum_sent"], end["sum_received"]
        say(f"sent {sent['bytes'] / 1e6:.0f} MB at {sent['bits_per_second'] / 1e9:.2f} Gbit/s,"
            f" received {received['bits_per_second'] / 1e9:.2f} Gbit/s,"
            f" {sent.get('retransmits', 0)} TCP retransmits")
    finally:
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.wait(timeout=5)
        if server.poll() is None:
            server.kill()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pywg.demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=3, help="iperf3 duration (default 3)")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        say("The live demo needs root (network namespaces and TUN devices).\n"
            "Showing the in-process protocol walkthrough instead:\n")
        from tests.scenario import walkthrough

        return walkthrough.main()
    for tool in ("ip", "wg"):
        if shutil.which(tool) is None:
            say(f"the demo needs `{tool}` (Debian: iproute2, wireguard-tools)")
            return 1
    a, b = make_sides()
    step("Two network namespaces joined by a veth pair")
    try:
        with tempfile.TemporaryDirectory(prefix="pywg-demo-") as tmp, namespaces(a, b):
            workdir = Path(tmp)
            step("Keys, and a pywg daemon in each namespace")
            start_daemons(a, b, workdir)
            step("Configuration with the standard tools (wg setconf, ip)")
            configure(a, b, workdir)
            traffic(a, b, args.seconds)
            step("wg show on both sides")
            for side in (a, b):
                run(["wg", "show", side.ifname], ns=side.ns, show=True)
            step("What the daemons logged")
            for side in (a, b):
                say((workdir / f"{side.ifname}.log").read_text().rstrip())
    except (RuntimeError, subprocess.TimeoutExpired) as e:
        say(f"\ndemo failed: {e}")
        return 1
    except KeyboardInterrupt:
        say("\ninterrupted")
        return 130
    say("\ndone")
    return 0


if __name__ == "__main__":
    sys.exit(main())
