"""`make demo` / `python -m bench.demo`: a live pywg tunnel between two network namespaces.

What it does, printing each command: creates two namespaces joined by a veth pair, starts a
pywg daemon in each (exactly as `wireguard-go IFNAME` would be started), configures both
with the real `wg` tool (`wg setconf` of a configuration file) and `ip`, pings across the
tunnel over IPv4 and IPv6, runs a short iperf3, shows `wg show` on both sides, and removes
everything it made, also on Ctrl-C. It is built from tests/harness, as the integration
tests and `make bench` are. Needs root; without it, it runs the in-process walkthrough of
the protocol instead (python -m tests.scenario.walkthrough).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from tests.harness import files, links, netns, procs, topology, wait, wg
from tests.harness.impls import PYWG
from tests.harness.probes import listening
from tests.harness.topology import Node, Topology

IPERF_PORT = 5201
IPERF_START_TIMEOUT_S = 10.0
STEP_TIMEOUT_S = 30.0


def say(text: str) -> None:
    print(text, flush=True)


def step(title: str) -> None:
    say(f"\n== {title}")


def start_daemons(t: Topology) -> None:
    for node in t.sides():
        # Bare: the configuration is the next step's, with the standard tools.
        d = t.start_daemon(node, PYWG, env={"LOG_LEVEL": "info"}, bare=True)
        say(f"{node.name}: public key {d.keys.public}")


def config_file(me: Node, other: Node) -> str:
    return (f"[Interface]\nPrivateKey = {me.daemon.keys.private}\nListenPort = {me.port}\n\n"
            f"[Peer]\nPublicKey = {other.daemon.keys.public}\n"
            f"AllowedIPs = {other.inner4}/32, {other.inner6}/128\n"
            f"Endpoint = {other.endpoint(4)}\n")


def configure(t: Topology, workdir: Path) -> None:
    for me in t.sides():
        conf = files.write_private(workdir / f"{me.ifname}.conf", config_file(me, t.other(me)))
        netns.run(me.ns, ["wg", "setconf", me.ifname, str(conf)])
        links.configure(me.ns, me.ifname, f"{me.inner4}/24", f"{me.inner6}/64")


def iperf(a: Node, b: Node, seconds: int, workdir: Path) -> None:
    if shutil.which("iperf3") is None:
        say("(iperf3 is not installed: skipping the throughput run)")
        return
    step(f"iperf3: one TCP stream for {seconds} s, a -> b through the tunnel")
    server = procs.start(netns.exec_argv(b.ns, ["iperf3", "-s", "-1", "-p", str(IPERF_PORT)]),
                         workdir / "iperf3.log")
    try:
        wait.wait_for(lambda: listening(server.pid, IPERF_PORT), "the iperf3 server",
                      IPERF_START_TIMEOUT_S)
        done = netns.run(a.ns, ["iperf3", "-c", b.inner4, "-p", str(IPERF_PORT),
                                "-t", str(seconds), "-J"], timeout=seconds + STEP_TIMEOUT_S,
                         quiet=True)
        end = json.loads(done.stdout)["end"]
        sent, received = end["sum_sent"], end["sum_received"]
        say(f"sent {sent['bytes'] / 1e6:.0f} MB at {sent['bits_per_second'] / 1e9:.2f} Gbit/s,"
            f" received {received['bits_per_second'] / 1e9:.2f} Gbit/s,"
            f" {sent.get('retransmits', 0)} TCP retransmits")
    finally:
        procs.stop(server)


def traffic(t: Topology, seconds: int, workdir: Path) -> None:
    a, b = t.sides()
    step("Ping through the tunnel (the first packet starts the handshake)")
    netns.run(a.ns, ["ping", "-c", "3", "-i", "0.3", "-W", "5", b.inner4])
    netns.run(b.ns, ["ping", "-6", "-c", "3", "-i", "0.3", "-W", "5", a.inner6])
    iperf(a, b, seconds, workdir)


def demo(seconds: int) -> None:
    with files.workdir("demo") as workdir, procs.echoing():
        step("Two network namespaces joined by a veth pair")
        with topology.pair("pywg-demo", workdir) as t:
            try:
                step("Keys, and a pywg daemon in each namespace")
                start_daemons(t)
                step("Configuration with the standard tools (wg setconf, ip)")
                configure(t, workdir)
                traffic(t, seconds, workdir)
                step("wg show on both sides")
                for node in t.sides():
                    wg.wg(node.ns, "show", node.ifname)
                step("What the daemons logged")
                for node in t.sides():
                    say(node.daemon.log().rstrip())
            finally:
                step("Cleaning up")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=3, help="iperf3 duration (default 3)")
    args = parser.parse_args(argv)
    if not procs.is_root():
        say("The live demo needs root (network namespaces and TUN devices).\n"
            "Showing the in-process protocol walkthrough instead:\n")
        from tests.scenario import walkthrough

        return walkthrough.main()
    for tool in ("ip", "wg"):
        if shutil.which(tool) is None:
            say(f"the demo needs `{tool}` (Debian: iproute2, wireguard-tools)")
            return 1
    procs.install_handlers()
    try:
        demo(args.seconds)
    except procs.HarnessError as e:
        say(f"\ndemo failed: {e}")
        return 1
    except KeyboardInterrupt:
        say("\ninterrupted")
        return 130
    finally:
        procs.cleanup()
    say("\ndone")
    return 0


if __name__ == "__main__":
    sys.exit(main())
