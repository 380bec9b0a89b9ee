"""wg(8) / wg-quick(8) configuration files (pywg/_tools/conffile.py).

tests/integration/test_uapi_wg.py checks the same files against the real `wg`: what it
accepts, what it refuses, and the exact `set` it sends for setconf and addconf.
"""

import ipaddress
import pathlib
import socket
import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pywg._config.errors import ConfigError, ConfigFileError
from pywg._config.model import (
    AddAllowedIP,
    Change,
    Endpoint,
    PeerChange,
    PresharedKey,
    PrivateKey,
    PublicKey,
    RemoveAllowedIP,
    ReplaceAllowedIPs,
    ReplacePeers,
    SetEndpoint,
    SetFwmark,
    SetListenPort,
    SetPersistentKeepalive,
    SetPresharedKey,
    SetPrivateKey,
)
from pywg._tools.conffile import ConfFile, load_conf, parse_conf, resolve_endpoint
from tests.support.nets import net

PRIV = PrivateKey(bytes(range(1, 33)))
PUB1, PUB2 = PublicKey(bytes([1]) * 32), PublicKey(bytes([2]) * 32)
PSK = PresharedKey(bytes([3]) * 32)
ZERO64 = "A" * 43 + "="


def no_dns(host: str, port: str) -> Endpoint:
    raise AssertionError(f"unexpected resolution of {host}:{port}")


def conf(text: str) -> ConfFile:
    return parse_conf(textwrap.dedent(text), resolve=no_dns)


FULL = f"""\
    # a comment line
    [Interface]
    PrivateKey = {PRIV.base64()}   # trailing comment
    listenport=51820
    FWMARK = 0x20
    Address = 10.0.0.1/24, fd00::1/64
    Address = 10.0.1.1
    DNS = 10.0.0.53, fd00::53, example.org, corp
    MTU = 1380
    Table = off
    PreUp = echo pre up %i
    PostUp = iptables -A FORWARD -i %i -j ACCEPT; echo a=b
    PreDown = echo pre down
    PostDown = echo post down
    SaveConfig = True

    [peer]
    Public Key = {PUB1.base64()}
    PresharedKey = {PSK.base64()}
    AllowedIPs = 10.0.0.2/32, fd00::2
    AllowedIPs = 10.9.0.1/16
    Endpoint = [fe80::1%lo]:51820
    PersistentKeepalive = 25

    [Peer]
    PublicKey = {PUB2.base64()}
    Endpoint = 192.0.2.1:0051820
    PersistentKeepalive = off
    AllowedIPs = +10.5.0.0/16, -10.6.0.0/16
    """


def test_every_key() -> None:
    c = conf(FULL)
    n = net
    assert c.private_key == SetPrivateKey(PRIV)
    assert (c.listen_port, c.fwmark) == (51820, 0x20)
    p1, p2 = c.peers
    assert p1.public_key == PUB1 and p1.preshared_key == PSK
    assert p1.endpoint == Endpoint(ipaddress.ip_address("fe80::1%lo"), 51820)
    assert p1.persistent_keepalive == 25 and p1.replace_allowed_ips
    assert p1.allowed_ips == ((n("10.0.0.2/32"), False), (n("fd00::2/128"), False),
                              (n("10.9.0.0/16"), False))
    assert p2.endpoint == Endpoint(ipaddress.ip_address("192.0.2.1"), 51820)
    assert p2.persistent_keepalive == 0 and not p2.replace_allowed_ips
    assert p2.allowed_ips == ((n("10.5.0.0/16"), False), (n("10.6.0.0/16"), True))
    assert c.warnings == ("line 21: AllowedIP has nonzero host part",)
    q = c.quick
    assert [str(a) for a in q.addresses] == ["10.0.0.1/24", "fd00::1/64", "10.0.1.1/32"]
    assert [str(a) for a in q.dns] == ["10.0.0.53", "fd00::53"]
    assert q.dns_search == ("example.org", "corp")
    assert (q.mtu, q.table, q.save_config) == (1380, "off", True)
    assert q.pre_up == ("echo pre up %i",)
    assert q.post_up == ("iptables -A FORWARD -i %i -j ACCEPT; echo a=b",)
    assert (q.pre_down, q.post_down) == (("echo pre down",), ("echo post down",))


