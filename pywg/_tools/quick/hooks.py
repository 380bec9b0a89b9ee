"""PreUp, PostUp, PreDown and PostDown: shell snippets with `%i` for the interface.

wg-quick evaluates each one in a subshell of its own bash, which runs with `set -e -o
pipefail`: a snippet stops at its first failing command, and a failing snippet fails the
whole `up` (which is then undone) or `down`. Running `bash -e -o pipefail -c SNIPPET` keeps
exactly that; without bash, `sh -e -c` comes closest.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterable

from pywg._tools.quick.report import QuickError, step

__all__ = ["execute_hooks", "hook_argv", "substitute"]


def substitute(hook: str, ifname: str) -> str:
    """Every `%i` becomes the interface name (nothing else is expanded)."""
    return hook.replace("%i", ifname)


def hook_argv(command: str) -> list[str]:
    bash = shutil.which("bash")
    if bash is not None:
        return [bash, "-e", "-o", "pipefail", "-c", command]
    return ["sh", "-e", "-c", command]


def execute_hooks(hooks: Iterable[str], ifname: str) -> None:
    for hook in hooks:
        command = substitute(hook, ifname)
        step(command)
        try:
            status = subprocess.run(hook_argv(command), check=False).returncode
        except OSError as e:
            raise QuickError(f"cannot run a hook: {e.strerror}") from e
        if status != 0:
            raise QuickError(f"hook exited with status {status}: {command}")
