"""The UAPI socket server: /var/run/wireguard/IFNAME.sock on an asyncio loop (uvloop or not).

It listens where wg(8) looks, created as wireguard-go creates it (ipc/uapi_unix.go): the
directory 0755, the socket bound under umask 077; a path that answers a connect is "in
use", one that does not is stale and replaced. Or it takes an already-listening socket
(WG_UAPI_FD). Each connection may carry several requests; pywg._config.uapi parses them and the
device (a pywg._config.uapi.UapiDevice) answers. The server never touches packets.

Every connection is accepted and served at once, as wireguard-go serves each in a goroutine
of its own: no client waits for another, however many sit idle or trickle their requests
in. So what is bounded is what one connection may hold, not how many there are: a read of
UAPI_READ_CHUNK bytes, one partial line (lines and requests have maximum lengths, see
pywg._config.uapi), the request being read, and one part of a reply being sent (a device
writes a big `get` in parts). An idle connection holds a few kilobytes (its task, its
socket and an empty parser). A connection idle between requests, a request that stops
arriving and a reply that stops leaving are each cut off by a timeout; and when the
process runs out of file descriptors, the connection idle the longest is closed to let the
new one in.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import socket
import stat
from dataclasses import dataclass
from types import TracebackType

from pywg._config.uapi import BadRequest, Close, NeedData, UapiDevice, UapiParser, respond
from pywg._constants import (
    IFNAMSIZ,
    UAPI_IDLE_TIMEOUT_S,
    UAPI_LISTEN_BACKLOG,
    UAPI_MAX_LINE_LEN,
    UAPI_MAX_REQUEST_LINES,
    UAPI_READ_CHUNK,
    UAPI_REQUEST_TIMEOUT_S,
    UAPI_SOCKET_DIR,
    UAPI_SOCKET_DIR_MODE,
    UAPI_SOCKET_UMASK,
    UAPI_WRITE_PART,
    UAPI_WRITE_TIMEOUT_S,
)

__all__ = [
    "ServerLimits",
    "SocketInUseError",
    "UapiServer",
    "UapiServerError",
    "listen_unix",
    "socket_answers",
    "socket_path",
    "validate_ifname",
]

log = logging.getLogger("pywg._config.uapi")

_ACCEPT_RETRY_S = 0.1  # after a failed accept (EMFILE...): try again, without spinning
_OUT_OF_FDS = (errno.EMFILE, errno.ENFILE)


class UapiServerError(Exception):
    """The socket cannot be set up."""


class SocketInUseError(UapiServerError):
    """Another live process answers on this interface's socket."""


def validate_ifname(name: str) -> None:
    """The kernel's rule for interface names (dev_valid_name); the name becomes a path."""
    raw = name.encode("utf-8", "surrogateescape")
    if not 0 < len(raw) < IFNAMSIZ or name in (".", "..") or any(
            c in name for c in "/:") or any(c.isspace() for c in name):
        raise UapiServerError(f"invalid interface name: {name!r}")


def socket_path(ifname: str, run_dir: str = UAPI_SOCKET_DIR) -> str:
    validate_ifname(ifname)
    return os.path.join(run_dir, f"{ifname}.sock")