def test_setconf_and_addconf_changes() -> None:
    c = conf(FULL)
    n = net
    p1_ops = (SetPresharedKey(PSK), SetEndpoint(Endpoint(ipaddress.ip_address("fe80::1%lo"),
                                                         51820)),
              SetPersistentKeepalive(25), ReplaceAllowedIPs(), AddAllowedIP(n("10.0.0.2/32")),
              AddAllowedIP(n("fd00::2/128")), AddAllowedIP(n("10.9.0.0/16")))
    p2_ops = (SetEndpoint(Endpoint(ipaddress.ip_address("192.0.2.1"), 51820)),
              SetPersistentKeepalive(0), AddAllowedIP(n("10.5.0.0/16")),
              RemoveAllowedIP(n("10.6.0.0/16")))
    peers = (PeerChange(PUB1, p1_ops), PeerChange(PUB2, p2_ops))
    assert c.change(replace=True) == Change(
        (SetPrivateKey(PRIV), SetListenPort(51820), SetFwmark(0x20), ReplacePeers()), peers)
    assert c.change(replace=False) == Change(
        (SetPrivateKey(PRIV), SetListenPort(51820), SetFwmark(0x20)), peers)


def test_setconf_clears_what_is_absent() -> None:
    c = conf(f"[Peer]\nPublicKey={PUB1.base64()}\n")
    assert c.change(replace=True) == Change(
        (SetPrivateKey(None), SetListenPort(0), SetFwmark(0), ReplacePeers()),
        (PeerChange(PUB1, (ReplaceAllowedIPs(),)),))
    assert c.change(replace=False) == Change((), (PeerChange(PUB1, (ReplaceAllowedIPs(),)),))


def test_zero_keys_mean_clear() -> None:
    c = conf(f"[Interface]\nPrivateKey={ZERO64}\n[Peer]\nPublicKey={PUB1.base64()}\n"
             f"PresharedKey={ZERO64}\n")
    change = c.change(replace=False)
    assert change.device == (SetPrivateKey(None),)
    assert change.peers[0].ops[0] == SetPresharedKey(None)


def test_empty_and_comment_only() -> None:
    assert conf("\n# nothing\n   \n").change(replace=False) == Change()


