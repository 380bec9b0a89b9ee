"""Finding and reading a wg-quick(8) configuration file, and `strip`.

The argument is a path, or a bare interface name meaning /etc/wireguard/NAME.conf; either
way the file's name is the interface's name followed by `.conf`, with wg-quick's rule for
the name (1 to 15 of `a-z A-Z 0-9 _ = + . -`). The wg(8) and wg-quick settings come from
pywg._tools.conffile, whose errors name the line.

strip() is `wg-quick strip`: the file without the wg-quick keys, byte for byte as wg-quick
prints it. It follows wg-quick's own reading of the file (bash `read`: lines trimmed of
spaces and tabs; a key is what precedes the first `=` once a `#` comment is cut; the
section header must be exactly `[Interface]`, in any case), so its output can be fed to
`wg syncconf` as wg-quick's is. conffile is a little more lenient in one place: it also
takes `[ Interface ]` with inner spaces as the interface section, as wg(8) does.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass

from pywg._config.errors import ConfigError
from pywg._constants import CONF_MAX_FILE_LEN, QUICK_CONFIG_DIR
from pywg._tools.conffile import ConfFile, load_conf
from pywg._tools.quick.report import QuickError, warn

__all__ = ["QUICK_KEYS", "QuickFile", "load", "locate", "read_text", "strip"]

# The [Interface] keys that wg-quick handles itself and never hands to wg(8).
QUICK_KEYS = ("address", "dns", "mtu", "table", "preup", "postup", "predown", "postdown",
              "saveconfig")
_NAME = "[a-zA-Z0-9_=+.-]{1,15}"
_BARE_NAME = re.compile(_NAME)
_CONF_PATH = re.compile(f"(?:.*/)?({_NAME})\\.conf", re.DOTALL)
_BASH_SPACE = " \t\n\v\f\r"  # [[:space:]] in the C locale
_READ_IFS = " \t"  # what `read` trims from both ends of a line


@dataclass(frozen=True)
class QuickFile:
    path: str  # with symbolic links resolved: SaveConfig writes here
    ifname: str
    conf: ConfFile


def locate(arg: str, config_dir: str = QUICK_CONFIG_DIR) -> tuple[str, str]:
    """(resolved path, interface name) for a path or a bare interface name."""
    path = os.path.join(config_dir, f"{arg}.conf") if _BARE_NAME.fullmatch(arg) else arg
    if not os.path.exists(path):
        raise QuickError(f"`{path}' does not exist")
    match = _CONF_PATH.fullmatch(path)
    if match is None:
        raise QuickError("The config file must be a valid interface name, followed by .conf")
    return os.path.realpath(path), match.group(1)


def _warn_if_world_accessible(path: str) -> None:
    # As wg-quick: only when the file and its directory both let others in.
    try:
        mode = os.stat(path).st_mode & os.stat(os.path.dirname(path)).st_mode
    except OSError:
        return
    if mode & (stat.S_IRWXO):
        warn(f"Warning: `{path}' is world accessible")


def load(arg: str, config_dir: str = QUICK_CONFIG_DIR) -> QuickFile:
    """Locate and parse the file; QuickError naming the file (and the line) otherwise."""
    path, ifname = locate(arg, config_dir)
    _warn_if_world_accessible(path)
    try:
        conf = load_conf(path)
    except ConfigError as e:
        raise QuickError(f"{path}: {e.message}") from e
    except OSError as e:
        raise QuickError(f"{path}: {e.strerror}") from e
    for warning in conf.warnings:
        warn(f"Warning: {path}: {warning}")
    return QuickFile(path, ifname, conf)


def read_text(path: str) -> str:
    try:
        with open(path, "rb") as f:
            data = f.read(CONF_MAX_FILE_LEN + 1)
    except OSError as e:
        raise QuickError(f"{path}: {e.strerror}") from e
    if len(data) > CONF_MAX_FILE_LEN:
        raise QuickError(f"{path}: larger than {CONF_MAX_FILE_LEN} bytes")
    # bash drops NUL bytes; anything else passes through as it came.
    return data.replace(b"\0", b"").decode("utf-8", "surrogateescape")


def _lines(text: str) -> list[str]:
    """The lines as `while read -r line || [[ -n $line ]]` sees them."""
    lines = [p.strip(_READ_IFS) for p in text.split("\n")]
    # The last piece has no newline: the loop takes it only if something is left of it
    # (`|| [[ -n $line ]]`), and so never the empty piece after a final newline.
    if not lines[-1]:
        lines.pop()
    return lines


def _ascii_lower(text: str) -> str:
    # bash's nocasematch in the C locale folds ASCII letters only.
    return "".join(c.lower() if c.isascii() else c for c in text)


def strip(text: str) -> str:
    """`wg-quick strip`: the configuration without the wg-quick keys; QuickError for a
    SaveConfig that is neither true nor false, as wg-quick refuses it."""
    kept: list[str] = []
    interface = False
    for line in _lines(text):
        uncommented = line.split("#", 1)[0]
        key = _ascii_lower(uncommented.split("=", 1)[0].strip(_BASH_SPACE))
        if key.startswith("["):
            interface = key == "[interface]"
        if not (interface and key in QUICK_KEYS):
            kept.append(line + "\n")
        elif key == "saveconfig":
            # The one value wg-quick checks as it reads (its `value` is the whole line
            # when there is no `=`).
            value = uncommented.split("=", 1)[-1].strip(_BASH_SPACE)
            if _ascii_lower(value) not in ("true", "false"):
                raise QuickError(f"`{value}' is neither true nor false")
    return "".join(kept) + "\n"  # wg-quick prints it with `echo`, which adds a newline
