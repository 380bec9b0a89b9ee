"""Files the harness writes: a private work directory, and files only their owner reads."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


@contextlib.contextmanager
def workdir(name: str) -> Iterator[Path]:
    """A directory for logs and configuration files (keys: owner only), removed afterwards."""
    with tempfile.TemporaryDirectory(prefix=f"pywg-{name}-") as d:
        path = Path(d)
        path.chmod(PRIVATE_DIR_MODE)
        yield path


def write_private(path: Path, text: str) -> Path:
    """Creates path readable by its owner only, from the first byte (it may hold a key)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return path
