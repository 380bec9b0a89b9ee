"""The UAPI socket server with raw clients: socket set-up, framing over a real socket,
malformed and hostile clients, and many clients at once.

These need no root: the server listens in a temporary directory instead of
/var/run/wireguard (test_uapi_wg.py uses the real one, with the real `wg`).
"""

from __future__ import annotations

import os
import resource
import socket
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from pywg._config.uapi import MemoryDevice
from pywg._driver.uapi_server import ServerLimits, SocketInUseError, UapiServer, UapiServerError
from tests.support.uapi import Client, exchange, serving

K1 = "1ae6bdc96f91eb3f5cd15c82f0a5582383ef9fa9195e61befd25c5c0f7482b3a"
FAST = ServerLimits(idle_timeout=0.5, request_timeout=0.5, write_timeout=2.0)


@pytest.fixture(params=["uvloop", "asyncio"])
def loop_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def run_dir(tmp_path: Path) -> str:
    return str(tmp_path / "run" / "wireguard")


@pytest.fixture
def server(run_dir: str, loop_kind: str) -> Iterator[tuple[UapiServer, MemoryDevice]]:
    device = MemoryDevice()
    with serving(device, "wgtest0", run_dir=run_dir, limits=FAST, loop_kind=loop_kind) as srv:
        yield srv, device


def path_of(srv: UapiServer) -> str:
    assert srv.path is not None
    return srv.path


# The socket file, as wireguard-go makes it.


def test_socket_and_directory_modes(server: tuple[UapiServer, MemoryDevice],
                                    run_dir: str) -> None:
    srv, _ = server
    assert path_of(srv) == os.path.join(run_dir, "wgtest0.sock")
    st = os.stat(path_of(srv))
    # wireguard-go's socket showed as srwx------ (bound under umask 077).
    assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o700
    assert stat.S_IMODE(os.stat(run_dir).st_mode) & 0o022 == 0


def test_second_server_for_a_live_socket_is_refused(
        server: tuple[UapiServer, MemoryDevice], run_dir: str) -> None:
    srv, _ = server
    with pytest.raises(SocketInUseError):
        UapiServer.bind("wgtest0", MemoryDevice(), run_dir=run_dir)
    assert exchange(path_of(srv), b"get=1\n\n") == b"errno=0\n\n"


def test_stale_socket_is_replaced(run_dir: str) -> None:
    os.makedirs(run_dir)
    path = os.path.join(run_dir, "wgstale.sock")
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(path)  # bound, never listening, then gone: what a crashed daemon leaves
    dead.close()
    with serving(MemoryDevice(), "wgstale", run_dir=run_dir) as srv:
        assert exchange(path_of(srv), b"get=1\n\n") == b"errno=0\n\n"
    assert not os.path.exists(path)  # removed at close


def test_close_leaves_a_successors_socket_alone(run_dir: str) -> None:
    with serving(MemoryDevice(), "wgsucc", run_dir=run_dir) as first:
        assert not first.socket_removed()
        os.unlink(path_of(first))
        assert first.socket_removed()
        with serving(MemoryDevice(), "wgsucc", run_dir=run_dir) as second:
            pass_path = path_of(second)
            assert exchange(pass_path, b"get=1\n\n") == b"errno=0\n\n"
        assert not os.path.exists(pass_path)
    # the first closed after its file had been taken over and removed: nothing to remove


