"""pywg's sans-I/O handshake core against a real wireguard-go, over a real UDP socket.

    namespace hsXXXXXX (lo up)
    +----------------------------------------------------------------+
    |  wireguard-go wghXXXXXX  10.R.0.1/24, listening on 127.0.0.1:P  |
    |     peer 1 (ours): allowed 10.R.0.2/32, endpoint 127.0.0.1:Q1   |
    |     peer 2 (ours): allowed 10.R.0.3/32, endpoint 127.0.0.1:Q2   |
    |  this test: HandshakeCore + UDP sockets on 127.0.0.1:Q1 and :Q2  |
    +----------------------------------------------------------------+

1. We initiate (peer 1): wireguard-go answers, our core consumes the response; the
   keepalive we seal is counted by wireguard-go, and an ICMP echo request we seal to
   10.R.0.1 comes back as an echo reply we open with our receive key.
2. wireguard-go initiates (peer 2, triggered by a ping through its interface): our core
   consumes the initiation, wireguard-go accepts our response, its data opens with our
   keys, and our sealed echo reply completes its ping.

Transport messages are sealed and opened by hand here (AEAD, counter, padding) so the test
depends on nothing but the handshake core.
"""

import ipaddress
import secrets
import socket
import struct
import subprocess
import tempfile
import time

from nacl.bindings import (
    crypto_aead_chacha20poly1305_ietf_decrypt,
    crypto_aead_chacha20poly1305_ietf_encrypt,
)

from pywg._protocol import crypto, messages
from pywg._protocol.handshake import InstallSession, SendHandshakeResponse
from pywg._tools import keys
from tests.harness import daemons, files, links, wg
from tests.harness.impls import WGGO
from tests.harness.netns import namespace, socket_in, unique
from tests.harness.skips import require_root, require_tools
from tests.support.handshake import Side

LOOPBACK = "127.0.0.1"
TIMEOUT_S = 10.0


# ---- plumbing: a socket inside the namespace ------------------------------------------------

def _udp_socket_in(ns: str) -> socket.socket:
    """A UDP socket on 127.0.0.1 (random port) inside namespace `ns`."""
    sock = socket_in(ns, socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((LOOPBACK, 0))
    sock.settimeout(TIMEOUT_S)
    return sock


# ---- transport data, by hand ----------------------------------------------------------------

def _nonce(counter: int) -> bytes:
    return bytes(4) + counter.to_bytes(8, "little")


def _seal(session, counter: int, payload: bytes) -> bytes:
    padded = payload + bytes(-len(payload) % 16)
    header = struct.pack("<IIQ", 4, session.remote_index, counter)
    return header + crypto_aead_chacha20poly1305_ietf_encrypt(
        padded, b"", _nonce(counter), bytes(session.send_key))


def _open(session, packet: bytes) -> bytes:
    message = messages.parse(packet)
    assert isinstance(message, messages.MessageTransport)
    assert message.receiver == session.local_index
    return crypto_aead_chacha20poly1305_ietf_decrypt(
        message.encrypted, b"", _nonce(message.counter), bytes(session.receive_key))


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _icmp_echo(src: str, dst: str, kind: int, ident: int, seq: int, data: bytes) -> bytes:
    """An IPv4 packet with an ICMP echo request (kind 8) or reply (kind 0)."""
    icmp = struct.pack("!BBHHH", kind, 0, 0, ident, seq) + data
    icmp = icmp[:2] + struct.pack("!H", _checksum(icmp)) + icmp[4:]
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(icmp), secrets.randbits(16), 0,
                         64, 1, 0, ipaddress.ip_address(src).packed,
                         ipaddress.ip_address(dst).packed)
    header = header[:10] + struct.pack("!H", _checksum(header)) + header[12:]
    return header + icmp


def _parse_icmp(packet: bytes) -> tuple[str, str, int, int, int, bytes]:
    """(src, dst, type, id, seq, data) of an IPv4 ICMP echo packet, trimmed to its length."""
    assert packet[0] >> 4 == 4 and packet[9] == 1, packet.hex()
    total = struct.unpack_from("!H", packet, 2)[0]
    ihl = (packet[0] & 0xF) * 4
    kind, _, _, ident, seq = struct.unpack_from("!BBHHH", packet, ihl)
    src = str(ipaddress.ip_address(packet[12:16]))
    dst = str(ipaddress.ip_address(packet[16:20]))
    return src, dst, kind, ident, seq, packet[ihl + 8:total]


def _receive_data(sock: socket.socket, deadline: float) -> bytes:
    """The next transport message (type 4) arriving on `sock`, skipping handshake retries."""
    while True:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        data, _ = sock.recvfrom(65535)
        if messages.message_type(data) == 4:
            return data
        assert time.monotonic() < deadline, "no transport message in time"


def _wg_show(ns: str, ifname: str, what: str, public_key: bytes) -> list[int]:
    """`wg show IF latest-handshakes|transfer` numbers for one peer."""
    out = wg.wg(ns, "show", ifname, what).stdout
    for line in out.splitlines():
        fields = line.split("\t")
        if fields[0] == keys.to_base64(public_key):
            return [int(f) for f in fields[1:]]
    raise AssertionError(f"peer missing from `wg show {what}`: {out}")


