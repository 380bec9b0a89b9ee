"""The C data plane's files call each other in one direction only, and its shipped header
declares only what the product calls.

Each csrc/ source is compiled on its own and `nm` says which functions it defines and which
it needs; file A depends on file B when A needs a function B defines. That graph must have no
cycle, so the files read as layers (the boundary, the device, the packet paths, the peer
state, the tables and I/O, the crypto), as the kernel module's do.
"""

import itertools
import os
import re
import shutil
import subprocess
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

CSRC = Path(__file__).resolve().parents[2] / "csrc"
CC = os.environ.get("CC", "gcc")
CFLAGS = ["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Werror", "-fvisibility=hidden",
          "-Wno-unused-parameter", f"-I{CSRC}"]

needs_cc = pytest.mark.skipif(not (shutil.which(CC) and shutil.which("nm")),
                              reason="needs a C compiler and nm")


def sources() -> list[Path]:
    """The data plane's files (the self-test and fuzz drivers have their own main())."""
    return sorted([*CSRC.glob("*.c"), *CSRC.glob("crypto/*.c")])


def symbols(obj: Path) -> tuple[set[str], set[str]]:
    """The global functions and data an object defines, and those it needs."""
    out = subprocess.run(["nm", obj], capture_output=True, text=True, check=True).stdout
    defined: set[str] = set()
    needed: set[str] = set()
    for line in out.splitlines():
        fields = line.split()
        if len(fields) == 3 and fields[1] in "TDBR":
            defined.add(fields[2])
        elif len(fields) == 2 and fields[0] == "U":
            needed.add(fields[1])
    return defined, needed


def file_graph(tmp: Path) -> dict[str, dict[str, set[str]]]:
    """file -> {file it calls: the functions it calls there}."""
    def compile_one(src: Path) -> tuple[str, tuple[set[str], set[str]]]:
        name = str(src.relative_to(CSRC))
        obj = tmp / (name.replace("/", "_") + ".o")
        subprocess.run([CC, *CFLAGS, "-c", str(src), "-o", str(obj)], check=True)
        return name, symbols(obj)

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        syms = dict(pool.map(compile_one, sources()))
    owner = {sym: name for name, (defined, _) in syms.items() for sym in defined}
    graph: dict[str, dict[str, set[str]]] = {name: {} for name in syms}
    for name, (_, needed) in syms.items():
        for sym in needed:
            if sym in owner and owner[sym] != name:
                graph[name].setdefault(owner[sym], set()).add(sym)
    return graph


def find_cycle(graph: dict[str, dict[str, set[str]]]) -> list[str]:
    """A cycle of files (first file repeated at the end), or [] if there is none."""
    done: set[str] = set()
    path: list[str] = []

    def visit(node: str) -> list[str]:
        if node in path:
            return path[path.index(node):] + [node]
        if node in done:
            return []
        path.append(node)
        for succ in sorted(graph[node]):
            cycle = visit(succ)
            if cycle:
                return cycle
        path.pop()
        done.add(node)
        return []

    for node in sorted(graph):
        cycle = visit(node)
        if cycle:
            return cycle
    return []


def describe(graph: dict[str, dict[str, set[str]]], cycle: Iterable[str]) -> str:
    return "\n".join(f"  {a} -> {b}: {', '.join(sorted(graph[a][b]))}"
                     for a, b in itertools.pairwise(cycle))


def test_find_cycle_finds_one() -> None:
    graph = {"a.c": {"b.c": {"f"}}, "b.c": {"c.c": {"g"}}, "c.c": {"a.c": {"h"}}, "d.c": {}}
    assert find_cycle(graph) == ["a.c", "b.c", "c.c", "a.c"]
    assert find_cycle({"a.c": {"b.c": {"f"}}, "b.c": {}}) == []


@needs_cc
def test_no_file_calls_back_into_a_caller(tmp_path: Path) -> None:
    graph = file_graph(tmp_path)
    cycle = find_cycle(graph)
    assert not cycle, "csrc/ files call each other in a circle:\n" + describe(graph, cycle)


def declared(header: str) -> set[str]:
    text = (CSRC / header).read_text()
    return set(re.findall(r"^[a-z][\w ]*?\**(wg_\w+)\(", text, flags=re.M))


def test_shipped_header_declares_only_what_the_product_calls() -> None:
    """wg_dp.h is the ABI of pywg._wgdp, which only the driver imports: hooks only tests or
    benchmarks call go in wg_dp_test.h, which only the test module _wgdp_test has."""
    product = "\n".join(p.read_text() for p in (CSRC.parent / "pywg" / "_driver").glob("*.py"))
    shipped = declared("wg_dp.h")
    assert "wg_dp_create" in shipped and "wg_aead_name" in shipped
    assert {name for name in shipped if not re.search(rf"\b{name}\b", product)} == set()
    assert declared("wg_dp_test.h") and not declared("wg_dp_test.h") & shipped


def test_handshake_header_declares_only_what_the_core_calls() -> None:
    """crypto/wg_crypto.h is the ABI of pywg._crypto, which only the protocol core's
    crypto.py imports: it declares nothing that file does not call, and shares nothing with
    the data plane's boundary."""
    caller = (CSRC.parent / "pywg" / "_protocol" / "crypto.py").read_text()
    shipped = declared("crypto/wg_crypto.h")
    assert "wg_crypto_init" in shipped and "wg_noise_write_responses" in shipped
    assert {name for name in shipped if not re.search(rf"\b{name}\b", caller)} == set()
    assert not shipped & declared("wg_dp.h")
