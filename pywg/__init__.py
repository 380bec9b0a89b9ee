"""pywg: a userspace WireGuard with a Python control plane and a C data plane.

`import pywg` is the public API; everything it does not export is internal and may change
without notice. The layout under it follows the architecture (docs/HACKING.md):

    pywg/_protocol/   the sans-I/O protocol core: messages, Noise, cookies, timer rules
    pywg/_driver/     the I/O around it: the device, the C data plane (pywg._wgdp), TUN,
                      UDP sockets, the UAPI server and the daemon process
    pywg/_config/     the configuration model: what `wg` can set, and `set` applied whole
    pywg/_tools/      the command line, `pywg up/down` (wg-quick), the UAPI client,
                      configuration files
"""

from pywg._tools.keys import (
    KeyFormatError,
    from_base64,
    generate_preshared_key,
    generate_private_key,
    public_key,
    to_base64,
)

__version__ = "0.1.0"
__all__ = [
    "KeyFormatError",
    "__version__",
    "from_base64",
    "generate_preshared_key",
    "generate_private_key",
    "public_key",
    "to_base64",
]
