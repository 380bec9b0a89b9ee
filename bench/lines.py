"""Product lines per component, at any commit: what issue 10 asked to measure.

    python -m bench.lines [REV ...]        (default: HEAD)

Counts the files git holds at each revision under pywg/ and csrc/, as all lines and as
code lines (without blank lines, comments and docstrings), grouped into components. The
engine is the protocol core (with its Noise message steps in C, as the module's noise.c
holds them), the driver, the UAPI and configuration, and the C data plane without its
ciphers: the parts that correspond to the Linux module, whose size is given
next to it. "From the stack" is the part of the engine that does what the kernel module
gets from the kernel's network stack (TUN and UDP batching, segmentation offloads and GRO,
checksums, ICMP errors, route MTUs, the process around a device, the cross-language event
ring and the cffi boundary in Python).
"""

from __future__ import annotations

import argparse
import ast
import io
import re
import subprocess
import tokenize
from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# The Linux module's src/*.c and src/*.h (wireguard-linux-compat v1.0.20220627-2-g3d3c92b, which is
# drivers/net/wireguard with the crypto library and compat layer left out), counted the
# same way as below.
LINUX_MODULE_LINES = 6_099
LINUX_MODULE_CODE_LINES = 4_703
ENGINE_AIM = 1.2        # issue 10: the engine at most 1.2x the module

# Components in order; the first pattern a path matches decides. Patterns name both the
# layout before issue 10 (pywg/device.py, pywg/protocol/, ...) and the one after it.
COMPONENTS: list[tuple[str, bool, tuple[str, ...]]] = [
    # (name, part of the engine, patterns)
    ("engine: in place of the kernel's stack (C)", True, (
        "csrc/tun.[ch]", "csrc/offload.[ch]", "csrc/checksum.[ch]", "csrc/icmp.c",
        "csrc/route.[ch]", "csrc/epoch.[ch]")),
    ("engine: in place of the kernel's stack (Python)", True, (
        "pywg/tun.py", "pywg/_driver/tun.py", "pywg/bind.py", "pywg/_driver/bind.py",
        "pywg/offload.py", "pywg/_driver/offload.py", "pywg/_driver/route.py",
        "pywg/daemon.py", "pywg/_driver/daemon.py", "pywg/_driver/eventloop.py",
        "pywg/log.py", "pywg/_driver/log.py")),
    ("engine: the C/Python boundary", True, (
        "csrc/wg_dp.h", "csrc/api.c", "csrc/events.[ch]", "pywg/datapath.py",
        "pywg/_driver/datapath.py", "pywg/protocol/crypto.py", "pywg/_protocol/crypto.py")),
    ("engine: protocol core", True, ("pywg/protocol/*", "pywg/_protocol/*")),
    ("engine: driver", True, (
        "pywg/device.py", "pywg/_driver/device.py", "pywg/_driver/peer.py",
        "pywg/_driver/__init__.py", "pywg/_driver/packet_tun.py",
        "pywg/_driver/peer_events.py", "pywg/uapi_server.py", "pywg/_driver/uapi_server.py")),
    ("engine: UAPI and configuration", True, (
        "pywg/uapi.py", "pywg/config/__init__.py", "pywg/config/apply.py",
        "pywg/config/errors.py", "pywg/config/model.py", "pywg/config/values.py",
        "pywg/_config/*", "pywg/constants.py", "pywg/_constants.py")),
    ("engine: C data plane", True, (
        "csrc/messages.h", "csrc/device.[ch]",
        "csrc/peer.[ch]", "csrc/keypair.[ch]", "csrc/cookie.[ch]", "csrc/ratelimiter.[ch]",
        "csrc/indextable.[ch]", "csrc/allowedips.[ch]", "csrc/send.c", "csrc/receive.c",
        "csrc/replay.[ch]", "csrc/socket.[ch]", "csrc/queueing.[ch]")),
    ("engine: the Noise message steps (C)", True, (
        "csrc/crypto/noise.[ch]", "csrc/crypto/workers.[ch]", "csrc/crypto/wg_crypto.[ch]")),
    ("crypto (C)", False, ("csrc/crypto/*",)),
    ("operations (metrics, status, systemd)", False, (
        "pywg/_driver/metrics.py", "pywg/_driver/counters.py", "pywg/_driver/parallel_gzip.py",
        "pywg/_driver/sd_notify.py", "pywg/_tools/status/*", "pywg/_tools/systemd/*",
        "pywg/_tools/units.py", "pywg/_config/names.py")),
    ("Python API", False, ("pywg/_api/*", "pywg/__init__.py")),
    ("tools (cli, wg-quick, files, client)", False, (
        "pywg/_tools/*", "pywg/cli.py", "pywg/keys.py", "pywg/quick/*", "pywg/uapi_client.py",
        "pywg/config/conffile.py", "pywg/walkthrough.py", "pywg/demo.py", "pywg/__main__.py")),
    ("C self-tests, fuzz drivers, test hooks, build", False, (
        "csrc/selftest/*", "csrc/fuzz/*", "csrc/wg_dp_test.[ch]", "csrc/*_bench.c",
        "csrc/build_*.py")),
]
# What the module does not carry because the kernel gives it, or because it is one language.
ENGINE_EXTRAS = ("engine: in place of the kernel's stack (C)",
                 "engine: in place of the kernel's stack (Python)",
                 "engine: the C/Python boundary")
