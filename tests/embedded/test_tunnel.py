"""A real tunnel between an emulated pywg and Debian's native wireguard-go (root).

Run by `make test-embedded` for each emulated target (skipped elsewhere): PYWG_EMBEDDED_ROOT
is a copy of an emulated Debian with pywg installed from the wheelhouse. The project's
harness (tests/harness) builds the pair: pywg on node a, run chrooted there through
qemu-user by a small launcher that keeps wireguard-go's command line; wireguard-go on node
b, natively; a veth between them; both configured with the machine's `wg`. Then ping in
both directions, a 10 MB TCP transfer each way whose SHA-256 must match at both ends, and
both sides' `wg show` must report a handshake and the bytes.

Recorded (PYWG_EMBEDDED_RESULTS): the daemon's resident memory idle, with its peer
configured and before any traffic (under qemu-user that is the emulator's process, so it
includes qemu's own memory and translated code), and what qemu logged as unimplemented.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

from tests.embedded.rootfs import VENV
from tests.harness import daemons, probes, transfer
from tests.harness.impls import WGGO, Impl
from tests.harness.topology import tunnel

ROOT = os.environ.get("PYWG_EMBEDDED_ROOT", "")
TARGET = os.environ.get("PYWG_EMBEDDED_TARGET", "emulated")
pytestmark = pytest.mark.skipif(not ROOT or os.geteuid() != 0,
                                reason="run by make test-embedded, as root")

REPO = Path(__file__).resolve().parents[2]
NBYTES = 10 * 1024 * 1024
START_TIMEOUT_S = 180.0  # an emulated Python importing uvloop, pynacl and cffi is slow
TRANSFER_TIMEOUT_S = 300.0
QEMU_LOG = "/tmp/qemu-unimplemented.log"  # inside the target
# What the launcher hands on into the target's clean environment.
FORWARD = ("LOG_LEVEL", "WG_", "PYWG_", "QEMU_")

LAUNCHER = '''#!{python}
"""pywg in the emulated system at {root}, with wireguard-go's command line."""
import os
import sys

sys.path.insert(0, {repo!r})
from tests.embedded.rootfs import chroot_command

env = {{k: v for k, v in os.environ.items()
       if k.startswith({forward!r}) and not k.startswith("PYWG_EMBEDDED_")}}
env["PATH"] = "{venv}/bin:/usr/sbin:/usr/bin:/sbin:/bin"
argv = chroot_command({root!r}, ["{venv}/bin/pywg", *sys.argv[1:]], env)
os.execvp("unshare", ["unshare", "-m", "--propagation", "private", *argv])
'''


def _emulated_pywg(where: Path) -> Impl:
    launcher = where / f"pywg-{TARGET}"
    launcher.write_text(LAUNCHER.format(python=sys.executable, root=ROOT, repo=str(REPO),
                                        forward=FORWARD, venv=VENV))
    launcher.chmod(0o755)
    return Impl(f"pywg-{TARGET}"[:16], (str(launcher),), frozenset({"pywg"}))


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


def test_ping_and_10mb_both_ways(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(daemons, "START_TIMEOUT_S", START_TIMEOUT_S)
    pywg = _emulated_pywg(tmp_path)
    env = {"LOG_LEVEL": "verbose", "QEMU_LOG": "unimp", "QEMU_LOG_FILENAME": QEMU_LOG}
    cpu = os.environ.get("PYWG_EMBEDDED_QEMU_CPU", "")
    env |= {"QEMU_CPU": cpu} if cpu else {}
    # Diagnostics: more for the daemon's environment, e.g. QEMU_STRACE=1.
    env |= dict(kv.split("=", 1) for kv in os.environ.get("PYWG_EMBEDDED_DAEMON_ENV", "").split())
    results: dict[str, object] = {}
    with tunnel((pywg, WGGO), "embedded", tmp_path / "logs", foreground=True,
                env_all=env) as t:
        a, b = t.sides()
        time.sleep(2)
        results["idle_rss_kib"] = _rss_kib(a.daemon.pid)
        probes.ping(a.ns, b.inner4, deadline=30)
        probes.ping(b.ns, a.inner4, deadline=30)
        start = time.monotonic()
        transfer.checked_transfer(a.ns, b.ns, b.inner4, NBYTES, timeout=TRANSFER_TIMEOUT_S)
        results["a_to_b_s"] = round(time.monotonic() - start, 1)
        start = time.monotonic()
        transfer.checked_transfer(b.ns, a.ns, a.inner4, NBYTES, timeout=TRANSFER_TIMEOUT_S)
        results["b_to_a_s"] = round(time.monotonic() - start, 1)
        results["after_rss_kib"] = _rss_kib(a.daemon.pid)
        for node in (a, b):
            (peer,) = node.daemon.dump().peers.values()
            assert peer.rx > NBYTES and peer.tx > NBYTES, (node.name, peer)
            assert peer.latest_handshake > 0, (node.name, peer)
        assert a.daemon.alive(), a.daemon.why_dead()
        results["log_tail"] = a.daemon.log()[-2000:]
    unimplemented = Path(ROOT) / QEMU_LOG.lstrip("/")
    results["qemu_unimplemented"] = sorted(set(
        unimplemented.read_text(errors="replace").splitlines())) if unimplemented.exists() else []
    out = os.environ.get("PYWG_EMBEDDED_RESULTS")
    if out:
        Path(out).write_text(json.dumps(results, indent=1))
