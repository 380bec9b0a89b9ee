"""A real tunnel between an emulated pywg and Debian's native wireguard-go (root).

Run by `make test-embedded` for each emulated target (skipped elsewhere): PYWG_EMBEDDED_ROOT
is an unpacked emulated Debian with pywg installed from the wheelhouse. The pywg daemon runs
chrooted there, through qemu-user, in network namespace A; wireguard-go runs natively in B;
a veth pair joins them. Both are configured with the machine's `wg`. Then ping in both
directions and a 10 MB TCP transfer each way, whose SHA-256 must match at both ends, and
both sides' `wg show` must report the handshake and the bytes.

The daemon's resident memory is recorded (PYWG_EMBEDDED_RESULTS): idle, with its one peer
configured and before any traffic. Under qemu-user that is the emulator's process, so it
includes qemu's own memory and its translated code, and reads higher than on a device.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.embedded.rootfs import VENV, chroot_command

ROOT = os.environ.get("PYWG_EMBEDDED_ROOT", "")
pytestmark = pytest.mark.skipif(not ROOT or os.geteuid() != 0,
                                reason="run by make test-embedded, as root")

XFER = Path(__file__).with_name("xfer.py")
NBYTES = 10 * 1024 * 1024
START_TIMEOUT = 180.0  # an emulated Python importing uvloop, pynacl and cffi is slow
TRANSFER_TIMEOUT = 300.0
RUN = Path("/run/wireguard")
QEMU_LOG = "/tmp/qemu-unimplemented.log"


def sh(args: list[str], *, ns: str | None = None, timeout: float = 30,
       check: bool = True) -> str:
    full = ["ip", "netns", "exec", ns, *args] if ns else args
    proc = subprocess.run(full, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{shlex.join(full)}: exit {proc.returncode}: {proc.stderr}")
    return proc.stdout


def _tail(log: Path, n: int = 3000) -> str:
    return log.read_text(errors="replace")[-n:]  # qemu's strace output may be binary


def _wait_for(path: Path, proc: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"daemon exited {proc.returncode}:\n{_tail(log)}")
        if time.monotonic() > deadline:
            raise AssertionError(f"no {path} after {timeout:.0f} s:\n{_tail(log)}")
        time.sleep(0.2)


@contextlib.contextmanager
def _daemon(argv: list[str], ns: str, ifname: str, log: Path,
            env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(["ip", "netns", "exec", ns, *argv], stdout=out,
                                stderr=subprocess.STDOUT, env={**os.environ, **env})
    try:
        _wait_for(RUN / f"{ifname}.sock", proc, log, START_TIMEOUT)
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


@pytest.fixture
def pair() -> Iterator[tuple[str, str]]:
    tag = secrets.token_hex(3)
    a, b = f"pwemA{tag}", f"pwemB{tag}"
    for ns in (a, b):
        sh(["ip", "netns", "add", ns])
    try:
        for ns in (a, b):
            sh(["ip", "link", "set", "lo", "up"], ns=ns)
        sh(["ip", "link", "add", "veA" + tag, "netns", a, "type", "veth", "peer", "name",
            "veB" + tag, "netns", b])
        sh(["ip", "addr", "add", "192.168.93.1/24", "dev", "veA" + tag], ns=a)
        sh(["ip", "addr", "add", "192.168.93.2/24", "dev", "veB" + tag], ns=b)
        sh(["ip", "link", "set", "veA" + tag, "up"], ns=a)
        sh(["ip", "link", "set", "veB" + tag, "up"], ns=b)
        yield a, b
    finally:
        for ns in (a, b):
            sh(["ip", "netns", "del", ns], check=False)


def _key() -> tuple[str, str]:
    private = sh(["wg", "genkey"]).strip()
    public = subprocess.run(["wg", "pubkey"], input=private, capture_output=True, text=True,
                            check=True).stdout.strip()
    return private, public


def _configure(ns: str, ifname: str, private: str, port: int, peer: str, allowed: str,
               endpoint: str, address: str, tmp: Path) -> None:
    keyfile = tmp / f"{ifname}.key"
    keyfile.write_text(private + "\n")
    keyfile.chmod(0o600)
    sh(["wg", "set", ifname, "private-key", str(keyfile), "listen-port", str(port), "peer",
        peer, "allowed-ips", allowed, "endpoint", endpoint], ns=ns)
    sh(["ip", "addr", "add", address, "dev", ifname], ns=ns)
    sh(["ip", "link", "set", ifname, "up"], ns=ns)


def _transfer(src_ns: str, dst_ns: str, dst_ip: str, port: int, seed: int) -> None:
    receiver = subprocess.Popen(["ip", "netns", "exec", dst_ns, sys.executable, str(XFER),
                                 "recv", str(port), str(TRANSFER_TIMEOUT)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        sent = ""
        for _ in range(50):  # the receiver needs a moment to listen
            proc = subprocess.run(["ip", "netns", "exec", src_ns, sys.executable, str(XFER),
                                   "send", dst_ip, str(port), str(NBYTES), str(seed),
                                   str(TRANSFER_TIMEOUT)],
                                  capture_output=True, text=True, timeout=TRANSFER_TIMEOUT + 30)
            if proc.returncode == 0:
                sent = proc.stdout.strip()
                break
            if "Connection refused" not in proc.stderr:
                raise AssertionError(f"send: {proc.stderr}")
            time.sleep(0.2)
        got, err = receiver.communicate(timeout=TRANSFER_TIMEOUT)
    finally:
        if receiver.poll() is None:
            receiver.kill()
            receiver.wait(timeout=10)
    assert sent, f"could not connect to {dst_ip}:{port}: {err}"
    assert got.strip() == sent, f"sent {sent}, received {got.strip()} ({err})"
    assert sent.split()[0] == str(NBYTES)


def _transfer_bytes(show: str) -> tuple[int, int]:
    # `wg show IF transfer`: "<peer>\t<rx>\t<tx>"
    _, rx, tx = show.split()
    return int(rx), int(tx)


def test_ping_and_10mb_both_ways(pair: tuple[str, str], tmp_path: Path) -> None:
    ns_a, ns_b = pair
    tag = ns_a[-6:]
    if_a, if_b = f"wgemA{tag}", f"wgemB{tag}"
    (priv_a, pub_a), (priv_b, pub_b) = _key(), _key()
    cpu = os.environ.get("PYWG_EMBEDDED_QEMU_CPU", "")
    # qemu logs what it does not implement (a syscall, an ioctl, a socket option or an
    # ancillary-data type it passes through untranslated) to this file in the target.
    env = {"LOG_LEVEL": "verbose", "QEMU_LOG": "unimp", "QEMU_LOG_FILENAME": QEMU_LOG}
    env |= {"QEMU_CPU": cpu} if cpu else {}
    # Diagnostics: more for the daemon's environment, e.g. QEMU_STRACE=1.
    env |= dict(kv.split("=", 1) for kv in os.environ.get("PYWG_EMBEDDED_DAEMON_ENV", "").split())
    pywg_argv = chroot_command(Path(ROOT), [f"{VENV}/bin/pywg", "-f", if_a],
                               {"PATH": f"{VENV}/bin:/usr/sbin:/usr/bin:/sbin:/bin", **env})
    results: dict[str, object] = {}
    with _daemon(pywg_argv, ns_a, if_a, tmp_path / "pywg.log", {}) as pywg, \
            _daemon(["wireguard-go", "-f", if_b], ns_b, if_b, tmp_path / "wggo.log", {}):
        _configure(ns_a, if_a, priv_a, 51820, pub_b, "10.93.0.2/32", "192.168.93.2:51821",
                   "10.93.0.1/24", tmp_path)
        _configure(ns_b, if_b, priv_b, 51821, pub_a, "10.93.0.1/32", "192.168.93.1:51820",
                   "10.93.0.2/24", tmp_path)
        time.sleep(2)
        results["idle_rss_kib"] = _rss_kib(pywg.pid)
        sh(["ping", "-c", "3", "-W", "10", "10.93.0.2"], ns=ns_a, timeout=60)
        sh(["ping", "-c", "3", "-W", "10", "10.93.0.1"], ns=ns_b, timeout=60)
        start = time.monotonic()
        _transfer(ns_a, ns_b, "10.93.0.2", 5001, seed=1)
        results["a_to_b_s"] = round(time.monotonic() - start, 1)
        start = time.monotonic()
        _transfer(ns_b, ns_a, "10.93.0.1", 5002, seed=2)
        results["b_to_a_s"] = round(time.monotonic() - start, 1)
        results["after_rss_kib"] = _rss_kib(pywg.pid)
        for ns, ifname in ((ns_a, if_a), (ns_b, if_b)):
            rx, tx = _transfer_bytes(sh(["wg", "show", ifname, "transfer"], ns=ns))
            assert rx > NBYTES and tx > NBYTES, (ifname, rx, tx)
            handshake = sh(["wg", "show", ifname, "latest-handshakes"], ns=ns).split()
            assert int(handshake[1]) > 0, ifname
        assert pywg.poll() is None, _tail(tmp_path / "pywg.log")
    results["log_tail"] = _tail(tmp_path / "pywg.log", 2000)
    keep = os.environ.get("PYWG_EMBEDDED_DAEMON_LOG")
    if keep:
        Path(keep).write_bytes((tmp_path / "pywg.log").read_bytes())
    unimp = Path(ROOT) / QEMU_LOG.lstrip("/")
    results["qemu_unimplemented"] = sorted(set(unimp.read_text(errors="replace").splitlines())) \
        if unimp.exists() else []
    out = os.environ.get("PYWG_EMBEDDED_RESULTS")
    if out:
        Path(out).write_text(json.dumps(results, indent=1))