def test_inherited_listening_fd(tmp_path: Path) -> None:
    path = str(tmp_path / "wgfd.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(8)
    fd = os.dup(listener.fileno())
    listener.close()
    device = MemoryDevice()
    with serving(device, "wgfd", fd=fd) as srv:
        assert srv.path == path
        assert exchange(path, b"set=1\nlisten_port=7\n\n") == b"errno=0\n\n"
        assert exchange(path, b"get=1\n\n") == b"listen_port=7\nerrno=0\n\n"


def test_bad_interface_names() -> None:
    for name in ("", "a" * 16, "../x", "a/b", "a b", ".", "..", "a:b"):
        with pytest.raises(UapiServerError):
            UapiServer.bind(name, MemoryDevice(), run_dir="/nonexistent")


def test_bad_fd() -> None:
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        with pytest.raises(UapiServerError):
            UapiServer.from_fd(udp.fileno(), MemoryDevice())
    finally:
        udp.close()


# Requests over a real connection.


def test_several_requests_on_one_connection(server: tuple[UapiServer, MemoryDevice]) -> None:
    srv, device = server
    with Client(path_of(srv)) as client:
        client.send(f"set=1\nlisten_port=123\npublic_key={K1}\nallowed_ip=10.0.0.1/8\n\n"
                    .encode())
        assert client.reply() == b"errno=0\n\n"
        client.send(b"get=1\n\nget=1\n\n")  # pipelined
        first = client.reply()
        assert first.startswith(b"listen_port=123\npublic_key=" + K1.encode())
        assert first.endswith(b"allowed_ip=10.0.0.0/8\nerrno=0\n\n")
        assert client.reply() == first
    assert device.config.listen_port == 123


@pytest.mark.parametrize(("request_bytes", "reply"), [
    (b"set=1\nfoo\n\n", b"errno=-71\n\n"),
    (b"set=1\nfoo=bar\n\n", b"errno=-22\n\n"),
    (f"set=1\npublic_key={K1}\nallowed_ip=10.0.0.0/33\n\n".encode(), b"errno=-22\n\n"),
    (b"set=1\nprivate_key=" + b"g" * 64 + b"\n\n", b"errno=-22\n\n"),
    (b"set=1\nlisten_port=" + b"1" * 5000 + b"\n\n", b"errno=-5\n\n<closed>"),
    (b"get=1\nx", b"errno=-22\n\n<closed>"),
    (b"bogus\n", b"<closed>"),
    (b"\x00\xff\xfe garbage \x80\n", b"<closed>"),
])
def test_malformed_requests_then_the_server_still_answers(
        server: tuple[UapiServer, MemoryDevice], request_bytes: bytes, reply: bytes) -> None:
    srv, device = server
    with Client(path_of(srv)) as client:
        client.send(request_bytes)
        expected, closes = reply.removesuffix(b"<closed>"), reply.endswith(b"<closed>")
        if expected:
            assert client.reply() == expected
        if closes:
            assert client.until_closed() == b""
    assert exchange(path_of(srv), b"get=1\n\n") == b"errno=0\n\n"
    assert device.config.peers == ()


def test_truncated_request_is_refused(server: tuple[UapiServer, MemoryDevice]) -> None:
    srv, device = server
    with Client(path_of(srv)) as client:
        client.send(b"set=1\nlisten_port=9\n")
        client.sock.shutdown(socket.SHUT_WR)
        assert client.reply() == b"errno=-71\n\n"
        assert client.until_closed() == b""
    assert device.config.listen_port == 0


def test_idle_client_does_not_block_others_and_is_closed(
        server: tuple[UapiServer, MemoryDevice]) -> None:
    srv, _ = server
    with Client(path_of(srv)) as idle, Client(path_of(srv)) as half:
        half.send(b"set=1\nlisten_port=9\n")  # a request begun and never finished
        assert exchange(path_of(srv), b"get=1\n\n") == b"errno=0\n\n"
        assert idle.until_closed() == b""  # cut off after the idle timeout
        assert half.until_closed() == b""  # and after the request timeout


def test_connection_limit_queues_clients_without_losing_them(run_dir: str) -> None:
    limits = ServerLimits(max_connections=2, idle_timeout=0.3, request_timeout=0.3)
    with serving(MemoryDevice(), "wglim", run_dir=run_dir, limits=limits) as srv, \
            Client(path_of(srv)) as a, Client(path_of(srv)) as b:
        # Both slots are held by idle clients; the third waits in the backlog until one of
        # them times out, then is served.
        assert exchange(path_of(srv), b"get=1\n\n") == b"errno=0\n\n"
        assert a.until_closed() == b"" and b.until_closed() == b""


def test_client_gone_before_its_reply(server: tuple[UapiServer, MemoryDevice]) -> None:
    srv, device = server
    body = "".join(f"public_key={i:064x}\nallowed_ip=10.{i // 256}.{i % 256}.0/24\n"
                   for i in range(1, 3000))
    assert exchange(path_of(srv), f"set=1\n{body}\n".encode()) == b"errno=0\n\n"
    for _ in range(5):
        with Client(path_of(srv)) as client:
            client.send(b"get=1\n\n")  # a reply of about 1 MB that nobody reads
    assert exchange(path_of(srv), b"set=1\nlisten_port=4\n\n") == b"errno=0\n\n"
    assert len(device.config.peers) == 2999


def test_a_thousand_clients_at_once(run_dir: str, loop_kind: str) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 4096:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(4096, hard), hard))
    device = MemoryDevice()
    # Idle clients hold a connection slot until the idle timeout: keep it short here.
    limits = ServerLimits(idle_timeout=0.1, request_timeout=2.0, write_timeout=2.0)
    with serving(device, "wgmany", run_dir=run_dir, limits=limits, loop_kind=loop_kind) as srv:
        clients = [Client(path_of(srv)) for _ in range(1000)]
        try:
            for i, client in enumerate(clients):
                if i % 10 == 9:
                    client.send(b"\xffnot the protocol\n")
                elif i % 10 != 8:  # and every tenth stays idle: the server will cut it off
                    client.send(f"set=1\npublic_key={i + 1:064x}\n\n".encode())
            for i, client in enumerate(clients):
                if i % 10 in (8, 9):
                    assert client.until_closed() == b""
                else:
                    assert client.reply() == b"errno=0\n\n"
        finally:
            for client in clients:
                client.sock.close()
        assert len(device.config.peers) == 800
        assert exchange(path_of(srv), b"get=1\n\n").count(b"public_key=") == 800
