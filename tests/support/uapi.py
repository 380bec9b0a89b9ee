"""Run pywg's UAPI server in a background thread, and talk to it as a raw client.

The server gets its own event loop (uvloop or the stdlib's) in a thread, so a test can use
blocking sockets and subprocesses (`wg`) against it. Everything is bounded in time.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Iterator

from pywg._config.uapi import UapiDevice
from pywg._driver.uapi_server import ServerLimits, UapiServer

START_TIMEOUT_S = 10.0
CLIENT_TIMEOUT_S = 10.0
DEFAULT_LIMITS = ServerLimits()


def new_loop(kind: str) -> asyncio.AbstractEventLoop:
    if kind == "uvloop":
        import uvloop

        return uvloop.new_event_loop()  # type: ignore[no-any-return]
    return asyncio.new_event_loop()


@contextlib.contextmanager
def serving(device: UapiDevice, ifname: str, *, run_dir: str | None = None,
            limits: ServerLimits = DEFAULT_LIMITS, loop_kind: str = "uvloop",
            fd: int | None = None) -> Iterator[UapiServer]:
    """A UapiServer for `device` on RUN_DIR/IFNAME.sock (or on listening socket `fd`)."""
    loop = new_loop(loop_kind)
    ready = threading.Event()
    box: dict[str, object] = {}

    async def main() -> None:
        try:
            if fd is not None:
                server = UapiServer.from_fd(fd, device, limits)
            elif run_dir is None:
                server = UapiServer.bind(ifname, device, limits)
            else:
                server = UapiServer.bind(ifname, device, limits, run_dir=run_dir)
        except BaseException as e:
            box["error"] = e
            ready.set()
            return
        box["server"] = server
        stop = asyncio.Event()
        box["stop"] = stop
        async with server:
            ready.set()
            await stop.wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    try:
        if not ready.wait(START_TIMEOUT_S):
            raise TimeoutError("the UAPI server did not start")
        if "error" in box:
            raise box["error"]  # type: ignore[misc]
        yield box["server"]  # type: ignore[misc]
    finally:
        stop = box.get("stop")
        if isinstance(stop, asyncio.Event):
            loop.call_soon_threadsafe(stop.set)
        thread.join(START_TIMEOUT_S)
        if not thread.is_alive():
            loop.close()


class Client:
    """A raw UAPI client on a blocking socket, keeping what it read past a reply."""

    def __init__(self, path: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(CLIENT_TIMEOUT_S)
        self.sock.connect(path)
        self._buf = b""

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def reply(self) -> bytes:
        """One reply: up to and including its `errno=N` line and the blank line after it;
        what it had when the server closed, followed by b"<closed>", if it closed first."""
        deadline = time.monotonic() + CLIENT_TIMEOUT_S
        while time.monotonic() < deadline:
            start = self._buf.find(b"errno=")
            end = self._buf.find(b"\n\n", start) if start >= 0 else -1
            if end >= 0:
                reply, self._buf = self._buf[: end + 2], self._buf[end + 2 :]
                return reply
            chunk = self.sock.recv(65536)
            if not chunk:
                reply, self._buf = self._buf, b""
                return reply + b"<closed>"
            self._buf += chunk
        raise TimeoutError("no reply")

    def until_closed(self) -> bytes:
        """Everything until the server closes the connection."""
        deadline = time.monotonic() + CLIENT_TIMEOUT_S
        while time.monotonic() < deadline:
            chunk = self.sock.recv(65536)
            if not chunk:
                data, self._buf = self._buf, b""
                return data
            self._buf += chunk
        raise TimeoutError("the server did not close the connection")


def exchange(path: str, request: bytes) -> bytes:
    """Send one request on a new connection and read one reply."""
    with Client(path) as client:
        client.send(request)
        return client.reply()
