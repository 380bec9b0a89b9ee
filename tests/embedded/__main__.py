"""python -m tests.embedded wheels|test|all [--targets x86_64,aarch64,armv7l]: see the Makefile.

all: each emulated target's wheels (its root file system debootstrapped meanwhile), then its
tests, the targets at once; the build machine's own wheel meanwhile."""

from __future__ import annotations

import argparse

from tests.embedded import targets


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.embedded")
    parser.add_argument("command", choices=["wheels", "test", "all"])
    parser.add_argument("--targets", default=None,
                        help="comma-separated (default: PYWG_TARGETS, else all)")
    args = parser.parse_args()
    chosen = targets.selected(args.targets)
    if args.command == "wheels":
        from tests.embedded import wheels

        wheels.main(chosen)
    else:
        from tests.embedded import run

        emulated = [t for t in chosen if not t.native]
        native = [t for t in chosen if t.native]
        run.main(emulated, native if args.command == "all" else None)


if __name__ == "__main__":
    main()
