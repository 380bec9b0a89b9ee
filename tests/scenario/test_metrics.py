"""The metrics of two real devices in one process (tests/scenario/pair.py), served over
HTTP while their event loop runs, read back with prometheus_client's parser and compared
with what the devices themselves report; and pywg's extra `get` keys."""

from __future__ import annotations

import http.client
import socket

from prometheus_client.parser import text_string_to_metric_families

from pywg._driver import metrics
from pywg._tools.uapi_client import parse_get
from tests.scenario.pair import Pair, a_to_b, b_to_a, pair


def _get(port: int, path: str = "/metrics", method: str = "GET",
         headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, headers=headers or {})
        reply = conn.getresponse()
        return reply.status, reply.read()
    finally:
        conn.close()


def _scrape(p: Pair, port: int, **kwargs: object) -> tuple[int, bytes]:
    """One HTTP request from another thread while the devices' loop keeps running."""
    return p.loop.run_until_complete(p.loop.run_in_executor(
        None, lambda: _get(port, **kwargs)))  # type: ignore[arg-type]


def _families(body: bytes) -> dict[str, object]:
    return {f.name: f for f in text_string_to_metric_families(body.decode())}


def test_metrics_of_a_live_session():
    with pair() as p:
        p.connect()
        for i in range(20):
            p.a.send(a_to_b(b"x" * i))
            p.b.send(b_to_a(b"y" * i))
        assert p.wait(lambda: len(p.b.received) == 20 and len(p.a.received) == 20)
        sock = socket.create_server(("127.0.0.1", 0))
        server = metrics.serve(p.a.device, p.loop, sock)
        try:
            status, body = _scrape(p, sock.getsockname()[1])
            assert status == 200
            snapshot = p.a.device.snapshot()
            stats = p.a.device.dp.stats()
            status404, _ = _scrape(p, sock.getsockname()[1], path="/nothing")
        finally:
            server.close()
        assert status404 == 404
    families = _families(body)
    peer = p.b.device.config.public_key
    assert peer is not None
    (peer_stats,) = snapshot.stats.values()
    key = peer.base64()

    def value(family: str, **labels: str) -> float:
        f = families[family]
        (sample,) = [s for s in f.samples  # type: ignore[attr-defined]
                     if all(s.labels.get(k) == v for k, v in labels.items())
                     and not s.name.endswith("_created")]
        return float(sample.value)

    # The loop was not stopped between the scrape and the snapshot, but nothing moved.
    assert value("wireguard_peer_receive_bytes", public_key=key) == peer_stats.rx_bytes > 0
    assert value("wireguard_peer_transmit_bytes", public_key=key) == peer_stats.tx_bytes > 0
    assert value("wireguard_peer_last_handshake_seconds", public_key=key) == \
        peer_stats.last_handshake_time_ns // 10**9 > 0
    assert value("wireguard_device_info", public_key=p.a.device.config.public_key.base64()) == 1
    assert value("wireguard_peers") == 1
    assert value("pywg_packets", path="udp", direction="rx") == stats.udp_rx_packets > 0
    assert value("pywg_packets", path="tun", direction="tx") == stats.tun_tx_packets >= 21
    assert value("pywg_bytes", path="udp", direction="rx") == peer_stats.rx_bytes
    assert value("pywg_handshakes_completed") >= 1
    # a initiated the session (connect() sends from a first), b answered it.
    assert value("pywg_handshake_initiations_sent") >= 1
    assert value("pywg_handshake_responses_sent") == 0
    assert value("pywg_aead_info", backend=p.a.device.aead_name) == 1
    assert value("process_resident_memory_bytes") > 1 << 20


def test_a_scrape_that_asks_for_gzip_gets_it():
    import gzip
    with pair() as p:
        sock = socket.create_server(("127.0.0.1", 0))
        server = metrics.serve(p.a.device, p.loop, sock, per_peer=False)
        try:
            status, body = _scrape(p, sock.getsockname()[1],
                                   headers={"Accept-Encoding": "gzip"})
            post, _ = _scrape(p, sock.getsockname()[1], method="POST")
        finally:
            server.close()
    assert status == 200
    families = _families(gzip.decompress(body))
    assert "wireguard_peers" in families and "wireguard_peer_info" not in families
    assert post == 501  # nothing but GET is served


def test_drop_counters_in_get_read_by_pywgs_client():
    with pair() as p:
        p.connect()
        # Garbage that looks like a data message to an unknown index: dropped and counted.
        p.wire.send("b>a", b"\x04\x00\x00\x00" + b"\xff" * 4 + bytes(8) + bytes(32))
        assert p.wait(lambda: p.a.stats().drop_unknown_index >= 1)
        reply = b"".join(p.a.device.get()).decode()
    snapshot = parse_get(reply.splitlines()[:-2])
    assert snapshot.extras["drop_unknown_index"] >= 1
    assert snapshot.extras["drop_handshake"] == 0
    assert all(name.startswith("drop_") for name in snapshot.extras)
