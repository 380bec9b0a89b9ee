"""`pywg status --serve [ADDR:]PORT`: the status view as a read-only web page.

One thread reads the interfaces every interval (a Sampler: the same reading as the
terminal view) and keeps the last Status and, per peer, a short history of its rates for
the sparklines; requests only ever read what it kept, so any number of open pages cost the
daemons one UAPI `get` per interval. The page (page/index.html, app.js, style.css: no
outside resources) asks /api/status for that JSON and redraws.

Read-only by construction: GET and HEAD only (anything else is 405), and nothing it serves
can change an interface. No secret reaches it: the model holds public keys only. It listens
on 127.0.0.1 unless told otherwise; bound to loopback it answers only requests addressed to
a loopback name (a page on another site that rebinds its DNS name to 127.0.0.1 gets 421).
"""

from __future__ import annotations

import collections
import contextlib
import ipaddress
import json
import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

from pywg._constants import (
    STATUS_HISTORY_LEN,
    STATUS_HISTORY_MAX_PEERS,
    STATUS_MAX_CONCURRENT,
    STATUS_SERVE_PORT,
)
from pywg._tools.status.model import Sampler, Status

__all__ = ["StatusServer", "parse_serve_address"]

log = logging.getLogger("pywg.status")

_PAGES = {"/": ("index.html", "text/html; charset=utf-8"),
          "/app.js": ("app.js", "text/javascript; charset=utf-8"),
          "/style.css": ("style.css", "text/css; charset=utf-8")}
_HEADERS = (
    ("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; "
     "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
     "frame-ancestors 'none'"),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    ("Cache-Control", "no-store"),
)
_ALLOWED = "GET, HEAD"


def parse_serve_address(text: str) -> tuple[str, int]:
    """`PORT`, `:PORT`, `ADDR`, `ADDR:PORT` or `[IPV6]:PORT`; 127.0.0.1 and
    STATUS_SERVE_PORT stand in for what is left out. ValueError if it is not one."""
    text = text.strip()
    port_text: str | None = None  # None: no port given
    if text.isdigit():
        host, port_text = "", text
    elif text.startswith("["):
        host, closed, rest = text[1:].partition("]")
        if not closed or (rest and not rest.startswith(":")):
            raise ValueError(f"not an address: {text!r} (expected [ADDR:]PORT)")
        port_text = rest[1:] if rest else None
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    else:
        host = text
    port = STATUS_SERVE_PORT
    if port_text is not None:
        port = int(port_text) if port_text.isdigit() else -1
    if not 0 < port <= 0xFFFF:
        raise ValueError(f"not a TCP port: {port_text!r} (expected [ADDR:]PORT)")
    host = host or "127.0.0.1"
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"not an IP address: {host!r} (expected [ADDR:]PORT)") from None
    return host, port