SOURCE = re.compile(r".*\.(c|h|py)$")


@dataclass
class Count:
    files: int = 0
    lines: int = 0
    code: int = 0

    def add(self, lines: int, code: int) -> None:
        self.files += 1
        self.lines += lines
        self.code += code


def component_of(path: str) -> str:
    for name, _engine, patterns in COMPONENTS:
        if any(fnmatch(path, p) for p in patterns):
            return name
    raise SystemExit(f"bench.lines: {path} belongs to no component; add it to COMPONENTS")


def c_code_lines(text: str) -> int:
    """Lines with something besides comments and white space."""
    without = re.sub(r"/\*.*?\*/", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.S)
    without = re.sub(r"//[^\n]*", "", without)
    return sum(1 for line in without.splitlines() if line.strip())


def py_code_lines(text: str) -> int:
    """Lines with a token that is not a comment, a docstring or a line break."""
    docstrings: set[int] = set()
    for node in ast.walk(ast.parse(text)):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) \
                and isinstance(body[0].value, ast.Constant) \
                and isinstance(body[0].value.value, str):
            end = body[0].end_lineno or body[0].lineno
            docstrings.update(range(body[0].lineno, end + 1))
    code: set[int] = set()
    skip = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
            tokenize.ENDMARKER}
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type not in skip and tok.start[0] not in docstrings:
            code.update(range(tok.start[0], tok.end[0] + 1))
    return len(code)


def git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(ROOT), *args], check=True, capture_output=True,
                          text=True).stdout


def count(rev: str) -> dict[str, Count]:
    counts = {name: Count() for name, _e, _p in COMPONENTS}
    paths = [p for p in git("ls-tree", "-r", "--name-only", rev, "pywg", "csrc").split()
             if SOURCE.match(p)]
    for path in paths:
        text = git("show", f"{rev}:{path}")
        code = py_code_lines(text) if path.endswith(".py") else c_code_lines(text)
        counts[component_of(path)].add(len(text.splitlines()), code)
    return counts


def engine_total(counts: dict[str, Count]) -> Count:
    total = Count()
    for name, engine, _p in COMPONENTS:
        if engine:
            total.files += counts[name].files
            total.lines += counts[name].lines
            total.code += counts[name].code
    return total


def table(revs: Iterable[str]) -> str:
    revs = list(revs)
    counts = [count(rev) for rev in revs]
    heads = " | ".join(f"{git('rev-parse', '--short', r).strip()} lines / code" for r in revs)
    out = [f"| component | {heads} |", "|---|" + "---:|" * len(revs)]
    for name, _e, _p in COMPONENTS:
        cells = " | ".join(f"{c[name].lines:,} / {c[name].code:,}" for c in counts)
        out.append(f"| {name} | {cells} |")
    engines = [engine_total(c) for c in counts]
    out.append("| **engine** | " + " | ".join(f"**{e.lines:,} / {e.code:,}**" for e in engines)
               + " |")
    stack = [sum(c[n].lines for n in ENGINE_EXTRAS) for c in counts]
    stack_code = [sum(c[n].code for n in ENGINE_EXTRAS) for c in counts]
    rest = zip(engines, stack, stack_code, strict=True)
    out.append("| engine without the kernel's stack and the boundary | " + " | ".join(
        f"{e.lines - s:,} / {e.code - sc:,}" for e, s, sc in rest) + " |")
    out.append("| all of pywg/ and csrc/ | " + " | ".join(
        f"{sum(x.lines for x in c.values()):,} / {sum(x.code for x in c.values()):,}"
        for c in counts) + " |")
    out.append("")
    out.append(f"The Linux module: {LINUX_MODULE_LINES:,} lines / {LINUX_MODULE_CODE_LINES:,} "
               f"code lines; the aim for the engine, {ENGINE_AIM}x: "
               f"{int(LINUX_MODULE_LINES * ENGINE_AIM):,} / "
               f"{int(LINUX_MODULE_CODE_LINES * ENGINE_AIM):,}.")
    for rev, e in zip(revs, engines, strict=True):
        out.append(f"- {rev}: engine {e.lines / LINUX_MODULE_LINES:.2f}x the module's lines, "
                   f"{e.code / LINUX_MODULE_CODE_LINES:.2f}x its code lines")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.lines", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("revs", nargs="*", default=["HEAD"], metavar="REV",
                        help="git revisions to count (default: HEAD)")
    print(table(parser.parse_args().revs))


if __name__ == "__main__":
    main()
