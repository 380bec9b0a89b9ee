"""Operating pywg without root: systemd's notification protocol on real datagram sockets,
journald's log format, the units (checked by systemd-analyze), pywg's extra `get` keys read
back by pywg's client, and the words `pywg status` uses."""

from __future__ import annotations

import io
import logging
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from pywg._config.model import DeviceConfig, PeerConfig, PrivateKey, PublicKey
from pywg._config.uapi import DeviceSnapshot, PeerStats, format_get
from pywg._driver import log as pywg_log
from pywg._driver import sd_notify
from pywg._tools import units
from pywg._tools.status.model import state_of
from pywg._tools.status.web import parse_serve_address
from pywg._tools.status.words import ago, size, speed
from pywg._tools.uapi_client import parse_get

# ---- sd_notify ----------------------------------------------------------------------------


@pytest.fixture
def datagram_socket(tmp_path):
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        path = tmp_path / "notify"
        sock.bind(str(path))
        sock.settimeout(5)
        yield sock, str(path)


def test_notify_reaches_a_path_socket(datagram_socket):
    sock, path = datagram_socket
    assert sd_notify.notify("READY=1\nSTATUS=up", {"NOTIFY_SOCKET": path})
    assert sock.recv(4096) == b"READY=1\nSTATUS=up"


def test_notify_reaches_an_abstract_socket():
    name = f"pywg-test-{os.getpid()}-{os.urandom(4).hex()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(b"\0" + name.encode())
        sock.settimeout(5)
        assert sd_notify.notify("WATCHDOG=1", {"NOTIFY_SOCKET": "@" + name})
        assert sock.recv(4096) == b"WATCHDOG=1"


@pytest.mark.parametrize("value", ["", "relative/path", "vsock:2:1234"])
def test_notify_without_a_usable_socket_does_nothing(value):
    assert not sd_notify.notify("READY=1", {"NOTIFY_SOCKET": value} if value else {})


def test_notify_to_a_socket_nobody_listens_on_is_not_an_error(tmp_path):
    assert not sd_notify.notify("READY=1", {"NOTIFY_SOCKET": str(tmp_path / "gone")})


def test_watchdog_interval():
    assert sd_notify.watchdog_interval({}) is None
    assert sd_notify.watchdog_interval({"WATCHDOG_USEC": "4000000"}) == 2.0
    me = {"WATCHDOG_USEC": "4000000", "WATCHDOG_PID": str(os.getpid())}
    assert sd_notify.watchdog_interval(me) == 2.0
    other = {"WATCHDOG_USEC": "4000000", "WATCHDOG_PID": str(os.getpid() + 1)}
    assert sd_notify.watchdog_interval(other) is None
    assert sd_notify.watchdog_interval({"WATCHDOG_USEC": "soon"}) is None


# ---- logs -------------------------------------------------------------------------------------

def test_journal_lines_when_stderr_is_the_journal_stream(tmp_path, monkeypatch):
    path = tmp_path / "journal"
    with open(path, "w") as stream:
        st = os.fstat(stream.fileno())
        monkeypatch.setenv("JOURNAL_STREAM", f"{st.st_dev}:{st.st_ino}")
        logger = pywg_log.setup("wg0", "verbose", stream)
        pywg_log.set_peer_names({b"\x01" * 32: "alice"})
        try:
            logger.info("%s - Handshake completed", pywg_log.peer_name(b"\x01" * 32))
            logger.error("UAPI listen error: %s", "in use")
            try:
                raise ValueError("boom")
            except ValueError:
                logger.exception("event failed")
        finally:
            pywg_log.set_peer_names({})
    lines = path.read_text().splitlines()
    key = PublicKey(b"\x01" * 32).base64()
    assert lines[0] == f'<6>(wg0) peer({key[:4]}…{key[-5:-1]} "alice") - Handshake completed'
    assert lines[1] == "<3>(wg0) UAPI listen error: in use"
    assert lines[2].startswith("<3>(wg0) event failed | Traceback")
    assert "ValueError: boom" in lines[2] and len(lines) == 3


def test_plain_lines_when_stderr_is_not_the_journal(monkeypatch):
    monkeypatch.setenv("JOURNAL_STREAM", "1:2")
    stream = io.StringIO()
    pywg_log.setup("wg0", "info", stream).info("UAPI listener started")
    assert stream.getvalue().startswith("INFO: (wg0) ")
    logging.getLogger("pywg").handlers.clear()


def test_peer_names_are_short_keys_without_a_name():
    key = PublicKey(b"\x02" * 32).base64()
    assert pywg_log.peer_name(b"\x02" * 32) == f"peer({key[:4]}…{key[-5:-1]})"


# ---- pywg's extra `get` keys ------------------------------------------------------------------

