"""The nftables half of a full tunnel, and the sysctl it needs.

nftables has no netlink interface in pyroute2 that could replace `nft`, so the rules are
built, as wg-quick builds them, as an `nft -f` script (pywg._tools.quick.plan.nft_script) and fed
to nft. Removing them deletes every nftables table named `wg-quick-IFNAME`, whatever its
family. wg-quick falls back to iptables-restore when nft is missing; pywg does not, and
says so.

src_valid_mark lets the reverse-path filter take the fwmark into account, so that the
tunnel's own UDP replies are not dropped; like wg-quick, pywg sets it and leaves it set.
"""

from __future__ import annotations

import shutil
import subprocess

from pywg._constants import QUICK_SRC_VALID_MARK_SYSCTL
from pywg._tools.quick.plan import nft_table_name
from pywg._tools.quick.report import QuickError, step

__all__ = ["add_nft_rules", "delete_nft_table", "remove_firewall", "set_src_valid_mark"]


def _nft(script: str | None, *args: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(["nft", *args], input=script, text=True, capture_output=True,
                              check=False)
    except OSError as e:
        raise QuickError(f"cannot run nft: {e.strerror}") from e


def set_src_valid_mark() -> None:
    step("sysctl -q net.ipv4.conf.all.src_valid_mark=1")
    try:
        with open(QUICK_SRC_VALID_MARK_SYSCTL, "w", encoding="ascii") as f:
            f.write("1\n")
    except OSError as e:
        raise QuickError(f"cannot set net.ipv4.conf.all.src_valid_mark: {e.strerror}") from e


def add_nft_rules(script: str) -> None:
    if shutil.which("nft") is None:
        raise QuickError("a full tunnel needs nftables: nft(8) is not installed")
    step("nft -f -")
    done = _nft(script, "-f", "-")
    if done.returncode != 0:
        raise QuickError(f"nft refused the full tunnel's rules: {done.stderr.strip()}")


def delete_nft_table(family_word: str, ifname: str) -> None:
    table = f"{family_word} {nft_table_name(ifname)}"
    step(f"nft delete table {table}")
    _nft(None, "delete", "table", *table.split())


def remove_firewall(ifname: str) -> None:
    """Delete every `wg-quick-IFNAME` table (nothing to do without nft)."""
    if shutil.which("nft") is None:
        return
    listed = _nft(None, "list", "tables")
    for line in listed.stdout.splitlines():
        words = line.split()
        if len(words) == 3 and words[0] == "table" and words[2] == nft_table_name(ifname):
            delete_nft_table(words[1], ifname)
