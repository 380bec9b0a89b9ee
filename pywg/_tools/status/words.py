"""Numbers and times in words, as `wg show` writes them: `1.52 MiB`, `2 minutes, 3 seconds
ago`; rates as `12.4 KiB/s`."""

from __future__ import annotations

__all__ = ["ago", "size", "speed"]

_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")
_SPANS = (("year", 365 * 24 * 3600), ("day", 24 * 3600), ("hour", 3600), ("minute", 60),
          ("second", 1))


def size(count: int) -> str:
    if count < 1024:
        return f"{count} B"
    value, unit = float(count), 0
    while value >= 1024 and unit < len(_UNITS) - 1:
        value /= 1024
        unit += 1
    return f"{value:.2f} {_UNITS[unit]}"


def speed(rate: float | None) -> str:
    """A rate in bytes per second; "-" when it is not known yet."""
    if rate is None:
        return "-"
    return f"{size(round(rate))}/s"


def ago(timestamp: int, now: float) -> str:
    """How long ago a Unix time was, in `wg show`'s words; "never" for 0."""
    if not timestamp:
        return "never"
    seconds = max(0, int(now) - timestamp)
    if seconds == 0:
        return "now"
    parts = []
    for name, length in _SPANS:
        count, seconds = divmod(seconds, length)
        if count:
            parts.append(f"{count} {name}{'' if count == 1 else 's'}")
    return ", ".join(parts) + " ago"
