"""The daemon's event loop (uvloop), loaded without OpenSSL.

An idle daemon is mostly the interpreter and what it imported (bench/RESULTS.md, issue 13).
OpenSSL is the largest piece the daemon never uses: about 4.5 MiB resident of libssl and
libcrypto, mapped and initialised by the `ssl` module (asyncio and uvloop import it for
TLS transports) and by `_hashlib` (hashlib and hmac import it for OpenSSL's hashes). The
daemon speaks no TLS, and every hash it uses has a CPython implementation of its own:
BLAKE2s is always CPython's `_blake2`, SHA-2 falls back to `_sha256`/`_sha512`, and
`hmac.compare_digest` is `_operator`'s either way.

So `load()`, called before anything else imports asyncio, imports hashlib, hmac and asyncio
with OpenSSL unavailable, which they are written to tolerate (CPython built without it
takes the same paths), and then uvloop, which reads a few names from `ssl` when it is
imported, against a stand-in that has those names. Afterwards `ssl` and `_hashlib` are
importable again for whatever needs them later (prometheus_client's exporter, when
metrics are asked for); only TLS through this process's event loop is left unusable,
and nothing in the daemon asks for it. If uvloop asks the stand-in for something it
cannot give, uvloop is imported again the ordinary way: the memory is lost, nothing else.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

__all__ = ["load"]

_OPENSSL_MODULES = ("ssl", "_ssl", "_hashlib")
# Imported while OpenSSL is unavailable: each binds to its no-OpenSSL path for good.
_TOLERANT = ("hashlib", "hmac", "asyncio")


class _Unavailable(OSError):
    """What every class of the stand-in `ssl` is: never instantiated by a TLS-free loop."""


def _no_tls(*args: object, **kwargs: object) -> Any:
    raise OSError("TLS is not available in the pywg daemon's event loop")


def _stand_in_attribute(name: str) -> Any:
    if name.startswith("__"):
        raise AttributeError(name)
    if name.isupper():  # constants (SSL_ERROR_*, CERT_*): stored, compared only under TLS
        return 0
    if name[:1].isupper():  # classes (SSLContext, SSLError, MemoryBIO)
        return type(name, (_Unavailable,), {"__module__": "ssl"})
    return _no_tls  # functions (create_default_context)


def _stand_in_ssl() -> types.ModuleType:
    module = types.ModuleType("ssl", "A stand-in while uvloop is imported (pywg eventloop).")
    module.__getattr__ = _stand_in_attribute  # type: ignore[method-assign]
    return module


def _uvloop_with_stand_in() -> types.ModuleType:
    sys.modules["ssl"] = _stand_in_ssl()
    try:
        return importlib.import_module("uvloop")
    except Exception:
        for name in [m for m in sys.modules if m == "uvloop" or m.startswith("uvloop.")]:
            del sys.modules[name]
        raise
    finally:
        del sys.modules["ssl"]


def load() -> types.ModuleType:
    """uvloop, with OpenSSL left out of the process when nothing has loaded it yet."""
    if any(name in sys.modules for name in (*_OPENSSL_MODULES, "asyncio", "uvloop")):
        return importlib.import_module("uvloop")  # too late to save anything
    for name in _OPENSSL_MODULES:
        sys.modules[name] = None  # type: ignore[assignment]  # `import` raises ImportError
    try:
        for name in _TOLERANT:
            importlib.import_module(name)
        try:
            return _uvloop_with_stand_in()
        except Exception:
            pass
    finally:
        for name in _OPENSSL_MODULES:
            if sys.modules.get(name, ...) is None:
                del sys.modules[name]
    return importlib.import_module("uvloop")
