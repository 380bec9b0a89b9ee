"""The TUN module against the real kernel: creation, MTU, adoption, moves and deletion."""

import errno
import os
import subprocess
import sys

import pytest

from pywg import _constants as constants
from pywg._driver.tun import Tun, TunError, get_mtu
from tests.harness import netns
from tests.harness.netns import namespace, unique
from tests.harness.skips import require_root


def _in_ns(ns: str, code: str) -> str:
    out = subprocess.run(
        netns.exec_argv(ns, [sys.executable, "-c", code]),
        capture_output=True, text=True, timeout=30, cwd=os.getcwd(),
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_invalid_names_are_refused():
    for bad in ("", "x" * 16, "a/b", "a b", ".."):
        with pytest.raises(TunError):
            Tun.create(bad)


def test_create_move_delete():
    require_root()
    name = unique("wgt")
    with namespace("tna") as ns_a, namespace("tnb") as ns_b:
        code = f"""
import os, subprocess
from pywg._driver.tun import Tun, get_mtu
t = Tun.create({name!r})
print(t.name, get_mtu(t.ifindex, t.name), t.exists(), Tun.adopt(os.dup(t.fd)).name)
print(open("/sys/class/net/{name}/tx_queue_len").read().strip())
subprocess.run(["ip", "link", "set", {name!r}, "netns", {ns_b!r}], check=True)
print(t.exists(), get_mtu(t.ifindex))
subprocess.run(["ip", "-n", {ns_b!r}, "link", "del", {name!r}], check=True)
print(t.exists())
try:
    os.read(t.fd, 2000)
except OSError as e:
    print(e.errno)
"""
        lines = _in_ns(ns_a, code).split("\n")
        assert lines[0] == f"{name} {constants.DEFAULT_MTU} True {name}"
        assert int(lines[1]) == constants.TUN_TX_QUEUE_LEN
        assert lines[2] == "True None"  # moved: the fd still works, the name is elsewhere
        assert lines[3] == "False"
        assert int(lines[4]) == errno.EBADFD
        assert "wgt" not in netns.run(ns_b, ["ip", "link"]).stdout
    assert get_mtu(10**6) is None
