"""The emulated Debian systems: made once with debootstrap, cached as tarballs, unpacked
fresh for every run, entered with chroot through qemu-user and binfmt_misc.

A root file system is Debian's minbase variant with python3 and python3-venv (what a venv
and its pip need), nothing else: no compiler, so a wheel that installs there installs on
a device without one. debootstrap runs both of its stages at once because binfmt_misc
(with qemu-user-static's F flag) lets the kernel run the target's binaries in the chroot.
The mirror is this machine's own (host.mirror()).
"""

from __future__ import annotations

import shlex
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from tests.embedded.host import CACHE, mirror, run, step
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


def unpack(target: Target, workdir: Path) -> Path:
    """A fresh copy of the target's root file system under workdir (the caller removes
    workdir; nothing stays mounted there, every mount lives in a private namespace)."""
    root = workdir / target.name
    root.mkdir(parents=True)
    run(["tar", "--numeric-owner", "-C", root, "-xf", tarball(target)])
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
