"""DNS for the interface, through resolvconf(8) as wg-quick does.

The file's DNS servers (and search domains) are handed to `resolvconf -a IFACE -m 0 -x`
(an exclusive record at the top), and taken back with `resolvconf -d IFACE -f`. IFACE is
the interface name, prefixed as resolvconf's interface-order file asks (its first `NAME*`
pattern gives `NAME.`). Without resolvconf there is no way to set DNS that wg-quick would
use, and going on without it would leak queries past the tunnel, so `up` stops and says so.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
from collections.abc import Sequence

from pywg._config.model import IPAddress, format_ip
from pywg._constants import QUICK_RESOLVCONF_ORDER, QUICK_RESOLVCONF_RUN_DIR
from pywg._tools.quick.report import QuickError, read_system_file, step

__all__ = [
    "current_dns",
    "resolvconf_iface",
    "resolvconf_input",
    "resolvconf_prefix",
    "resolvconf_record",
    "set_dns",
    "unset_dns",
]

_ORDER_PATTERN = re.compile(r"([A-Za-z0-9-]+)\*")
_NAMESERVER = re.compile(r"nameserver ([a-zA-Z0-9_=+:%.-]+)")


def resolvconf_prefix(interface_order: str) -> str:
    """The prefix from the text of resolvconf's interface-order file ("" if none)."""
    for line in interface_order.split("\n"):
        match = _ORDER_PATTERN.fullmatch(line)
        if match is not None:
            return f"{match.group(1)}."
    return ""


def resolvconf_iface(ifname: str, order_path: str = QUICK_RESOLVCONF_ORDER) -> str:
    return resolvconf_prefix(read_system_file(order_path) or "") + ifname


def resolvconf_input(servers: Sequence[IPAddress], search: Sequence[str]) -> str:
    lines = [f"nameserver {format_ip(s)}" for s in servers]
    if search:
        lines.append(f"search {' '.join(search)}")
    return "".join(line + "\n" for line in lines)


def _resolvconf(args: list[str], stdin: str | None) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(["resolvconf", *args], input=stdin, text=True, check=False)
    except OSError as e:
        raise QuickError(f"cannot run resolvconf: {e.strerror}") from e


def set_dns(ifname: str, servers: Sequence[IPAddress], search: Sequence[str]) -> bool:
    """Register the servers; False when there are none (search domains alone: nothing,
    as wg-quick)."""
    if not servers:
        return False
    if shutil.which("resolvconf") is None:
        raise QuickError("DNS is set, but resolvconf(8) is not installed: install openresolv "
                         "or resolvconf (or systemd-resolved's), or drop DNS from the file")
    iface = resolvconf_iface(ifname)
    step(f"resolvconf -a {iface} -m 0 -x")
    if _resolvconf(["-a", iface, "-m", "0", "-x"], resolvconf_input(servers, search)).returncode:
        raise QuickError(f"resolvconf refused the DNS settings of {iface}")
    return True


def unset_dns(ifname: str) -> None:
    """Take the record back; quietly nothing if there is no resolvconf."""
    if shutil.which("resolvconf") is None:
        return
    iface = resolvconf_iface(ifname)
    step(f"resolvconf -d {iface} -f")
    _resolvconf(["-d", iface, "-f"], None)


def resolvconf_record(text: str) -> tuple[list[str], list[str]]:
    """(servers, search domains) of a resolvconf record."""
    lines = text.split("\n")
    servers = [m.group(1) for m in map(_NAMESERVER.fullmatch, lines) if m]
    search = [d for line in lines if line.startswith("search ") for d in line.split()[1:]]
    return servers, search


def current_dns(ifname: str) -> tuple[list[str], list[str]]:
    """The servers and search domains resolvconf holds for the interface (what SaveConfig
    writes back)."""
    iface = resolvconf_iface(ifname)
    text = ""
    if shutil.which("resolvconf") is not None:
        with contextlib.suppress(OSError):
            done = subprocess.run(["resolvconf", "-l", iface], capture_output=True, text=True,
                                  check=False)
            text = done.stdout if done.returncode == 0 else ""
    if not text:
        text = read_system_file(os.path.join(QUICK_RESOLVCONF_RUN_DIR, iface)) or ""
    return resolvconf_record(text)