class _History:
    """Each peer's last STATUS_HISTORY_LEN rate samples, for at most
    STATUS_HISTORY_MAX_PEERS peers (the first ones seen)."""

    def __init__(self) -> None:
        self._rates: dict[tuple[str, str], collections.deque[tuple[float, float, float]]] = {}

    def add(self, status: Status) -> None:
        seen = set()
        for tunnel in status.tunnels:
            for peer in tunnel.peers:
                key = (tunnel.name, peer.public_key)
                seen.add(key)
                samples = self._rates.get(key)
                if samples is None:
                    if len(self._rates) >= STATUS_HISTORY_MAX_PEERS:
                        continue
                    samples = self._rates[key] = collections.deque(maxlen=STATUS_HISTORY_LEN)
                if peer.rx_rate is not None and peer.tx_rate is not None:
                    samples.append((round(status.time, 3), peer.rx_rate, peer.tx_rate))
        for key in list(self._rates):
            if key not in seen:
                del self._rates[key]

    def as_dict(self) -> dict[str, dict[str, list[tuple[float, float, float]]]]:
        out: dict[str, dict[str, list[tuple[float, float, float]]]] = {}
        for (tunnel, key), samples in self._rates.items():
            out.setdefault(tunnel, {})[key] = list(samples)
        return out


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "pywg-status"
    timeout = 10.0

    def _headers(self, code: int, content_type: str, length: int) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(length))
        for name, value in _HEADERS:
            self.send_header(name, value)
        self.end_headers()

    def _answer(self, send_body: bool) -> None:
        if not self.server.host_allowed(self.headers.get("Host")):
            self.send_error(421, "this page answers to a loopback address only")
            return
        path = urlsplit(self.path).path
        if path == "/api/status":
            body, content_type = self.server.state_json(), "application/json"
        elif path in _PAGES:
            name, content_type = _PAGES[path]
            body = self.server.pages[name]
        else:
            self.send_error(404)
            return
        self._headers(200, content_type, len(body))
        if send_body:
            self.wfile.write(body)

    def do_GET(self) -> None:
        self._answer(True)

    def do_HEAD(self) -> None:
        self._answer(False)

    def _refuse(self) -> None:
        body = b"read-only: only GET and HEAD\n"
        self.send_response(405)
        self.send_header("Allow", _ALLOWED)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_TRACE = do_CONNECT = _refuse

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, sock: socket.socket, state_json: Any,
                 pages: dict[str, bytes]) -> None:
        super().__init__(sock.getsockname()[:2], _Handler, bind_and_activate=False)
        self.socket.close()
        self.socket = sock
        self.state_json = state_json
        self.pages = pages
        self._loopback = ipaddress.ip_address(sock.getsockname()[0]).is_loopback
        self._slots = threading.BoundedSemaphore(STATUS_MAX_CONCURRENT)

    def host_allowed(self, host: str | None) -> bool:
        """Bound to loopback, only a loopback name may be asked for (any port: an SSH
        tunnel or a relay changes it)."""
        if not self._loopback or host is None:
            return True
        name = host.strip().lower()
        if name.startswith("["):
            name = name[1:].partition("]")[0]
        elif name.count(":") == 1:
            name = name.partition(":")[0]
        if name == "localhost":
            return True
        try:
            return ipaddress.ip_address(name).is_loopback
        except ValueError:
            return False

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            with contextlib.suppress(OSError):
                request.sendall(b"HTTP/1.0 503 Service Unavailable\r\n"
                                b"Content-Length: 0\r\n\r\n")
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()


def _pages() -> dict[str, bytes]:
    folder = resources.files("pywg._tools.status") / "page"
    return {name: (folder / name).read_bytes() for name, _ in _PAGES.values()}


class StatusServer:
    """The sampling thread and the HTTP server; `run()` serves until `stop()`."""

    def __init__(self, sampler: Sampler, sock: socket.socket, interval: float) -> None:
        self._sampler = sampler
        self._interval = interval
        self._lock = threading.Lock()
        self._history = _History()
        self._json = b"{}"
        self._stopped = threading.Event()
        self._sample()  # the first request already finds a reading
        self._http = _Server(sock, self._state_json, _pages())
        self.address: tuple[str, int] = sock.getsockname()[:2]
        self._thread = threading.Thread(target=self._sample_loop, name="pywg-status-sampler",
                                        daemon=True)

    def _state_json(self) -> bytes:
        with self._lock:
            return self._json

    def _sample(self) -> None:
        status = self._sampler.sample()
        with self._lock:
            self._history.add(status)
            self._json = json.dumps({"interval": self._interval, "status": status.as_dict(),
                                     "history": self._history.as_dict()}).encode()

    def _sample_loop(self) -> None:
        while not self._stopped.wait(self._interval):
            try:
                self._sample()
            except Exception:  # one bad reading must not end the page's updates
                log.exception("reading the interfaces failed")

    def run(self) -> None:
        self._thread.start()
        try:
            self._http.serve_forever(poll_interval=0.25)
        finally:
            self._stopped.set()
            self._thread.join()
            self._http.server_close()

    def stop(self) -> None:
        """From another thread (or a signal handler's thread): run() returns."""
        self._stopped.set()
        threading.Thread(target=self._http.shutdown, daemon=True).start()