# ---- the test -------------------------------------------------------------------------------

def test_handshakes_both_ways_with_wireguard_go():
    require_root()
    require_tools("wireguard-go", "wg", "ping")
    subnet = f"10.{secrets.randbelow(200) + 20}.0"
    ifname = unique("wgh")
    theirs = keys.generate_private_key()
    us1, us2 = (Side(crypto.generate_private_key(), crypto.random_bytes) for _ in range(2))
    their_public = keys.public_key(theirs)
    us1.add_peer(their_public)
    us2.add_peer(their_public)
    with files.workdir("hs") as work, namespace("hs") as ns, daemons.running(
            WGGO, ns, ifname, work, foreground=True, env={"LOG_LEVEL": "verbose"}):
        sock1, sock2 = _udp_socket_in(ns), _udp_socket_in(ns)
        with sock1, sock2, tempfile.NamedTemporaryFile("w") as key_file:
            key_file.write(keys.to_base64(theirs))
            key_file.flush()
            port = 20000 + secrets.randbelow(20000)
            wg.wg(ns, "set", ifname, "private-key", key_file.name, "listen-port", str(port),
                  "peer", keys.to_base64(us1.public_key), "allowed-ips", f"{subnet}.2/32",
                  "endpoint", f"{LOOPBACK}:{sock1.getsockname()[1]}",
                  "peer", keys.to_base64(us2.public_key), "allowed-ips", f"{subnet}.3/32",
                  "endpoint", f"{LOOPBACK}:{sock2.getsockname()[1]}")
            links.configure(ns, ifname, f"{subnet}.1/24")
            their_endpoint = (LOOPBACK, port)
            _we_initiate(ns, ifname, subnet, us1, sock1, their_endpoint)
            _they_initiate(ns, ifname, subnet, us2, sock2)


def _we_initiate(ns, ifname, subnet, core, sock, their_endpoint):
    (their_public,) = core.peers
    sock.sendto(core.initiation(their_public, time.monotonic_ns(), time.time_ns()),
                their_endpoint)
    response, source = sock.recvfrom(65535)
    assert len(response) == 92 and source == their_endpoint
    actions = core.receive(response, time.monotonic_ns())
    sessions = [a.session for a in actions if isinstance(a, InstallSession)]
    assert len(sessions) == 1 and sessions[0].initiator, actions
    session = sessions[0]

    # A keepalive (empty payload, counter 0) confirms the session: wireguard-go, the
    # responder, counts it and only now records the handshake as complete.
    sock.sendto(_seal(session, 0, b""), their_endpoint)
    deadline = time.monotonic() + TIMEOUT_S
    while _wg_show(ns, ifname, "transfer", core.public_key)[0] == 0:
        assert time.monotonic() < deadline, "wireguard-go never counted our keepalive"
        time.sleep(0.05)
    assert _wg_show(ns, ifname, "latest-handshakes", core.public_key)[0] > 0

    ident, payload = secrets.randbits(16), secrets.token_bytes(24)
    echo = _icmp_echo(f"{subnet}.2", f"{subnet}.1", 8, ident, 1, payload)
    sock.sendto(_seal(session, 1, echo), their_endpoint)
    reply = _open(session, _receive_data(sock, time.monotonic() + TIMEOUT_S))
    assert _parse_icmp(reply) == (f"{subnet}.1", f"{subnet}.2", 0, ident, 1, payload)


def _they_initiate(ns, ifname, subnet, core, sock):
    ping = subprocess.Popen(["ip", "netns", "exec", ns, "ping", "-c", "1", "-W", "8",
                             f"{subnet}.3"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        initiation, source = sock.recvfrom(65535)
        assert len(initiation) == 148
        actions = core.receive(initiation, time.monotonic_ns())
        sessions = [a.session for a in actions if isinstance(a, InstallSession)]
        responses = [a for a in actions if isinstance(a, SendHandshakeResponse)]
        assert len(sessions) == 1 and not sessions[0].initiator and len(responses) == 1, actions
        session = sessions[0]
        sock.sendto(responses[0].packet, source)

        # wireguard-go sends the staged echo request on the new session (counter 0).
        packet = _open(session, _receive_data(sock, time.monotonic() + TIMEOUT_S))
        src, dst, kind, ident, seq, payload = _parse_icmp(packet)
        assert (src, dst, kind) == (f"{subnet}.1", f"{subnet}.3", 8)
        # Our answer on the responder's session completes its ping.
        reply = _icmp_echo(f"{subnet}.3", f"{subnet}.1", 0, ident, seq, payload)
        sock.sendto(_seal(session, 0, reply), source)
        out, _ = ping.communicate(timeout=TIMEOUT_S)
        assert ping.returncode == 0, out
        assert _wg_show(ns, ifname, "latest-handshakes", core.public_key)[0] > 0
    finally:
        if ping.poll() is None:
            ping.kill()
            ping.wait(timeout=TIMEOUT_S)