def test_extras_come_before_the_peers_and_read_back():
    peer = PeerConfig(PublicKey(b"\x03" * 32))
    config = DeviceConfig(PrivateKey(b"\x04" * 32), 51820, 0, (peer,))
    snapshot = DeviceSnapshot(config, 51820, {peer.public_key: PeerStats(None, 0, 5, 6)},
                              {"drop_decrypt": 7, "drop_replay": 0, "Bad-Name": 1})
    lines = format_get(snapshot).decode().splitlines()
    assert lines.index("pywg_drop_decrypt=7") < lines.index(f"public_key={'03' * 32}")
    assert not any("Bad-Name" in line for line in lines)  # not a key a client could trust
    back = parse_get(lines[:-1])
    assert back.extras == {"drop_decrypt": 7, "drop_replay": 0}
    assert back.stats[peer.public_key].rx_bytes == 5


def test_a_get_without_extras_has_none():
    assert parse_get(["listen_port=1", "pywg_drop_decrypt=many"]).extras == {}


# ---- units ------------------------------------------------------------------------------------

def test_units_carry_absolute_commands():
    for unit in units.UNITS:
        text = units.render(unit, "/usr/bin/pywg", "/usr/bin/wg")
        assert "@" + "PYWG@" not in text and "@WG@" not in text
    notify = units.render("pywg@.service", "/usr/bin/pywg", "/usr/bin/wg")
    assert "Type=notify" in notify and "ExecStart=/usr/bin/pywg --foreground %i" in notify
    quick = units.render("pywg-quick@.service", "/usr/bin/pywg", "/usr/bin/wg")
    assert "Type=oneshot" in quick and "RemainAfterExit=yes" in quick
    assert "/usr/bin/wg syncconf %i <(exec /usr/bin/pywg strip %i)" in quick


def test_systemd_analyze_verifies_the_installed_units(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("needs systemd-analyze (Debian's systemd package; make deps installs it)")
    done = subprocess.run([sys.executable, "-m", "pywg", "install-units", "--dir",
                           str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    for unit in units.UNITS:
        assert (tmp_path / unit).stat().st_mode & 0o777 == 0o644
    instances = [str(tmp_path / u.replace("@.", "@wg0.")) for u in units.UNITS]
    verify = subprocess.run([analyze, "verify", *instances], capture_output=True, text=True,
                            timeout=120, cwd=tmp_path)
    assert verify.returncode == 0 and tmp_path.name not in verify.stderr, verify.stderr


def test_systemd_analyze_would_catch_a_broken_unit(tmp_path):
    """The check above can fail: a unit whose command does not exist is refused."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("needs systemd-analyze (Debian's systemd package; make deps installs it)")
    text = units.render("pywg@.service", str(tmp_path / "no-such-pywg"), "/usr/bin/wg")
    Path(tmp_path / "pywg@.service").write_text(text)
    verify = subprocess.run([analyze, "verify", str(tmp_path / "pywg@wg0.service")],
                            capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert verify.returncode != 0


# ---- status words -----------------------------------------------------------------------------

def test_words():
    assert size(0) == "0 B" and size(1023) == "1023 B" and size(1536) == "1.50 KiB"
    assert size(5 * 1024**3) == "5.00 GiB"
    assert speed(None) == "-" and speed(2048.4) == "2.00 KiB/s"
    assert ago(0, 1000) == "never"
    assert ago(1000, 1000) == "now"
    assert ago(1000, 1000 + 65) == "1 minute, 5 seconds ago"
    assert ago(1000, 1000 + 2 * 86400 + 3600) == "2 days, 1 hour ago"


def test_online_stale_offline():
    now = 1_000_000.0
    assert state_of(0, now) == "offline"
    assert state_of(int(now) - 179, now) == "online"
    assert state_of(int(now) - 181, now) == "stale"
    assert state_of(int(now) - 600, now) == "offline"


@pytest.mark.parametrize(("text", "expected"), [
    ("8080", ("127.0.0.1", 8080)), ("0.0.0.0:80", ("0.0.0.0", 80)),
    ("[::1]:8080", ("::1", 8080)), ("127.0.0.2", ("127.0.0.2", 9587)),
])
def test_serve_addresses(text, expected):
    assert parse_serve_address(text) == expected


@pytest.mark.parametrize("text", ["0", "70000", "example.org:80", "[::1]:x", "1.2.3.4:"])
def test_bad_serve_addresses(text):
    with pytest.raises(ValueError):
        parse_serve_address(text)


# ---- what an idle daemon loads -----------------------------------------------------------------

def test_the_daemon_loads_neither_prometheus_client_nor_rich_until_asked():
    code = ("import sys, pywg._driver.daemon, pywg._tools.cli; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('prometheus_client', 'rich')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=True)
    assert done.stdout.strip() == "[]"
