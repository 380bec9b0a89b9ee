"""Friendly names of a tunnel and its peers, from comments in its configuration file.

WireGuard's configuration has no names; operators write them as comments, and the common
exporters and dashboards read them there. In a `[Peer]` section, a comment line
`# Name = alice` (or `# friendly_name = alice`, the Prometheus exporter's spelling, or
`# Description = ...`) names the peer whose PublicKey the section gives, wherever the
comment stands in the section; in `[Interface]` the same comment describes the tunnel.
Keys match without regard to case. A file that cannot be read, or a section without a
valid PublicKey, simply names nothing: names are decoration, never an error.

Names end up in log lines, metric labels and web pages, so they are cleaned: control
characters become spaces and the length is bounded.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from dataclasses import dataclass, field

from pywg._constants import (
    CONF_MAX_FILE_LEN,
    NAME_MAX_LEN,
    NOISE_PUBLIC_KEY_LEN,
    QUICK_CONFIG_DIR,
)

__all__ = ["Names", "NamesFile", "clean_name", "config_path", "parse_names"]

_NAME_COMMENT = re.compile(r"^\s*#\s*(name|friendly_name|description)\s*=\s*(.*?)\s*$",
                           re.IGNORECASE)
_SECTION = re.compile(r"^\s*\[\s*([A-Za-z]+)\s*\]")
_PUBLIC_KEY = re.compile(r"^\s*publickey\s*=\s*([A-Za-z0-9+/=]+)\s*(#.*)?$", re.IGNORECASE)
_RANK = {"name": 0, "friendly_name": 1, "description": 2}
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


@dataclass(frozen=True)
class Names:
    """The tunnel's description (or "") and each named peer's name by raw public key."""

    interface: str = ""
    peers: dict[bytes, str] = field(default_factory=dict)


def clean_name(text: str) -> str:
    """One printable line of at most NAME_MAX_LEN characters."""
    return " ".join(_CONTROL.sub(" ", text).split())[:NAME_MAX_LEN]


def _public_key(value: str) -> bytes | None:
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == NOISE_PUBLIC_KEY_LEN else None


@dataclass
class _Section:
    kind: str = ""
    name: str = ""
    rank: int = len(_RANK)  # of the comment that gave the name: lower wins
    key: bytes | None = None


def parse_names(text: str) -> Names:
    interface = ""
    peers: dict[bytes, str] = {}
    section = _Section()

    def close(s: _Section) -> None:
        nonlocal interface
        if s.kind == "interface" and s.name:
            interface = s.name
        elif s.kind == "peer" and s.name and s.key is not None:
            peers[s.key] = s.name

    for line in text.splitlines():
        if m := _SECTION.match(line):
            close(section)
            section = _Section(kind=m.group(1).lower())
        elif m := _NAME_COMMENT.match(line):
            rank = _RANK[m.group(1).lower()]
            name = clean_name(m.group(2))
            if name and rank < section.rank:  # Name over friendly_name over Description
                section.name, section.rank = name, rank
        elif (m := _PUBLIC_KEY.match(line)) and section.kind == "peer":
            section.key = _public_key(m.group(1))
    close(section)
    return Names(interface, peers)


def config_path(ifname: str, directory: str = QUICK_CONFIG_DIR) -> str:
    return os.path.join(directory, f"{ifname}.conf")


class NamesFile:
    """One file's names, read again only when the file changes (cheap to ask often)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._identity: tuple[int, int, int, int] | None = None
        self._names = Names()

    def names(self) -> Names:
        try:
            st = os.stat(self.path)
        except OSError:
            self._identity, self._names = None, Names()
            return self._names
        identity = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        if identity != self._identity:
            self._identity = identity
            self._names = self._read()
        return self._names

    def _read(self) -> Names:
        try:
            with open(self.path, "rb") as f:
                data = f.read(CONF_MAX_FILE_LEN + 1)
        except OSError:
            return Names()
        if len(data) > CONF_MAX_FILE_LEN:
            return Names()
        return parse_names(data.decode("utf-8", "replace"))
