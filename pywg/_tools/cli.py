"""The `pywg` command line.

Subcommands live in one table (`COMMANDS`): each names its help text, how to declare its
arguments and what to run. The key commands behave exactly as wg(8)'s: same input, same
output, same messages and exit status 1 on bad input.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO

from pywg import __version__
from pywg._constants import WG_KEY_LEN_BASE64
from pywg._tools import keys

if TYPE_CHECKING:  # argparse is loaded by build_parser: the daemon never parses with it
    import argparse

__all__ = ["COMMANDS", "Command", "main"]

PROG = "pywg"
_READ_CHUNK = 4096
# wg(8) lets a key be followed by NUL bytes and C whitespace, and nothing else.
_TRAILING_OK = frozenset(b"\0 \t\n\v\f\r")


@dataclass(frozen=True)
class Command:
    help: str
    run: Callable[[argparse.Namespace], int]
    configure: Callable[[argparse.ArgumentParser], None] = lambda parser: None


def _error(message: str) -> int:
    print(f"{PROG}: {message}", file=sys.stderr)
    return 1


def _warn_if_world_accessible() -> None:
    # As wg genkey: a private key written to a file others can read deserves a warning.
    try:
        mode = os.fstat(sys.stdout.fileno()).st_mode
    except (OSError, ValueError):
        return
    if stat.S_ISREG(mode) and mode & stat.S_IRWXO:
        print("Warning: writing to world accessible file.\n"
              "Consider setting the umask to 077 and trying again.", file=sys.stderr)


def _print_key(key: bytes) -> int:
    sys.stdout.write(keys.to_base64(key) + "\n")
    sys.stdout.flush()
    return 0


def _genkey(args: argparse.Namespace) -> int:
    _warn_if_world_accessible()
    return _print_key(keys.generate_private_key())


def _genpsk(args: argparse.Namespace) -> int:
    _warn_if_world_accessible()
    return _print_key(keys.generate_preshared_key())


def read_key_from(stream: BinaryIO) -> bytes:
    """Read a base64 key as `wg pubkey` does: exactly 44 bytes first, then only NULs or
    whitespace until the end. Raises KeyFormatError with wg's messages."""
    head = b""
    while len(head) < WG_KEY_LEN_BASE64:
        chunk = stream.read(WG_KEY_LEN_BASE64 - len(head))
        if not chunk:
            raise keys.KeyFormatError("Key is not the correct length or format")
        head += chunk
    while chunk := stream.read(_READ_CHUNK):
        if not _TRAILING_OK.issuperset(chunk):
            raise keys.KeyFormatError("Trailing characters found after key")
    try:
        text = head.decode("ascii")
    except UnicodeDecodeError as e:
        raise keys.KeyFormatError("Key is not the correct length or format") from e
    return keys.from_base64(text)


def _pubkey(args: argparse.Namespace) -> int:
    try:
        private = read_key_from(sys.stdin.buffer)
    except keys.KeyFormatError as e:
        return _error(str(e))
    return _print_key(keys.public_key(private))


def _selftest(args: argparse.Namespace) -> int:
    from pywg._tools import selftest  # the C extension and libsodium: only for this command

    return selftest.main()


def _config_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", metavar="CONFIG_FILE|INTERFACE",
                        help="a wg-quick(8) configuration file named INTERFACE.conf, or an "
                             "interface name meaning /etc/wireguard/INTERFACE.conf")


def _quick(verb: str) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        from pywg._tools import quick  # pyroute2 and friends: only for these commands

        return quick.main(verb, args.config)

    return run


def _quick_command(verb: str, text: str) -> Command:
    return Command(text, _quick(verb), _config_argument)


# `status` and `install-units` load their modules (rich, prometheus-free) only when run.
def _status(args: argparse.Namespace) -> int:
    from pywg._tools import status

    return status.run(args)


def _configure_status(parser: argparse.ArgumentParser) -> None:
    from pywg._tools import status

    status.configure(parser)


def _install_units(args: argparse.Namespace) -> int:
    from pywg._tools import units

    return units.run(args)


def _configure_units(parser: argparse.ArgumentParser) -> None:
    from pywg._tools import units

    units.configure(parser)


COMMANDS: dict[str, Command] = {
    "genkey": Command("Generate a new private key and write it to stdout", _genkey),
    "genpsk": Command("Generate a new preshared key and write it to stdout", _genpsk),
    "pubkey": Command("Read a private key from stdin and write its public key to stdout",
                      _pubkey),
    "selftest": Command("Check the AEAD backends and the handshake's crypto against known "
                        "answers on this machine, and name the backend the data plane uses",
                        _selftest),
    "up": _quick_command("up", "Bring an interface up from its configuration file, as "
                         "wg-quick up does, with a pywg daemon"),
    "down": _quick_command("down", "Take down an interface brought up with `pywg up` (or "
                           "`wg-quick up`), as wg-quick down does"),
    "save": _quick_command("save", "Write an interface's running configuration back to its "
                           "file, as wg-quick save does"),
    "strip": _quick_command("strip", "Print the file without its wg-quick settings, for wg "
                            "setconf/syncconf, as wg-quick strip does"),
    "status": Command("Show tunnels and peers (terminal, --watch, --json, or a read-only "
                      "web page with --serve)", _status, _configure_status),
    "install-units": Command("Write the systemd units pywg@.service and "
                             "pywg-quick@.service", _install_units, _configure_units),
}


