"""pywg._tools.quick's two text formats, judged by the real tools on generated inputs (root):

- `pywg strip` against `wg-quick strip`, for files with every oddity wg-quick's reading
  has to get right (case, spacing, comments, stray sections, CR, no final newline);
- SaveConfig's `wg showconf` part against `wg showconf` itself, for devices served on a
  real UAPI socket (keys, ports, fwmarks, endpoints of both families, preshared keys,
  keepalives, allowed IPs of every length).
No namespace and no network: only files and one UAPI socket with a unique name.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pywg._config.model import (
    DeviceConfig,
    Endpoint,
    PeerConfig,
    PresharedKey,
    PrivateKey,
    PublicKey,
)
from pywg._config.uapi import MemoryDevice
from pywg._tools.quick.conf import strip
from pywg._tools.quick.report import QuickError
from pywg._tools.quick.saveconfig import format_showconf
from pywg._tools.uapi_client import get
from tests.harness.skips import require_root, require_tools
from tests.support.uapi import serving

TOOL_TIMEOUT_S = 10.0


@pytest.fixture(scope="module")
def conf_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_root()
    require_tools("wg", "wg-quick", "bash")
    path = tmp_path_factory.mktemp("quick-strip")
    path.chmod(0o700)
    return path


def _wg_quick_strip(path: Path) -> bytes | None:
    """Its output, or None if it refused the file."""
    done = subprocess.run(["wg-quick", "strip", str(path)], capture_output=True,
                          timeout=TOOL_TIMEOUT_S, check=False)
    return done.stdout if done.returncode == 0 else None


def _pywg_strip(text: str) -> bytes | None:
    try:
        return strip(text).encode()
    except QuickError:
        return None


_SECTION = st.sampled_from(["[Interface]", "[interface]", "[INTERFACE]", "[Peer]", "[peer]",
                            "[ Interface ]", "[Interface] # here", "[Interface]=x", "[Other]"])
_KEY = st.sampled_from(["Address", "address", "ADDRESS", "DNS", "MTU", "Table", "PreUp",
                        "postup", "PreDown", "PostDown", "SaveConfig", "PrivateKey",
                        "ListenPort", "PublicKey", "AllowedIPs", "Endpoint", "Addr",
                        "Address2", "#Address", "Pre Up"])
_SPACE = st.sampled_from(["", " ", "\t", "  ", " \t"])
_VALUE = st.sampled_from(["10.0.0.1/24", "a, b", "x # y", "", "echo %i > /dev/null",
                          "1420", "true", "=", "#"])
_LINE = st.one_of(
    _SECTION,
    st.builds(lambda a, k, b, eq, c, v, d: f"{a}{k}{b}{eq}{c}{v}{d}",
              _SPACE, _KEY, _SPACE, st.sampled_from(["=", "", "=="]), _SPACE, _VALUE,
              st.sampled_from(["", " ", "\t", "\r", " # comment"])),
    st.sampled_from(["", "# Address = 1.2.3.4", "   ", "\t# x"]),
    st.text(alphabet="aA[]=# \t\r.x", max_size=12),
)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(_LINE, max_size=12), st.booleans())
def test_strip_is_wg_quick_strip(conf_dir: Path, lines: list[str], final_newline: bool,
                                 ) -> None:
    text = "\n".join(lines) + ("\n" if final_newline and lines else "")
    path = conf_dir / "wgstrip.conf"
    path.write_text(text)
    path.chmod(0o600)
    assert _pywg_strip(text) == _wg_quick_strip(path)


# ---- showconf --------------------------------------------------------------------------

_keys = st.binary(min_size=32, max_size=32)
# Where the C library's spelling and Python's part: IPv4-compatible and IPv4-mapped IPv6.
_ODD_IPV6 = st.sampled_from(["::1.2.3.4", "::ffff:1.2.3.4", "::ffff:0:0", "::", "::1",
                             "1:0:0:1::", "0:0:1::1"]).map(ipaddress.IPv6Address)
_ipv6 = st.one_of(st.ip_addresses(v=6), _ODD_IPV6)
_networks = st.one_of(
    st.tuples(st.ip_addresses(v=4), st.integers(0, 32)),
    st.tuples(_ipv6, st.integers(0, 128)),
    st.tuples(_ODD_IPV6, st.just(128)),
).map(lambda t: ipaddress.ip_network(t, strict=False))
_peers = st.builds(
    PeerConfig,
    _keys.map(PublicKey),
    st.one_of(st.none(), _keys.filter(any).map(PresharedKey)),
    st.one_of(st.none(), st.builds(Endpoint, st.one_of(st.ip_addresses(v=4), _ipv6),
                                   st.integers(0, 65535))),
    st.integers(0, 65535),
    st.lists(_networks, max_size=4, unique=True).map(tuple),
)
_devices = st.builds(
    DeviceConfig,
    st.one_of(st.none(), _keys.filter(any).map(PrivateKey)),
    st.integers(0, 65535),
    st.integers(0, 2**32 - 1),
    st.lists(_peers, max_size=3, unique_by=lambda p: p.public_key).map(tuple),
)


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[str, MemoryDevice]]:
    require_root()
    require_tools("wg")
    name = f"wgsc{secrets.token_hex(4)}"
    device = MemoryDevice()
    with serving(device, name):
        yield name, device
    socket_file = Path(f"/var/run/wireguard/{name}.sock")
    if socket_file.exists():
        os.unlink(socket_file)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(_devices)
def test_showconf_is_wg_showconf(served: tuple[str, MemoryDevice], config: DeviceConfig,
                                 ) -> None:
    name, device = served
    device.config = config
    done = subprocess.run(["wg", "showconf", name], capture_output=True, text=True,
                          timeout=TOOL_TIMEOUT_S, check=True)
    assert format_showconf(get(name)) == done.stdout
