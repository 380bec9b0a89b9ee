"""The handshake's C batches (csrc/crypto/noise.c over workers.c, through pywg._crypto and
crypto.py) against its single steps, message by message: random and malformed messages,
many sizes of batch, two Python threads at once, the pool stopped and started again. Under
`make asan` the module is the sanitized build (tests/c/conftest.py checks)."""

import errno
import os
import threading

import pytest
import pywg._crypto
from hypothesis import given, settings
from hypothesis import strategies as st
from nacl.bindings import crypto_scalarmult

from pywg._protocol import crypto, noise
from pywg._protocol.errors import DropReason, RemoteProtocolError

KEY = 32
BODY = 108  # e, encrypted static, encrypted timestamp


def _initiator(responder_public: bytes, stamp: bytes) -> tuple[bytes, bytes]:
    """(body of a valid initiation to the responder, the initiator's public key)."""
    private = bytes(crypto.generate_private_key())
    public = crypto.public_key(private)
    _, body = crypto.write_initiation(
        noise.INITIAL_CHAIN, ephemeral_private=crypto.generate_private_key(),
        local_static_public=public, remote_static=responder_public,
        static_static=crypto_scalarmult(private, responder_public), payload=stamp)
    return body, public


RESPONDER = bytes(crypto.generate_private_key())
RESPONDER_PUBLIC = crypto.public_key(RESPONDER)
GOOD = [_initiator(RESPONDER_PUBLIC, os.urandom(12)) for _ in range(6)]


def _single_static(body: bytes) -> tuple[int, bytes, bytes]:
    """The single step's answer, as the batch gives it (result, chain, static)."""
    try:
        chain, static = crypto.read_initiation_static(
            noise.INITIAL_CHAIN, local_static_private=RESPONDER,
            local_static_public=RESPONDER_PUBLIC, message=body)
    except RemoteProtocolError as e:
        rc = -errno.EBADMSG if e.reason is DropReason.DECRYPT_FAILED else -errno.EINVAL
        return rc, bytes(64), bytes(32)
    return 0, bytes(chain), static


def _mutate(body: bytes, flips: list[tuple[int, int]]) -> bytes:
    out = bytearray(body)
    for offset, bits in flips:
        out[offset % len(out)] ^= bits
    return bytes(out)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(GOOD) - 1),
                          st.lists(st.tuples(st.integers(0, BODY - 1), st.integers(0, 255)),
                                   max_size=3)), min_size=1, max_size=24))
def test_the_first_batch_step_is_the_single_step_per_message(picks):
    bodies = [_mutate(GOOD[i][0], flips) for i, flips in picks]
    batch = crypto.read_initiations_static(noise.INITIAL_CHAIN, RESPONDER, RESPONDER_PUBLIC,
                                           bodies)
    for body, rc, chain, static in zip(bodies, *batch, strict=True):
        assert (rc, bytes(chain), static) == _single_static(body)


@pytest.mark.parametrize("n", [1, 2, 3, 17, 64, 200])
def test_a_whole_responder_batch_matches_the_single_steps(n):
    picks = [GOOD[i % len(GOOD)] for i in range(n)]
    bodies = [body for body, _ in picks]
    rcs, chains, statics = crypto.read_initiations_static(
        noise.INITIAL_CHAIN, RESPONDER, RESPONDER_PUBLIC, bodies)
    assert rcs == [0] * n
    assert statics == [public for _, public in picks]
    secrets = crypto.static_statics(RESPONDER, [public for _, public in picks])
    assert secrets == [crypto_scalarmult(RESPONDER, public) for _, public in picks]
    rcs2, chains2, stamps = crypto.read_initiations_payload(chains, secrets, bodies, 80, 28)
    ephemerals = [crypto.generate_private_key() for _ in range(n)]
    psks = [os.urandom(32) for _ in range(n)]
    rcs3, responses, firsts, seconds = crypto.write_responses(
        chains2, ephemerals, [b[:KEY] for b in bodies], [p for _, p in picks], psks)
    for i in range(n):
        chain, stamp = crypto.read_initiation_payload(
            chains[i], static_static=secrets[i], encrypted_payload=bodies[i][80:])
        assert (rcs2[i], chains2[i], stamps[i]) == (0, chain, stamp)
        chain, body = crypto.write_response(
            chain, ephemeral_private=ephemerals[i], remote_ephemeral=bodies[i][:KEY],
            remote_static=picks[i][1], preshared_key=psks[i], payload=b"")
        assert (rcs3[i], responses[i]) == (0, body)
        assert (firsts[i], seconds[i]) == crypto.split(chain)


def test_batches_from_two_threads_at_once():
    bodies = [body for body, _ in GOOD] * 8
    expected = crypto.read_initiations_static(noise.INITIAL_CHAIN, RESPONDER,
                                              RESPONDER_PUBLIC, bodies)
    failures: list[str] = []

    def run() -> None:
        for _ in range(5):
            got = crypto.read_initiations_static(noise.INITIAL_CHAIN, RESPONDER,
                                                 RESPONDER_PUBLIC, bodies)
            if got != expected:
                failures.append("a batch differed")

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures


def test_the_pool_stops_and_starts_again():
    bodies = [body for body, _ in GOOD] * 4
    before = crypto.read_initiations_static(noise.INITIAL_CHAIN, RESPONDER, RESPONDER_PUBLIC,
                                            bodies)
    pywg._crypto.lib.wg_crypto_stop()
    pywg._crypto.lib.wg_crypto_stop()
    after = crypto.read_initiations_static(noise.INITIAL_CHAIN, RESPONDER, RESPONDER_PUBLIC,
                                           bodies)
    assert before == after
    assert crypto.workers() == len(os.sched_getaffinity(0))


def test_small_order_keys_in_a_batch():
    low_order = [bytes(32), (1).to_bytes(32, "little"),
                 bytes.fromhex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800")]
    secrets = crypto.static_statics(RESPONDER, [*low_order, GOOD[0][1]])
    assert secrets[:3] == [None] * 3 and secrets[3] == crypto_scalarmult(RESPONDER, GOOD[0][1])
    bodies = [p + GOOD[0][0][KEY:] for p in low_order]
    rcs, chains, statics = crypto.read_initiations_static(noise.INITIAL_CHAIN, RESPONDER,
                                                          RESPONDER_PUBLIC, bodies)
    assert rcs == [-errno.EINVAL] * 3
    assert not any(any(c) for c in chains) and not any(any(s) for s in statics)
