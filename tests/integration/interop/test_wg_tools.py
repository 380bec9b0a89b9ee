"""The real `wg` tool drives every implementation: show, showconf, set, setconf, addconf,
syncconf, peer removal, allowed-IPs replacement, fwmark, listen port (the socket really
moves), output identical to wireguard-go's for the same configuration, and malformed UAPI
requests sent raw to the daemon's socket."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import daemons, netns, wait, wg
from tests.harness.daemons import Daemon
from tests.harness.impls import PYWG, WGGO, Impl
from tests.harness.skips import require_impls
from tests.harness.wg import KeyPair

UAPI_TIMEOUT_S = 5.0
MAX_REPLY = 1 << 20


@pytest.fixture
def dev(impl: Impl, scratch_ns: str, workdir: Path) -> Iterator[Daemon]:
    with daemons.running(impl, scratch_ns, netns.unique("wgW"), workdir) as d:
        yield d


def _conf(private: str, port: int, peers: list[dict[str, str]], fwmark: str = "") -> str:
    """A wg(8) configuration, in the order `wg showconf` prints it."""
    lines = ["[Interface]", f"ListenPort = {port}"]
    if fwmark:
        lines.append(f"FwMark = {fwmark}")
    lines.append(f"PrivateKey = {private}")
    for peer in peers:
        lines += ["", "[Peer]", *(f"{k} = {v}" for k, v in peer.items())]
    return "\n".join(lines) + "\n"


def _setconf(d: Daemon, verb: str, text: str) -> None:
    d.wg(verb, d.ifname, "/dev/stdin", input=text)


def _allowed(d: Daemon) -> dict[str, set[str]]:
    """Each peer's allowed IPs (an empty set for none)."""
    return {p.public_key: set(p.allowed_ips.split(",")) - {"(none)"}
            for p in d.dump().peers.values()}


# ---- set / show / showconf -------------------------------------------------------------------

def test_set_then_show_and_showconf(dev: Daemon) -> None:
    peer, psk = KeyPair.generate(), wg.genpsk()
    dev.set_private_key()
    dev.wg("set", dev.ifname, "listen-port", "41000", "fwmark", "0x1234",
           "peer", peer.public, "preshared-key", "/dev/stdin", "endpoint", "10.9.8.7:51820",
           "persistent-keepalive", "25", "allowed-ips", "10.1.0.0/16,fd01::/64",
           input=psk + "\n")
    shown = dev.wg("show", dev.ifname).stdout
    for expected in (f"interface: {dev.ifname}", f"public key: {dev.keys.public}",
                     "listening port: 41000", "fwmark: 0x1234", f"peer: {peer.public}",
                     "endpoint: 10.9.8.7:51820", "allowed ips: 10.1.0.0/16, fd01::/64",
                     "persistent keepalive: every 25 seconds"):
        assert expected in shown, shown
    assert "preshared key: (hidden)" in shown
    assert dev.wg("showconf", dev.ifname).stdout == _conf(
        dev.keys.private, 41000, [{"PublicKey": peer.public, "PresharedKey": psk,
                                   "AllowedIPs": "10.1.0.0/16, fd01::/64",
                                   "Endpoint": "10.9.8.7:51820",
                                   "PersistentKeepalive": "25"}], fwmark="0x1234")


def test_setconf_replaces_addconf_adds_syncconf_removes(dev: Daemon) -> None:
    p1, p2, p3 = (KeyPair.generate() for _ in range(3))
    _setconf(dev, "setconf", _conf(dev.keys.private, 41001, [
        {"PublicKey": p1.public, "AllowedIPs": "10.0.1.0/24"},
        {"PublicKey": p2.public, "AllowedIPs": "10.0.2.0/24"}]))
    assert _allowed(dev) == {p1.public: {"10.0.1.0/24"}, p2.public: {"10.0.2.0/24"}}

    _setconf(dev, "setconf", _conf(dev.keys.private, 41002, [
        {"PublicKey": p2.public, "AllowedIPs": "10.0.22.0/24"}]))
    assert _allowed(dev) == {p2.public: {"10.0.22.0/24"}}, "setconf replaces every peer"
    assert dev.dump().listen_port == 41002

    _setconf(dev, "addconf", _conf(dev.keys.private, 41002, [
        {"PublicKey": p1.public, "AllowedIPs": "10.0.1.0/24"},
        {"PublicKey": p2.public, "AllowedIPs": "10.0.23.0/24"}]))
    # wg sends replace_allowed_ips for every peer of a file, addconf too.
    assert _allowed(dev) == {p1.public: {"10.0.1.0/24"}, p2.public: {"10.0.23.0/24"}}

    _setconf(dev, "syncconf", _conf(dev.keys.private, 41002, [
        {"PublicKey": p2.public, "AllowedIPs": "10.0.24.0/24, 10.0.25.0/24"},
        {"PublicKey": p3.public, "AllowedIPs": "10.0.3.0/24"}]))
    assert _allowed(dev) == {p2.public: {"10.0.24.0/24", "10.0.25.0/24"},
                             p3.public: {"10.0.3.0/24"}}, "syncconf removes p1, changes p2"


