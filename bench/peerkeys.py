"""Public keys by the hundred thousand for the scale figures, cached between runs.

Each is a real X25519 public key: libsodium's scalar multiplication of the base point by a
random private key (through pynacl), about 25 µs each on our machine, so a million take
half a minute. The peers of a scale configuration never handshake, so only the public keys
are kept, in one file outside the work tree ($XDG_CACHE_HOME or ~/.cache, pywg-bench/):
a header line, then 32 bytes per key. A run that needs more keys than the file holds makes
the rest and writes the file again; one that finds the file unreadable or foreign makes
all it needs afresh. Bench keys are throwaway, never printed.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import nacl.bindings

KEY_LEN = 32
HEADER = b"pywg-bench x25519 public keys v1\n"
CACHE_NAME = "x25519-public-keys.bin"
PROGRESS_EVERY = 50_000


def cache_path() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "pywg-bench" / CACHE_NAME


def parse_cache(blob: bytes) -> list[bytes]:
    """The whole keys a cache file holds; none if it is not one of ours."""
    if not blob.startswith(HEADER):
        return []
    body = blob[len(HEADER):]
    whole = len(body) - len(body) % KEY_LEN
    return [body[i:i + KEY_LEN] for i in range(0, whole, KEY_LEN)]


def generate(count: int, note: Callable[[str], None] | None = None) -> list[bytes]:
    """count fresh public keys, telling `note` how far it has come now and then."""
    keys = []
    for i in range(count):
        keys.append(nacl.bindings.crypto_scalarmult_base(os.urandom(KEY_LEN)))
        if note is not None and (i + 1) % PROGRESS_EVERY == 0 and i + 1 < count:
            note(f"    keys: {i + 1:,} of {count:,}")
    return keys


def _write(path: Path, keys: list[bytes]) -> None:
    # Written whole and renamed into place: a run killed half-way leaves the old file.
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(HEADER + b"".join(keys))
    tmp.replace(path)


def public_keys(count: int, note: Callable[[str], None] | None = None,
                path: Path | None = None) -> list[bytes]:
    """The first `count` keys of the cache, made (and cached) as needed."""
    path = path or cache_path()
    try:
        keys = parse_cache(path.read_bytes())
    except OSError:
        keys = []
    if len(keys) >= count:
        return keys[:count]
    if note is not None:
        note(f"    making {count - len(keys):,} X25519 public keys ({len(keys):,} cached in "
             f"{path})")
    keys += generate(count - len(keys), note)
    try:
        _write(path, keys)
    except OSError as exc:  # a read-only home: the run goes on, the next one makes them again
        if note is not None:
            note(f"    keys not cached: {exc}")
    return keys
