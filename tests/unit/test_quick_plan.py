"""wg-quick's decisions (pywg._tools.quick.plan), without root: the MTU, the routes and their order,
tables, the full tunnel's rules and nftables script."""

from __future__ import annotations

import ipaddress
import shutil
import socket
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pywg._config.model import AllowedIP, Endpoint
from pywg._tools.quick.plan import (
    DefaultRoute,
    MainRoute,
    Route,
    Rule,
    auto_mtu,
    covered,
    first_free_table,
    full_tunnel_rules,
    mtu_endpoint_ip,
    nft_script,
    ntop,
    ntop_network,
    parse_rt_tables,
    plan_routes,
    resolve_table,
    sort_routes,
)
from pywg._tools.quick.report import QuickError

net = ipaddress.ip_network


def allowed(text: str) -> AllowedIP:
    return AllowedIP.of(ipaddress.ip_network(text))


# ---- MTU -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("endpoints", "default", "mtu"), [
    ([1400], 9000, 1320),              # an endpoint's route wins over the default route
    ([1400, None, 9000], None, 8920),  # the largest of them; an unroutable one is skipped
    ([], 1450, 1370),                  # no endpoint: the default route
    ([None], 1450, 1370),
    ([], None, 1420),                  # nothing at all: 1500 - 80
])
def test_auto_mtu(endpoints: list[int | None], default: int | None, mtu: int) -> None:
    assert auto_mtu(endpoints, default) == mtu


def test_mtu_endpoint_ip_skips_scoped_addresses() -> None:
    assert mtu_endpoint_ip(None) is None
    v4 = Endpoint(ipaddress.ip_address("192.0.2.1"), 51820)
    assert mtu_endpoint_ip(v4) == v4.ip
    assert mtu_endpoint_ip(Endpoint(ipaddress.ip_address("2001:db8::1"), 1)) is not None
    # wg-quick's pattern for `wg show endpoints` has no room for a %scope.
    assert mtu_endpoint_ip(Endpoint(ipaddress.ip_address("fe80::1%eth0"), 1)) is None


# ---- routes ----------------------------------------------------------------------------------

networks = st.one_of(
    st.tuples(st.ip_addresses(v=4), st.integers(0, 32)),
    st.tuples(st.ip_addresses(v=6), st.integers(0, 128)),
    st.sampled_from([("0.0.0.0", 0), ("::", 0), ("::1.2.3.4", 128)]),
).map(lambda t: net(t, strict=False))


@settings(max_examples=60, deadline=None)
@given(st.lists(networks, max_size=8))
def test_route_order_is_gnu_sort_of_wg_show_allowed_ips(nets: list[ipaddress.IPv4Network],
                                                        ) -> None:
    if shutil.which("sort") is None:
        pytest.skip("needs sort(1)")
    text = "".join(ntop_network(n) + "\n" for n in nets)
    done = subprocess.run(["sort", "-nr", "-k", "2", "-t", "/"], input=text, text=True,
                          capture_output=True, check=True, env={"LC_ALL": "C"})
    assert [ntop_network(n) for n in sort_routes(nets)] == done.stdout.split()


def test_plan_routes_by_table() -> None:
    nets = [net("0.0.0.0/0"), net("10.0.0.0/8"), net("::/0"), net("fd00::/64")]
    assert plan_routes("off", None, nets) == []
    assert plan_routes("1234", 1234, nets) == [
        Route(net("fd00::/64"), 1234), Route(net("10.0.0.0/8"), 1234),
        Route(net("::/0"), 1234), Route(net("0.0.0.0/0"), 1234)]
    for table in (None, "auto"):
        assert plan_routes(table, None, nets) == [
            MainRoute(net("fd00::/64")), MainRoute(net("10.0.0.0/8")),
            DefaultRoute(net("::/0")), DefaultRoute(net("0.0.0.0/0"))]


def test_covered_is_ip_route_show_match() -> None:
    # What the routes are read into, as `pywg up` reads them (an AllowedIP, not an
    # ipaddress network, which would hide a containment test that only works for those).
    routes = [allowed("10.72.0.0/24"), allowed("fd72::/64")]
    assert covered(allowed("10.72.0.2/32"), routes)
    assert covered(allowed("10.72.0.0/24"), routes)
    assert not covered(allowed("10.72.0.0/16"), routes)
    assert not covered(allowed("10.73.0.1/32"), routes)
    assert covered(allowed("fd72::2/128"), routes)
    assert not covered(allowed("::a48:2/128"), routes)  # same bits as 10.72.0.2, other family
    assert covered(allowed("192.0.2.0/24"), [allowed("0.0.0.0/0")])


