"""`pywg selftest`: its known answers are the published ones, it names the backend the data
plane selects (as the C side reports it), and a wrong answer or backend fails it."""

import dataclasses
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pywg._tools import selftest

DATA = Path(__file__).parent.parent / "data"


def _run(env_extra: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYWG_AEAD"} | env_extra
    return subprocess.run([sys.executable, "-m", "pywg", "selftest"], env=env,
                          capture_output=True, text=True, timeout=120)


def _selected_in_child(env_extra: dict[str, str]) -> str:
    # What the data plane itself selects, asked of the C side in a fresh process.
    code = ("from pywg._driver import datapath; print(datapath.init_aead())")
    env = {k: v for k, v in os.environ.items() if k != "PYWG_AEAD"} | env_extra
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=120, check=True).stdout.strip()


def test_embedded_vectors_are_the_published_ones() -> None:
    noise = json.loads((DATA / "noise-ikpsk2-vectors.json").read_text())["vectors"][0]
    v = selftest.NOISE
    assert v.protocol.decode() == noise["protocol_name"]
    assert v.prologue.hex() == noise["init_prologue"]
    assert v.psk.hex() == noise["init_psks"][0]
    assert v.init_static.hex() == noise["init_static"]
    assert v.init_ephemeral.hex() == noise["init_ephemeral"]
    assert v.resp_static.hex() == noise["resp_static"]
    assert v.resp_static_public.hex() == noise["init_remote_static"]
    assert v.hash.hex() == noise["handshake_hash"]
    for i, message in enumerate(noise["messages"][:3]):
        assert v.payloads[i].hex() == message["payload"]
        assert v.messages[i].hex() == message["ciphertext"]
    kdf = json.loads((DATA / "wireguard-kdf-vectors.json").read_text())
    assert selftest.KDF.chaining_key.hex() == kdf["constants"]["initial_chaining_key"]
    assert selftest.KDF.hash.hex() == kdf["constants"]["initial_hash"]
    x = json.loads((DATA / "aead-vectors.json").read_text())["xchacha20poly1305"]
    assert selftest.XCHACHA.key.hex() == x["key"]
    assert selftest.XCHACHA.nonce.hex() == x["nonce"]
    assert selftest.XCHACHA.aad.hex() == x["aad"]
    assert selftest.XCHACHA.plaintext.hex() == x["plaintext"]
    assert selftest.XCHACHA.sealed.hex() == x["ciphertext"] + x["tag"]


def test_passes_and_names_the_selected_backend() -> None:
    proc = _run({})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    chosen = _selected_in_child({})
    assert f"data plane AEAD backend: {chosen}" in lines
    assert any(line.split()[:2] == ["aead", chosen] and line.endswith("(selected)")
               for line in lines)
    for name in ("portable", "sodium", "noise", "kdf", "xchacha20poly1305"):
        assert any(name in line and "passed" in line for line in lines), name
    assert lines[-1].startswith("all checks passed")


@pytest.mark.parametrize("name", ["portable", "sodium"])
def test_follows_pywg_aead(name: str) -> None:
    proc = _run({"PYWG_AEAD": name})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"data plane AEAD backend: {name}" in proc.stdout.splitlines()


def test_unknown_backend_fails_with_a_message() -> None:
    proc = _run({"PYWG_AEAD": "no-such"})
    assert proc.returncode == 1
    assert "AEAD backend no-such: no such backend" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_wrong_known_answer_fails_it(monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    wrong = bytearray(selftest.NOISE.hash)
    wrong[0] ^= 1
    monkeypatch.setattr(selftest, "NOISE", dataclasses.replace(selftest.NOISE, hash=bytes(wrong)))
    assert selftest.main() == 1
    out = capsys.readouterr().out
    assert re.search(r"^  noise ikpsk2 +FAILED: handshake hash$", out, re.M)
    assert "FAILED: noise ikpsk2" in out.splitlines()[-1]
