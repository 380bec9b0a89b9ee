"""wg-quick(8) in Python: `pywg up|down|save|strip CONFIG_FILE|INTERFACE`.

- conf.py: finding the file, reading it (pywg._tools.conffile), `strip`.
- plan.py: wg-quick's decisions as pure functions: auto MTU, routes, full-tunnel rules,
  the nftables script, routing-table names.
- netlink.py: links, addresses, routes and rules through pyroute2, as `ip` sends them.
- firewall.py (nft, the src_valid_mark sysctl), dns.py (resolvconf), hooks.py (bash).
- saveconfig.py: SaveConfig, and `wg showconf` formatting.
- commands.py: the commands, step by step, with undo on failure.
main() runs one command and turns its failure into a message and exit status 1.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable
from types import FrameType

from pywg._config.errors import ConfigError
from pywg._tools.quick.commands import cmd_down, cmd_save, cmd_strip, cmd_up
from pywg._tools.quick.report import QuickError

__all__ = ["COMMANDS", "QuickError", "main"]

COMMANDS: dict[str, Callable[[str], None]] = {
    "up": cmd_up,
    "down": cmd_down,
    "save": cmd_save,
    "strip": cmd_strip,
}
_EXIT_FAILURE = 1
_EXIT_SIGINT = 128 + signal.SIGINT
_EXIT_SIGTERM = 128 + signal.SIGTERM


class _Terminated(BaseException):
    """SIGTERM, raised where the command is: it unwinds like any failure, so a half-done
    `up` is undone on the way out (as wg-quick's trap on TERM does)."""


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise _Terminated


def main(verb: str, arg: str) -> int:
    """Run `pywg VERB ARG`; 0 on success, 1 (with a message on stderr) on failure."""
    signal.signal(signal.SIGTERM, _terminate)
    try:
        COMMANDS[verb](arg)
    except (QuickError, ConfigError) as e:
        print(f"pywg: {e}", file=sys.stderr)
        return _EXIT_FAILURE
    except KeyboardInterrupt:
        print("pywg: interrupted", file=sys.stderr)
        return _EXIT_SIGINT
    except _Terminated:
        print("pywg: terminated", file=sys.stderr)
        return _EXIT_SIGTERM
    return 0
