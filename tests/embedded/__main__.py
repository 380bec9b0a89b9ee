"""python -m tests.embedded wheels|test [--targets aarch64,armv7l]: see the Makefile."""

from __future__ import annotations

import argparse

from tests.embedded import targets


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.embedded")
    parser.add_argument("command", choices=["wheels", "test"])
    parser.add_argument("--targets", default=None,
                        help="comma-separated (default: PYWG_TARGETS, else all)")
    args = parser.parse_args()
    chosen = targets.selected(args.targets)
    if args.command == "wheels":
        from tests.embedded import wheels

        wheels.main(chosen)
    else:
        from tests.embedded import run

        run.main([t for t in chosen if not t.native])


if __name__ == "__main__":
    main()
