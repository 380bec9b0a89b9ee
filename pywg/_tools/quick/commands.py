"""`pywg up`, `down`, `save` and `strip`: wg-quick(8)'s commands, with pywg as the device.

up, in wg-quick's order (its function names in brackets):
  1. the file is read and checked whole, and the interface must not exist;
  2. PreUp hooks;
  3. `pywg IFNAME` starts the daemon, which returns once the TUN and the UAPI socket
     exist [add_if];
  4. the file's wg(8) part goes to the daemon as one UAPI `set` [set_config, addconf];
  5. addresses [add_addr]; MTU and link up [set_mtu_up]; DNS [set_dns];
  6. a route for every allowed IP of every peer, and for a /0 a full tunnel [add_route,
     add_default]; see pywg._tools.quick.plan;
  7. PostUp hooks.
Each step that leaves something behind first records how to undo it; when a later step
fails, or SIGINT or SIGTERM arrives, the records run backwards and the error is reported.
Deleting the link takes its addresses and routes with it, and ends the daemon.

down [cmd_down]: the interface must be served by a WireGuard daemon; PreDown hooks;
SaveConfig; the full tunnel's rules; the link (pywg waits, bounded, for the daemon to
exit); DNS; the nftables tables; PostDown hooks. Like wg-quick's, it works from the file
and the live state, not from a record of `up`, so it also takes down what wg-quick brought
up, and wg-quick takes down what pywg brought up.

Where pywg differs from wg-quick, on purpose:
- the daemon is always pywg (wg-quick tries the kernel module first);
- the whole file is checked before anything runs, PreUp hooks included;
- a failed `up` undoes exactly what it did; `down` removes the full tunnel's own rules and
  one `suppress_prefixlength 0` rule per family it routed, where wg-quick removes every
  such rule (another full tunnel's too) and every rule pointing at the table;
- `down` returns once the daemon has gone, so that `up` can follow at once;
- DNS without resolvconf, and a full tunnel without nft, stop `up` with a message saying
  so (wg-quick fails on the missing command, or falls back to iptables);
- no sudo: root is required, with a message; `strip` needs only to read the file.
"""

from __future__ import annotations

import functools
import glob
import os
import shlex
import socket
import subprocess
import sys
import time
from collections.abc import Callable

from pywg._config.model import AllowedIP, Change, SetFwmark
from pywg._constants import (
    QUICK_DAEMON_EXIT_WAIT_S,
    QUICK_POLL_S,
    QUICK_RT_TABLES_DIRS,
    QUICK_RT_TABLES_FILES,
)
from pywg._tools.conffile import QuickConfig
from pywg._tools.quick import dns, firewall
from pywg._tools.quick.conf import QuickFile, load, locate, read_text, strip
from pywg._tools.quick.hooks import execute_hooks
from pywg._tools.quick.netlink import Netlink
from pywg._tools.quick.plan import (
    DefaultRoute,
    Interface,
    MainRoute,
    Route,
    RouteAction,
    Rule,
    auto_mtu,
    covered,
    family_of,
    first_free_table,
    full_tunnel_rules,
    mtu_endpoint_ip,
    nft_family,
    nft_script,
    ntop,
    plan_routes,
    resolve_table,
)
from pywg._tools.quick.report import QuickError, read_system_file, step, warn
from pywg._tools.quick.saveconfig import format_showconf, saved_config, write_config
from pywg._tools.uapi_client import get, is_wireguard_interface, set_device

__all__ = ["cmd_down", "cmd_save", "cmd_strip", "cmd_up", "daemon_argv"]

# Variables that describe one particular start of a daemon: never passed on to ours.
_DAEMON_ENV_DROPPED = ("WG_TUN_FD", "WG_UAPI_FD", "WG_PROCESS_FOREGROUND", "PYWG_METRICS_FD")


def daemon_argv(ifname: str) -> list[str]:
    """`pywg IFNAME`, with the Python that runs us (a venv's, say)."""
    return [sys.executable, "-m", "pywg", ifname]


def _require_root(verb: str) -> None:
    if os.geteuid() != 0:
        raise QuickError(f"`pywg {verb}' must be run as root")


def _rt_tables_texts() -> list[str]:
    paths = list(QUICK_RT_TABLES_FILES)
    for directory in QUICK_RT_TABLES_DIRS:
        paths += sorted(glob.glob(os.path.join(directory, "*.conf")))
    texts = (read_system_file(path) for path in paths)
    return [text for text in texts if text is not None]


