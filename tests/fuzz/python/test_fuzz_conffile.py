"""Fuzzing the configuration files: wg(8)'s format and wg-quick(8)'s (pywg._tools.conffile,
pywg._tools.quick.conf).

Properties, for any text:
- it parses, or ConfigFileError names a line of it (and never shows a key); nothing else
  escapes;
- what parses gives a transaction that survives the UAPI both ways (format_set, parse_set);
- `strip` (wg-quick's reading) and the wg-quick parser agree: what the one accepts, the
  other's output gives wg(8)'s parser, which then finds the same device settings;
and for any configuration, `wg showconf` as pywg writes it parses back to that
configuration.
"""

from __future__ import annotations

import ipaddress
import re

from hypothesis import example, given
from hypothesis import strategies as st

from pywg._config.errors import ConfigError, ConfigFileError
from pywg._config.model import (
    AllowedIP,
    DeviceConfig,
    Endpoint,
    PeerConfig,
    PresharedKey,
    PrivateKey,
    PublicKey,
)
from pywg._config.uapi import DeviceSnapshot, SetRequest, UapiParser, format_set
from pywg._tools.conffile import ConfFile, parse_conf, resolve_endpoint
from pywg._tools.quick.conf import strip
from pywg._tools.quick.report import QuickError
from pywg._tools.quick.saveconfig import format_showconf
from tests.fuzz.python.common import fuzz_settings, target
from tests.fuzz.python.inputs import mutated_text

PRIV = PrivateKey(bytes(range(1, 33)))
KEYS = [PublicKey(bytes([i]) * 32).base64() for i in (1, 2, 3)]
SECRET = PresharedKey(bytes([9]) * 32).base64()
_RESOLVED = Endpoint(ipaddress.ip_address("192.0.2.9"), 7)
_SHOWN_AT_MOST = 19  # characters of a key an error may show (a shorter run says little)
_HOSTNAME = re.compile(r"[a-z][a-z0-9.-]{0,30}")


def resolver(host: str, port: str) -> Endpoint:
    """A resolver that never asks DNS: pywg's own (resolve_endpoint) for what cannot reach
    DNS (what the IDNA codec refuses, a NUL byte), a fake for the rest, where names that
    look like host names resolve."""
    try:
        host.encode("idna")
        reaches_dns = "\0" not in host + port
    except UnicodeError:
        reaches_dns = False
    if not reaches_dns:
        return resolve_endpoint(host, port, retries=0, sleep=lambda _: None)
    if _HOSTNAME.fullmatch(host) and port.isascii() and port.isdigit() and int(port) < 65536:
        return Endpoint(_RESOLVED.ip, int(port))
    raise ConfigError(f"unresolvable: {host!r}")


_SEEDS = [
    f"""# a comment
[Interface]
PrivateKey = {PRIV.base64()}   # trailing
ListenPort = 51820
FwMark = 0x20
Address = 10.0.0.1/24, fd00::1/64
DNS = 10.0.0.53, fd00::53, example.org
MTU = 1420
Table = off
PreUp = echo %i
PostDown = echo bye
SaveConfig = true

[Peer]
PublicKey = {KEYS[0]}
PresharedKey = {SECRET}
AllowedIPs = 10.0.0.2/32, fd00::2, +10.9.0.0/16, -0.0.0.0/0
Endpoint = [fe80::1%lo]:51820
PersistentKeepalive = 25

[peer]
Public Key = {KEYS[1]}
Endpoint = vpn.example:51820
PersistentKeepalive = off
""",
    f"""[Interface]
listenport=domain
fwmark=off
[Peer]
PublicKey={KEYS[2]}
AllowedIPs=0.0.0.0/0,::/0
Endpoint=192.0.2.1:0051820
""",
]
_LINES = st.sampled_from([
    "[Interface]", "[Peer]", "[ Peer ]", "[interface]", f"PrivateKey = {PRIV.base64()}",
    f"PublicKey = {KEYS[0]}", f"PublicKey = {KEYS[1]}", f"PresharedKey = {SECRET}",
    "PresharedKey = " + "A" * 43 + "=", "ListenPort = 0", "ListenPort = 65536",
    "ListenPort = domain", "ListenPort = nosuchservice", "ListenPort = \x00", "FwMark = 0xffffffff",
    "FwMark = 0x100000000", "FwMark = off", "FwMark = 0x", "AllowedIPs = 10.0.0.0/8, ::/0",
    "AllowedIPs = 10.0.0.1/33", "AllowedIPs = +10.0.0.0/8,-fd00::/64", "AllowedIPs = 1.2.3.4/008",
    "AllowedIPs = ,", "AllowedIPs = fe80::1%lo", "Endpoint = 1.2.3.4:5", "Endpoint = [::1]:5",
    "Endpoint = [fe80::1%lo]:0", "Endpoint = host.example:51820", "Endpoint = [::1",
    "Endpoint = :5",
    "Endpoint = a..b:5", "Endpoint = localhost:\x00", "Endpoint = ü.example:5",
    "PersistentKeepalive = 65535", "PersistentKeepalive = 65536", "Address = 10.0.0.1/24",
    "Address = fd00::1/129", "Address = 10.0.0.1/x", "DNS = 1.1.1.1, corp", "DNS = 1.1.1.1.1",
    "MTU = 1280", "MTU = 100", "MTU = 99999", "Table = 1234", "Table = bad name", "Table = auto",
    "SaveConfig = TRUE", "SaveConfig = maybe", "SaveConfig", "PostUp = echo a=b # c",
    "Address\x1c= 10.0.0.1", "FwMar\u212a = 1", "MTU\u00a0= 1420", "# comment", "", "=", "x",
    "\r", "[Interface]\r", "[Peer]#c"])


