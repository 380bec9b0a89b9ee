"""The emulated Debian systems: made once with debootstrap, cached, given to every run as a
fresh copy, entered with chroot through qemu-user and binfmt_misc.

A root file system is Debian's minbase variant with python3 and python3-venv (what a venv
and its pip need), nothing else: no compiler, so a wheel that installs there installs on
a device without one. debootstrap runs both of its stages at once because binfmt_misc
(with qemu-user-static's F flag) lets the kernel run the target's binaries in the chroot.
The mirror is this machine's own (host.mirror()).

The bare system is cached as a tarball. Made from it, and cached as a directory keyed by
a hash of the wheels: the same system with the dependency wheels of the wheelhouse (cffi,
pynacl, uvloop, ... and the tests' pytest and hypothesis) installed into the venv by the
target's pip and byte-compiled once. A run gets a copy of that directory as an overlay
(its changes go to the run's own upper layer; the cached one is only read) and installs
only the fresh pywg wheel there: emulated pip resolving and unpacking a dozen wheels took
2.5 minutes per run, unpacking the tarball 12-20 s.
"""

from __future__ import annotations

import hashlib
import shlex
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from tests.embedded.host import CACHE, mirror, prune, run, step
from tests.embedded.targets import Target

INCLUDE = ("python3", "python3-venv")
VENV = "/opt/pywg"  # the venv pip installs the wheels into, inside the target


def tarball(target: Target) -> Path:
    """The cached root file system of `target`, debootstrapped if missing."""
    out = CACHE / "rootfs" / f"{target.suite}-{target.deb_arch}.tar"
    if out.exists():
        return out
    if target.distro != "debian":
        raise NotImplementedError(f"{target.distro}: unpack its rootfs tarball here")
    out.parent.mkdir(parents=True, exist_ok=True)
    with step(f"{target.name}: debootstrap {target.suite} ({target.deb_arch}, minbase)"), \
            tempfile.TemporaryDirectory(prefix="pywg-debootstrap-", dir=out.parent) as tmp:
        root = Path(tmp) / "root"
        run(["debootstrap", f"--arch={target.deb_arch}", "--variant=minbase",
             f"--include={','.join(INCLUDE)}", target.suite, root, mirror()], capture=True)
        # The downloaded packages are not needed again.
        for deb in (root / "var" / "cache" / "apt" / "archives").glob("*.deb"):
            deb.unlink()
        # The venv the wheels go into, with the pip that python3-venv brings (a minute
        # under emulation, so it is part of what is cached).
        run(["chroot", root, "python3", "-m", "venv", VENV], capture=True)
        partial = out.with_suffix(".partial")
        run(["tar", "--numeric-owner", "-C", root, "-cf", partial, "."])
        partial.rename(out)
    return out


def _wheels_key(wheels: list[Path]) -> str:
    digest = hashlib.sha256()
    for wheel in sorted(wheels, key=lambda p: p.name):
        digest.update(wheel.name.encode() + b"\0" + hashlib.sha256(wheel.read_bytes()).digest())
    return digest.hexdigest()[:16]


def with_deps(target: Target, wheels: list[Path]) -> Path:
    """The cached root file system of `target` (a directory) with `wheels` installed into
    its venv by its pip (--no-index: from these files alone), made from tarball() if
    missing. Never written to once made: runs mount it as an overlay's lower layer."""
    base = tarball(target)
    folder = CACHE / "rootfs" / f"{target.suite}-{target.deb_arch}-deps"
    out = folder / _wheels_key(wheels)
    if out.exists():
        return out
    folder.mkdir(parents=True, exist_ok=True)
    with step(f"{target.name}: root file system with the dependency wheels installed"), \
            tempfile.TemporaryDirectory(prefix="pywg-deps-", dir=folder) as tmp:
        root = Path(tmp) / "root"
        root.mkdir()
        run(["tar", "--numeric-owner", "-C", root, "-xf", base])
        into = root / "deps"
        into.mkdir()
        for wheel in wheels:
            shutil.copy(wheel, into / wheel.name)
        # Byte-compiled here, once (pip's default), rather than on import in every run.
        in_target(root, [f"{VENV}/bin/pip", "install", "--no-index", "--no-deps",
                         "--disable-pip-version-check",
                         *(f"/deps/{w.name}" for w in sorted(wheels, key=lambda p: p.name))],
                  capture=True, timeout=3600)
        shutil.rmtree(into)
        root.rename(out)
    prune(folder, keep=4)
    return out


def overlay(lower: Path, workdir: Path, name: str) -> Path:
    """A fresh copy of a cached root file system at workdir/name/root: an overlay whose
    upper layer is in workdir (the caller calls release(workdir), then removes it)."""
    top = workdir / name
    dirs = {d: top / d for d in ("upper", "work", "root")}
    for d in dirs.values():
        d.mkdir(parents=True)
    run(["mount", "-t", "overlay", "overlay", "-o",
         f"lowerdir={lower},upperdir={dirs['upper']},workdir={dirs['work']}", dirs["root"]])
    return dirs["root"]


def release(workdir: Path) -> None:
    """Unmounts every overlay overlay() made under workdir (the other mounts of a run live
    in private mount namespaces and are gone with their processes)."""
    prefix = f"{workdir.resolve()}/"
    for line in reversed(Path("/proc/self/mounts").read_text().splitlines()):
        mountpoint = line.split()[1]
        if mountpoint.startswith(prefix):
            run(["umount", "--lazy", mountpoint], check=False)


# Mounted inside a private mount namespace (unshare -m, or ip netns exec's own), so that
# they vanish with the process however it ends.
MOUNTS = (
    "mount -t proc proc {root}/proc",
    "mount --rbind /sys {root}/sys",
    "mount --rbind /dev {root}/dev",
    "mkdir -p /run/wireguard {root}/run/wireguard",
    "mount --bind /run/wireguard {root}/run/wireguard",
)


def chroot_command(root: Path, argv: Sequence[str], env: Mapping[str, str] | None = None,
                   cwd: str = "/") -> list[str]:
    """A shell command line that mounts what the target needs and runs argv chrooted.

    The caller supplies the mount namespace (unshare -m, ip netns exec). /run/wireguard
    is the build machine's, so the `wg` tool outside sees a daemon's UAPI socket.
    """
    mounts = " && ".join(m.format(root=shlex.quote(str(root))) for m in MOUNTS)
    assigns = " ".join(f"{k}={shlex.quote(v)}" for k, v in (env or {}).items())
    # A clean environment: nothing of the build machine's (PIP_*, PYTHON*) leaks in.
    inner = f"cd {shlex.quote(cwd)} && exec env -i {assigns} {shlex.join(argv)}"
    return ["sh", "-c", f"{mounts} && exec chroot {shlex.quote(str(root))} sh -c "
            f"{shlex.quote(inner)}"]


def in_target(root: Path, argv: Sequence[str], env: Mapping[str, str] | None = None,
              cwd: str = "/", capture: bool = False, check: bool = True,
              timeout: float | None = None) -> str:
    """Runs argv inside the emulated system (its own mount namespace); returns stdout."""
    base = {"PATH": f"{VENV}/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root",
            "LANG": "C.UTF-8"}
    cmd = ["unshare", "-m", "--propagation", "private",
           *chroot_command(root, argv, {**base, **(env or {})}, cwd)]
    proc = run(cmd, capture=capture, check=check, timeout=timeout)
    return proc.stdout or ""