def _table_id(quick: QuickConfig) -> int | None:
    """The file's Table as a number, found before anything changes (a bad name stops `up`
    at once); None for off, auto or none."""
    table = quick.table
    if table is None or table in ("off", "auto"):
        return None
    return resolve_table(table, _rt_tables_texts())


def _allowed_ips(ifname: str) -> list[AllowedIP]:
    return [n for peer in get(ifname).config.peers for n in peer.allowed_ips]


def _wait_daemon_gone(ifname: str) -> None:
    deadline = time.monotonic() + QUICK_DAEMON_EXIT_WAIT_S
    while is_wireguard_interface(ifname):
        if time.monotonic() >= deadline:
            warn(f"Warning: the daemon of {ifname} still answers on its socket")
            return
        time.sleep(QUICK_POLL_S)


def _delete_link(nl: Netlink, ifname: str) -> None:
    index = nl.link_index(ifname)
    if index is not None:
        step(f"ip link delete dev {ifname}")
        nl.delete_link(index, f"cannot delete {ifname}")
    _wait_daemon_gone(ifname)


def _delete_rules(nl: Netlink, rule: Rule, *, count: int | None = None) -> None:
    """Delete the rules equal to `rule` (at most `count` of them)."""
    matching = [prio for prio, r in nl.rules(rule.family) if r == rule]
    for priority in matching[:count]:
        step(rule.describe("delete"))
        nl.delete_rule(rule, priority, f"cannot delete `{rule.describe()}'")


class _Undo:
    """What `up` has done so far, as the steps that take it back, newest last."""

    def __init__(self) -> None:
        self._steps: list[Callable[[], None]] = []

    def push(self, undo: Callable[[], None]) -> None:
        self._steps.append(undo)

    def unwind(self) -> None:
        while self._steps:
            undo = self._steps.pop()
            try:
                undo()
            except (QuickError, OSError) as e:
                warn(f"Warning: while undoing: {e}")


class _Up:
    def __init__(self, qf: QuickFile, nl: Netlink, table_id: int | None) -> None:
        self.qf = qf
        self.ifname = qf.ifname
        self.quick = qf.conf.quick
        self.nl = nl
        self.table_id = table_id
        self.undo = _Undo()
        self.index = 0

    def run(self) -> None:
        try:
            self._run()
        except BaseException:
            self.undo.unwind()
            raise

    def _run(self) -> None:
        execute_hooks(self.quick.pre_up, self.ifname)
        self.add_if()
        self.set_config()
        for address in self.quick.addresses:
            self.add_addr(address)
        self.set_mtu_up()
        if dns.set_dns(self.ifname, self.quick.dns, self.quick.dns_search):
            self.undo.push(lambda: dns.unset_dns(self.ifname))
        for action in plan_routes(self.quick.table, self.table_id,
                                  _allowed_ips(self.ifname)):
            self.add_route(action)
        execute_hooks(self.quick.post_up, self.ifname)

    def add_if(self) -> None:
        self.undo.push(lambda: _delete_link(self.nl, self.ifname))
        argv = daemon_argv(self.ifname)
        env = {k: v for k, v in os.environ.items() if k not in _DAEMON_ENV_DROPPED}
        env["PYWG_CONFIG_FILE"] = os.path.abspath(self.qf.path)  # friendly peer names
        step(shlex.join(argv))
        try:
            status = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL,
                                    check=False).returncode
        except OSError as e:
            raise QuickError(f"cannot start the pywg daemon: {e.strerror}") from e
        index = self.nl.link_index(self.ifname)
        if status != 0 or index is None:
            raise QuickError(f"the pywg daemon for {self.ifname} did not start "
                             f"(exit status {status})")
        self.index = index

    def set_config(self) -> None:
        step(f"wg addconf {self.ifname} <(pywg strip {shlex.quote(self.qf.path)})")
        set_device(self.ifname, self.qf.conf.change(replace=False))

    def add_addr(self, address: Interface) -> None:
        flag = "-4" if address.version == 4 else "-6"
        shown = f"{ntop(address.ip)}/{address.network.prefixlen}"
        what = f"ip {flag} address add {shown} dev {self.ifname}"
        step(what)
        self.nl.add_address(self.index, address, what)

    def set_mtu_up(self) -> None:
        mtu = self.quick.mtu
        if mtu is None:
            peers = get(self.ifname).config.peers
            ips = [ip for p in peers if (ip := mtu_endpoint_ip(p.endpoint)) is not None]
            mtu = auto_mtu((self.nl.route_mtu(ip) for ip in ips),
                           self.nl.default_route_mtu())
        what = f"ip link set mtu {mtu} up dev {self.ifname}"
        step(what)
        self.nl.set_mtu_up(self.index, mtu, what)

    def add_route(self, action: RouteAction) -> None:
        if isinstance(action, DefaultRoute):
            self.add_default(action.network)
            return
        if isinstance(action, MainRoute):
            family = family_of(action.network)
            if covered(action.network, self.nl.main_routes_via(self.index, family)):
                return
            action = Route(action.network)
        self._add(action)

    def _add(self, route: Route) -> None:
        what = route.describe(self.ifname)
        step(what)
        self.nl.add_route(route, self.index, what)

    def get_fwmark(self) -> int | None:
        return get(self.ifname).config.fwmark or None

    def add_default(self, network: AllowedIP) -> None:
        table = self.get_fwmark()
        if table is None:
            table = first_free_table(self.nl.used_tables())
            step(f"wg set {self.ifname} fwmark {table}")
            set_device(self.ifname, Change(device=(SetFwmark(table),)))
        family = family_of(network)
        self._add(Route(network, table))
        for rule in full_tunnel_rules(family, table):
            step(rule.describe())
            self.nl.add_rule(rule, f"cannot add `{rule.describe()}'")
            self.undo.push(functools.partial(_delete_rules, self.nl, rule, count=1))
        script = nft_script(self.ifname, family, table, self.nl.addresses(self.index, family))
        if family == socket.AF_INET:
            firewall.set_src_valid_mark()
        firewall.add_nft_rules(script)  # one nft transaction: all of it or nothing
        self.undo.push(lambda: firewall.delete_nft_table(nft_family(family), self.ifname))


