"""`pywg [-f|--foreground] IFNAME`: the process model of `wireguard-go IFNAME`.

The contract wg-quick and other tools rely on: when the command returns, the TUN and the
UAPI socket /var/run/wireguard/IFNAME.sock exist (connections queue in the listen backlog
until the daemon accepts them). So the parent creates both, then, unless asked to stay in
the foreground, starts a copy of itself that inherits them (WG_TUN_FD, WG_UAPI_FD,
WG_PROCESS_FOREGROUND=1) in a new session and exits 0; on any set-up failure it exits 1.
The daemon runs until SIGINT or SIGTERM, until the TUN is deleted, or until its socket
file is removed, and leaves no socket behind.

LOG_LEVEL (verbose, debug, info, error, silent) sets what is logged; a background daemon
keeps stdout and stderr only when LOG_LEVEL is set and not silent, as wireguard-go does.
PYWG_TIMING_SCALE (tests only) multiplies every protocol time, so that rekeys and expiries
can be watched in seconds; unset, the times are the protocol's. PYWG_DISABLE_OFFLOADS turns
offloads off (pywg._driver.offload), PYWG_CRYPTO_THREADS sets how many threads seal or open one
batch (default: one per usable core).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Sequence

import uvloop

from pywg import _constants as constants
from pywg._driver import log as pywg_log
from pywg._driver import offload
from pywg._driver.device import Device
from pywg._driver.tun import Tun, TunError
from pywg._driver.uapi_server import (
    SocketInUseError,
    UapiServer,
    UapiServerError,
    listen_unix,
    socket_answers,
    socket_path,
)
from pywg._protocol.timers import Timing

__all__ = ["USAGE", "main"]

EXIT_SETUP_SUCCESS = 0
EXIT_SETUP_FAILED = 1
USAGE = "usage: pywg [-f|--foreground] INTERFACE-NAME"
ENV_CRYPTO_THREADS = "PYWG_CRYPTO_THREADS"
_SOCKET_CHECK_S = 1.0  # how often the daemon checks that its socket file is still there


def main(argv: Sequence[str]) -> int:
    """argv: the arguments after the program name."""
    if len(argv) == 2 and argv[0] in ("-f", "--foreground"):
        foreground, ifname = True, argv[1]
    elif len(argv) == 1 and not argv[0].startswith("-"):
        foreground, ifname = False, argv[0]
    else:
        print(USAGE, file=sys.stderr)
        return EXIT_SETUP_FAILED
    foreground = foreground or os.environ.get("WG_PROCESS_FOREGROUND") == "1"
    logger = pywg_log.setup(ifname, os.environ.get("LOG_LEVEL"))
    try:
        options = _options_from_env()
    except ValueError as e:
        logger.error("%s", e)
        _discard_inherited_uapi()
        return EXIT_SETUP_FAILED
    try:
        tun = _open_tun(ifname, options.offloads)
    except (TunError, ValueError) as e:
        logger.error("Failed to create TUN device: %s", _reason(e, ifname))
        _discard_inherited_uapi()
        return EXIT_SETUP_FAILED
    try:
        uapi = _open_uapi(tun.name)
    except (OSError, UapiServerError, ValueError) as e:
        logger.error("UAPI listen error: %s", e)
        tun.close()
        return EXIT_SETUP_FAILED
    if not foreground:
        return _daemonize(tun, uapi)
    return _serve(tun, uapi, _timing_from_env(), options)


@dataclasses.dataclass(frozen=True)
class DataPlaneOptions:
    offloads: offload.Offload
    crypto_threads: int  # 0: the data plane's default (one per usable core)


def _options_from_env() -> DataPlaneOptions:
    """PYWG_DISABLE_OFFLOADS and PYWG_CRYPTO_THREADS; ValueError saying what is wrong."""
    disabled = offload.parse_disabled(os.environ.get(offload.ENV_DISABLE))
    threads_text = os.environ.get(ENV_CRYPTO_THREADS, "").strip()
    threads = 0
    if threads_text:
        limit = constants.DATAPLANE_MAX_CRYPTO_THREADS
        if not threads_text.isdigit() or not 1 <= int(threads_text) <= limit:
            raise ValueError(f"{ENV_CRYPTO_THREADS} must be a number from 1 to {limit}, "
                             f"not {threads_text!r}")
        threads = int(threads_text)
    return DataPlaneOptions(offload.ALL & ~disabled, threads)


def _open_tun(ifname: str, offloads: offload.Offload) -> Tun:
    fd = os.environ.get("WG_TUN_FD")
    if not fd:
        return Tun.create(ifname, offloads=offloads)
    tun = Tun.adopt(int(fd))
    try:
        tun.negotiate(offloads)
    except OSError as e:
        raise TunError(e.errno, f"cannot set the offloads of {tun.name}: {e.strerror}") from e
    return tun


def _open_uapi(ifname: str) -> socket.socket:
    fd = os.environ.get("WG_UAPI_FD")
    if fd:
        return socket.socket(fileno=int(fd))
    return listen_unix(socket_path(ifname))


def _discard_inherited_uapi() -> None:
    """A daemon that cannot start must not leave the socket its parent made behind (the
    TUN may have been deleted while it was starting)."""
    fd = os.environ.get("WG_UAPI_FD")
    if not fd:
        return
    with contextlib.suppress(OSError, ValueError):
        sock = socket.socket(fileno=int(fd))
        path = sock.getsockname()
        sock.close()
        if isinstance(path, str) and path and not socket_answers(path):
            os.unlink(path)


def _reason(e: Exception, ifname: str) -> str:
    if isinstance(e, OSError) and e.errno == errno.EBUSY:
        return f"interface {ifname} is in use by another process"
    return str(e)


def _daemonize(tun: Tun, uapi: socket.socket) -> int:
    env = dict(os.environ, WG_TUN_FD=str(tun.fd), WG_UAPI_FD=str(uapi.fileno()),
               WG_PROCESS_FOREGROUND="1")
    level = os.environ.get("LOG_LEVEL", "")
    keep_output = bool(level) and level.lower() != "silent"
    out = None if keep_output else subprocess.DEVNULL
    try:
        subprocess.Popen(
            [sys.executable, "-m", "pywg", tun.name], env=env, stdin=subprocess.DEVNULL,
            stdout=out, stderr=out, pass_fds=(tun.fd, uapi.fileno()), start_new_session=True,
            cwd="/")
    except OSError as e:
        pywg_log.logger.error("Failed to daemonize: %s", e)
        return EXIT_SETUP_FAILED
    return EXIT_SETUP_SUCCESS


def _timing_from_env() -> Timing:
    scale = os.environ.get("PYWG_TIMING_SCALE")
    return Timing().scaled(float(scale)) if scale else Timing()


def _serve(tun: Tun, uapi: socket.socket, timing: Timing, options: DataPlaneOptions) -> int:
    try:
        uvloop.run(_run(tun, uapi, timing, options))
    except SocketInUseError as e:
        pywg_log.logger.error("UAPI listen error: %s", e)
        return EXIT_SETUP_FAILED
    return EXIT_SETUP_SUCCESS


async def _run(tun: Tun, uapi: socket.socket, timing: Timing, options: DataPlaneOptions,
               ) -> None:
    logger = pywg_log.logger
    device = Device(tun, timing=timing, offloads=options.offloads,
                    crypto_threads=options.crypto_threads)
    server = UapiServer(device, uapi)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, device.stop, f"signal {signal.Signals(signum).name}")
    watcher = asyncio.ensure_future(_watch_socket(server, device))
    server.start()
    logger.info("Device started (AEAD: %s; offloads: %s; crypto threads: %d)",
                device.aead_name, offload.names(device.offloads()),
                device.dp.crypto_threads())
    logger.info("UAPI listener started")
    try:
        reason = await device.run()
        logger.info("Shutting down: %s", reason)
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        await server.aclose()
        device.close()


async def _watch_socket(server: UapiServer, device: Device) -> None:
    # wireguard-go exits when its socket file goes; polling stat() once a second is
    # simpler than inotify and just as good at that time scale.
    while True:
        await asyncio.sleep(_SOCKET_CHECK_S)
        if server.socket_removed():
            device.stop("the UAPI socket was removed")
            return
