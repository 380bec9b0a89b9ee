"""systemd's service notification protocol (sd_notify(3)), without libsystemd.

A service started with Type=notify finds NOTIFY_SOCKET in its environment: the path of an
AF_UNIX datagram socket (or, starting with '@', a name in the abstract namespace). Each
datagram is newline-separated `KEY=VALUE` assignments: READY=1 once the service is up,
STATUS=... for `systemctl status`, STOPPING=1 when it begins to stop, WATCHDOG=1 to show it
is alive. With WatchdogSec= set, systemd also passes WATCHDOG_USEC (and WATCHDOG_PID, the
process it means): a service that sends no WATCHDOG=1 within that time is restarted.

Everything here is best effort: no socket, or a send that fails, changes nothing for the
daemon, which runs the same under systemd or not.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping

from pywg._constants import SD_WATCHDOG_FRACTION

__all__ = ["ENV_VARIABLES", "notify", "watchdog_interval"]

# What systemd hands the one process it supervises: never passed on to a child.
ENV_VARIABLES = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")


def _address(value: str) -> str | bytes | None:
    if value.startswith("@"):
        return b"\0" + value[1:].encode()  # the abstract namespace
    if value.startswith("/"):
        return value
    return None  # vsock and other forms: not for a daemon on the same machine


def notify(state: str, env: Mapping[str, str] | None = None) -> bool:
    """Send `state` ("READY=1", "STATUS=...\\nREADY=1", ...) to systemd; True if sent."""
    env = os.environ if env is None else env
    address = _address(env.get("NOTIFY_SOCKET", ""))
    if address is None:
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
        try:
            sock.connect(address)
            sock.sendall(state.encode())
        except OSError:
            return False
    return True


def watchdog_interval(env: Mapping[str, str] | None = None, pid: int | None = None,
                      ) -> float | None:
    """Seconds between WATCHDOG=1 pings, or None when systemd watches no watchdog of ours
    (no WATCHDOG_USEC, or a WATCHDOG_PID that names another process)."""
    env = os.environ if env is None else env
    usec = env.get("WATCHDOG_USEC", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    owner = env.get("WATCHDOG_PID", "")
    if owner and (not owner.isdigit() or int(owner) != (os.getpid() if pid is None else pid)):
        return None
    return int(usec) / 1e6 * SD_WATCHDOG_FRACTION
