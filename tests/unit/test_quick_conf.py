"""Finding and reading wg-quick files, hooks, DNS input and SaveConfig text (pywg._tools.quick),
without root. `strip` and `wg showconf` are judged by the real tools in
tests/integration/test_quick_tools.py; these pin down the rules themselves."""

from __future__ import annotations

import ipaddress
import os
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pywg._config.errors import ConfigError
from pywg._config.model import (
    DeviceConfig,
    Endpoint,
    PeerConfig,
    PresharedKey,
    PrivateKey,
    PublicKey,
)
from pywg._config.uapi import DeviceSnapshot
from pywg._tools.conffile import QuickConfig, parse_conf
from pywg._tools.quick.conf import QUICK_KEYS, load, locate, strip
from pywg._tools.quick.dns import resolvconf_input, resolvconf_prefix, resolvconf_record
from pywg._tools.quick.hooks import execute_hooks, substitute
from pywg._tools.quick.report import QuickError
from pywg._tools.quick.saveconfig import format_showconf, saved_config, write_config
from tests.support.nets import net

KEY = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk="
PEER = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg="


def _file(directory: Path, name: str, text: str = "[Interface]\n", mode: int = 0o600,
          ) -> Path:
    path = directory / name
    path.write_text(text)
    path.chmod(mode)
    return path


# ---- locating the file -----------------------------------------------------------------------

def test_bare_name_means_config_dir(tmp_path: Path) -> None:
    conf = _file(tmp_path, "wg7.conf")
    assert locate("wg7", str(tmp_path)) == (str(conf.resolve()), "wg7")


