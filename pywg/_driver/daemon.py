"""`pywg [-f|--foreground] [--metrics [ADDR:]PORT] [--no-peer-metrics] IFNAME`: the process
model of `wireguard-go IFNAME`.

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

Operating it (README, "Operating pywg"): `--metrics [ADDR:]PORT` or PYWG_METRICS serves
Prometheus metrics (pywg._driver.metrics; 127.0.0.1 unless an address is given), without
per-peer series with `--no-peer-metrics` or PYWG_METRICS_PEERS=off; the listening socket is
made before the command returns, like the TUN and the UAPI socket (a port in use fails the
start), and handed to the daemon as PYWG_METRICS_FD. Friendly peer names for the log and
the metrics come from `# Name = ...` comments in PYWG_CONFIG_FILE (`pywg up` sets it) or
/etc/wireguard/IFNAME.conf. Under systemd (Type=notify) the daemon says READY=1 once the
TUN and the UAPI socket exist and pings the watchdog if WatchdogSec= is set
(pywg._driver.sd_notify); its log lines carry journald's priorities (pywg._driver.log).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import os
import resource
import signal
import socket
import subprocess
import sys
from collections.abc import Sequence
from typing import Protocol

import uvloop

from pywg import _constants as constants
from pywg._config.names import NamesFile, config_path
from pywg._driver import log as pywg_log
from pywg._driver import offload, sd_notify
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
from pywg._protocol import crypto
from pywg._protocol.timers import Timing

__all__ = ["USAGE", "main"]

EXIT_SETUP_SUCCESS = 0
EXIT_SETUP_FAILED = 1
USAGE = ("usage: pywg [-f|--foreground] [--metrics [ADDR:]PORT] [--no-peer-metrics] "
         "INTERFACE-NAME")
ENV_CRYPTO_THREADS = "PYWG_CRYPTO_THREADS"
# Named here, not imported from pywg._driver.metrics: that module (and prometheus_client) is
# loaded only when metrics are on.
ENV_METRICS = "PYWG_METRICS"
ENV_METRICS_FD = "PYWG_METRICS_FD"
ENV_METRICS_PEERS = "PYWG_METRICS_PEERS"
ENV_CONFIG_FILE = "PYWG_CONFIG_FILE"
_SOCKET_CHECK_S = 1.0  # how often the daemon checks that its socket file is still there


@dataclasses.dataclass(frozen=True)
class CommandLine:
    ifname: str
    foreground: bool = False
    metrics: str | None = None  # [ADDR:]PORT
    per_peer_metrics: bool | None = None  # None: as PYWG_METRICS_PEERS says


def parse_command_line(argv: Sequence[str]) -> CommandLine | None:
    """The daemon's arguments, or None for a usage error."""
    foreground, metrics, per_peer, names = False, None, None, []
    args = iter(argv)
    for arg in args:
        if arg in ("-f", "--foreground"):
            foreground = True
        elif arg == "--metrics":
            metrics = next(args, None)
            if metrics is None:
                return None
        elif arg.startswith("--metrics="):
            metrics = arg.partition("=")[2]
        elif arg == "--no-peer-metrics":
            per_peer = False
        elif arg.startswith("-"):
            return None
        else:
            names.append(arg)
    if len(names) != 1:
        return None
    return CommandLine(names[0], foreground, metrics, per_peer)


def main(argv: Sequence[str]) -> int:
    """argv: the arguments after the program name."""
    command = parse_command_line(argv)
    if command is None:
        print(USAGE, file=sys.stderr)
        return EXIT_SETUP_FAILED
    ifname = command.ifname
    foreground = command.foreground or os.environ.get("WG_PROCESS_FOREGROUND") == "1"
    logger = pywg_log.setup(ifname, os.environ.get("LOG_LEVEL"))
    try:
        options = _options_from_env(command)
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
    try:
        metrics_sock = _open_metrics(options)
    except (OSError, ValueError) as e:
        logger.error("Metrics listen error: %s", e)
        _close_uapi(uapi)
        tun.close()
        return EXIT_SETUP_FAILED
    if not foreground:
        return _daemonize(tun, uapi, metrics_sock, options)
    return _serve(tun, uapi, metrics_sock, _timing_from_env(), options)


