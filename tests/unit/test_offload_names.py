"""PYWG_DISABLE_OFFLOADS: the names users write, and what they turn off."""

import pytest

from pywg._driver.offload import (
    ALL,
    NAMES,
    TUN_OFFLOADS,
    Offload,
    OffloadError,
    names,
    parse_disabled,
)


def test_each_name_turns_off_one_offload():
    seen = Offload.NONE
    for name, flag in NAMES.items():
        assert parse_disabled(name) == flag
        assert not seen & flag
        seen |= flag
    assert seen == ALL


@pytest.mark.parametrize("text", [None, "", "  ", ",", " , "])
def test_nothing_turns_off_nothing(text):
    assert parse_disabled(text) == Offload.NONE


def test_lists_and_all():
    assert parse_disabled("tun-tso,udp-gso") == Offload.TUN_TSO | Offload.UDP_GSO
    assert parse_disabled(" UDP-GRO  tun-uso ") == Offload.UDP_GRO | Offload.TUN_USO
    assert parse_disabled("all") == ALL
    assert parse_disabled("tun-tso,all") == ALL


@pytest.mark.parametrize("text", ["tso", "tun-tso,bogus", "al", "udp_gso"])
def test_unknown_names_are_refused(text):
    with pytest.raises(OffloadError, match="PYWG_DISABLE_OFFLOADS"):
        parse_disabled(text)


def test_names_for_logs():
    assert names(Offload.NONE) == "none"
    assert names(Offload.UDP_GSO | Offload.TUN_TSO) == "tun-tso, udp-gso"
    assert names(ALL).count(",") == len(NAMES) - 1
    assert TUN_OFFLOADS & Offload.UDP_GSO == Offload.NONE


@pytest.mark.parametrize(("variable", "value"), [
    ("PYWG_DISABLE_OFFLOADS", "tun-tso,nonsense"),
    ("PYWG_CRYPTO_THREADS", "0"),
    ("PYWG_CRYPTO_THREADS", "65"),
    ("PYWG_CRYPTO_THREADS", "two"),
])
def test_the_daemon_refuses_bad_settings(monkeypatch, variable, value):
    """main() reads these before it creates anything, and exits 1 on a ValueError."""
    from pywg._driver import daemon

    monkeypatch.setenv(variable, value)
    with pytest.raises(ValueError, match=variable):
        daemon._options_from_env()


def test_the_daemon_reads_its_settings(monkeypatch):
    from pywg._driver import daemon

    monkeypatch.delenv("PYWG_DISABLE_OFFLOADS", raising=False)
    monkeypatch.delenv("PYWG_CRYPTO_THREADS", raising=False)
    assert daemon._options_from_env() == daemon.DataPlaneOptions(ALL, 0)
    monkeypatch.setenv("PYWG_DISABLE_OFFLOADS", "udp-gso")
    monkeypatch.setenv("PYWG_CRYPTO_THREADS", "3")
    assert daemon._options_from_env() == daemon.DataPlaneOptions(ALL & ~Offload.UDP_GSO, 3)
