"""The configuration layer's errors: one root, ConfigError, carrying an errno.

The errno is what the UAPI replies with (negated, as wireguard-go does): EINVAL for a bad
value or a limit, EPROTO for a line that is not `key=value`. Messages never contain key
material: callers describe a bad key without quoting it.
"""

from __future__ import annotations

import errno as _errno

__all__ = ["ConfigError", "ConfigFileError"]


class ConfigError(Exception):
    """A configuration that cannot be applied; nothing was changed."""

    def __init__(self, message: str, errno: int = _errno.EINVAL) -> None:
        super().__init__(message)
        self.message = message
        self.errno = errno


class ConfigFileError(ConfigError):
    """A wg(8) / wg-quick(8) configuration file that does not parse: names the line."""

    def __init__(self, message: str, lineno: int, line: str) -> None:
        super().__init__(f"line {lineno}: {message}: `{line}'")
        self.lineno = lineno
        self.line = line