@dataclasses.dataclass(frozen=True)
class DataPlaneOptions:
    offloads: offload.Offload
    crypto_threads: int  # 0: the data plane's default (one per usable core)
    metrics: str | None = None  # [ADDR:]PORT to serve Prometheus metrics on
    per_peer_metrics: bool = True
    names_path: str = ""  # the configuration file that names peers (it may not exist)


def _options_from_env(command: CommandLine | None = None) -> DataPlaneOptions:
    """The command line over the environment: PYWG_DISABLE_OFFLOADS, PYWG_CRYPTO_THREADS,
    PYWG_METRICS, PYWG_METRICS_PEERS, PYWG_CONFIG_FILE; ValueError saying what is wrong."""
    disabled = offload.parse_disabled(os.environ.get(offload.ENV_DISABLE))
    threads_text = os.environ.get(ENV_CRYPTO_THREADS, "").strip()
    threads = 0
    if threads_text:
        limit = constants.DATAPLANE_MAX_CRYPTO_THREADS
        if not threads_text.isdigit() or not 1 <= int(threads_text) <= limit:
            raise ValueError(f"{ENV_CRYPTO_THREADS} must be a number from 1 to {limit}, "
                             f"not {threads_text!r}")
        threads = int(threads_text)
    metrics = (command and command.metrics) or os.environ.get(ENV_METRICS, "").strip() or None
    per_peer = command.per_peer_metrics if command else None
    if per_peer is None:
        per_peer = _on_or_off(ENV_METRICS_PEERS, os.environ.get(ENV_METRICS_PEERS))
    names_path = os.environ.get(ENV_CONFIG_FILE, "")
    if not names_path and command:
        names_path = config_path(command.ifname)
    return DataPlaneOptions(offload.ALL & ~disabled, threads, metrics, per_peer, names_path)


def _on_or_off(name: str, value: str | None) -> bool:
    text = (value or "on").strip().lower()
    if text in ("on", "1", "yes", "true"):
        return True
    if text in ("off", "0", "no", "false"):
        return False
    raise ValueError(f"{name} must be on or off, not {value!r}")


def _open_metrics(options: DataPlaneOptions) -> socket.socket | None:
    """The listening socket for the metrics: inherited, or made now (so that a port in use
    fails the start, as a TUN in use does)."""
    fd = os.environ.get(ENV_METRICS_FD)
    if fd:
        return socket.socket(fileno=int(fd))
    if not options.metrics:
        return None
    from pywg._driver import metrics  # prometheus_client: only when metrics are on

    return metrics.listen(options.metrics)


def _close_uapi(uapi: socket.socket) -> None:
    """Close a UAPI socket we made (and remove its file) after a later set-up step failed;
    an inherited one is left to _discard_inherited_uapi's rule."""
    if os.environ.get("WG_UAPI_FD"):
        uapi.close()
        _discard_inherited_uapi()
        return
    path = uapi.getsockname()
    uapi.close()
    if isinstance(path, str) and path:
        with contextlib.suppress(OSError):
            os.unlink(path)


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


def _daemonize(tun: Tun, uapi: socket.socket, metrics_sock: socket.socket | None,
               options: DataPlaneOptions) -> int:
    # The daemon is not the process systemd (if any) started: its notifications are not.
    env = {k: v for k, v in os.environ.items() if k not in sd_notify.ENV_VARIABLES}
    env.update(WG_TUN_FD=str(tun.fd), WG_UAPI_FD=str(uapi.fileno()), WG_PROCESS_FOREGROUND="1")
    fds = [tun.fd, uapi.fileno()]
    if metrics_sock is not None:
        env[ENV_METRICS_FD] = str(metrics_sock.fileno())
        env[ENV_METRICS_PEERS] = "on" if options.per_peer_metrics else "off"
        fds.append(metrics_sock.fileno())
    level = os.environ.get("LOG_LEVEL", "")
    keep_output = bool(level) and level.lower() != "silent"
    out = None if keep_output else subprocess.DEVNULL
    try:
        subprocess.Popen(
            [sys.executable, "-m", "pywg", tun.name], env=env, stdin=subprocess.DEVNULL,
            stdout=out, stderr=out, pass_fds=fds, start_new_session=True, cwd="/")
    except OSError as e:
        pywg_log.logger.error("Failed to daemonize: %s", e)
        return EXIT_SETUP_FAILED
    return EXIT_SETUP_SUCCESS


