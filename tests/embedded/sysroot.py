"""A target's sysroot: its Python headers and the libraries the wheels link, unpacked.

Debian's multiarch would install libpython3.11-dev:arm64 beside the native one, but
Multi-Arch: same packages must share one version, so installing it can upgrade the
machine's own libpython3.11 and with it the interpreter under the project's .venv. This
never installs anything: a private apt (its own lists, status and archive directories,
the target as its only architecture) downloads the .deb files, and `dpkg -x` unpacks them
into the cache. The machine's dpkg database is not touched.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.embedded.host import CACHE, apt_sources, run, step
from tests.embedded.targets import Target

# Headers and sysconfig of the target's Python; libffi for cffi's backend.
PACKAGES = ("libpython{py}-dev", "libpython{py}-minimal", "libffi-dev", "libffi8")


def _apt_options(aptdir: Path, target: Target) -> list[str]:
    opts = {
        "Dir::Etc::SourceList": aptdir / "sources.list",
        "Dir::Etc::SourceParts": aptdir / "sources.list.d",
        "Dir::State::Lists": aptdir / "lists",
        "Dir::State::status": aptdir / "status",
        "Dir::Cache::Archives": aptdir / "archives",
        "Dir::Cache::pkgcache": "",
        "Dir::Cache::srcpkgcache": "",
        "APT::Architecture": target.deb_arch,
        "APT::Architectures::": target.deb_arch,
        "APT::Sandbox::User": "root",
        "Debug::NoLocking": "1",
    }
    return [arg for key, value in opts.items() for arg in ("-o", f"{key}={value}")]


def _private_apt(target: Target) -> tuple[Path, list[str]]:
    aptdir = CACHE / "apt" / target.deb_arch
    for sub in ("lists/partial", "archives/partial", "sources.list.d", "debs"):
        (aptdir / sub).mkdir(parents=True, exist_ok=True)
    (aptdir / "status").touch()
    lines = []
    for uri, suite, components, keyring in apt_sources():
        signed = f" signed-by={keyring}" if keyring else ""
        lines.append(f"deb [arch={target.deb_arch}{signed}] {uri} {suite} {' '.join(components)}")
    (aptdir / "sources.list").write_text("\n".join(lines) + "\n")
    return aptdir, _apt_options(aptdir, target)


def sysroot(target: Target) -> Path:
    """The unpacked sysroot of `target`, made once per cache."""
    root = CACHE / "sysroot" / target.deb_arch
    if (root / ".complete").exists():
        return root
    with step(f"{target.name}: sysroot from Debian's {target.deb_arch} packages"):
        aptdir, opts = _private_apt(target)
        run(["apt-get", "-q", *opts, "update"], capture=True)
        debs = aptdir / "debs"
        for old in debs.glob("*.deb"):
            old.unlink()
        names = [p.format(py=target.python) for p in PACKAGES]
        run(["apt-get", "-q", *opts, "download", *names], cwd=debs, capture=True)
        if root.exists():
            shutil.rmtree(root)
        root.mkdir(parents=True)
        for deb in sorted(debs.glob("*.deb")):
            run(["dpkg-deb", "-x", deb, root])
        _sysconfig_dir(target, root)
        (root / ".complete").touch()
    return root


def _sysconfig_dir(target: Target, root: Path) -> Path:
    """A directory holding only the target's _sysconfigdata module.

    Put on PYTHONPATH with _PYTHON_SYSCONFIGDATA_NAME naming it, it makes the build
    machine's Python describe the target's (compiler, flags, extension suffix); the rest
    of the target's standard library stays out of the way.
    """
    out = root / "pywg-sysconfig"
    out.mkdir(exist_ok=True)
    # libpython-minimal has it as _sysconfigdata__<triplet>; -stdlib adds the name Python
    # looks for by default as a symlink to it.
    found = root / "usr" / "lib" / f"python{target.python}" / f"_sysconfigdata__{target.triplet}.py"
    if not found.is_file():
        raise RuntimeError(f"{found.name} not in {target.deb_arch}'s libpython-minimal")
    shutil.copy(found, out / f"{target.sysconfigdata}.py")
    return out


def cross_env(target: Target, root: Path) -> dict[str, str]:
    """Environment that makes setuptools (and configure scripts) build for `target`."""
    inc = root / "usr" / "include"
    lib = root / "usr" / "lib" / target.triplet
    return {
        "_PYTHON_SYSCONFIGDATA_NAME": target.sysconfigdata,
        "_PYTHON_HOST_PLATFORM": f"linux-{target.name}",
        "PYTHONPATH": str(root / "pywg-sysconfig"),
        "CC": target.cc,
        "LDSHARED": f"{target.cc} -shared",
        # The target's Python.h and pyconfig.h before the build machine's.
        "CPPFLAGS": f"-I{inc}/python{target.python} -I{inc} -I{inc}/{target.triplet}",
        "LDFLAGS": f"-L{lib}",
        "PKG_CONFIG_LIBDIR": f"{lib}/pkgconfig:{root}/usr/share/pkgconfig",
        "PKG_CONFIG_SYSROOT_DIR": str(root),
    }
