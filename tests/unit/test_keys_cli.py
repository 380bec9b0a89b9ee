"""`pywg genkey/genpsk/pubkey` against the real `wg` tool, and the key encodings."""

import base64
import io
import os
import shutil
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pywg._tools import cli, keys

WG = shutil.which("wg")


def _need_wg():
    if WG is None:
        pytest.skip("needs wireguard-tools (`wg`); make test installs it as root")


def _wg(args, stdin=b""):
    # argv[0] "wg": wg prints it as the prefix of its messages.
    out = subprocess.run(["wg", *args], executable=WG, input=stdin, capture_output=True,
                         timeout=10)
    return out.returncode, out.stdout, out.stderr


def _pywg(args, stdin=b"", monkeypatch=None):
    """Run the CLI in-process (fast); stdout and stderr as bytes."""
    stdout, stderr = io.StringIO(), io.StringIO()
    stdin_stream = io.TextIOWrapper(io.BytesIO(stdin))
    old = sys.stdin, sys.stdout, sys.stderr
    sys.stdin, sys.stdout, sys.stderr = stdin_stream, stdout, stderr
    try:
        status = cli.main(args)
    finally:
        sys.stdin, sys.stdout, sys.stderr = old
    return status, stdout.getvalue().encode(), stderr.getvalue().encode()


def _same_as_wg(stdin):
    expected = _wg(["pubkey"], stdin)
    got = _pywg(["pubkey"], stdin)
    assert got[0] == expected[0], stdin
    assert got[1] == expected[1], stdin
    # Same message, our program name instead of wg's.
    assert got[2].removeprefix(b"pywg:") == expected[2].removeprefix(b"wg:"), stdin


def test_pubkey_matches_wg_on_random_keys():
    _need_wg()
    for _ in range(16):
        raw = os.urandom(32)  # unclamped too: both tools clamp before multiplying
        _same_as_wg(base64.b64encode(raw) + b"\n")
    _same_as_wg(base64.b64encode(bytes(32)) + b"\n")


KEY = base64.b64encode(bytes(range(32)))
EDGE_INPUTS = [
    b"", b"\n", b"abc\n", KEY, KEY + b"\n\n", KEY + b" \t\v\f\r\n", KEY + b"\0 \0",
    b"  " + KEY + b"  \n", b"\n" + KEY, KEY + b"x", KEY + b" x\n", KEY + b"\n" + KEY,
    KEY[:-1] + b"\n", KEY[:-2] + b"==", KEY[:-1] + b"A", KEY[:40] + b"AAB=",
    KEY[:42] + b"B=", KEY[:42] + b"E=", KEY[:10] + b"*" + KEY[11:], KEY[:10] + b"\0" + KEY[11:],
    KEY[:10] + b"\xff" + KEY[11:], KEY + b"=", b"A" * 44, b"A" * 43 + b"=",
]


@pytest.mark.parametrize("stdin", EDGE_INPUTS, ids=range(len(EDGE_INPUTS)))
def test_pubkey_edge_cases_match_wg(stdin):
    _need_wg()
    _same_as_wg(stdin)


def test_bad_input_says_why_on_stderr():
    status, out, err = _pywg(["pubkey"], b"not a key\n")
    assert status == 1 and out == b""
    assert err == b"pywg: Key is not the correct length or format\n"
    status, out, err = _pywg(["pubkey"], KEY + b" trailing\n")
    assert status == 1 and err == b"pywg: Trailing characters found after key\n"


@pytest.mark.parametrize("command", ["genkey", "genpsk"])
def test_generated_keys_have_wgs_shape(command):
    outputs = set()
    for _ in range(8):
        status, out, _ = _pywg([command])
        assert status == 0 and len(out) == 45 and out.endswith(b"=\n")
        raw = keys.from_base64(out[:-1].decode())
        outputs.add(raw)
        if command == "genkey":
            assert raw[0] & 7 == 0 and raw[31] & 0xC0 == 0x40  # clamped, as wg genkey
    assert len(outputs) == 8


def test_genkey_round_trips_through_wg_pubkey():
    _need_wg()
    _, private, _ = _pywg(["genkey"])
    assert _pywg(["pubkey"], private)[1] == _wg(["pubkey"], private)[1]


def test_genkey_warns_about_world_readable_files(tmp_path):
    path = tmp_path / "key"
    for mode, warned in ((0o644, True), (0o600, False)):
        path.write_bytes(b"")
        path.chmod(mode)
        with path.open("w") as out:
            proc = subprocess.run([sys.executable, "-m", "pywg", "genkey"], stdout=out,
                                  stderr=subprocess.PIPE, timeout=30)
        assert proc.returncode == 0
        assert (b"Warning: writing to world accessible file." in proc.stderr) == warned
        assert len(path.read_bytes()) == 45


def test_entry_points_and_usage_errors():
    proc = subprocess.run([sys.executable, "-m", "pywg", "pubkey"], input=KEY + b"\n",
                          capture_output=True, timeout=30)
    assert proc.returncode == 0 and len(proc.stdout) == 45
    proc = subprocess.run([sys.executable, "-m", "pywg", "--help"], capture_output=True,
                          timeout=30)
    assert proc.returncode == 0 and b"genkey" in proc.stdout and b"pubkey" in proc.stdout
    for bad in (["--nonsense"], [], ["genkey", "extra"]):
        with pytest.raises(SystemExit) as e:
            cli.main(bad)
        assert e.value.code != 0
    # Interface mode (`pywg [-f] IFNAME`) with the wrong number of words: usage, exit 1.
    for bad in (["-f"], ["-f", "a", "b"], ["--foreground"]):
        assert cli.main(bad) == 1


def test_hex_encoding():
    key = bytes(range(32))
    assert keys.from_hex(keys.to_hex(key)) == key
    assert keys.from_hex(key.hex().upper()) == key
    for bad in ("", "00" * 31, "00" * 33, "zz" * 32, "\u0660" * 64):
        with pytest.raises(keys.KeyFormatError):
            keys.from_hex(bad)
    with pytest.raises(keys.KeyFormatError):
        keys.to_base64(b"short")


@settings(max_examples=300)
@given(st.text(max_size=60))
def test_from_base64_is_exact_or_a_typed_error(text):
    try:
        key = keys.from_base64(text)
    except keys.KeyFormatError:
        return
    assert keys.to_base64(key) == text


@settings(max_examples=100)
@given(st.binary(max_size=120))
def test_read_key_from_never_crashes(data):
    try:
        key = cli.read_key_from(io.BytesIO(data))
    except keys.KeyFormatError:
        return
    assert len(key) == 32