def test_first_free_table() -> None:
    assert first_free_table([]) == 51820
    assert first_free_table([254, 255, 51820, 51821, 51823]) == 51822


def test_route_and_rule_descriptions_read_as_ip_commands() -> None:
    assert Route(net("10.0.0.0/8")).describe("wg0") == "ip -4 route add 10.0.0.0/8 dev wg0"
    assert (Route(net("::/0"), 51820).describe("wg0")
            == "ip -6 route add ::/0 dev wg0 table 51820")
    tunnel, suppress = full_tunnel_rules(socket.AF_INET, 51820)
    assert tunnel.describe() == "ip -4 rule add not fwmark 51820 table 51820"
    assert suppress.describe("delete") == "ip -4 rule delete table main suppress_prefixlength 0"
    assert full_tunnel_rules(socket.AF_INET6, 7)[0] == Rule(socket.AF_INET6, 7, 7, True)


# ---- routing-table names ---------------------------------------------------------------------

RT_TABLES = """\
#
# reserved values
#
255\tlocal
254\tmain
  0x20  hexa   # trailing comment
010 octal
bogus line
-5 negative
200 vpn
"""


def test_parse_rt_tables() -> None:
    assert parse_rt_tables(RT_TABLES) == {"local": 255, "main": 254, "hexa": 32, "octal": 8,
                                          "vpn": 200}


@pytest.mark.parametrize(("table", "number"), [
    ("1234", 1234), ("0x10", 16), ("010", 8), ("0", 0), ("4294967295", 4294967295),
    ("main", 254), ("local", 255), ("default", 253), ("vpn", 200)])
def test_resolve_table(table: str, number: int) -> None:
    assert resolve_table(table, [RT_TABLES]) == number


@pytest.mark.parametrize("table", ["nosuch", "4294967296", "08", "Main"])
def test_resolve_table_refuses_unknown_names(table: str) -> None:
    with pytest.raises(QuickError, match="no routing table of that name"):
        resolve_table(table, [RT_TABLES])


# ---- nftables --------------------------------------------------------------------------------

def test_nft_script_is_wg_quicks() -> None:
    addresses = [ipaddress.ip_interface(a) for a in ("10.0.0.1/24", "fd00::1/64",
                                                     "10.0.1.1/32")]
    script = nft_script("wg0", socket.AF_INET, 51820, addresses)
    assert script.split("\n") == [
        "add table ip wg-quick-wg0",
        "add chain ip wg-quick-wg0 preraw { type filter hook prerouting priority -300; }",
        "add chain ip wg-quick-wg0 premangle { type filter hook prerouting priority -150; }",
        "add chain ip wg-quick-wg0 postmangle { type filter hook postrouting priority -150; }",
        'add rule ip wg-quick-wg0 preraw iifname != "wg0" ip daddr 10.0.0.1 '
        "fib saddr type != local drop",
        'add rule ip wg-quick-wg0 preraw iifname != "wg0" ip daddr 10.0.1.1 '
        "fib saddr type != local drop",
        "add rule ip wg-quick-wg0 postmangle meta l4proto udp mark 51820 ct mark set mark ",
        "add rule ip wg-quick-wg0 premangle meta l4proto udp meta mark set ct mark ",
        ""]
    v6 = nft_script("wg0", socket.AF_INET6, 7, addresses)
    assert "add table ip6 wg-quick-wg0\n" in v6
    assert 'iifname != "wg0" ip6 daddr fd00::1 fib' in v6 and "10.0.0.1" not in v6


def test_ntop_spells_addresses_as_the_c_library() -> None:
    assert ntop(ipaddress.ip_address("::1.2.3.4")) == "::1.2.3.4"
    assert ntop(ipaddress.ip_address("::ffff:1.2.3.4")) == "::ffff:1.2.3.4"
    assert ntop_network(net("2001:db8::/32")) == "2001:db8::/32"
