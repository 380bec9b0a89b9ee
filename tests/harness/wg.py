"""The real `wg` tool: keys, configuration (set, setconf and its kin), and `wg show dump`.

`wg` finds a userspace daemon by its socket in /var/run/wireguard, which every namespace
shares, so it can run in any namespace (None: this one). Secrets go through stdin or files
only their owner reads, never a command line, and stay out of the demo's echo.
"""

from __future__ import annotations

import base64
import subprocess
import time
from dataclasses import dataclass

from tests.harness import files, netns, procs

# `wg setconf` of tens of thousands of peers takes seconds on a slow daemon.
SETCONF_TIMEOUT_S = 120.0


def wg(ns: str | None, *args: str, check: bool = True, input: str | None = None,
       timeout: float = procs.CMD_TIMEOUT_S, quiet: bool = False,
       ) -> subprocess.CompletedProcess[str]:
    return netns.run(ns, ["wg", *args], check=check, input=input, timeout=timeout,
                     quiet=quiet or input is not None)


@dataclass(frozen=True)
class KeyPair:
    private: str
    public: str

    @staticmethod
    def generate() -> KeyPair:
        private = wg(None, "genkey", quiet=True).stdout.strip()
        public = wg(None, "pubkey", input=private + "\n").stdout.strip()
        return KeyPair(private, public)


def genpsk() -> str:
    return wg(None, "genpsk", quiet=True).stdout.strip()


def key_forms(b64: str) -> list[str]:
    """Every textual form a key could leak in: base64, and hex in both cases."""
    raw = base64.b64decode(b64)
    return [b64, raw.hex(), raw.hex().upper()]


def set_private_key(ns: str | None, ifname: str, keys: KeyPair) -> None:
    wg(ns, "set", ifname, "private-key", "/dev/stdin", input=keys.private + "\n")


def setconf(ns: str | None, ifname: str, text: str, verb: str = "setconf") -> float:
    """Applies a configuration file's text with `wg VERB FILE` (setconf, addconf, syncconf),
    as a user would; returns the seconds the command took (bench times it)."""
    with files.workdir("conf") as tmp:
        path = files.write_private(tmp / f"{ifname}.conf", text)
        started = time.perf_counter()
        wg(ns, verb, ifname, str(path), timeout=SETCONF_TIMEOUT_S)
        return time.perf_counter() - started


@dataclass(frozen=True)
class PeerDump:
    public_key: str
    preshared_key: str
    endpoint: str
    allowed_ips: str
    latest_handshake: int
    rx: int
    tx: int
    persistent_keepalive: str


@dataclass(frozen=True)
class Dump:
    private_key: str
    public_key: str
    listen_port: int
    fwmark: str
    peers: dict[str, PeerDump]
    text: str


def parse_dump(text: str) -> Dump:
    lines = [line.split("\t") for line in text.strip("\n").split("\n")]
    private, public, port, fwmark = lines[0]
    peers = {}
    for f in lines[1:]:
        peers[f[0]] = PeerDump(f[0], f[1], f[2], f[3], int(f[4]), int(f[5]), int(f[6]), f[7])
    return Dump(private, public, int(port), fwmark, peers, text)


def dump(ns: str | None, ifname: str) -> Dump:
    # Its first line holds the private key: never echoed.
    return parse_dump(wg(ns, "show", ifname, "dump", quiet=True).stdout)