def socket_answers(path: str) -> bool:
    """Whether something listens on `path` (wg(8) and wireguard-go test it the same way)."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)  # a live server whose backlog is full makes connect wait
    try:
        probe.connect(path)
    except TimeoutError:
        return True
    except OSError:
        return False
    finally:
        probe.close()
    return True


def _bind(path: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(UAPI_SOCKET_UMASK)
    try:
        sock.bind(path)
    except BaseException:
        sock.close()
        raise
    finally:
        os.umask(old)
    return sock


def listen_unix(path: str) -> socket.socket:
    """A listening, non-blocking socket at `path`, replacing a stale one."""
    os.makedirs(os.path.dirname(path), mode=UAPI_SOCKET_DIR_MODE, exist_ok=True)
    try:
        sock = _bind(path)
    except OSError as e:
        if e.errno != errno.EADDRINUSE:
            raise UapiServerError(f"cannot bind {path}: {e.strerror}") from e
        if socket_answers(path):
            raise SocketInUseError(f"{path} is in use by another process") from e
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        try:
            sock = _bind(path)
        except OSError as e2:
            raise UapiServerError(f"cannot bind {path}: {e2.strerror}") from e2
    sock.listen(UAPI_LISTEN_BACKLOG)
    sock.setblocking(False)
    return sock


def _identity(path: str) -> tuple[int, int] | None:
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino) if stat.S_ISSOCK(st.st_mode) else None


@dataclass(frozen=True)
class ServerLimits:
    """How much the server gives any client (tests shorten the timeouts)."""

    idle_timeout: float = UAPI_IDLE_TIMEOUT_S
    request_timeout: float = UAPI_REQUEST_TIMEOUT_S
    write_timeout: float = UAPI_WRITE_TIMEOUT_S
    max_line: int = UAPI_MAX_LINE_LEN
    max_lines: int = UAPI_MAX_REQUEST_LINES


class UapiServer:
    """Serves one device's UAPI socket; use as `async with` or start() / aclose()."""

    def __init__(self, device: UapiDevice, sock: socket.socket,
                 limits: ServerLimits = ServerLimits()) -> None:
        sock.setblocking(False)
        self._device = device
        self._sock = sock
        name = sock.getsockname()
        self.path: str | None = name if isinstance(name, str) and name else None
        # Remove the file at close only if it is still this socket, not a successor's.
        self._identity = _identity(self.path) if self.path else None
        self._limits = limits
        # Each connection's task, and when it last fell idle (None: a request under way).
        self._connections: dict[asyncio.Task[None], _Idle] = {}
        self._serving: asyncio.Task[None] | None = None

    @classmethod
    def bind(cls, ifname: str, device: UapiDevice, limits: ServerLimits = ServerLimits(),
             *, run_dir: str = UAPI_SOCKET_DIR) -> UapiServer:
        """Listen on RUN_DIR/IFNAME.sock; SocketInUseError if a live process has it."""
        return cls(device, listen_unix(socket_path(ifname, run_dir)), limits)

    @classmethod
    def from_fd(cls, fd: int, device: UapiDevice,
                limits: ServerLimits = ServerLimits()) -> UapiServer:
        """Serve an inherited, already-listening UNIX socket (wireguard-go's WG_UAPI_FD)."""
        sock = socket.socket(fileno=fd)
        if sock.family != socket.AF_UNIX or sock.type != socket.SOCK_STREAM:
            sock.detach()
            raise UapiServerError(f"fd {fd} is not a UNIX stream socket")
        if not sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
            sock.listen(UAPI_LISTEN_BACKLOG)
        return cls(device, sock, limits)

    def socket_removed(self) -> bool:
        """Whether our socket file is gone or replaced (wireguard-go then shuts down). A
        named socket whose file was already gone when we took it over counts as removed."""
        if not self.path:
            return False
        return self._identity is None or _identity(self.path) != self._identity

    def start(self) -> asyncio.Task[None]:
        if self._serving is None:
            self._serving = asyncio.create_task(self.serve_forever(), name="uapi-accept")
        return self._serving

    async def aclose(self) -> None:
        """Stop accepting, end every connection, close the socket and remove its file."""
        if self._serving is not None:
            self._serving.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._serving
        await self._end_connections()
        self._close_socket()

    async def __aenter__(self) -> UapiServer:
        self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.aclose()

    @property
    def connections(self) -> int:
        """How many connections are open now."""
        return len(self._connections)

    async def serve_forever(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                try:
                    conn, _ = await loop.sock_accept(self._sock)
                except OSError as e:
                    if e.errno in _OUT_OF_FDS and await self._close_longest_idle():
                        continue
                    log.warning("UAPI: accept failed: %s", e.strerror or e)
                    await asyncio.sleep(_ACCEPT_RETRY_S)
                    continue
                idle = _Idle(loop.time())
                task = asyncio.create_task(self._serve_connection(conn, idle))
                self._connections[task] = idle
                task.add_done_callback(self._connection_done)
        finally:
            await self._end_connections()

    def _connection_done(self, task: asyncio.Task[None]) -> None:
        del self._connections[task]

    async def _close_longest_idle(self) -> bool:
        """Close the connection idle the longest, to free its file descriptor for a new one;
        False if no connection is idle."""
        idle = [(state.since, task) for task, state in self._connections.items()
                if state.since is not None]
        if not idle:
            return False
        _, task = min(idle, key=lambda pair: pair[0])
        log.info("UAPI: out of file descriptors: closing the connection idle the longest")
        task.cancel()
        await asyncio.wait([task])
        return True

    async def _end_connections(self) -> None:
        tasks = list(self._connections)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _close_socket(self) -> None:
        if self._sock.fileno() < 0:
            return
        self._sock.close()
        if self.path and self._identity and _identity(self.path) == self._identity:
            with contextlib.suppress(OSError):
                os.unlink(self.path)

    async def _serve_connection(self, conn: socket.socket, idle: _Idle) -> None:
        with conn:
            conn.setblocking(False)
            try:
                await self._converse(conn, idle)
            except (TimeoutError, OSError) as e:
                log.debug("UAPI: connection ended: %s", e)

    async def _converse(self, conn: socket.socket, idle: _Idle) -> None:
        loop = asyncio.get_running_loop()
        limits = self._limits
        parser = UapiParser(limits.max_line, limits.max_lines)
        while True:
            event = parser.next_event()
            if isinstance(event, NeedData):
                # A request may be long (a gateway's setconf is millions of lines), so it
                # must only keep arriving: each read has the request timeout.
                if parser.in_request:
                    idle.since = None
                    timeout = limits.request_timeout
                else:
                    if idle.since is None:
                        idle.since = loop.time()
                    timeout = limits.idle_timeout
                async with asyncio.timeout(timeout):
                    data = await loop.sock_recv(conn, UAPI_READ_CHUNK)
                parser.receive_data(data)
                continue
            idle.since = None
            if isinstance(event, Close):
                level = logging.INFO if event.malformed else logging.DEBUG
                log.log(level, "UAPI: closing a connection: %s", event.reason)
                return
            complete = True
            for piece in respond(self._device, event):
                complete = piece.endswith(b"\n\n")
                await self._send(conn, piece)
            if not complete or (isinstance(event, BadRequest) and event.close):
                return

    async def _send(self, conn: socket.socket, data: bytes) -> None:
        """data to the client, which must take each part within the write timeout: a big
        `get` may take long as a whole, but never stall."""
        loop = asyncio.get_running_loop()
        view = memoryview(data)
        for start in range(0, len(view), UAPI_WRITE_PART):
            async with asyncio.timeout(self._limits.write_timeout):
                await loop.sock_sendall(conn, view[start:start + UAPI_WRITE_PART])


class _Idle:
    """When a connection last fell idle: waiting for a request, none under way (None while
    one is read, answered or sent)."""

    __slots__ = ("since",)

    def __init__(self, since: float | None) -> None:
        self.since = since