@pytest.mark.parametrize(("text", "lineno", "needle"), [
    ("ListenPort = 1\n", 1, "line unrecognized"),  # before any section
    ("[Interface]\nFoo = 1\n", 2, "line unrecognized"),
    ("[Interface]\nListenPort =\n", 2, "line unrecognized"),
    ("[Interface]\nListenPort = 65536\n", 2, "out of range"),
    ("[Interface]\nListenPort = -1\n", 2, "ListenPort"),
    ("[Interface]\nFwMark = 0x1ffffffff\n", 2, "FwMark"),
    ("[Interface]\nFwMark = 0X10\n", 2, "FwMark"),
    ("[Interface]\nFwMark = yes\n", 2, "FwMark"),
    ("[Interface]\nPrivateKey = abc\n", 2, "PrivateKey"),
    ("[Interface]\nEndpoint = 1.2.3.4:5\n", 2, "line unrecognized"),  # a peer key
    ("[Interface]\nMTU = 12\n", 2, "MTU"),
    ("[Interface]\nMTU = big\n", 2, "MTU"),
    ("[Interface]\nTable = main table\n", 2, "Table"),
    ("[Interface]\nSaveConfig = yes\n", 2, "neither true nor false"),
    ("[Interface]\nAddress = 10.0.0.300/24\n", 2, "not an IP address"),
    ("[Interface]\nDNS = 1.2.3\n", 2, "not an IP address"),
    ("[Peer]\nPublicKey = abc\n", 2, "PublicKey"),
    ("[Peer]\nAllowedIPs = 10.0.0.0/8\n", 1, "missing a public key"),
    (f"[Peer]\nPublicKey={PUB1.base64()}\nAllowedIPs = 10.0.0.0/33\n", 3, "AllowedIP"),
    (f"[Peer]\nPublicKey={PUB1.base64()}\nAllowedIPs = 10.0.0.0/8,\n", 3, "IP address"),
    (f"[Peer]\nPublicKey={PUB1.base64()}\nAllowedIPs = 10.0.0.0/x\n", 3, "AllowedIP"),
    (f"[Peer]\nPublicKey={PUB1.base64()}\nEndpoint = 1.2.3.4\n", 3, "port"),
    (f"[Peer]\nPublicKey={PUB1.base64()}\nEndpoint = [::1\n", 3, "brace"),
    (f"[Peer]\nPublicKey={PUB1.base64()}\nEndpoint = [::1]:\n", 3, "port"),
    (f"[Peer]\nPublicKey={PUB1.base64()}\nEndpoint = 1.2.3.4:70000\n", 3, "out of range"),
    (f"[Peer]\nPublicKey={PUB1.base64()}\nPersistentKeepalive = 65536\n", 3, "Persistent"),
    (f"[Peer]\nPublicKey={PUB1.base64()}\nPersistentKeepalive = -1\n", 3, "Persistent"),
    (f"[Peer]\nPublicKey={PUB1.base64()}\nMTU = 1400\n", 3, "line unrecognized"),
    ("[Interface]\n[Bogus]\n", 2, "line unrecognized"),
    ("[Interface]\nListenPort = 1\n" + "#" * 70000 + "\n", 3, "line too long"),
])
def test_errors_name_the_line(text: str, lineno: int, needle: str) -> None:
    with pytest.raises(ConfigFileError) as e:
        conf(text)
    assert e.value.lineno == lineno
    assert needle.lower() in str(e.value).lower()
    assert f"line {lineno}:" in str(e.value)


def test_wg_mode_refuses_wg_quick_keys() -> None:
    text = "[Interface]\nListenPort = 1\nAddress = 10.0.0.1/24\n"
    assert parse_conf(text).quick.addresses
    with pytest.raises(ConfigFileError) as e:
        parse_conf(text, quick=False)
    assert e.value.lineno == 3


def test_errors_never_show_a_key() -> None:
    bad = PRIV.base64()[:-2] + "?="  # a typo in a real key
    with pytest.raises(ConfigFileError) as e:
        conf(f"[Interface]\nPrivateKey = {bad}\n")
    assert bad not in str(e.value) and "<redacted>" in str(e.value)


def test_names_are_resolved_with_the_resolver() -> None:
    seen = []

    def resolve(host: str, port: str) -> Endpoint:
        seen.append((host, port))
        return Endpoint(ipaddress.ip_address("192.0.2.9"), 7)

    c = parse_conf(f"[Peer]\nPublicKey={PUB1.base64()}\nEndpoint = vpn.example:7\n",
                   resolve=resolve)
    assert seen == [("vpn.example", "7")]
    assert c.peers[0].endpoint == Endpoint(ipaddress.ip_address("192.0.2.9"), 7)


def test_resolve_endpoint_retries_transient_failures_a_bounded_number_of_times(
        monkeypatch: pytest.MonkeyPatch) -> None:
    calls, sleeps = [], []

    def flaky(*args: object) -> object:
        calls.append(args)
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    monkeypatch.setattr(socket, "getaddrinfo", flaky)
    with pytest.raises(ConfigError):
        resolve_endpoint("vpn.example", "51820", retries=3, sleep=sleeps.append)
    assert len(calls) == 4 and len(sleeps) == 3
    assert sleeps[0] == 1.0 and sleeps[1] == pytest.approx(1.2)


