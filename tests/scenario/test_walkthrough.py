"""`python -m tests.scenario.walkthrough` (make demo's fallback without root) runs to the
end and tells what happened on the wire between two real devices."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_walkthrough_runs_and_tells_the_story() -> None:
    result = subprocess.run([sys.executable, "-m", "tests.scenario.walkthrough"],
                            capture_output=True, text=True, timeout=120, check=False,
                            cwd=Path(__file__).parents[2])
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "initiation  148 bytes" in out and "response    92 bytes" in out
    assert "bob's TUN got 29 bytes: b'hello bob'" in out
    assert "alice's TUN got 31 bytes: b'hello alice'" in out
    assert "bob dropped it: its counter is already in the replay window" in out
    assert "bob dropped it: the Poly1305 tag did not verify" in out
    assert "keepalive   32 bytes" in out
    assert out.count("initiation  148 bytes") == 2  # the rekey
    assert "none lost to the rekey" in out
    assert out.rstrip().endswith("done")
