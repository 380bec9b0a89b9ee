"""cffi build script: compiles the handshake's cryptography (csrc/crypto/) into the extension
module pywg._crypto, whose boundary and cdef is csrc/crypto/wg_crypto.h. Only
pywg/_protocol/crypto.py imports it, as the data plane's pywg._wgdp is imported only by
pywg/_driver/datapath.py: the protocol core does not reach into the driver.

The same flags as the data plane (csrc/build_ffi.py: PYWG_SANITIZE, PYWG_CFLAGS).
Build-only: not shipped.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from build_ffi import builder, crypto_sources

ffibuilder = builder("pywg._crypto", ["crypto/wg_crypto.h"], crypto_sources())

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