def test_path_names_the_interface(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    conf = _file(tmp_path / "sub", "a.b_c=+-9.conf")
    assert locate(str(conf)) == (str(conf.resolve()), "a.b_c=+-9")


def test_symlink_resolved_but_named_by_the_link(tmp_path: Path) -> None:
    target = _file(tmp_path, "other.conf")
    link = tmp_path / "wgL.conf"
    link.symlink_to(target)
    assert locate(str(link)) == (str(target.resolve()), "wgL")


def test_missing_file(tmp_path: Path) -> None:
    expected = re.escape(f"`{tmp_path}/wg0.conf' does not exist")
    with pytest.raises(QuickError, match=f"^{expected}$"):
        locate("wg0", str(tmp_path))
    with pytest.raises(QuickError, match="does not exist"):
        locate(str(tmp_path / "nope.conf"))


@pytest.mark.parametrize("name", ["sixteen-chars-xx.conf", "wg 0.conf", "wg0.cfg", "wg:0.conf",
                                  ".conf", "wg0.conf.bak"])
def test_file_name_must_be_an_interface_name(tmp_path: Path, name: str) -> None:
    path = _file(tmp_path, name)
    with pytest.raises(QuickError, match=r"must be a valid interface name, followed by \.conf"):
        locate(str(path))


@pytest.mark.parametrize(("file_mode", "dir_mode", "warned"), [
    (0o644, 0o755, True), (0o600, 0o755, False), (0o644, 0o750, False), (0o604, 0o705, True),
    (0o606, 0o701, False)])  # as wg-quick: file & directory & 0007, bit by bit
def test_world_accessible_warning(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                  file_mode: int, dir_mode: int, warned: bool) -> None:
    directory = tmp_path / "d"
    directory.mkdir()
    conf = _file(directory, "wg0.conf", mode=file_mode)
    directory.chmod(dir_mode)
    try:
        load(str(conf))
    finally:
        directory.chmod(0o700)
    assert ("is world accessible" in capsys.readouterr().err) == warned


def test_bad_line_is_named_with_the_file(tmp_path: Path) -> None:
    text = (f"[Interface]\nPrivateKey = {KEY}\nAddress = 10.0.0.1/24\n\n[Peer]\n"
            f"PublicKey = {PEER}\nAllowedIPs = 10.0.0.300/32\n")
    conf = _file(tmp_path, "wg0.conf", text)
    with pytest.raises(QuickError) as e:
        load(str(conf))
    assert str(e.value).startswith(f"{conf.resolve()}: line 7: ")
    assert "AllowedIPs = 10.0.0.300/32" in str(e.value)


def test_bad_quick_value_is_named(tmp_path: Path) -> None:
    conf = _file(tmp_path, "wg0.conf", f"[Interface]\nPrivateKey = {KEY}\nMTU = lots\n")
    with pytest.raises(QuickError, match="line 3: MTU is not a decimal number"):
        load(str(conf))


def test_load_reads_the_quick_settings(tmp_path: Path) -> None:
    text = (f"[Interface]\nPrivateKey = {KEY}\nAddress = 10.0.0.1/24, fd00::1\nDNS = 1.1.1.1, "
            "example.com\nTable = 1234\nPostUp = echo %i\n\n"
            f"[Peer]\nPublicKey = {PEER}\nAllowedIPs = 0.0.0.0/0\n")
    quick = load(str(_file(tmp_path, "wg0.conf", text))).conf.quick
    assert quick.addresses == (ipaddress.ip_interface("10.0.0.1/24"),
                               ipaddress.ip_interface("fd00::1/128"))
    assert quick.dns == (ipaddress.ip_address("1.1.1.1"),)
    assert quick.dns_search == ("example.com",)
    assert (quick.table, quick.post_up) == ("1234", ("echo %i",))


@pytest.mark.parametrize("key", QUICK_KEYS)
def test_quick_keys_are_conffiles(key: str) -> None:
    """strip() removes exactly what the parser takes as wg-quick's (wg(8) refuses them)."""
    value = {"address": "10.0.0.1", "dns": "1.1.1.1", "mtu": "1420", "table": "off",
             "saveconfig": "true"}.get(key, "true")
    text = f"[Interface]\n{key} = {value}\n"
    parse_conf(text)
    with pytest.raises(ConfigError, match="line unrecognized"):
        parse_conf(text, quick=False)
    assert strip(text) == "[Interface]\n\n"


# ---- strip -----------------------------------------------------------------------------------

def test_strip_keeps_all_but_the_interfaces_quick_keys() -> None:
    text = ("[Interface]\n  PrivateKey = k  \nAddress = 1.2.3.4 # c\n# Address = kept\n"
            "\tmtu=1400\n[Peer]\nAddress = kept in a peer\nPublicKey = p")
    assert strip(text) == ("[Interface]\nPrivateKey = k\n# Address = kept\n[Peer]\n"
                           "Address = kept in a peer\nPublicKey = p\n\n")


def test_strip_refuses_a_bad_saveconfig_as_wg_quick() -> None:
    with pytest.raises(QuickError, match="`maybe' is neither true nor false"):
        strip("[Interface]\nSaveConfig = maybe\n")
    assert strip("[interface]\nSAVECONFIG = TRUE\n") == "[interface]\n\n"


# ---- hooks -----------------------------------------------------------------------------------

def test_substitute_every_percent_i() -> None:
    assert substitute("ip link show %i; echo %i%%i", "wg0") == "ip link show wg0; echo wg0%wg0"


def test_hooks_run_in_order_with_the_interface(tmp_path: Path) -> None:
    out = tmp_path / "out"
    execute_hooks([f"echo one %i >> {out}", f"echo two %i | cat >> {out}"], "wgH")
    assert out.read_text() == "one wgH\ntwo wgH\n"


@pytest.mark.parametrize("hook", ["false; true", "false | true", "exit 3"])
def test_a_failing_hook_fails_as_under_set_e_and_pipefail(tmp_path: Path, hook: str) -> None:
    after = tmp_path / "after"
    with pytest.raises(QuickError, match="hook exited with status"):
        execute_hooks([hook, f"touch {after}"], "wgH")
    assert not after.exists(), "no hook runs after a failed one"


# ---- DNS -------------------------------------------------------------------------------------

def test_resolvconf_prefix_from_interface_order() -> None:
    order = "# comment\nlo.inet*\nlo.dnsmasq\nlo\ntun*\ntap*\nhso*\nwg*\n"
    assert resolvconf_prefix(order) == "tun."
    assert resolvconf_prefix("lo\neth*x\n") == ""


def test_resolvconf_record_round_trip() -> None:
    servers = [ipaddress.ip_address("10.0.0.53"), ipaddress.ip_address("fd00::53")]
    text = resolvconf_input(servers, ["example.com", "corp"])
    assert text == "nameserver 10.0.0.53\nnameserver fd00::53\nsearch example.com corp\n"
    assert resolvconf_record(text) == (["10.0.0.53", "fd00::53"], ["example.com", "corp"])
    assert resolvconf_input(servers[:1], []) == "nameserver 10.0.0.53\n"


# ---- SaveConfig ------------------------------------------------------------------------------

def _snapshot() -> DeviceSnapshot:
    private = PrivateKey(bytes(range(32)))
    peers = (
        PeerConfig(PublicKey(bytes(32 * [1])), PresharedKey(bytes(32 * [2])),
                   Endpoint(ipaddress.ip_address("2001:db8::1"), 51820), 25,
                   (net("10.0.0.2/32"), net("::/0"))),
        PeerConfig(PublicKey(bytes(32 * [3]))),
    )
    return DeviceSnapshot(DeviceConfig(private, 51820, 0xCA6C, peers), 51820)


def test_format_showconf() -> None:
    snap = _snapshot()
    assert format_showconf(snap) == (
        "[Interface]\nListenPort = 51820\nFwMark = 0xca6c\n"
        f"PrivateKey = {snap.config.private_key.base64()}\n\n"  # type: ignore[union-attr]
        "[Peer]\nPublicKey = AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=\n"
        "PresharedKey = AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=\n"
        "AllowedIPs = 10.0.0.2/32, ::/0\nEndpoint = [2001:db8::1]:51820\n"
        "PersistentKeepalive = 25\n\n"
        "[Peer]\nPublicKey = AwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwM=\n")
    assert format_showconf(DeviceSnapshot(DeviceConfig(), 0)) == "[Interface]\n\n"


def test_saved_config_puts_the_quick_settings_first() -> None:
    quick = QuickConfig(mtu=1400, table="auto", save_config=True, pre_up=("echo %i",),
                        post_down=("a", "b"))
    showconf = "[Interface]\nListenPort = 1\n\n[Peer]\nPublicKey = x\n"
    addresses = [ipaddress.ip_interface("10.0.0.1/24"), ipaddress.ip_interface("::1.2.3.4/96")]
    assert saved_config(quick, addresses, ["10.0.0.53"], ["corp"], 1380, showconf) == (
        "[Interface]\nAddress = 10.0.0.1/24\nAddress = ::1.2.3.4/96\nDNS = 10.0.0.53\n"
        "DNS = corp\nMTU = 1380\nTable = auto\nSaveConfig = true\nPreUp = echo %i\n"
        "PostDown = a\nPostDown = b\nListenPort = 1\n\n[Peer]\nPublicKey = x\n")
    # No MTU in the file: none written back, whatever the link has.
    assert "MTU" not in saved_config(QuickConfig(), [], [], [], 1380, showconf)


def test_write_config_replaces_the_file_private(tmp_path: Path) -> None:
    conf = _file(tmp_path, "wg0.conf", "old", mode=0o644)
    write_config(str(conf), "new\n")
    assert conf.read_text() == "new\n"
    assert conf.stat().st_mode & 0o777 == 0o600
    assert os.listdir(tmp_path) == ["wg0.conf"]


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet="[]=#aAeIinrtfcSvoC \t\r\n", max_size=60))
def test_strip_never_fails_but_on_saveconfig(text: str) -> None:
    try:
        out = strip(text)
    except QuickError as e:
        assert "neither true nor false" in str(e)
    else:
        assert out.endswith("\n")
