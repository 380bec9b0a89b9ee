"""Logging as wireguard-go does it: LOG_LEVEL picks the level, lines name the interface.

LOG_LEVEL=verbose (or debug) shows every event, error (the default) only failures, silent
nothing; info is accepted as a middle ground. Keys never reach a log line: peers are shown
as wireguard-go shows them, by a short fragment of their public key, followed by their
friendly name when the configuration file gives one (`# Name = ...`, pywg._config.names).

Under systemd (JOURNAL_STREAM names our stderr), lines carry the syslog priority as
sd-daemon(3) prefixes (`<6>` for info, `<3>` for errors) and no timestamp, which journald
adds; each record stays on one line (a traceback's lines are joined), so that one event
is one journal entry.
"""

from __future__ import annotations

import base64
import logging
import os
import sys
from collections.abc import Mapping
from typing import TextIO

LEVELS = {
    "verbose": logging.DEBUG,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "error": logging.ERROR,
    "silent": logging.CRITICAL + 10,
}
DEFAULT_LEVEL = "error"
# sd-daemon(3): the syslog priority of each logging level.
_JOURNAL_PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4,
                     logging.ERROR: 3, logging.CRITICAL: 2}

logger = logging.getLogger("pywg")
_peer_names: Mapping[bytes, str] = {}


def level_from_env(value: str | None) -> int:
    return LEVELS.get((value or DEFAULT_LEVEL).strip().lower(), LEVELS[DEFAULT_LEVEL])


def to_journal(stream: object, env: Mapping[str, str] | None = None) -> bool:
    """Whether `stream` is the journal's: JOURNAL_STREAM is `DEVICE:INODE` of the stream
    systemd connected to journald, which stays in the environment of children whose
    stderr went elsewhere, so the file itself is compared."""
    value = (os.environ if env is None else env).get("JOURNAL_STREAM", "")
    device, _, inode = value.partition(":")
    if not (device.isdigit() and inode.isdigit()):
        return False
    try:
        st = os.fstat(stream.fileno())  # type: ignore[attr-defined]
    except (AttributeError, OSError, ValueError):
        return False
    return (st.st_dev, st.st_ino) == (int(device), int(inode))


class JournalFormatter(logging.Formatter):
    """`<PRIORITY>(IFNAME) message`, one line per record."""

    def __init__(self, ifname: str) -> None:
        super().__init__(f"({ifname}) %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        priority = _JOURNAL_PRIORITY.get(record.levelno, 6 if record.levelno < 30 else 3)
        return f"<{priority}>" + " | ".join(line for line in text.splitlines() if line)


def setup(ifname: str, level_name: str | None, stream: object = None) -> logging.Logger:
    """Configure the `pywg` logger for one interface; returns it."""
    out: TextIO = stream or sys.stderr  # type: ignore[assignment]
    handler = logging.StreamHandler(out)
    if to_journal(out):
        handler.setFormatter(JournalFormatter(ifname))
    else:
        handler.setFormatter(logging.Formatter(
            f"%(levelname)s: ({ifname}) %(asctime)s %(message)s",
            datefmt="%Y/%m/%d %H:%M:%S"))
    logger.handlers[:] = [handler]
    logger.setLevel(level_from_env(level_name))
    logger.propagate = False
    return logger


def set_peer_names(names: Mapping[bytes, str]) -> None:
    """Friendly names by raw public key, shown after the key fragment from now on."""
    global _peer_names
    _peer_names = names


def peer_name(public_key: bytes) -> str:
    """`peer(AbCd…WxYz)`: enough of a public key to tell peers apart, as wireguard-go logs;
    `peer(AbCd…WxYz "alice")` when the configuration names it."""
    b64 = base64.b64encode(public_key).decode()
    name = _peer_names.get(public_key)
    if name:
        return f'peer({b64[:4]}…{b64[-5:-1]} "{name}")'
    return f"peer({b64[:4]}…{b64[-5:-1]})"
