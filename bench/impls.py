"""The implementations under test: each one is "a wireguard-go-compatible daemon binary".

The contract is wireguard-go's: `BINARY -f IFNAME` creates the TUN interface IFNAME and the
UAPI socket /var/run/wireguard/IFNAME.sock, stays in the foreground, and is configured with
`wg setconf` / `wg set`. Anything that keeps it can be compared, by adding it to WG_IMPLS:

    WG_IMPLS="wggo-new=/opt/wireguard-go/wireguard-go boringtun=/usr/bin/boringtun-cli"

The built-in ones are Debian's wireguard-go ("wggo", the baseline every ratio is taken
against) and pywg from this checkout, included when its binary exists and runs.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from bench import procs

BASELINE = "wggo"
PYWG = "pywg"
REPO = Path(__file__).resolve().parent.parent
VERSION_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class Impl:
    name: str
    binary: str
    version: str

    def daemon_cmd(self, ifname: str) -> list[str]:
        return [self.binary, "-f", ifname]


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""


def probe(name: str, binary: str) -> tuple[Impl | None, str]:
    """Checks that binary is executable and asks its `--version`; returns the Impl or why not.

    Nothing else is tried: wireguard-go, for one, takes any other argument (even `--help`)
    for an interface name and starts a daemon for it.
    """
    if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
        return None, f"{name}: {binary} is not an executable file"
    try:
        done = procs.run([binary, "--version"], VERSION_TIMEOUT_S, check=False)
    except procs.CommandError as exc:
        return None, f"{name}: {exc}"
    version = _first_line(done.stdout) or _first_line(done.stderr)
    return Impl(name, binary, version if done.returncode == 0 and version else "unknown"), ""


def _pywg_daemon(binary: str) -> str:
    """Why this checkout's pywg cannot serve as a daemon yet, or "" if it can.

    Its command line is argparse's, so `--help` is safe to ask, and the daemon mode's
    contract (`pywg [-f|--foreground] IFNAME`) shows there as --foreground.
    """
    try:
        done = procs.run([binary, "--help"], VERSION_TIMEOUT_S, check=False)
    except procs.CommandError as exc:
        return str(exc)
    if done.returncode != 0:
        return f"`{binary} --help` failed (exit {done.returncode})"
    if "--foreground" not in done.stdout:
        return "no daemon mode yet (`pywg --help` offers no --foreground)"
    return ""


def _pywg_binary() -> str:
    # The console script of this checkout's venv, next to the interpreter running the suite.
    return str(Path(sys.executable).parent / "pywg")


def _git_commit() -> str:
    try:
        done = procs.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], 5.0,
                         check=False)
    except procs.CommandError:
        return ""
    return done.stdout.strip()


def parse_wg_impls(value: str) -> tuple[list[tuple[str, str]], list[str]]:
    """WG_IMPLS="name=/path ..." -> [(name, path)], plus complaints about malformed entries."""
    pairs: list[tuple[str, str]] = []
    errors: list[str] = []
    for item in value.split():
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            errors.append(f"WG_IMPLS: ignored {item!r} (expected name=/path/to/binary)")
        elif not name.replace("-", "").replace("_", "").isalnum() or len(name) > 16:
            errors.append(f"WG_IMPLS: ignored {item!r} (name: up to 16 letters, digits, - _)")
        elif name in (BASELINE, PYWG) or name in (n for n, _ in pairs):
            errors.append(f"WG_IMPLS: ignored {item!r} (name {name!r} already used)")
        else:
            pairs.append((name, path))
    return pairs, errors


def discover(env_value: str) -> tuple[list[Impl], list[str]]:
    """The implementations available here, baseline first; and notes on those left out."""
    notes: list[str] = []
    candidates = [(BASELINE, shutil.which("wireguard-go") or "/usr/bin/wireguard-go"),
                  (PYWG, _pywg_binary())]
    extra, errors = parse_wg_impls(env_value)
    notes += errors
    found: list[Impl] = []
    for name, binary in candidates + extra:
        impl, why = probe(name, binary)
        if impl is None:
            notes.append(f"skipping {why}")
            continue
        if name == PYWG:
            why = _pywg_daemon(binary)
            if why:
                notes.append(f"skipping {PYWG}: {why}")
                continue
            commit = _git_commit()
            impl = Impl(name, binary, f"{impl.version} (git {commit})" if commit else impl.version)
        found.append(impl)
    return found, notes