def test_peer_remove_and_allowed_ips_replacement(dev: Daemon) -> None:
    p1, p2 = KeyPair.generate(), KeyPair.generate()
    dev.wg("set", dev.ifname, "peer", p1.public, "allowed-ips", "10.5.0.0/24,10.6.0.1/32",
           "peer", p2.public, "allowed-ips", "10.7.0.0/24")
    dev.wg("set", dev.ifname, "peer", p1.public, "allowed-ips", "10.8.0.0/24")
    assert _allowed(dev) == {p1.public: {"10.8.0.0/24"}, p2.public: {"10.7.0.0/24"}}
    # A prefix belongs to one peer: giving it to p1 takes it from p2.
    dev.wg("set", dev.ifname, "peer", p1.public, "allowed-ips", "10.8.0.0/24,10.7.0.0/24")
    assert _allowed(dev) == {p1.public: {"10.8.0.0/24", "10.7.0.0/24"}, p2.public: set()}
    dev.wg("set", dev.ifname, "peer", p1.public, "allowed-ips", "")
    assert _allowed(dev)[p1.public] == set()
    dev.wg("set", dev.ifname, "peer", p2.public, "remove")
    assert list(dev.dump().peers) == [p1.public]


def test_fwmark_set_and_cleared(dev: Daemon) -> None:
    dev.wg("set", dev.ifname, "fwmark", "0xca6c")
    assert dev.wg("show", dev.ifname, "fwmark").stdout.strip() == "0xca6c"
    dev.wg("set", dev.ifname, "fwmark", "off")
    assert dev.wg("show", dev.ifname, "fwmark").stdout.strip() == "off"


def _udp_ports(d: Daemon) -> set[int]:
    """The UDP ports the daemon's processes hold, as the kernel (ss) reports them."""
    out = netns.run(d.ns, ["ss", "-H", "-u", "-l", "-n", "-p"]).stdout
    pids = set(d.pids())
    ports = set()
    for line in out.splitlines():
        owners = {int(p) for p in re.findall(r"pid=(\d+)", line)}
        if owners & pids:
            ports.add(int(line.split()[3].rsplit(":", 1)[1]))
    return ports


def test_listen_port_really_moves(dev: Daemon) -> None:
    dev.wg("set", dev.ifname, "listen-port", "41010")
    wait.wait_for(lambda: _udp_ports(dev) == {41010}, "the daemon to listen on 41010")
    dev.wg("set", dev.ifname, "listen-port", "41011")
    wait.wait_for(lambda: _udp_ports(dev) == {41011}, "the socket to move to 41011")
    dev.wg("set", dev.ifname, "listen-port", "0")
    port = dev.dump().listen_port
    assert port not in (0, 41011)
    wait.wait_for(lambda: _udp_ports(dev) == {port}, f"a random port ({port})")


# ---- the same output as wireguard-go ---------------------------------------------------------

def _sections(showconf: str) -> dict[str, list[str]]:
    """showconf's sections, keyed by "[Interface]" or the peer's public key."""
    sections: dict[str, list[str]] = {}
    current: list[str] = []
    for line in showconf.splitlines():
        if line.startswith("["):
            current = []
            sections[line if line == "[Interface]" else f"peer{len(sections)}"] = current
        elif line:
            current.append(line)
    return {next((v for v in lines if v.startswith("PublicKey")), name): lines
            for name, lines in sections.items()}


def test_dump_and_showconf_identical_to_wireguard_go(impl: Impl, workdir: Path) -> None:
    require_impls("wggo")
    own = KeyPair.generate()
    p1, p2, p3 = (KeyPair.generate() for _ in range(3))
    conf = _conf(own.private, 41020, [
        {"PublicKey": p1.public, "PresharedKey": wg.genpsk(),
         "AllowedIPs": "10.10.0.0/16, fd10::/48, 10.11.3.7/24", "Endpoint": "192.0.2.1:51820",
         "PersistentKeepalive": "17"},
        {"PublicKey": p2.public, "AllowedIPs": "10.12.0.1/32, 0.0.0.0/0, ::/0",
         "Endpoint": "[2001:db8::1]:51821"},
        {"PublicKey": p3.public}], fwmark="0x4d2")
    outputs = {}
    with netns.namespace("ir") as ns_ref, netns.namespace("iu") as ns_impl:
        for name, which, ns in (("ref", WGGO, ns_ref), ("impl", impl, ns_impl)):
            with daemons.running(which, ns, netns.unique("wgC"), workdir) as d:
                _setconf(d, "setconf", conf)
                lines = d.wg("show", d.ifname, "dump").stdout.splitlines()
                outputs[name] = (lines, d.wg("showconf", d.ifname).stdout)
    (ref_dump, ref_conf), (dump, conf_out) = outputs["ref"], outputs["impl"]
    assert dump[0] == ref_dump[0]  # keys, port and fwmark: all fixed by the configuration
    # Per peer, every field but latest-handshake, rx and tx (fields 4, 5, 6).
    assert ({line.split("\t")[0]: line.split("\t")[:4] + line.split("\t")[7:] for line in dump[1:]}
            == {line.split("\t")[0]: line.split("\t")[:4] + line.split("\t")[7:]
                for line in ref_dump[1:]})
    assert _sections(conf_out) == _sections(ref_conf)