@st.composite
def texts(draw: st.DrawFn) -> str:
    choice = draw(st.integers(0, 3))
    if choice == 0:
        return "\n".join(draw(st.lists(_LINES, max_size=14)))
    if choice == 1:
        return draw(st.text(max_size=300))
    return draw(mutated_text(_SEEDS, 6))


def _check_error(e: ConfigFileError, text: str) -> None:
    assert 1 <= e.lineno <= len(text.split("\n")), e.lineno
    assert str(e).startswith(f"line {e.lineno}: ")
    for secret in (PRIV.base64(), SECRET):
        for start in range(len(secret) - _SHOWN_AT_MOST):
            assert secret[start:start + _SHOWN_AT_MOST + 1] not in str(e), "a key shown"


def _round_trip_uapi(conf: ConfFile) -> None:
    """The transaction setconf and addconf send, through the UAPI's text and back."""
    for replace in (True, False):
        change = conf.change(replace=replace)
        parser = UapiParser()
        parser.receive_data(format_set(change))
        assert parser.next_event() == SetRequest(change)


def _wg_part(conf: ConfFile) -> tuple[object, ...]:
    return conf.private_key, conf.listen_port, conf.fwmark, conf.peers


@target("py-conffile")
@fuzz_settings
@given(texts(), st.booleans())
# Found here: a host name the IDNA codec refuses, a NUL in an endpoint or in ListenPort,
# raised UnicodeError or ValueError instead of a line's error, or silently resolved what
# comes before the NUL.
@example("[Peer]\nEndpoint = a..b:5", True)
@example("[Interface]\nListenPort = \x00", True)
@example("[Interface]\nListenPort = \udcff", True)
# Found here: a key under a misspelt name, or in another key's place, was shown in the error.
@example(f"[Interface]\n[PrivateKey = {PRIV.base64()}", False)
@example(f"[Interface]\nListenPort = {PRIV.base64()}", False)
@example(f"[Peer]\nEndpoint = {SECRET[:30]}:x", False)
@example("[Peer]\nEndpoint = localhost:\x00", True)
def test_conf_text_parses_or_names_its_line(text: str, quick: bool) -> None:
    try:
        conf = parse_conf(text, resolve=resolver, quick=quick)
    except ConfigFileError as e:
        _check_error(e, text)
        return
    _round_trip_uapi(conf)


@target("py-quick-strip")
@fuzz_settings
@given(texts())
# Found here: wg-quick's keys were trimmed as Unicode (str.strip), so `Address\x1c=` was
# wg-quick's Address to pywg and a line for wg(8) (which refuses it) to `strip`.
@example("[Interface]\nAddress\x1c= 10.0.0.1")
def test_strip_agrees_with_the_wg_quick_parser(text: str) -> None:
    try:
        stripped = strip(text)
    except QuickError:
        stripped = None
    try:
        conf = parse_conf(text, resolve=resolver, quick=True)
    except ConfigFileError as e:
        _check_error(e, text)
        return
    # conffile is lenient where wg(8) is: `[ Interface ]` with spaces inside is a section.
    if stripped is None or re.search(r"^[ \t]*\[[^]\n]*[ \t\r\v\f][^]\n]*\]", text, re.M):
        return
    assert _wg_part(parse_conf(stripped, resolve=resolver, quick=False)) == _wg_part(conf)


_KEYS32 = st.binary(min_size=32, max_size=32)
_NETWORKS = st.one_of(
    st.tuples(st.ip_addresses(v=4), st.integers(0, 32)),
    st.tuples(st.ip_addresses(v=6), st.integers(0, 128)),
).map(lambda t: AllowedIP.of(ipaddress.ip_network(t, strict=False)))
_ENDPOINTS = st.builds(Endpoint, st.one_of(
    st.ip_addresses(), st.sampled_from([ipaddress.ip_address("fe80::1%lo"),
                                        ipaddress.ip_address("fe80::1%7")])),
    st.integers(0, 65535))
_PEERS = st.builds(
    PeerConfig, _KEYS32.map(PublicKey), st.one_of(st.none(), _KEYS32.filter(any).map(PresharedKey)),
    st.one_of(st.none(), _ENDPOINTS), st.integers(0, 65535),
    st.lists(_NETWORKS, max_size=4, unique=True).map(tuple))


@st.composite
def configs(draw: st.DrawFn) -> DeviceConfig:
    peers = draw(st.lists(_PEERS, max_size=3, unique_by=lambda p: p.public_key))
    private = draw(st.one_of(st.none(), _KEYS32.map(PrivateKey)))
    return DeviceConfig(private, draw(st.integers(0, 65535)), draw(st.integers(0, 2**32 - 1)),
                        tuple(peers))


@target("py-showconf")
@fuzz_settings
@given(configs())
def test_showconf_parses_back(config: DeviceConfig) -> None:
    text = format_showconf(DeviceSnapshot(config, config.listen_port))
    conf = parse_conf(text, resolve=resolver, quick=False)
    assert conf.private_key is None or conf.private_key.key == config.private_key
    assert (conf.listen_port or 0) == config.listen_port
    assert (conf.fwmark or 0) == config.fwmark
    assert len(conf.peers) == len(config.peers)
    for parsed, peer in zip(conf.peers, config.peers, strict=True):
        assert parsed.public_key == peer.public_key
        assert parsed.preshared_key == peer.preshared_key
        assert parsed.endpoint == peer.endpoint
        assert (parsed.persistent_keepalive or 0) == peer.persistent_keepalive_interval
        assert tuple(n for n, _ in parsed.allowed_ips) == peer.allowed_ips
