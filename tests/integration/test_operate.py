"""Operating pywg, against real parts: two pywg daemons in namespaces (the interop harness),
their metrics read by prometheus_client's parser, `pywg status` checked against `wg show`
of the same interfaces, its web page in a real headless Chromium (Debian's, driven by
selenium and the system chromedriver), systemd's readiness protocol on a real datagram
socket, and journald's line format on a real file.

The web page's screenshot is kept as build/artifacts/status-page.png.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import pty
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.harness import daemons, files, links, netns, probes, topology, wait, wg
from tests.harness.impls import PYWG
from tests.harness.netns import namespace, socket_in
from tests.harness.skips import require_impls, require_root, require_tools
from tests.harness.topology import Topology
from tests.harness.wg import Dump, KeyPair

METRICS_PORT = 9586
ARTIFACTS = Path(__file__).resolve().parents[2] / "build" / "artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
NAMES = {"a": "HQ gateway", "b": "Branch office"}


def _names_file(path: Path, description: str, peer_key: str, peer_name: str) -> None:
    path.write_text(f"[Interface]\n# Name = {description}\n\n"
                    f"[Peer]\n# Name = {peer_name}\nPublicKey = {peer_key}\n")


@pytest.fixture(scope="module")
def tunnel() -> Iterator[Topology]:
    """Two pywg daemons serving metrics; each names its peer in its own config file."""
    require_root()
    require_tools("wg", "ping")
    (pywg,) = require_impls("pywg")
    confdir = Path(tempfile.mkdtemp(prefix="operate-conf-"))
    env = {"PYWG_METRICS": f"127.0.0.1:{METRICS_PORT}",
           "PYWG_CONFIG_FILE": str(confdir / "daemon.conf")}
    try:
        with files.workdir("operate") as logdir, \
                topology.tunnel((pywg, pywg), "op", logdir, env=env) as t:
            t.confdir = confdir  # type: ignore[attr-defined]
            # Names for the status view (one file per interface, as /etc/wireguard has)...
            _names_file(confdir / f"{t.a.ifname}.conf", NAMES["a"], t.b.daemon.keys.public,
                        NAMES["b"])
            _names_file(confdir / f"{t.b.ifname}.conf", NAMES["b"], t.a.daemon.keys.public,
                        NAMES["a"])
            # ... and for the daemons, which read theirs again when it changes.
            (confdir / "daemon.conf").write_text(
                f"[Peer]\n# Name = {NAMES['b']}\nPublicKey = {t.b.daemon.keys.public}\n"
                f"[Peer]\n# Name = {NAMES['a']}\nPublicKey = {t.a.daemon.keys.public}\n")
            t.psk = wg.genpsk()  # type: ignore[attr-defined]
            t.configure(psk=t.psk)  # type: ignore[attr-defined]
            probes.ping(t.a.ns, t.b.inner4)
            yield t
    finally:
        shutil.rmtree(confdir, ignore_errors=True)


def _http(ns: str, port: int, path: str, method: str = "GET",
          headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """A request to 127.0.0.1:port inside namespace `ns`."""
    sock = socket_in(ns, socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(20)
    sock.connect(("127.0.0.1", port))
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    conn.sock = sock
    try:
        conn.request(method, path, headers=headers or {})
        reply = conn.getresponse()
        return reply.status, dict(reply.getheaders()), reply.read()
    finally:
        conn.close()


def _secrets(t: Topology) -> list[str]:
    keys = [t.a.daemon.keys.private, t.b.daemon.keys.private, t.psk]  # type: ignore[attr-defined]
    return [form for key in keys for form in wg.key_forms(key)]


def _between(low: int, value: float, high: int) -> bool:
    return low <= value <= high


# ---- metrics --------------------------------------------------------------------------------

def test_metrics_of_a_live_tunnel(tunnel: Topology) -> None:
    a, b = tunnel.a, tunnel.b
    probes.ping(a.ns, b.inner4, count=5)
    before = a.daemon.dump()
    time.sleep(1.1)  # a fresh reading (scrapes within a second share one)
    status, headers, body = _http(a.ns, METRICS_PORT, "/metrics")
    after = a.daemon.dump()
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    text = body.decode()
    for secret in _secrets(tunnel):
        assert secret not in text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    key = b.daemon.keys.public

    def sample(family: str, suffix: str = "", **labels: str) -> float:
        names = (family + suffix,) if suffix else (family, family + "_total")
        found = [s for s in families[family].samples if s.name in names
                 and all(s.labels.get(k) == v for k, v in labels.items())]
        assert len(found) == 1, (family, labels, found)
        return float(found[0].value)

    peer_before, peer_after = before.peers[key], after.peers[key]
    assert _between(peer_before.rx, sample("wireguard_peer_receive_bytes", public_key=key,
                                           device=a.ifname), peer_after.rx)
    assert _between(peer_before.tx, sample("wireguard_peer_transmit_bytes", public_key=key),
                    peer_after.tx)
    assert sample("wireguard_peer_last_handshake_seconds", public_key=key) in (
        peer_before.latest_handshake, peer_after.latest_handshake)
    info = [s.labels for s in families["wireguard_peer_info"].samples]
    assert info == [{"device": a.ifname, "public_key": key, "name": NAMES["b"],
                     "endpoint": peer_after.endpoint, "allowed_ips": peer_after.allowed_ips}]
    assert sample("wireguard_device_info", public_key=a.daemon.keys.public) == 1
    assert sample("wireguard_peers", device=a.ifname) == 1
    assert sample("wireguard_peer_handshake_age_seconds", "_bucket", le="180.0") == 1
    assert sample("pywg_packets", path="udp", direction="rx") >= 5
    assert sample("pywg_packets", path="tun", direction="rx") >= 5
    assert sample("pywg_handshakes_completed") >= 1
    assert sample("pywg_dropped_packets", reason="decrypt") == 0
    assert sample("pywg_under_load") == 0
    assert sample("process_resident_memory_bytes") > 1 << 20
    # The daemon serves nothing else, and changes nothing.
    assert _http(a.ns, METRICS_PORT, "/metrics", method="POST")[0] == 501


def test_wg_reads_a_daemon_that_adds_its_own_keys(tunnel: Topology) -> None:
    """pywg's `get` carries pywg_* counters: wg(8) skips them (showconf shows none)."""
    a = tunnel.a
    shown = a.daemon.wg("showconf", a.ifname).stdout
    assert "pywg" not in shown and tunnel.b.daemon.keys.public in shown
    raw = _uapi(a.ifname, b"get=1\n\n")
    assert "pywg_drop_decrypt=" in raw