# ---- raw UAPI --------------------------------------------------------------------------------

def _uapi(d: Daemon, request: bytes, *, replies: int = 1) -> bytes:
    """Send `request` raw; read until `replies` replies (errno lines) or the end."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(UAPI_TIMEOUT_S)
        s.connect(str(daemons.socket_path(d.ifname)))
        s.sendall(request)
        reply = b""
        while not (reply.endswith(b"\n\n") and reply.count(b"errno=") >= replies) \
                and len(reply) < MAX_REPLY:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            reply += chunk
        return reply


MALFORMED = {
    "unknown-key": b"set=1\nno_such_key=1\n\n",
    "bad-hex-key": b"set=1\nprivate_key=" + b"zz" * 32 + b"\n\n",
    "short-key": b"set=1\nprivate_key=abcd\n\n",
    "bad-cidr": b"set=1\npublic_key=" + b"11" * 32 + b"\nallowed_ip=10.0.0.0/33\n\n",
    "port-out-of-range": b"set=1\nlisten_port=65536\n\n",
    "bad-protocol-version": b"set=1\npublic_key=" + b"22" * 32 + b"\nprotocol_version=2\n\n",
    "peer-key-before-peer": b"set=1\nendpoint=10.0.0.1:1\n\n",
    "over-long-line": b"set=1\nprivate_key=" + b"a" * 200_000 + b"\n\n",
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_set_gets_errno_and_daemon_keeps_working(dev: Daemon, case: str) -> None:
    reply = _uapi(dev, MALFORMED[case])
    assert re.fullmatch(rb"errno=-[1-9][0-9]*\n\n", reply), reply
    assert _uapi(dev, b"get=1\n\n").endswith(b"errno=0\n\n")
    dev.set_private_key()
    assert dev.dump().public_key == dev.keys.public


@pytest.mark.parametrize("request_bytes", [b"get=2\n\n", b"hello\n\n", b"\n"],
                         ids=["unknown-get", "no-operation", "empty"])
def test_unknown_operation_is_refused(dev: Daemon, request_bytes: bytes) -> None:
    reply = _uapi(dev, request_bytes)
    # wireguard-go closes the connection without a word; an errno reply is as good.
    assert reply == b"" or re.fullmatch(rb"errno=-[1-9][0-9]*\n\n", reply), reply
    assert _uapi(dev, b"get=1\n\n").endswith(b"errno=0\n\n")


def test_several_requests_on_one_connection(dev: Daemon) -> None:
    # One request at a time: wireguard-go loses a get written in the same burst as a set
    # (its set parser reads ahead), and wg(8) never pipelines anyway.
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(UAPI_TIMEOUT_S)
        s.connect(str(daemons.socket_path(dev.ifname)))
        for port in (b"41030", b"41031"):
            s.sendall(b"set=1\nlisten_port=" + port + b"\n\n")
            assert _read_reply(s) == b"errno=0\n\n"
            s.sendall(b"get=1\n\n")
            reply = _read_reply(s)
            assert reply.endswith(b"errno=0\n\n"), reply
            assert b"\nlisten_port=" + port + b"\n" in b"\n" + reply, reply


def _read_reply(s: socket.socket) -> bytes:
    reply = b""
    while not reply.endswith(b"\n\n") and len(reply) < MAX_REPLY:
        chunk = s.recv(65536)
        if not chunk:
            break
        reply += chunk
    return reply


def test_silent_client_does_not_block_others(dev: Daemon) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as idle:
        idle.connect(str(daemons.socket_path(dev.ifname)))
        dev.set_private_key()
        assert dev.dump().public_key == dev.keys.public


def test_unfinished_set_does_not_block_others(workdir: Path, scratch_ns: str) -> None:
    # pywg only: wireguard-go holds its configuration lock while it reads a set request,
    # so one client that stops half-way through a set stalls every other `wg set`.
    require_impls("pywg")
    with daemons.running(PYWG, scratch_ns, netns.unique("wgW"), workdir) as d, \
            socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as stalled:
        stalled.connect(str(daemons.socket_path(d.ifname)))
        stalled.sendall(b"set=1\nlisten_port=41040\n")  # and never finishes
        d.set_private_key()
        assert d.dump().public_key == d.keys.public
