"""`pywg up` / `pywg down` against a real peer (Debian's wireguard-go), judged by wg-quick.

    namespace A (client: `pywg up`)                  namespace B (server: wireguard-go)
    wgP.. 10.72.0.1 fd72::1                          wgB.. 10.72.0.2 fd72::2
    veth 10.71.0.1/32 mtu 1400,                ====  veth 10.71.0.2/24
      the default route goes through it              lo 192.0.2.77 2001:db8::77 (beyond)

The client reaches the server only through its default route, the one a full tunnel takes
over: the handshake then escapes the tunnel only by its fwmark. Besides traffic, the state
`pywg up` leaves (rules, routes, addresses, link, nftables, the device) must be exactly what
real wg-quick leaves for the same file, and each tool must take down what the other
brought up.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pywg._tools.quick.saveconfig import format_showconf
from pywg._tools.uapi_client import get
from tests.harness import daemons, files, links, netns, topology, wait, wg
from tests.harness.daemons import Daemon
from tests.harness.files import write_private
from tests.harness.impls import PYWG
from tests.harness.probes import ping
from tests.harness.skips import require_impls, require_root, require_tools
from tests.harness.topology import Node
from tests.harness.wg import KeyPair

BEYOND4, BEYOND6 = "192.0.2.77", "2001:db8::77"
CLIENT_LINK_MTU = 1400  # so that the automatic MTU (this minus 80) is not the default one
QUICK_TIMEOUT_S = 30.0
FULL_TUNNEL_MARK = "0xca6c"  # 51820, the first table wg-quick and pywg try


@dataclass
class Site:
    client: Node         # `pywg up` runs here; the harness starts no daemon on it
    far: Node            # the server, Debian's wireguard-go
    workdir: Path

    @property
    def ns(self) -> str:
        return self.client.ns

    @property
    def server(self) -> Daemon:
        return self.far.daemon


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    require_root()
    require_tools("wg", "wg-quick", "nft", "ping", "bash")
    _, server_impl = require_impls("pywg", "wggo")
    with files.workdir("pywg-quick") as work, topology.pair("pquick", work) as t:
        links.set_mtu(t.a.ns, t.a.veth, CLIENT_LINK_MTU)
        topology.default_route_only(t.a)
        # The state the tests compare includes the veth's link-local route, which appears
        # once its duplicate address detection is over: wait for that first.
        wait.wait_for(lambda: "tentative" not in netns.run(
            t.a.ns, ["ip", "-6", "address", "show", "dev", t.a.veth]).stdout,
            "the client veth's IPv6 addresses to settle")
        t.start_daemon(t.b, server_impl)
        links.configure(t.b.ns, "lo", f"{BEYOND4}/32", f"{BEYOND6}/128")
        yield Site(t.a, t.b, work)


@dataclass
class Client:
    name: str
    keys: KeyPair
    conf: Path
    daemon: Daemon


def _config(site: Site, keys: KeyPair, allowed: str, extra: str = "") -> str:
    return (f"[Interface]\nPrivateKey = {keys.private}\n"
            f"Address = {site.client.inner4}/24, {site.client.inner6}/64\n{extra}\n"
            f"[Peer]\nPublicKey = {site.server.keys.public}\n"
            f"Endpoint = {site.far.outer4}:{site.far.port}\nAllowedIPs = {allowed}\n")


@contextlib.contextmanager
def client(site: Site, allowed: str, extra: str = "") -> Iterator[Client]:
    """A configuration file for a fresh client the server knows; whatever happens, its
    interface and daemon are gone afterwards (namespace state is the test's to check)."""
    keys = KeyPair.generate()
    name = netns.unique("wgP")
    conf = write_private(site.workdir / f"{name}.conf", _config(site, keys, allowed, extra))
    site.server.wg("set", site.server.ifname, "peer", keys.public, "allowed-ips",
                   f"{site.client.inner4}/32,{site.client.inner6}/128")
    d = Daemon(PYWG, site.ns, name, site.workdir / "quick.log", keys=keys)
    try:
        yield Client(name, keys, conf, d)
    finally:
        d.stop()
        site.server.wg("set", site.server.ifname, "peer", keys.public, "remove")


def pywg(site: Site, verb: str, conf: Path, *, ok: bool = True,
         env: dict[str, str] | None = None) -> tuple[int, str]:
    """Run `pywg VERB CONF` in the client namespace: (exit status, its output)."""
    # Output to a file, not a pipe: the daemon `up` starts must not hold our pipe open.
    log = site.workdir / f"pywg-{verb}.out"
    with open(log, "wb") as out:
        done = subprocess.run(["ip", "netns", "exec", site.ns, *PYWG.argv, verb, str(conf)],
                              stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                              env=daemons.clean_env(**(env or {})), timeout=QUICK_TIMEOUT_S)
    text = log.read_text(errors="replace")
    if ok and done.returncode != 0:
        pytest.fail(f"pywg {verb} exited {done.returncode}:\n{text}")
    return done.returncode, text


def wg_quick(site: Site, verb: str, conf: Path, env: dict[str, str] | None = None) -> None:
    log = site.workdir / f"wg-quick-{verb}.out"
    env = daemons.clean_env(WG_QUICK_USERSPACE_IMPLEMENTATION=PYWG.binary, **(env or {}))
    with open(log, "wb") as out:
        done = subprocess.run(["ip", "netns", "exec", site.ns, "wg-quick", verb, str(conf)],
                              stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                              env=env, timeout=QUICK_TIMEOUT_S)
    if done.returncode != 0:
        pytest.fail(f"wg-quick {verb} exited {done.returncode}:\n{log.read_text()}")


def _out(site: Site, *argv: str) -> str:
    return netns.run(site.ns, list(argv)).stdout


_INDEX = re.compile(r"^\d+: ", re.MULTILINE)  # link numbers change with every new link
_LINK_LOCAL = re.compile(r"fe80::[0-9a-f:]+")  # a new link gets a new random one


def state(site: Site, name: str) -> dict[str, str]:
    """Everything up/down touches in the client namespace, as the standard tools show it."""
    snap = {
        "rules4": _out(site, "ip", "-d", "-4", "rule"),
        "rules6": _out(site, "ip", "-d", "-6", "rule"),
        "routes4": _out(site, "ip", "-d", "-4", "route", "show", "table", "all"),
        "routes6": _out(site, "ip", "-d", "-6", "route", "show", "table", "all"),
        "addresses": _INDEX.sub("", _out(site, "ip", "-d", "address", "show")),
        "nft": _out(site, "nft", "list", "ruleset"),
        "device": wg.wg(site.ns, "showconf", name, check=False).stdout,
        "src_valid_mark": _out(site, "sysctl", "-n", "net.ipv4.conf.all.src_valid_mark"),
    }
    snap = {k: _LINK_LOCAL.sub("fe80::(link-local)", v) for k, v in snap.items()}
    for key in ("routes4", "routes6"):  # dumped in address order, which the above hides
        snap[key] = "\n".join(sorted(snap[key].split("\n")))
    return snap


def assert_same(got: dict[str, str], want: dict[str, str], what: str, *,
                sysctl: bool = True) -> None:
    keys = [k for k in want if sysctl or k != "src_valid_mark"]
    for key in keys:
        assert got[key] == want[key], f"{what}: {key} differs"


def assert_gone(site: Site, c: Client) -> None:
    assert c.daemon.wait_exit(), "the daemon outlived its interface"
    assert not c.daemon.leftovers()


def test_split_tunnel_hooks_save_down(site: Site) -> None:
    hooks = site.workdir / "hooks"
    extra = "".join(f"{key} = echo {key} %i >> {hooks}\n"
                    for key in ("PreUp", "PostUp", "PreDown", "PostDown"))
    extra += "Table = auto\nSaveConfig = true\n"
    with client(site, f"{site.far.inner4}/32, {site.far.inner6}/128, {BEYOND4}/32",
                extra) as c:
        pywg(site, "up", c.conf)
        assert c.daemon.alive()
        link = _out(site, "ip", "link", "show", "dev", c.name)
        assert f"mtu {CLIENT_LINK_MTU - 80} " in link and ",UP," in link
        routes = _out(site, "ip", "route")
        assert f"{BEYOND4} dev {c.name} scope link" in routes
        assert f"{site.far.inner4} dev" not in routes, "its address's route covers it"
        ping(site.ns, site.far.inner4)
        ping(site.ns, site.far.inner6)
        ping(site.ns, BEYOND4)
        assert "fwmark" not in _out(site, "ip", "rule")
        assert format_showconf(get(c.name)) == wg.wg(site.ns, "showconf", c.name).stdout

        status, output = pywg(site, "up", c.conf, ok=False)
        assert status == 1 and f"`{c.name}' already exists" in output
        assert c.daemon.alive()

        # SaveConfig: what `pywg down` writes back is what `wg-quick save` writes.
        (site.workdir / "wq").mkdir()
        by_wg_quick = Path(shutil.copy(c.conf, site.workdir / "wq" / c.conf.name))
        wg_quick(site, "save", by_wg_quick)
        pywg(site, "down", c.conf)
        assert_gone(site, c)
        assert c.conf.read_text() == by_wg_quick.read_text()
        assert hooks.read_text().split("\n") == [
            f"{key} {c.name}" for key in ("PreUp", "PostUp", "PreDown", "PostDown")] + [""]


def test_full_tunnel(site: Site) -> None:
    with client(site, "0.0.0.0/0, ::/0") as c:
        before = state(site, c.name)
        pywg(site, "up", c.conf)
        assert wg.wg(site.ns, "show", c.name, "fwmark").stdout.strip() == FULL_TUNNEL_MARK
        for family in ("-4", "-6"):
            rules = _out(site, "ip", family, "rule")
            assert f"not from all fwmark {FULL_TUNNEL_MARK} lookup 51820" in rules
            assert "from all lookup main suppress_prefixlength 0" in rules
        assert f"wg-quick-{c.name}" in _out(site, "nft", "list", "tables")
        # Everything goes through the tunnel, except what carries the fwmark: the
        # tunnel's own UDP, so the endpoint stays reachable.
        server = site.far.outer4
        assert f"dev {c.name}" in _out(site, "ip", "route", "get", server)
        marked = _out(site, "ip", "route", "get", server, "mark", FULL_TUNNEL_MARK)
        assert f"dev {c.name}" not in marked and "dev va" in marked
        ping(site.ns, BEYOND4)
        ping(site.ns, BEYOND6)
        ping(site.ns, site.far.inner4)
        pywg(site, "down", c.conf)
        assert_gone(site, c)
        assert_same(state(site, c.name), before, "after down", sysctl=False)


# (AllowedIPs, more [Interface] lines); a fixed port, as the device's configuration is
# compared too.
DIFFERENTIAL = {
    # A full tunnel, routes the main table gets, the automatic MTU.
    "full-tunnel": ("0.0.0.0/0, ::/0, 198.51.100.0/24, 2001:db8:5::/48",
                    "ListenPort = 40011\n"),
    # Every route in a numbered table, /0 included (no policy routing then), a fixed MTU.
    "table-mtu": ("0.0.0.0/0, 198.51.100.0/24, fd99::/64",
                  "ListenPort = 40012\nTable = 1234\nMTU = 1300\n"),
}


@pytest.mark.parametrize("case", sorted(DIFFERENTIAL))
def test_same_state_as_wg_quick_and_each_takes_down_the_other(site: Site, case: str) -> None:
    allowed, extra = DIFFERENTIAL[case]
    with client(site, allowed, extra) as c:
        baseline = state(site, c.name)
        wg_quick(site, "up", c.conf)
        by_wg_quick = state(site, c.name)
        pywg(site, "down", c.conf)
        assert_gone(site, c)
        assert_same(state(site, c.name), baseline, "pywg down after wg-quick up",
                    sysctl=False)
        pywg(site, "up", c.conf)
        assert_same(state(site, c.name), by_wg_quick, "pywg up against wg-quick up")
        wg_quick(site, "down", c.conf)
        assert c.daemon.wait_exit(), "the daemon outlived `wg-quick down`"
        assert_same(state(site, c.name), baseline, "wg-quick down after pywg up",
                    sysctl=False)


def test_bad_line_named_and_nothing_done(site: Site) -> None:
    marker = site.workdir / "pre-up-ran"
    with client(site, f"{site.far.inner4}/32") as c:
        lines = c.conf.read_text().split("\n")
        lines.insert(3, f"PreUp = touch {marker}")  # becomes line 4
        bad = lines.index(f"AllowedIPs = {site.far.inner4}/32") + 1
        lines[bad - 1] = "AllowedIPs = 10.72.0.300/32"
        c.conf.write_text("\n".join(lines))
        before = state(site, c.name)
        status, output = pywg(site, "up", c.conf, ok=False)
        assert status == 1
        assert f"line {bad}:" in output and str(c.conf) in output
        assert not marker.exists(), "a PreUp hook ran for a file that does not parse"
        assert_gone(site, c)
        assert_same(state(site, c.name), before, "after a refused file")


def test_failure_after_start_undoes_everything(site: Site) -> None:
    with client(site, "0.0.0.0/0, ::/0", "PostUp = false\n") as c:
        before = state(site, c.name)
        status, output = pywg(site, "up", c.conf, ok=False)
        assert status == 1 and "hook exited with status 1: false" in output
        assert_gone(site, c)
        assert_same(state(site, c.name), before, "after a failed up", sysctl=False)


def test_dns_through_resolvconf_as_wg_quick(site: Site) -> None:
    """resolvconf is a system tool, not a peer: a stand-in records how each tool calls it,
    and pywg must call it as wg-quick does (Table = off: no routes at all)."""
    fake = site.workdir / "fakebin"
    fake.mkdir()
    calls = site.workdir / "resolvconf-calls"
    script = fake / "resolvconf"
    script.write_text(f'#!/bin/sh\necho "resolvconf $*" >> {calls}\n'
                      f'if [ "$1" = -a ]; then cat >> {calls}; fi\n')
    script.chmod(0o755)
    path = {"PATH": f"{fake}:{os.environ['PATH']}"}
    extra = "DNS = 10.72.0.53, fd72::53, example.com, corp\nTable = off\nListenPort = 40013\n"
    with client(site, "0.0.0.0/0, ::/0", extra) as c:
        baseline = state(site, c.name)
        wg_quick(site, "up", c.conf, env=path)
        by_wg_quick = state(site, c.name)
        wg_quick(site, "down", c.conf, env=path)
        assert c.daemon.wait_exit(), "the daemon outlived `wg-quick down`"
        wg_quick_calls = calls.read_text()
        calls.unlink()
        assert "nameserver 10.72.0.53\n" in wg_quick_calls
        pywg(site, "up", c.conf, env=path)
        assert_same(state(site, c.name), by_wg_quick, "pywg up against wg-quick up")
        pywg(site, "down", c.conf, env=path)
        assert_gone(site, c)
        assert calls.read_text() == wg_quick_calls
        assert_same(state(site, c.name), baseline, "after down", sysctl=False)
        if shutil.which("resolvconf") is None:
            status, output = pywg(site, "up", c.conf, ok=False)
            assert status == 1 and "resolvconf(8) is not installed" in output
            assert_gone(site, c)
            assert_same(state(site, c.name), baseline, "after a refused up", sysctl=False)


def test_sigterm_during_up_undoes_everything(site: Site) -> None:
    started = site.workdir / "post-up-started"
    extra = f"PostUp = touch {started}; sleep 60\n"
    with client(site, "0.0.0.0/0, ::/0", extra) as c:
        before = state(site, c.name)
        with open(site.workdir / "pywg-sigterm.out", "wb") as out:
            proc = subprocess.Popen(
                ["ip", "netns", "exec", site.ns, *PYWG.argv, "up", str(c.conf)], stdout=out,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=daemons.clean_env())
        try:
            wait.wait_for(lambda: started.exists() or proc.poll() is not None,
                          "the PostUp hook to start", QUICK_TIMEOUT_S)
            assert proc.poll() is None, "pywg up ended before its hook"
            assert c.daemon.alive() and "fwmark" in _out(site, "ip", "rule")
            proc.terminate()
            assert proc.wait(timeout=QUICK_TIMEOUT_S) == 128 + 15
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=QUICK_TIMEOUT_S)
        assert_gone(site, c)
        assert_same(state(site, c.name), before, "after SIGTERM", sysctl=False)
