"""The implementations a harness runs: anything that keeps the contract of `wireguard-go IFNAME`.

The contract: `BINARY IFNAME` creates the TUN IFNAME and the UAPI socket
/var/run/wireguard/IFNAME.sock and returns once both are ready, leaving the daemon in the
background; `BINARY -f IFNAME` stays in the foreground instead; `wg` configures it. Known
here: Debian's wireguard-go ("wggo", the baseline of bench's ratios), pywg from this
checkout, and whatever WG_IMPLS adds:

    WG_IMPLS="wggo-new=/work/shared/anchors/wireguard-go-0.0.20250522,other=/usr/bin/other"

A test asks for an implementation by name and skips, saying why, when it is not here.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.harness import procs

BASELINE = "wggo"
REPO = Path(__file__).resolve().parents[2]
VERSION_TIMEOUT_S = 15.0
NAME_MAX = 16


@dataclass(frozen=True)
class Impl:
    name: str                      # its id in test names, bench columns and WG_IMPLS
    argv: tuple[str, ...]          # the command; the daemon's flag and IFNAME are appended
    process_names: frozenset[str]  # basenames in a process's argv that make it one of ours

    @property
    def binary(self) -> str:
        """One word naming the command (WG_QUICK_USERSPACE_IMPLEMENTATION takes one)."""
        return self.argv[0]


def _pywg_argv() -> tuple[str, ...]:
    # PYWG_INTEROP_COMMAND points the harness at another pywg command (one word, as
    # wg-quick needs), e.g. an installed one; else this checkout's venv script.
    override = os.environ.get("PYWG_INTEROP_COMMAND")
    if override:
        return (override,)
    script = Path(sys.executable).with_name("pywg")
    return (str(script),) if script.exists() else (sys.executable, "-m", "pywg")


def _impl(name: str, binary: str) -> Impl:
    return Impl(name, (binary,), frozenset({os.path.basename(binary)}))


WGGO = _impl(BASELINE, shutil.which("wireguard-go") or "/usr/bin/wireguard-go")
PYWG = Impl("pywg", _pywg_argv(), frozenset({"pywg"}))


def parse_wg_impls(value: str) -> tuple[list[tuple[str, str]], list[str]]:
    """WG_IMPLS="name=/path,..." (commas or spaces) -> [(name, path)], and complaints."""
    pairs: list[tuple[str, str]] = []
    errors: list[str] = []
    for item in re.split(r"[\s,]+", value.strip()):
        name, sep, path = item.partition("=")
        if not item:
            continue
        if not sep or not name or not path:
            errors.append(f"WG_IMPLS: ignored {item!r} (expected name=/path/to/binary)")
        elif not name.replace("-", "").replace("_", "").isalnum() or len(name) > NAME_MAX:
            errors.append(f"WG_IMPLS: ignored {item!r} (name: up to 16 letters, digits, - _)")
        elif name in (WGGO.name, PYWG.name) or name in (n for n, _ in pairs):
            errors.append(f"WG_IMPLS: ignored {item!r} (name {name!r} already used)")
        else:
            pairs.append((name, path))
    return pairs, errors


def candidates(wg_impls: str) -> tuple[list[Impl], list[str]]:
    """Every implementation named (built-in first, then WG_IMPLS's), and parse complaints."""
    extra, errors = parse_wg_impls(wg_impls)
    return [WGGO, PYWG, *(_impl(n, p) for n, p in extra)], errors


def unavailable(impl: Impl) -> str | None:
    """Why impl cannot run here, or None. Only a look at the file: wireguard-go takes any
    argument but --version (even --help) for an interface name and starts a daemon."""
    binary = impl.binary
    if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
        return f"{binary} is not an executable file"
    return None


@functools.cache
def version(impl: Impl) -> str:
    """The first line of `BINARY --version`, or "unknown"; pywg's with this checkout's commit."""
    try:
        done = procs.run([*impl.argv, "--version"], VERSION_TIMEOUT_S, check=False, quiet=True)
    except procs.CommandError:
        return "unknown"
    lines = [x.strip() for x in (done.stdout or done.stderr).splitlines() if x.strip()]
    found = lines[0] if done.returncode == 0 and lines else "unknown"
    if impl.name == PYWG.name:
        commit = _git_commit()
        found = f"{found} (git {commit})" if commit else found
    return found


def _git_commit() -> str:
    try:
        done = procs.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], 5.0,
                         check=False, quiet=True)
    except procs.CommandError:
        return ""
    return done.stdout.strip()


def available(wg_impls: str | None = None) -> tuple[list[Impl], list[str]]:
    """The implementations that can run here, baseline first, and notes on the rest."""
    found, notes = candidates(os.environ.get("WG_IMPLS", "") if wg_impls is None else wg_impls)
    usable = []
    for impl in found:
        why = unavailable(impl)
        if why:
            notes.append(f"skipping {impl.name}: {why}")
        else:
            usable.append(impl)
    return usable, notes


def get(name: str) -> Impl | str:
    """The implementation called name, or why there is none here (for a skip's reason)."""
    found, _ = candidates(os.environ.get("WG_IMPLS", ""))
    impl = next((i for i in found if i.name == name), None)
    if impl is None:
        return f"{name} is not known here (add it with WG_IMPLS={name}=/path/to/binary)"
    why = unavailable(impl)
    return f"{name}: {why}" if why else impl
