"""`pywg install-units`: systemd units for pywg, written for this installation.

Two templates (pywg/_tools/systemd/), one instance per interface:

  pywg@.service        the daemon alone (`pywg --foreground IFNAME`), Type=notify with a
                       watchdog: systemd knows when the interface is ready and restarts a
                       daemon that hangs or dies;
  pywg-quick@.service  `pywg up IFNAME` / `pywg down IFNAME` as a oneshot that remains
                       active, as wg-quick@.service runs wg-quick; reload applies the file's
                       wg(8) part with `wg syncconf`.

Their commands are filled in with absolute paths: this pywg (the console script beside the
running Python, or `PYTHON -m pywg`) unless --pywg names another, and wg(8) as found on
PATH unless --wg does. Packagers: `pywg install-units --dir DEST/lib/systemd/system
--pywg /usr/bin/pywg --wg /usr/bin/wg`, or --print to see them.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import sys
from importlib import resources
from pathlib import Path

__all__ = ["UNITS", "configure", "render", "run"]

UNITS = ("pywg@.service", "pywg-quick@.service")
DEFAULT_DIR = "/etc/systemd/system"
_FALLBACK_WG = "/usr/bin/wg"


def default_pywg() -> str:
    script = Path(sys.executable).with_name("pywg")
    if script.is_file() and os.access(script, os.X_OK):
        return str(script)
    return f"{shlex.quote(sys.executable)} -m pywg"


def render(unit: str, pywg: str, wg: str) -> str:
    text = (resources.files("pywg._tools") / "systemd" / unit).read_text()
    return text.replace("@PYWG@", pywg).replace("@WG@", wg)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dir", default=DEFAULT_DIR,
                        help=f"where to write them (default {DEFAULT_DIR})")
    parser.add_argument("--pywg", default=None, metavar="COMMAND",
                        help="the pywg command the units run (default: this one, "
                             "by absolute path)")
    parser.add_argument("--wg", default=None, metavar="PATH",
                        help="wg(8), for reloads (default: the one on PATH)")
    parser.add_argument("--print", action="store_true", dest="print_only",
                        help="print the units instead of writing them")


def run(args: argparse.Namespace) -> int:
    pywg = args.pywg or default_pywg()
    wg = args.wg or shutil.which("wg") or _FALLBACK_WG
    texts = {unit: render(unit, pywg, wg) for unit in UNITS}
    if args.print_only:
        for unit, text in texts.items():
            sys.stdout.write(f"# ---- {unit}\n{text}")
        return 0
    directory = Path(args.dir)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for unit, text in texts.items():
            path = directory / unit
            path.write_text(text)
            path.chmod(0o644)
            print(f"wrote {path}")
    except OSError as e:
        print(f"pywg: cannot write units to {directory}: {e.strerror or e}", file=sys.stderr)
        return 1
    print("Next: systemctl daemon-reload, then for example\n"
          "  systemctl enable --now pywg-quick@wg0   (pywg up wg0 at boot)\n"
          "  systemctl enable --now pywg@wg0         (the daemon alone, configured by wg)")
    return 0