def _timing_from_env() -> Timing:
    scale = os.environ.get("PYWG_TIMING_SCALE")
    return Timing().scaled(float(scale)) if scale else Timing()


def raise_fd_limit() -> None:
    """The soft limit on open files up to the hard one, as Go's runtime does for wireguard-go:
    every UAPI client is served at once and holds a descriptor (pywg._driver.uapi_server)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _serve(tun: Tun, uapi: socket.socket, metrics_sock: socket.socket | None, timing: Timing,
           options: DataPlaneOptions) -> int:
    raise_fd_limit()
    try:
        uvloop.run(_run(tun, uapi, metrics_sock, timing, options))
    except SocketInUseError as e:
        pywg_log.logger.error("UAPI listen error: %s", e)
        return EXIT_SETUP_FAILED
    return EXIT_SETUP_SUCCESS


async def _run(tun: Tun, uapi: socket.socket, metrics_sock: socket.socket | None,
               timing: Timing, options: DataPlaneOptions) -> None:
    logger = pywg_log.logger
    device = Device(tun, timing=timing, offloads=options.offloads,
                    crypto_threads=options.crypto_threads)
    server = UapiServer(device, uapi)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, device.stop, f"signal {signal.Signals(signum).name}")
    names = NamesFile(options.names_path)
    pywg_log.set_peer_names(names.names().peers)
    tasks = [asyncio.ensure_future(_watch_socket(server, device, names))]
    server.start()
    exporter = _start_metrics(device, loop, metrics_sock, options)
    logger.info("Device started (AEAD: %s; X25519 batches: %s; offloads: %s; "
                "crypto threads: %d)", device.aead_name, crypto.x25519_engine(),
                offload.names(device.offloads()), device.dp.crypto_threads())
    logger.info("UAPI listener started")
    sd_notify.notify(f"READY=1\nSTATUS=Serving {tun.name} (AEAD: {device.aead_name})")
    interval = sd_notify.watchdog_interval()
    if interval:
        tasks.append(asyncio.ensure_future(_ping_watchdog(interval)))
    try:
        reason = await device.run()
        logger.info("Shutting down: %s", reason)
        sd_notify.notify(f"STOPPING=1\nSTATUS=Shutting down: {reason}")
    finally:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if exporter is not None:
            exporter.close()
        await server.aclose()
        device.close()


class _Closable(Protocol):
    def close(self) -> None: ...


def _start_metrics(device: Device, loop: asyncio.AbstractEventLoop,
                   sock: socket.socket | None, options: DataPlaneOptions) -> _Closable | None:
    if sock is None:
        return None
    from pywg._driver import metrics  # prometheus_client: only when metrics are on

    server = metrics.serve(device, loop, sock, per_peer=options.per_peer_metrics,
                           names_path=options.names_path)
    host, port = server.address
    pywg_log.logger.info("Metrics served on http://%s/metrics%s",
                         f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
                         "" if options.per_peer_metrics else " (no per-peer series)")
    return server


async def _ping_watchdog(interval: float) -> None:
    # From the event loop: a loop that stops turning stops the pings, and systemd restarts
    # the daemon.
    while True:
        sd_notify.notify("WATCHDOG=1")
        await asyncio.sleep(interval)


async def _watch_socket(server: UapiServer, device: Device, names: NamesFile) -> None:
    # wireguard-go exits when its socket file goes; polling stat() once a second is
    # simpler than inotify and just as good at that time scale. The names file is
    # looked at on the same beat (a stat, read again only when it changed).
    while True:
        await asyncio.sleep(_SOCKET_CHECK_S)
        if server.socket_removed():
            device.stop("the UAPI socket was removed")
            return
        pywg_log.set_peer_names(names.names().peers)
