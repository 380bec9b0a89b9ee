"""The emulated Debian systems: made once with debootstrap, cached as tarballs, unpacked
fresh for every run, entered with chroot through qemu-user and binfmt_misc.

A root file system is Debian's minbase variant with python3 and python3-venv (what a venv
and its pip need), nothing else: no compiler, so a wheel that installs there installs on
a device without one. debootstrap runs both of its stages at once because binfmt_misc
(with qemu-user-static's F flag) lets the kernel run the target's binaries in the chroot.
The mirror is this machine's own (host.mirror()).

A second tarball per target has the dependency wheels of the wheelhouse (cffi, pynacl,
uvloop, ... and the tests' pytest and hypothesis) installed into the venv with the target's
pip, byte-compiled once: it is keyed by a hash of those wheels, so a run installs only the
fresh pywg wheel into a copy of it (emulated pip resolving and unpacking a dozen wheels
took 2.5 minutes per run).
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
    """The cached root file system of `target` with `wheels` installed into its venv by
    its pip (--no-index: from these files alone), made from tarball() if missing."""
    base = tarball(target)
    folder = CACHE / "rootfs" / f"{target.suite}-{target.deb_arch}-deps"
    out = folder / f"{_wheels_key(wheels)}.tar"
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
        partial = out.with_suffix(".partial")
        run(["tar", "--numeric-owner", "-C", root, "-cf", partial, "."])
        partial.rename(out)
    prune(folder, keep=4)
    return out


def unpack(tar: Path, workdir: Path, name: str) -> Path:
    """A fresh copy of a cached root file system under workdir/name (the caller removes
    workdir; nothing stays mounted there, every mount lives in a private namespace)."""
    root = workdir / name
    root.mkdir(parents=True)
    run(["tar", "--numeric-owner", "-C", root, "-xf", tar])
    return root


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
