"""The embedded targets: everything that differs from one CPU and C library to the next.

Every step of the recipe (sysroot, wheels, root file system, tests) reads a Target and
nothing else about the architecture. A new target is a new entry here, and, if its C
library or distribution differs, a new provider behind the two fields that name them:
`libc` picks the wheel tag family (manylinux for glibc; musllinux for musl) and
`distro` picks where the sysroot and the emulated root file system come from ("debian":
Debian's packages through a private apt and debootstrap; an OpenWrt target would add
"openwrt": its SDK's staging directory and its rootfs tarball).
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Cpu:
    """A CPU model the emulated tests run on, and the AEAD backend it must select."""

    label: str
    qemu_cpu: str  # QEMU_CPU; "" is qemu's default model (the most capable)
    expect_aead: str


@dataclass(frozen=True)
class Target:
    name: str  # uname -m, and the wheel tag's architecture
    deb_arch: str  # Debian's architecture name
    triplet: str  # the cross compiler's prefix and Debian's multiarch directory
    qemu: str  # qemu-user's architecture ("" on the build machine's own)
    cpus: tuple[Cpu, ...]
    libc: str = "glibc"
    distro: str = "debian"
    suite: str = "bookworm"
    python: str = "3.11"

    @property
    def native(self) -> bool:
        return self.qemu == ""

    @property
    def cc(self) -> str:
        return "cc" if self.native else f"{self.triplet}-gcc"

    @property
    def wheel_platforms(self) -> list[str]:
        """Platform tags pip may download binary wheels for, newest glibc first.

        Debian 12 has glibc 2.36; manylinux2014 is manylinux_2_17.
        """
        if self.libc != "glibc":
            raise NotImplementedError(f"{self.libc}: add its wheel tags (musllinux_1_2_*)")
        tags = [f"manylinux_2_{minor}_{self.name}" for minor in range(36, 16, -1)]
        return [*tags, f"manylinux2014_{self.name}"]

    @property
    def sysconfigdata(self) -> str:
        """The module that describes the target's Python build (compiler, flags, suffix)."""
        return f"_sysconfigdata__linux_{self.triplet}"


TARGETS: dict[str, Target] = {
    "x86_64": Target(
        name="x86_64", deb_arch="amd64", triplet="x86_64-linux-gnu", qemu="",
        cpus=(),
    ),
    "aarch64": Target(
        name="aarch64", deb_arch="arm64", triplet="aarch64-linux-gnu", qemu="aarch64",
        cpus=(Cpu("default", "", "neon"),),
    ),
    # Debian's armhf is ARMv7-A with VFPv3-D16: NEON is optional, so the tests run on
    # qemu's default CPU (with NEON) and on a Cortex-A9 without it (as in Tegra 2 and
    # Armada 370/XP routers), where NEON instructions raise SIGILL. There the data plane
    # takes the next backend in line, libsodium's (pynacl's) code.
    "armv7l": Target(
        name="armv7l", deb_arch="armhf", triplet="arm-linux-gnueabihf", qemu="arm",
        cpus=(Cpu("default", "", "neon"), Cpu("no-neon", "cortex-a9,neon=off", "sodium")),
    ),
}

EMULATED = [t for t in TARGETS.values() if not t.native]


def selected(names: str | None = None) -> list[Target]:
    """The targets named in `names` (or PYWG_TARGETS), comma-separated; default all."""
    wanted = names if names is not None else os.environ.get("PYWG_TARGETS", "")
    if not wanted:
        return list(TARGETS.values())
    out = []
    for name in wanted.split(","):
        if name not in TARGETS:
            raise SystemExit(f"unknown target {name!r}; known: {', '.join(TARGETS)}")
        out.append(TARGETS[name])
    return out