_EPILOG = """\
Bring an interface up or down, as wg-quick(8) does (root):
  pywg up|down|save|strip CONFIG_FILE|INTERFACE

  CONFIG_FILE is INTERFACE.conf, or INTERFACE means /etc/wireguard/INTERFACE.conf. Besides
  wg(8)'s settings, [Interface] takes wg-quick's: Address, DNS (via resolvconf), MTU
  (default: the route to the endpoints' MTU minus 80), Table (auto, off, a number or name;
  with auto, AllowedIPs 0.0.0.0/0 or ::/0 make a full tunnel: fwmark, policy routing and
  nftables rules as wg-quick's), PreUp/PostUp/PreDown/PostDown (bash; %i is the
  interface) and SaveConfig. Each step is printed as the command wg-quick would run; if one
  fails, `up` undoes what it did and names the cause.

Run an interface (the contract of `wireguard-go IFNAME`):
  pywg [-f|--foreground] [--metrics [ADDR:]PORT] [--no-peer-metrics] IFNAME

  Creates the TUN IFNAME and the UAPI socket /var/run/wireguard/IFNAME.sock, then runs in
  the background (or in the foreground with -f or WG_PROCESS_FOREGROUND=1). Configure it
  with wg(8), or with wg-quick(8) and WG_QUICK_USERSPACE_IMPLEMENTATION=pywg. It exits on
  SIGINT/SIGTERM, when the interface is deleted, or when its socket file is removed.

  Environment: LOG_LEVEL=verbose|info|error|silent (default error), WG_TUN_FD and
  WG_UAPI_FD (use an open TUN / a listening UNIX socket), WG_PROCESS_FOREGROUND=1,
  PYWG_AEAD=<backend> (force a ChaCha20-Poly1305 backend), PYWG_X25519=sodium (handshake
  batches through libsodium alone, not eight at a time with AVX-512 IFMA),
  PYWG_TIMING_SCALE=<factor> (tests only: shorten every protocol time).

  Offloads (all on where the kernel has them; a refusal at run time falls back):
  PYWG_DISABLE_OFFLOADS=<names>|all turns off, comma-separated:
    tun-tso      TCP super-packets from the TUN (TSO), split before sealing
    tun-uso      UDP super-packets from the TUN (USO, Linux 6.2+)
    tun-tcp-gro  received TCP segments of a flow written to the TUN as one
    tun-udp-gro  received UDP datagrams of a flow written to the TUN as one
    udp-gso      sealed datagrams sent in one UDP_SEGMENT call
    udp-gro      coalesced datagrams received (UDP_GRO)
  With all four tun-* off the TUN has no virtio header (as Debian's wireguard-go opens it).
  PYWG_CRYPTO_THREADS=<n> (1-64): threads that seal (and as many that open) a large batch;
  default: one per core this process may use.

  Prometheus metrics (off by default): --metrics [ADDR:]PORT or PYWG_METRICS=[ADDR:]PORT
  serves http://ADDR:PORT/metrics (ADDR 127.0.0.1 unless given); --no-peer-metrics or
  PYWG_METRICS_PEERS=off leaves out the per-peer series. Friendly names (`# Name = ...` in
  a [Peer] section) come from PYWG_CONFIG_FILE (set by `pywg up`) or
  /etc/wireguard/IFNAME.conf. Under systemd (pywg install-units) the daemon reports
  readiness and pings the watchdog; its log lines carry journald priorities.

Watch it:
  pywg status [IFACE...] [--watch | --json | --serve [ADDR:]PORT] [--interval SECONDS]

  Tunnels and peers: names, handshakes (online within 3 minutes, stale until the keys are
  wiped, offline), endpoints, allowed IPs, transfer and current rates, pywg's drop counters;
  --serve shows the same as a read-only web page that updates live (127.0.0.1:9587).
"""


def build_parser() -> argparse.ArgumentParser:
    import argparse

    parser = argparse.ArgumentParser(
        prog=PROG, description="pywg: a userspace WireGuard implementation.",
        epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="<command>", required=True,
                                title="commands")
    for name, command in COMMANDS.items():
        sub_parser = sub.add_parser(name, help=command.help, description=command.help)
        command.configure(sub_parser)
        sub_parser.set_defaults(run=command.run)
    return parser


_DAEMON_OPTIONS = ("-f", "--foreground", "--metrics", "--no-peer-metrics")


def _is_interface_mode(argv: Sequence[str]) -> bool:
    """`pywg IFNAME`, `pywg -f IFNAME`, `pywg --metrics PORT IFNAME`: anything that is not
    a subcommand or another option."""
    first = argv[0] if argv else ""
    if first in _DAEMON_OPTIONS or first.startswith("--metrics="):
        return True
    return bool(first) and not first.startswith("-") and first not in COMMANDS


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if _is_interface_mode(argv):
        from pywg._driver import eventloop

        eventloop.load()  # first: it decides how asyncio, hashlib and hmac load
        from pywg._driver import daemon  # the daemon's imports are heavier than the key commands'

        return daemon.main(argv)
    args = build_parser().parse_args(argv)
    try:
        status: int = args.run(args)
    except BrokenPipeError:
        # The reader went away (`pywg genkey | head -c1`): nothing left to say.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return status


if __name__ == "__main__":
    sys.exit(main())
