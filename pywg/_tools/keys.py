"""WireGuard keys: generation and the two text encodings.

Base64 is what people and config files use (`wg genkey`); lowercase hex is what the UAPI
uses. Decoding is as strict as wg(8)'s: exactly 44 characters, the one '=' of padding, and the
canonical encoding (the unused low bits of the last character must be zero), so that every
key has exactly one spelling and `wg` and pywg accept the same inputs.
"""

from __future__ import annotations

import base64
import binascii
import os

from pywg._constants import NOISE_PUBLIC_KEY_LEN, WG_KEY_LEN_BASE64

# pywg._protocol.crypto is imported by the two functions that need it, not here: `import
# pywg` (and the daemon's command line, through it) must not load hashlib and hmac before
# the daemon has chosen how they load (pywg._driver.eventloop).

__all__ = [
    "KeyFormatError",
    "from_base64",
    "from_hex",
    "generate_preshared_key",
    "generate_private_key",
    "public_key",
    "to_base64",
    "to_hex",
]

_HEX_LEN = 2 * NOISE_PUBLIC_KEY_LEN


class KeyFormatError(ValueError):
    """Text that is not a key in the expected encoding."""


def generate_private_key() -> bytes:
    """A random, clamped Curve25519 private key (as `wg genkey`)."""
    from pywg._protocol import crypto

    return bytes(crypto.generate_private_key(os.urandom))


def generate_preshared_key() -> bytes:
    """32 random bytes (as `wg genpsk`)."""
    return os.urandom(NOISE_PUBLIC_KEY_LEN)


def public_key(private_key: bytes) -> bytes:
    """The public key of a private key; the private key is clamped first, as wg does."""
    _check_len(private_key)
    from pywg._protocol import crypto

    return crypto.public_key(private_key)


def to_base64(key: bytes) -> str:
    _check_len(key)
    return base64.b64encode(key).decode("ascii")


def from_base64(text: str) -> bytes:
    """Decode a base64 key exactly as wg(8) does, or raise KeyFormatError."""
    if len(text) != WG_KEY_LEN_BASE64 or not text.isascii() or text[-1] != "=":
        raise KeyFormatError("Key is not the correct length or format")
    try:
        key = base64.b64decode(text, validate=True)
    except binascii.Error as e:
        raise KeyFormatError("Key is not the correct length or format") from e
    if len(key) != NOISE_PUBLIC_KEY_LEN or base64.b64encode(key).decode("ascii") != text:
        raise KeyFormatError("Key is not the correct length or format")
    return key


def to_hex(key: bytes) -> str:
    _check_len(key)
    return key.hex()


def from_hex(text: str) -> bytes:
    """Decode a 64-digit hex key (either case, as wireguard-go accepts), or raise."""
    if len(text) != _HEX_LEN or not text.isascii():
        raise KeyFormatError("a hex key is 64 hexadecimal digits")
    try:
        return bytes.fromhex(text)
    except ValueError as e:
        raise KeyFormatError("a hex key is 64 hexadecimal digits") from e


def _check_len(key: bytes) -> None:
    if len(key) != NOISE_PUBLIC_KEY_LEN:
        raise KeyFormatError(f"a key is {NOISE_PUBLIC_KEY_LEN} bytes, not {len(key)}")