def _uapi(ifname: str, request: bytes) -> str:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect(str(daemons.socket_path(ifname)))
        s.sendall(request)
        data = b""
        while not data.endswith(b"\n\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    return data.decode()


# ---- pywg status ------------------------------------------------------------------------------

def _pywg(ns: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return netns.run(ns, [*PYWG.argv, *args], timeout=timeout,
                     env=dict(os.environ, COLUMNS="250"))


def _check_tunnel(shown: dict[str, object], before: Dump, after: Dump, peer_name: str) -> None:
    assert shown["public_key"] == after.public_key
    assert shown["listen_port"] == after.listen_port
    (peer,) = shown["peers"]  # type: ignore[misc]
    (key,) = after.peers
    wg_before, wg_after = before.peers[key], after.peers[key]
    assert peer["public_key"] == key and peer["name"] == peer_name
    assert peer["endpoint"] == wg_after.endpoint
    assert ",".join(peer["allowed_ips"]) == wg_after.allowed_ips
    assert peer["latest_handshake"] in (wg_before.latest_handshake, wg_after.latest_handshake)
    assert _between(wg_before.rx, peer["rx_bytes"], wg_after.rx)
    assert _between(wg_before.tx, peer["tx_bytes"], wg_after.tx)
    assert peer["state"] == "online"


def test_status_agrees_with_wg_show(tunnel: Topology) -> None:
    a, b = tunnel.a, tunnel.b
    confdir = str(tunnel.confdir)  # type: ignore[attr-defined]
    probes.ping(b.ns, a.inner4, count=3)
    before = {a.ifname: a.daemon.dump(), b.ifname: b.daemon.dump()}
    shown = json.loads(_pywg(a.ns, "status", "--json", "--interval", "0", "--config-dir",
                             confdir, a.ifname, b.ifname).stdout)
    after = {a.ifname: a.daemon.dump(), b.ifname: b.daemon.dump()}
    tunnels = {t["name"]: t for t in shown["tunnels"]}
    assert list(tunnels) == [a.ifname, b.ifname]
    _check_tunnel(tunnels[a.ifname], before[a.ifname], after[a.ifname], NAMES["b"])
    _check_tunnel(tunnels[b.ifname], before[b.ifname], after[b.ifname], NAMES["a"])
    ta = tunnels[a.ifname]
    assert ta["description"] == NAMES["a"]
    assert f"{a.inner4}/24" in ta["addresses"] and ta["mtu"] == 1420
    assert tunnels[b.ifname]["addresses"] is None  # its link lives in the other namespace
    assert set(ta["drops"]) >= {"decrypt", "replay", "no_peer", "handshake"}
    text = json.dumps(shown)
    for secret in _secrets(tunnel):
        assert secret not in text

    view = _pywg(a.ns, "status", "--interval", "0.2", "--config-dir", confdir,
                 a.ifname).stdout
    for word in (a.ifname, NAMES["a"], NAMES["b"], b.daemon.keys.public, "online",
                 b.endpoint(4), f"{b.inner4}/32", "1420"):
        assert word in view, word


def test_status_watch_redraws_in_place(tunnel: Topology) -> None:
    """--watch on a terminal (a pty) draws the view again and again in the same place, and
    ends cleanly on Ctrl-C."""
    a = tunnel.a
    leader, follower = pty.openpty()
    proc = subprocess.Popen(netns.exec_argv(a.ns, [*PYWG.argv, "status", "--watch",
                                                   "--interval", "0.2", a.ifname]),
                            stdin=follower, stdout=follower, stderr=follower,
                            env=dict(os.environ, COLUMNS="250", LINES="50", TERM="xterm"))
    os.close(follower)
    output = b""
    try:
        deadline = time.monotonic() + 20
        while output.count(a.ifname.encode()) < 4 and time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.5)
            if ready:
                output += os.read(leader, 65536)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        os.close(leader)
    assert output.count(a.ifname.encode()) >= 4  # drawn four times ...
    assert b"\x1b[1A" in output or b"\x1b[2K" in output  # ... over itself (cursor moves)


def test_status_shows_a_wireguard_go_interface(workdir: Path) -> None:
    require_root()
    (wggo,) = require_impls("wggo")
    peer = KeyPair.generate().public
    with namespace("os") as ns, daemons.running(wggo, ns, netns.unique("wgG"), workdir) as d:
        d.set_private_key()
        d.wg("set", d.ifname, "listen-port", "40555", "peer", peer, "allowed-ips",
             "10.99.0.0/24", "endpoint", "192.0.2.7:51820")
        shown = json.loads(_pywg(ns, "status", "--json", "--interval", "0",
                                 d.ifname).stdout)
    (tunnel,) = shown["tunnels"]
    assert tunnel["public_key"] == d.keys.public and tunnel["listen_port"] == 40555
    assert tunnel["drops"] is None  # wireguard-go does not report pywg's counters
    (p,) = tunnel["peers"]
    assert (p["public_key"], p["endpoint"], p["allowed_ips"], p["state"]) == (
        peer, "192.0.2.7:51820", ["10.99.0.0/24"], "offline")


@pytest.fixture
def workdir() -> Iterator[Path]:
    with files.workdir("op") as d:
        yield d


# ---- the web page in a real browser -----------------------------------------------------------

@contextlib.contextmanager
def _forward(ns: str, port: int) -> Iterator[int]:
    """A loopback port here that relays each connection to 127.0.0.1:port in `ns` (the
    browser runs in this namespace, the page's server in the tunnel's)."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def pump(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def serve() -> None:
        while not stop.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            upstream = socket_in(ns, socket.AF_INET, socket.SOCK_STREAM)
            try:
                upstream.connect(("127.0.0.1", port))
            except OSError:
                client.close()
                upstream.close()
                continue
            for one, other in ((client, upstream), (upstream, client)):
                threading.Thread(target=pump, args=(one, other), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()


@contextlib.contextmanager
def _status_server(ns: str, port: int, confdir: str) -> Iterator[subprocess.Popen[str]]:
    argv = ["ip", "netns", "exec", ns, *PYWG.argv, "status", "--serve", f"127.0.0.1:{port}",
            "--interval", "0.5", "--config-dir", confdir]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait.wait_for(lambda: _answers(ns, port, proc), "pywg status --serve", 20)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def _answers(ns: str, port: int, proc: subprocess.Popen[str]) -> bool:
    if proc.poll() is not None:
        pytest.fail(f"pywg status --serve exited {proc.returncode}: "
                    f"{proc.stderr.read() if proc.stderr else ''}")
    try:
        return _http(ns, port, "/api/status")[0] == 200
    except OSError:
        return False


def _browser():  # type: ignore[no-untyped-def]
    if not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)):
        pytest.skip("needs Debian's chromium and chromium-driver (make deps installs them)")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip("needs selenium (pip install -e '.[test]')")
    os.environ.setdefault("SE_OFFLINE", "true")  # never let selenium look for a download
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="operate-chromium-")
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-quic", "--no-first-run",
                 "--window-size=1500,820", f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    return driver, profile


def _page_peers(driver) -> dict[str, dict[str, object]]:  # type: ignore[no-untyped-def]
    """Per tunnel, its peer rows as the page shows them (read in one go by script)."""
    return driver.execute_script("""
        const out = {};
        for (const card of document.querySelectorAll("section.tunnel")) {
          out[card.dataset.tunnel] = {
            description: (card.querySelector(".description") || {}).textContent || "",
            peers: [...card.querySelectorAll("tr.peer")].map(row => ({
              key: row.dataset.publicKey, state: row.dataset.state,
              name: row.querySelector(".name").textContent,
              endpoint: row.querySelector(".endpoint").textContent,
              rx: Number(row.querySelector(".rx").dataset.bytes),
              tx: Number(row.querySelector(".tx").dataset.bytes),
              samples: Number(row.querySelector("svg.sparkline").dataset.samples)}))};
        }
        return out;""")


def _updates(driver) -> int:  # type: ignore[no-untyped-def]
    return int(driver.execute_script("return Number(document.body.dataset.updates || 0)"))


def _next_update(driver, timeout: float = 15) -> None:  # type: ignore[no-untyped-def]
    seen = _updates(driver)
    wait.wait_for(lambda: _updates(driver) > seen, "the page to update", timeout)


def test_status_page_in_a_browser(tunnel: Topology) -> None:
    a = tunnel.a
    confdir = str(tunnel.confdir)  # type: ignore[attr-defined]
    port = 9587
    driver, profile = _browser()
    try:
        with _status_server(a.ns, port, confdir), _forward(a.ns, port) as local:
            _check_page(tunnel, driver, local)
            _check_read_only(tunnel, a.ns, port)
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _check_page(t: Topology, driver, local: int) -> None:  # type: ignore[no-untyped-def]
    a, b = t.a, t.b
    driver.get(f"http://127.0.0.1:{local}/")
    wait.wait_for(lambda: _updates(driver) >= 1, "the page's first drawing", 20)
    # Counters: between what `wg show` said just before and just after the page's reading.
    before = {a.ifname: a.daemon.dump(), b.ifname: b.daemon.dump()}
    _next_update(driver)
    after = {a.ifname: a.daemon.dump(), b.ifname: b.daemon.dump()}
    page = _page_peers(driver)
    assert set(page) == {a.ifname, b.ifname}
    for side, other, name in ((a, b, NAMES["b"]), (b, a, NAMES["a"])):
        (row,) = page[side.ifname]["peers"]  # type: ignore[misc]
        key = other.daemon.keys.public
        assert (row["key"], row["name"], row["state"]) == (key, name, "online")
        assert row["endpoint"] == after[side.ifname].peers[key].endpoint
        assert _between(before[side.ifname].peers[key].rx, row["rx"],
                        after[side.ifname].peers[key].rx)
        assert _between(before[side.ifname].peers[key].tx, row["tx"],
                        after[side.ifname].peers[key].tx)
    assert page[a.ifname]["description"] == NAMES["a"]

    # Traffic flows: the counters on the page grow and the sparkline gets its samples.
    start = page[a.ifname]["peers"][0]["rx"]  # type: ignore[index]
    key = b.daemon.keys.public
    with _traffic(b.ns, a.inner4):
        wait.wait_for(lambda: _page_peers(driver)[a.ifname]["peers"][0]["rx"] > start
                         and _page_peers(driver)[a.ifname]["peers"][0]["samples"] >= 3,
                         "the page to show the traffic", 20)
        time.sleep(2)  # a few more samples for the sparkline in the screenshot
        _next_update(driver)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        assert driver.save_screenshot(str(ARTIFACTS / "status-page.png"))
    assert a.daemon.dump().peers[key].rx > start

    source = driver.page_source
    for secret in _secrets(t):
        assert secret not in source


@contextlib.contextmanager
def _traffic(ns: str, dest: str) -> Iterator[None]:
    """Pings, bounded in count and time, in the background while the body runs."""
    proc = subprocess.Popen(["ip", "netns", "exec", ns, "ping", "-q", "-n", "-i", "0.02",
                             "-s", "1200", "-c", "1500", "-w", "40", dest],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _check_read_only(t: Topology, ns: str, port: int) -> None:
    before = t.a.daemon.wg("showconf", t.a.ifname).stdout
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        status, headers, _ = _http(ns, port, "/api/status", method=method)
        assert status == 405 and headers["Allow"] == "GET, HEAD", method
    assert t.a.daemon.wg("showconf", t.a.ifname).stdout == before
    status, headers, body = _http(ns, port, "/api/status")
    assert status == 200 and "default-src 'none'" in headers["Content-Security-Policy"]
    for secret in _secrets(t):
        assert secret not in body.decode()
    for page in ("/", "/app.js", "/style.css"):
        assert _http(ns, port, page)[0] == 200
    # A page elsewhere whose name was made to point at 127.0.0.1 (DNS rebinding) is refused.
    assert _http(ns, port, "/api/status", headers={"Host": "evil.example:9587"})[0] == 421
    assert _http(ns, port, "/api/status", headers={"Host": "localhost:8000"})[0] == 200


# ---- systemd ----------------------------------------------------------------------------------

def test_readiness_watchdog_and_journal_lines(workdir: Path) -> None:
    """A foreground daemon with NOTIFY_SOCKET says READY=1 only once its TUN and UAPI
    socket exist, pings the watchdog, says STOPPING=1; with JOURNAL_STREAM naming its
    stderr, its lines carry journald's priorities."""
    require_root()
    (pywg,) = require_impls("pywg")
    name = netns.unique("wgN")
    log_path = workdir / f"{name}.log"
    log_path.touch()
    st = log_path.stat()
    notify_path = workdir / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify, namespace("sd") as ns:
        notify.bind(str(notify_path))
        notify.settimeout(20)
        env = {"NOTIFY_SOCKET": str(notify_path), "WATCHDOG_USEC": "200000",
               "JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}", "LOG_LEVEL": "info"}
        d = daemons.start(pywg, ns, name, workdir, foreground=True, env=env,
                          wait_ready=False)
        try:
            message = notify.recv(4096).decode()
            # At this moment the interface and its socket already exist.
            assert links.exists(ns, name)
            assert daemons.socket_path(name).is_socket()
            assert d.wg("show", name, check=False).returncode == 0
            assert message.splitlines()[0] == "READY=1", message
            assert any(line.startswith("STATUS=Serving") for line in message.splitlines())
            pings = [notify.recv(4096) for _ in range(3)]
            assert pings == [b"WATCHDOG=1"] * 3
            netns.run(ns, ["ip", "link", "del", "dev", name])
            while (message := notify.recv(4096).decode()) == "WATCHDOG=1":
                pass
            assert message.startswith("STOPPING=1"), message
            assert d.wait_exit()
        finally:
            d.stop()
    lines = [line for line in log_path.read_text().splitlines() if line]
    assert lines and all(line.startswith(("<6>", "<7>", "<4>", "<3>")) for line in lines), lines
    assert any(line.startswith(f"<6>({name}) UAPI listener started") for line in lines)


def test_a_port_in_use_fails_the_start(workdir: Path) -> None:
    """The metrics socket exists before `pywg IFNAME` returns: a port in use is exit 1."""
    require_root()
    (pywg,) = require_impls("pywg")
    name = netns.unique("wgM")
    with namespace("mp") as ns:
        taken = socket_in(ns, socket.AF_INET, socket.SOCK_STREAM)
        try:
            taken.bind(("127.0.0.1", METRICS_PORT))
            taken.listen(1)
            done = netns.run(ns, [*pywg.argv, "--metrics", str(METRICS_PORT), name],
                             check=False)
            assert done.returncode == 1
            assert "Metrics listen error" in done.stderr
            assert not links.exists(ns, name)
            assert not daemons.socket_path(name).exists()
        finally:
            taken.close()
