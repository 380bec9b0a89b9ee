"""pywg._driver.eventloop: the daemon's imports leave OpenSSL out, and what the daemon does
with its loop still works. Each case runs in a fresh interpreter (the point is what a new
process loads)."""

import subprocess
import sys
import textwrap

import pytest


def _python(code: str) -> list[str]:
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split()


def _mapped_openssl() -> str:
    # What the process has mapped from libssl and libcrypto (any version), by file name.
    return """
        def mapped_openssl():
            with open("/proc/self/maps") as f:
                names = {line.split()[-1].rsplit("/", 1)[-1] for line in f if "/" in line}
            return sorted(n for n in names if n.startswith(("libssl", "libcrypto")))
    """


def test_the_daemons_imports_map_no_openssl() -> None:
    out = _python(_mapped_openssl() + """
        import sys
        import pywg._tools.cli
        from pywg._driver import eventloop
        eventloop.load()
        from pywg._driver import daemon
        print(",".join(mapped_openssl()) or "-",
              *[name in sys.modules for name in ("ssl", "_ssl", "_hashlib")])
    """)
    assert out == ["-", "False", "False", "False"]


def test_a_tls_free_loop_still_serves_and_hashes_still_match() -> None:
    """A unix stream echo on uvloop's loop (the UAPI server's kind of transport), and the
    hashes the daemon uses, computed without OpenSSL, equal to a known answer."""
    out = _python("""
        import asyncio, hashlib, hmac, os, tempfile
        from pywg._driver import eventloop
        uvloop = eventloop.load()

        async def main():
            path = os.path.join(tempfile.mkdtemp(), "s")
            async def echo(r, w):
                w.write(await r.readline()); await w.drain(); w.close()
            server = await asyncio.start_unix_server(echo, path)
            r, w = await asyncio.open_unix_connection(path)
            w.write(b"ping\\n"); await w.drain()
            line = await r.readline()
            server.close()
            return line.decode().strip(), type(asyncio.get_running_loop()).__module__

        print(*uvloop.run(main()))
        print(hashlib.blake2s(b"abc").hexdigest())
        print(hmac.compare_digest(b"a", b"a"),
              hmac.new(b"Jefe", b"what do ya want for nothing?", "sha256").hexdigest())
    """)
    assert out[:2] == ["ping", "uvloop"]
    # RFC 7693 Appendix B: BLAKE2s-256("abc").
    assert out[2] == "508c5e8c327c14e2e1a72ba34eeb452f37458b209ed63a294d999b4c86675982"
    # RFC 4231, test case 2.
    assert out[3:] == ["True",
                       "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"]


def test_ssl_is_importable_afterwards() -> None:
    """Metrics load prometheus_client, which imports ssl: the real module, once asked for."""
    out = _python("""
        from pywg._driver import eventloop
        eventloop.load()
        import ssl
        print(hasattr(ssl, "create_default_context"), ssl.OPENSSL_VERSION.split()[0])
    """)
    assert out == ["True", "OpenSSL"]


@pytest.mark.parametrize("first", ["asyncio", "ssl", "hashlib"])
def test_too_late_is_harmless(first: str) -> None:
    """Something loaded OpenSSL (or asyncio took ssl) already: load() is a plain import."""
    out = _python(f"""
        import {first}
        from pywg._driver import eventloop
        uvloop = eventloop.load()
        import asyncio, ssl
        async def main():
            return 1
        print(uvloop.run(main()), isinstance(ssl.SSLContext, type))
    """)
    assert out == ["1", "True"]
