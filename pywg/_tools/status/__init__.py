"""`pywg status [IFACE...]`: the state of the tunnels, as a gateway's status page shows it.

- model.py: the reading (UAPI, link, config-file names) and the rates between readings;
- words.py: sizes and ages in `wg show`'s words;
- terminal.py: the view drawn by rich (once, or in place with --watch);
- web.py and page/: the same view as a read-only web page (--serve), updating live.

`--json` prints the model for scripts. Without --interval 0 a one-off view reads twice, an
interval apart, so that it can show current rates.
"""

from __future__ import annotations

import argparse
import json
import signal
import socket
import sys
import time
from types import FrameType

from pywg._constants import QUICK_CONFIG_DIR, STATUS_DEFAULT_INTERVAL_S, STATUS_SERVE_PORT
from pywg._tools.status.model import Sampler, Status

__all__ = ["configure", "run"]


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("interfaces", nargs="*", metavar="IFACE",
                        help="interfaces to show (default: every one whose UAPI socket "
                             "answers, as `wg show` finds them)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--json", action="store_true", help="print the reading as JSON")
    mode.add_argument("--watch", action="store_true",
                      help="redraw in place every interval until interrupted")
    mode.add_argument("--serve", nargs="?", const=str(STATUS_SERVE_PORT), metavar="ADDR:PORT",
                      help="serve the view as a read-only web page (default "
                           f"127.0.0.1:{STATUS_SERVE_PORT}; an address alone keeps the port)")
    parser.add_argument("--interval", type=float, default=STATUS_DEFAULT_INTERVAL_S,
                        metavar="SECONDS",
                        help="between readings (rates; --watch; --serve); 0: one reading, "
                             f"no rates (default {STATUS_DEFAULT_INTERVAL_S:g})")
    parser.add_argument("--config-dir", default=QUICK_CONFIG_DIR, metavar="DIR",
                        help="where IFACE.conf gives friendly names in `# Name = ...` "
                             f"comments (default {QUICK_CONFIG_DIR})")


def _read(sampler: Sampler, interval: float) -> Status:
    status = sampler.sample()
    if interval > 0:
        time.sleep(interval)
        status = sampler.sample()
    return status


def _failed(status: Status) -> int:
    return 1 if any(t.error for t in status.tunnels) else 0


def _once(sampler: Sampler, args: argparse.Namespace) -> int:
    status = _read(sampler, args.interval)
    if args.json:
        json.dump(status.as_dict(), sys.stdout, indent=2)
        sys.stdout.write("\n")
        return _failed(status)
    from rich.console import Console

    from pywg._tools.status.terminal import render

    Console().print(render(status))
    return _failed(status)


def _watch(sampler: Sampler, interval: float) -> int:
    from rich.live import Live

    from pywg._tools.status.terminal import render

    interval = interval if interval > 0 else STATUS_DEFAULT_INTERVAL_S
    try:
        with Live(render(sampler.sample()), auto_refresh=False) as live:
            while True:
                time.sleep(interval)
                live.update(render(sampler.sample()), refresh=True)
    except KeyboardInterrupt:
        return 0


def _serve(sampler: Sampler, where: str, interval: float) -> int:
    from pywg._tools.status.web import StatusServer, parse_serve_address

    try:
        host, port = parse_serve_address(where)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.create_server((host, port), family=family)
    except (ValueError, OSError) as e:
        print(f"pywg status: cannot serve on {where}: {e}", file=sys.stderr)
        return 1
    server = StatusServer(sampler, sock, interval if interval > 0 else
                          STATUS_DEFAULT_INTERVAL_S)

    def stop(signum: int, frame: FrameType | None) -> None:
        server.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    shown = f"[{host}]" if ":" in host else host
    print(f"pywg status: serving http://{shown}:{server.address[1]}/ (read-only); "
          f"Ctrl-C stops", file=sys.stderr, flush=True)
    server.run()
    return 0


def run(args: argparse.Namespace) -> int:
    if args.interval < 0:
        print("pywg status: --interval cannot be negative", file=sys.stderr)
        return 1
    sampler = Sampler(args.interfaces, config_dir=args.config_dir)
    if args.serve is not None:
        return _serve(sampler, args.serve, args.interval)
    if args.watch:
        return _watch(sampler, args.interval)
    return _once(sampler, args)
