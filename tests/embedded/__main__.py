"""python -m tests.embedded wheels|test|all [--targets x86_64,aarch64,armv7l]: see the Makefile.

all: the wheels (with the root file systems debootstrapped meanwhile), then the tests."""

from __future__ import annotations

import argparse

from tests.embedded import targets
from tests.embedded.host import need_root


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
        if args.command == "all":
            need_root("make test-embedded")
            run.build(emulated, chosen)
        run.main(emulated)


if __name__ == "__main__":
    main()