def cmd_up(arg: str) -> None:
    _require_root("up")
    qf = load(arg)
    table_id = _table_id(qf.conf.quick)
    with Netlink() as nl:
        if nl.link_index(qf.ifname) is not None:
            raise QuickError(f"`{qf.ifname}' already exists")
        _Up(qf, nl, table_id).run()


def _require_wireguard(ifname: str) -> None:
    if not is_wireguard_interface(ifname):
        raise QuickError(f"`{ifname}' is not a WireGuard interface")


def _save_config(qf: QuickFile, nl: Netlink) -> None:
    step(f"wg showconf {qf.ifname}")
    index = nl.link_index(qf.ifname)
    if index is None:
        raise QuickError(f"`{qf.ifname}' does not exist")
    servers, search = dns.current_dns(qf.ifname)
    mtu = nl.link_mtu(index) if qf.conf.quick.mtu is not None else None
    text = saved_config(qf.conf.quick, nl.addresses(index), servers, search, mtu,
                        format_showconf(get(qf.ifname)))
    write_config(qf.path, text)


def _del_if(qf: QuickFile, nl: Netlink) -> None:
    snapshot = get(qf.ifname)
    mark = snapshot.config.fwmark
    zero = {family_of(n) for p in snapshot.config.peers for n in p.allowed_ips
            if n.prefixlen == 0}
    if qf.conf.quick.table in (None, "auto") and mark and zero:
        for family in (socket.AF_INET, socket.AF_INET6):
            tunnel_rule, suppress_rule = full_tunnel_rules(family, mark)
            _delete_rules(nl, tunnel_rule)
            if family in zero:
                _delete_rules(nl, suppress_rule, count=1)
    _delete_link(nl, qf.ifname)


def _best_effort(action: Callable[[], None]) -> None:
    try:
        action()
    except (QuickError, OSError) as e:
        warn(f"Warning: {e}")


def cmd_down(arg: str) -> None:
    _require_root("down")
    qf = load(arg)
    _require_wireguard(qf.ifname)
    quick = qf.conf.quick
    execute_hooks(quick.pre_down, qf.ifname)
    with Netlink() as nl:
        if quick.save_config:
            _save_config(qf, nl)
        _del_if(qf, nl)
    # As wg-quick's `unset_dns || true` and `remove_firewall || true`.
    if quick.dns:
        _best_effort(lambda: dns.unset_dns(qf.ifname))
    _best_effort(lambda: firewall.remove_firewall(qf.ifname))
    execute_hooks(quick.post_down, qf.ifname)


def cmd_save(arg: str) -> None:
    _require_root("save")
    qf = load(arg)
    _require_wireguard(qf.ifname)
    with Netlink() as nl:
        _save_config(qf, nl)


def cmd_strip(arg: str) -> None:
    path, _ = locate(arg)
    text = strip(read_text(path))
    sys.stdout.buffer.write(text.encode("utf-8", "surrogateescape"))
    sys.stdout.flush()
