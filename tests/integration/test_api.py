"""docs/api.md's examples that need root (a TUN, the UAPI socket that `wg` reads), each run
as its own program inside a fresh network namespace: its TUN and its port are the
namespace's own. Afterwards nothing of it is left: no link in the namespace, no socket file
in /var/run/wireguard (which every namespace shares)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness import netns
from tests.harness.netns import namespace
from tests.harness.skips import require_root, require_tools
from tests.support.docblocks import Block, python_blocks

REPO = Path(__file__).resolve().parents[2]
PAGE = REPO / "docs" / "api.md"
BLOCKS = [b for b in python_blocks(PAGE) if b.needs_root]
RUN_TIMEOUT_S = 120
_MAKES = re.compile(r"# needs root: it creates the TUN (\S+)")


@pytest.mark.root
@pytest.mark.parametrize("block", BLOCKS, ids=[b.name for b in BLOCKS])
def test_example_runs_as_root(block: Block) -> None:
    require_root()
    require_tools("wg")
    made = _MAKES.match(block.code)
    assert made, f"docs/api.md:{block.line}: say which TUN the example creates"
    ifname = made.group(1)
    sock = Path("/var/run/wireguard") / f"{ifname}.sock"
    with namespace("api") as ns:
        done = subprocess.run(netns.exec_argv(ns, [sys.executable, "-c", block.code]),
                              capture_output=True, text=True, timeout=RUN_TIMEOUT_S,
                              check=False, cwd=REPO)
        assert done.returncode == 0, f"docs/api.md:{block.line}\n{done.stdout}\n{done.stderr}"
        assert "Traceback" not in done.stderr, done.stderr
        links = netns.run(ns, ["ip", "-o", "link", "show"], quiet=True).stdout
        assert f" {ifname}:" not in links
    assert not sock.exists()
