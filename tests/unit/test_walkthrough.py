"""`python -m pywg._tools.walkthrough` runs to the end and shows each step's outcome."""

from __future__ import annotations

import subprocess
import sys


def test_walkthrough_runs_and_tells_the_story() -> None:
    result = subprocess.run([sys.executable, "-m", "pywg._tools.walkthrough"], capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "initiation  148 bytes" in out and "response     92 bytes" in out
    assert "bob decrypted a 37-byte IPv4 packet: 'hello bob'" in out
    assert "alice decrypted a 39-byte IPv4 packet: 'hello alice'" in out
    assert "bob dropped it: replayed" in out
    assert out.count("initiation  148 bytes") == 2  # the rekey
    assert "bob dropped it: key_expired" in out
    assert out.rstrip().endswith("done")