def test_resolve_endpoint_gives_up_at_once_on_a_permanent_failure(
        monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def unknown(*args: object) -> object:
        calls.append(args)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", unknown)
    with pytest.raises(ConfigError):
        resolve_endpoint("nowhere.invalid", "1", retries=10, sleep=lambda s: None)
    assert len(calls) == 1


def test_resolve_localhost() -> None:
    endpoint = resolve_endpoint("localhost", "51820", retries=0)
    assert endpoint.ip.is_loopback and endpoint.port == 51820


def test_load_conf(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "wg0.conf"
    path.write_bytes(b"[Interface]\nListenPort = 7\n")
    assert load_conf(str(path)).listen_port == 7
    path.write_bytes(b"[Interface]\nListenPort = \xff\n")
    with pytest.raises(ConfigError):
        load_conf(str(path))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([
    "[Interface]", "[Peer]", "[peer]", "PrivateKey = " + PRIV.base64(),
    "PublicKey = " + PUB1.base64(), "AllowedIPs = 10.0.0.0/8", "Endpoint = 1.2.3.4:5",
    "ListenPort = 5", "DNS = 1.1.1.1", "garbage", "=", "# x", "", "Table=auto"])
    | st.text(max_size=40), max_size=10))
def test_garbage_raises_only_config_errors(lines: list[str]) -> None:
    try:
        parse_conf("\n".join(lines), resolve=no_dns)
    except ConfigFileError as e:
        assert 1 <= e.lineno <= max(1, len("\n".join(lines).split("\n")))
    except AssertionError:
        pass  # a name to resolve in a random line: no_dns refuses to look it up


def test_keys_match_in_ascii_only() -> None:
    """wg(8) matches keys with strncasecmp and wg-quick trims [[:space:]], both in the C
    locale: a Kelvin sign is no K and a no-break space no space (found by fuzzing)."""
    for text in ("[Interface]\nFwMar\u212a = 1", "[Interface]\nMTU\u00a0= 1420",
                 "[Interface]\nAddress\x1c= 10.0.0.1", "[Peer]\nPublic\u212aey = " + PUB1.base64()):
        with pytest.raises(ConfigFileError):
            conf(text)
    assert conf("[Interface]\nmtu \t= 1420 \t").quick.mtu == 1420
    spaced = "10.0.0.53\u00a0corp"  # one word to bash
    assert conf(f"[Interface]\nDNS = {spaced}").quick.dns_search == (spaced,)


def test_resolve_endpoint_refuses_what_is_no_name() -> None:
    """A name the IDNA codec refuses raised UnicodeError, and a NUL cut the name or the port
    short in the C library (`localhost:\\0` was port 0); found by fuzzing."""
    for host, port in (("a..b", "1"), ("x" * 64 + ".example", "1"), ("\udcff", "1"),
                       ("localhost", "\0"), ("local\0host", "1")):
        with pytest.raises(ConfigError):
            resolve_endpoint(host, port, retries=0, sleep=lambda s: None)
    for port in ("\0", "\udcff"):
        with pytest.raises(ConfigFileError):
            conf(f"[Interface]\nListenPort = {port}")


def test_errors_never_show_a_key_under_another_name() -> None:
    """A key misspelt, or in another key's place, was shown in the error (found by fuzzing)."""
    def unknown(host: str, port: str) -> Endpoint:
        raise ConfigError(f"cannot resolve {host}:{port}")

    for text in (f"[Interface]\n[PrivateKey = {PRIV.base64()}",
                 f"[Interface]\nListenPort = {PRIV.base64()}",
                 f"[Peer]\nEndpoint = {PRIV.base64()[:30]}:x",
                 f"[Interface]\nPrivateKex = {PRIV.base64()}"):
        with pytest.raises(ConfigFileError) as e:
            parse_conf(text, resolve=unknown)
        assert PRIV.base64()[:20] not in str(e.value), str(e.value)
