"""Logging as wireguard-go does it: LOG_LEVEL picks the level, lines name the interface.

LOG_LEVEL=verbose (or debug) shows every event, error (the default) only failures, silent
nothing; info is accepted as a middle ground. Keys never reach a log line: peers are shown
as wireguard-go shows them, by a short fragment of their public key.
"""

from __future__ import annotations

import base64
import logging
import sys

LEVELS = {
    "verbose": logging.DEBUG,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "error": logging.ERROR,
    "silent": logging.CRITICAL + 10,
}
DEFAULT_LEVEL = "error"

logger = logging.getLogger("pywg")


def level_from_env(value: str | None) -> int:
    return LEVELS.get((value or DEFAULT_LEVEL).strip().lower(), LEVELS[DEFAULT_LEVEL])


def setup(ifname: str, level_name: str | None, stream: object = None) -> logging.Logger:
    """Configure the `pywg` logger for one interface; returns it."""
    handler = logging.StreamHandler(stream or sys.stderr)  # type: ignore[arg-type]
    handler.setFormatter(logging.Formatter(
        f"%(levelname)s: ({ifname}) %(asctime)s %(message)s", datefmt="%Y/%m/%d %H:%M:%S"))
    logger.handlers[:] = [handler]
    logger.setLevel(level_from_env(level_name))
    logger.propagate = False
    return logger


def peer_name(public_key: bytes) -> str:
    """`peer(AbCd…WxYz)`: enough of a public key to tell peers apart, as wireguard-go logs."""
    b64 = base64.b64encode(public_key).decode()
    return f"peer({b64[:4]}…{b64[-5:-1]})"
