"""pywg's UAPI server driven by the real wg(8), and compared with a real wireguard-go.

    host namespace                          namespace uwXXXXXX (made by the test)
    pywg UAPI server (in-memory device)     wireguard-go -f wggXXXXXX (TUN down: no traffic)
    /var/run/wireguard/wgpXXXXXX.sock       /var/run/wireguard/wggXXXXXX.sock

Both are given the same configuration, with the same keys, through the same `wg` commands
(setconf, set, addconf, syncconf); after each step `wg show NAME dump`, `wg showconf` and the
other `wg show` fields must agree, leaving out what differs by nature (the listen port the
other side picked, handshake times and byte counters) and the order of peers (wireguard-go
keeps them in a Go map). The allowed IPs of a peer are compared in order.

Then `wg` itself is the judge of our configuration-file parser: the exact `set` it sends for
setconf and addconf, and which files it accepts.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from pywg._config.errors import ConfigError
from pywg._config.model import Change
from pywg._config.uapi import MemoryDevice
from pywg._tools.conffile import parse_conf
from tests.harness import daemons, files
from tests.harness import wg as wg_tool
from tests.harness.impls import WGGO
from tests.harness.netns import namespace, unique
from tests.harness.skips import require_root, require_tools
from tests.support.uapi import Client, serving

TIMEOUT_S = 10.0


def wg(*args: str, stdin: str | None = None, check: bool = True) -> str:
    """`wg ARGS` here (it finds both sockets by name), its output."""
    return wg_tool.wg(None, *args, input=stdin, check=check).stdout


def genkey() -> tuple[str, str]:
    pair = wg_tool.KeyPair.generate()
    return pair.private, pair.public


@pytest.fixture(scope="module")
def pair() -> Iterator[tuple[str, str]]:
    """(our interface name, wireguard-go's), both serving their UAPI sockets."""
    require_root()
    require_tools("wg", "wireguard-go")
    ours, theirs = unique("wgp"), unique("wgg")
    with files.workdir("uw") as work, namespace("uw") as ns, \
            daemons.running(WGGO, ns, theirs, work, foreground=True,
                            env={"LOG_LEVEL": "error"}), \
            serving(MemoryDevice(), ours):
        yield ours, theirs


@pytest.fixture(scope="module")
def keys() -> dict[str, tuple[str, str]]:
    require_tools("wg")
    return {name: genkey() for name in ("dev", "p1", "p2", "p3", "p4", "p5")}


@pytest.fixture
def tmp(tmp_path: Path) -> Path:
    return tmp_path


def write(tmp: Path, name: str, text: str) -> str:
    path = tmp / name
    path.write_text(text)
    return str(path)


# Comparing what `wg` shows for both.


def dump(ifname: str) -> tuple[list[str], dict[str, list[str]]]:
    lines = [line.split("\t") for line in wg("show", ifname, "dump").splitlines()]
    interface = lines[0][:2] + lines[0][3:]  # without the listen port
    # public key, preshared key, endpoint, allowed ips, keepalive (no handshake, no counters)
    peers = {f[0]: f[1:4] + f[7:] for f in lines[1:]}
    return interface, peers


def showconf(ifname: str) -> tuple[list[str], dict[str, list[str]]]:
    sections = wg("showconf", ifname).split("\n\n")
    head = [line for line in sections[0].splitlines() if not line.startswith("ListenPort")]
    peers = {}
    for section in filter(None, (s.strip() for s in sections[1:])):
        lines = section.splitlines()
        peers[lines[1]] = lines[2:]
    return head, peers


SHOW_FIELDS = ("public-key", "private-key", "fwmark", "peers", "endpoints", "allowed-ips",
               "persistent-keepalive", "preshared-keys")


def show(ifname: str, field: str) -> list[str]:
    return sorted(wg("show", ifname, field).splitlines())


def assert_same(pair: tuple[str, str]) -> None:
    ours, theirs = pair
    assert dump(ours) == dump(theirs)
    assert showconf(ours) == showconf(theirs)
    for field in SHOW_FIELDS:
        assert show(ours, field) == show(theirs, field), field


def both(pair: tuple[str, str], *args: str) -> None:
    for ifname in pair:
        wg(*[ifname if a == "IF" else a for a in args])


def config(keys: dict[str, tuple[str, str]], port: int = 51820) -> str:
    (dev, _), (_, p1), (_, p2), (_, p3) = keys["dev"], keys["p1"], keys["p2"], keys["p3"]
    psk = wg("genpsk").strip()
    return f"""\
[Interface]
PrivateKey = {dev}
ListenPort = {port}
FwMark = 0x1234

[Peer]
PublicKey = {p1}
PresharedKey = {psk}
AllowedIPs = 10.1.0.1/16, fd01::/64, ::ffff:10.7.7.7/128
AllowedIPs = 10.11.0.0/16
Endpoint = 192.0.2.1:51820
PersistentKeepalive = 25

[Peer]
PublicKey = {p2}
AllowedIPs = 10.2.0.0/16, 10.11.0.0/16, 0.0.0.0/0
Endpoint = [2001:db8::2]:1234

[Peer]
PublicKey = {p3}
AllowedIPs = 10.3.0.0/24, 10.3.0.0/16
Endpoint = [::ffff:192.0.2.3]:4
PersistentKeepalive = 0
"""


def test_same_as_wireguard_go_through_every_wg_command(
        pair: tuple[str, str], keys: dict[str, tuple[str, str]], tmp: Path) -> None:
    ours, _ = pair
    both(pair, "setconf", "IF", write(tmp, "a.conf", config(keys)))
    assert_same(pair)
    assert wg("show", ours, "fwmark").strip() == "0x1234"
    assert len(wg("show", ours, "peers").split()) == 3

    p1, p2, p4 = keys["p1"][1], keys["p2"][1], keys["p4"][1]
    psk_file = write(tmp, "psk", wg("genpsk"))
    steps = [
        ("set", "IF", "peer", p1, "allowed-ips", "10.9.0.0/16,fd99::/64",
         "endpoint", "198.51.100.1:99", "persistent-keepalive", "0"),
        ("set", "IF", "peer", p2, "remove"),
        ("set", "IF", "peer", p4, "allowed-ips", "10.3.0.0/24", "preshared-key", psk_file,
         "persistent-keepalive", "off"),
        ("set", "IF", "fwmark", "0", "listen-port", "51999"),
        # a prefix inserted again moves to the end of the peer's list
        ("set", "IF", "peer", p1, "allowed-ips", "10.9.0.0/16,fd99::/64,10.9.0.0/16"),
        ("set", "IF", "peer", p1, "preshared-key", "/dev/null"),
    ]
    for step in steps:
        both(pair, *step)
        assert_same(pair)


def test_addconf_and_syncconf(pair: tuple[str, str], keys: dict[str, tuple[str, str]],
                              tmp: Path) -> None:
    both(pair, "setconf", "IF", write(tmp, "a.conf", config(keys)))
    p3, p5 = keys["p3"][1], keys["p5"][1]
    more = f"[Peer]\nPublicKey = {p5}\nAllowedIPs = 10.5.0.0/16, 10.2.0.0/16\n" \
           f"[Peer]\nPublicKey = {p3}\nAllowedIPs = 10.33.0.0/16\nPersistentKeepalive = 5\n"
    both(pair, "addconf", "IF", write(tmp, "more.conf", more))
    assert_same(pair)
    # syncconf: compares with what the device has and removes the peers not in the file
    both(pair, "syncconf", "IF", write(tmp, "sync.conf", config(keys, 51821).replace(
        "0.0.0.0/0", "10.22.0.0/16").split("[Peer]\nPublicKey = " + keys["p3"][1])[0]))
    assert_same(pair)


def test_private_key_changes(pair: tuple[str, str], keys: dict[str, tuple[str, str]],
                             tmp: Path) -> None:
    ours, _ = pair
    both(pair, "setconf", "IF", write(tmp, "a.conf", config(keys)))
    # Becoming peer p3: the peer with our new public key goes.
    both(pair, "set", "IF", "private-key", write(tmp, "p3.key", keys["p3"][0] + "\n"))
    assert_same(pair)
    assert keys["p3"][1] not in wg("show", ours, "peers")
    # A peer with our own public key is ignored, silently.
    both(pair, "set", "IF", "peer", keys["p3"][1], "allowed-ips", "10.99.0.0/16")
    assert_same(pair)
    # No private key at all.
    both(pair, "set", "IF", "private-key", "/dev/null")
    assert_same(pair)
    assert wg("show", ours, "private-key").strip() == "(none)"


def test_empty_device_and_a_clearing_setconf(pair: tuple[str, str], tmp: Path) -> None:
    both(pair, "setconf", "IF", write(tmp, "empty.conf", "[Interface]\n"))
    assert_same(pair)
    ours, _ = pair
    assert wg("show", ours, "peers") == ""


# Raw requests: the same bytes to both, the same errno back.

K = "1ae6bdc96f91eb3f5cd15c82f0a5582383ef9fa9195e61befd25c5c0f7482b3a"
RAW = [
    b"set=1\nfoo\n\n",
    b"set=1\nfoo=bar\n\n",
    b"set=1\n=\n\n",
    b"set=1\nlisten_port=\n\n",
    b"set=1\nlisten_port=70000\n\n",
    b"set=1\nfwmark=0x1\n\n",
    b"set=1\nprivate_key=00\n\n",
    b"set=1\nreplace_peers=false\n\n",
    b"set=1\nendpoint=1.2.3.4:5\n\n",
    f"set=1\npublic_key={K}\nlisten_port=1\n\n".encode(),
    f"set=1\npublic_key={K}\nprotocol_version=2\n\n".encode(),
    f"set=1\npublic_key={K}\nupdate_only=yes\n\n".encode(),
    f"set=1\npublic_key={K}\nendpoint=[1.2.3.4]:5\n\n".encode(),
    f"set=1\npublic_key={K}\nendpoint=host:5\n\n".encode(),
    f"set=1\npublic_key={K}\nallowed_ip=1.2.3.4\n\n".encode(),
    f"set=1\npublic_key={K}\npersistent_keepalive_interval=-1\n\n".encode(),
    f"set=1\npublic_key={K}\npreshared_key={'g' * 64}\n\n".encode(),
    f"set=1\npublic_key={K[:-1]}\n\n".encode(),
    f"set=1\npublic_key={K}\nupdate_only=true\nprotocol_version=1\n\n".encode(),
    b"set=1\nlisten_port=0\r\n\r\n",
    b"get=1\nx",
    b"get=1\n\n",
]


def raw_reply(ifname: str, request: bytes) -> bytes:
    with Client(f"/var/run/wireguard/{ifname}.sock") as client:
        client.send(request)
        reply = client.reply()
    return reply[reply.rfind(b"errno="):]  # a get's body differs (listen_port): its status


@pytest.mark.parametrize("request_bytes", RAW)
def test_same_errno_as_wireguard_go(pair: tuple[str, str], tmp: Path,
                                    request_bytes: bytes) -> None:
    ours, theirs = pair
    both(pair, "setconf", "IF", write(tmp, "empty.conf", "[Interface]\n"))
    assert raw_reply(ours, request_bytes) == raw_reply(theirs, request_bytes)


# `wg` as the judge of the configuration-file parser.


class RecordingDevice(MemoryDevice):
    def __init__(self) -> None:
        super().__init__()
        self.changes: list[Change] = []

    def apply(self, change: Change) -> None:
        self.changes.append(change)
        super().apply(change)


@pytest.fixture
def recorder() -> Iterator[tuple[str, RecordingDevice]]:
    require_root()
    require_tools("wg")
    device, name = RecordingDevice(), unique("wgr")
    with serving(device, name):
        yield name, device


def test_wg_sends_what_conffile_says(recorder: tuple[str, RecordingDevice],
                                     keys: dict[str, tuple[str, str]], tmp: Path) -> None:
    name, device = recorder
    text = config(keys) + f"\n[Peer]\nPublicKey = {keys['p5'][1]}\n"
    path = write(tmp, "a.conf", text)
    wg("setconf", name, path)
    wg("addconf", name, path)
    assert device.changes == [parse_conf(text).change(replace=True),
                              parse_conf(text).change(replace=False)]


GOOD_AND_BAD = [
    ("[Interface]\nListenPort = 0005\nFwMark = off\n", True),
    ("[Interface]\nfwmark = 0xffffffff\n", True),
    ("[interface]\n Listen Port = 7 # comment\n", True),
    ("[Peer]\nPublicKey = {p1}\nAllowedIPs = 10.0.0.1\nEndpoint = [::1]:0051\n", True),
    ("[Peer]\nPublicKey = {p1}\nPersistentKeepalive = OFF\nAllowedIPs = 10.0.0.0/008\n", True),
    ("ListenPort = 1\n", False),
    ("[Interface]\nListenPort =\n", False),
    ("[Interface]\nFwMark = 0X10\n", False),
    ("[Interface]\nFwMark = 0x100000000\n", False),
    ("[Interface]\nPrivateKey = {p1}x\n", False),
    ("[Interface]\nAddress = 10.0.0.1/24\n", False),  # a wg-quick key: wg(8) refuses it
    ("[Interface]\nEndpoint = 1.2.3.4:5\n", False),
    ("[Peer]\nAllowedIPs = 10.0.0.0/8\n", False),
    ("[Peer]\nPublicKey = {p1}\nAllowedIPs = 10.0.0.0/33\n", False),
    ("[Peer]\nPublicKey = {p1}\nAllowedIPs = 10.0.0.0/8,\n", False),
    ("[Peer]\nPublicKey = {p1}\nAllowedIPs = 010.0.0.0/8\n", False),
    ("[Peer]\nPublicKey = {p1}\nEndpoint = 1.2.3.4\n", False),
    ("[Peer]\nPublicKey = {p1}\nEndpoint = [::1\n", False),
    ("[Peer]\nPublicKey = {p1}\nPersistentKeepalive = 65536\n", False),
    ("[Peer]\nPublicKey = {p1}\nPersistentKeepalive = -1\n", False),
    ("[Interface]\n[Bogus]\n", False),
]


@pytest.mark.parametrize(("template", "good"), GOOD_AND_BAD)
def test_wg_and_conffile_agree_on_what_is_a_valid_file(
        recorder: tuple[str, RecordingDevice], keys: dict[str, tuple[str, str]],
        template: str, good: bool) -> None:
    name, device = recorder
    text = template.format(p1=keys["p1"][1])
    with tempfile.NamedTemporaryFile("w", suffix=".conf") as f:
        f.write(text)
        f.flush()
        accepted = subprocess.run(["wg", "addconf", name, f.name], capture_output=True,
                                  timeout=TIMEOUT_S, check=False).returncode == 0
    assert accepted == good
    try:
        ours = parse_conf(text, quick=False).change(replace=False)
    except ConfigError:
        assert not good
    else:
        assert good and device.changes == [ours]
