"""The tests `make test-embedded` runs inside the emulated systems, and why each is there.

What can differ on a router's CPU is run there: the C (word size, alignment, endianness of
loads, NEON), the cffi module as the wheel built it, libsodium as pynacl's wheel bundles
it, and the backend choice from the CPU's hardware capabilities. What is pure Python over
bytes (the "never raises" property tests of the parsers, the command line's option
handling) behaves the same on every CPU CPython runs on; it runs natively in `make test`,
where it is 50 times faster than under qemu. Every entry is a pytest node ID: one that
no longer exists makes pytest fail ("not found"), so the list cannot rot silently.
"""

# On the first CPU model of each target (qemu's default, the most capable).
DEVICE_TESTS = (
    # The wheel is what runs; the backend matches the CPU's HWCAP; the installed `pywg`
    # command's self-test passes and names it; NEON is refused where the CPU lacks it.
    "tests/embedded/test_target.py",
    # Every AEAD backend the CPU offers: RFC 8439 vectors, the differential test against
    # libsodium, tampering, in place, the benchmark hook, and PYWG_AEAD's choice (which
    # differs on 32-bit CPUs: portable32 stands down there).
    "tests/c/test_aead.py",
    # The C that reads packet headers and checksums (alignment, word size).
    "tests/c/test_offload.py",
    # The C replay window: the kernel's table and random walks, near 2**64 too (64-bit
    # counters on a 32-bit CPU). Its property tests repeat the walks with other numbers.
    "tests/c/test_replay.py::test_window_size_matches_table",
    "tests/c/test_replay.py::test_kernel_table",
    "tests/c/test_replay.py::test_kernel_loops",
    "tests/c/test_replay.py::test_random_walks_from_zero",
    "tests/c/test_replay.py::test_random_walks_near_the_limit",
    "tests/c/test_replay.py::test_a_small_limit",
    # The C BLAKE2s: every length around the block size, against hashlib on random input,
    # and the WireGuard KDF vectors (HMAC over it; its own property test is left out).
    "tests/c/test_blake2s.py::test_every_length_around_the_block_size",
    "tests/c/test_blake2s.py::test_matches_hashlib",
    "tests/c/test_blake2s.py::test_wireguard_kdf_vectors",
    # Noise IK through the target's libsodium: the published vectors, whole handshakes.
    "tests/unit/test_noise.py",
    # X25519 (RFC 7748), XChaCha20-Poly1305 (the draft's vector), low-order points.
    "tests/unit/test_crypto.py",
    # The handshake state machine over real crypto: keys match, PSK, replays, tampering,
    # low-order points (its two "never raises" property tests are pure Python).
    "tests/unit/test_handshake.py::test_handshake_completes_and_keys_match",
    "tests/unit/test_handshake.py::test_handshake_the_other_way_and_repeated",
    "tests/unit/test_handshake.py::test_psk_mismatch_fails_at_the_initiator",
    "tests/unit/test_handshake.py::test_simultaneous_initiations_cross",
    "tests/unit/test_handshake.py::test_replayed_initiation_is_dropped",
    "tests/unit/test_handshake.py::test_tampered_response_leaves_the_handshake_pending",
    "tests/unit/test_handshake.py::test_tampered_static_or_timestamp_fails_to_decrypt",
    "tests/unit/test_handshake.py::test_all_zero_dh_is_rejected",
    # MAC1/MAC2 and cookie replies (BLAKE2s and XChaCha20-Poly1305 through libsodium).
    "tests/unit/test_cookie.py::test_mac1_is_keyed_by_the_receivers_public_key",
    "tests/unit/test_cookie.py::test_a_cookie_reply_gives_mac2",
    "tests/unit/test_cookie.py::test_a_reply_is_only_good_for_the_message_that_caused_it",
    # The wire layouts (struct formats: sizes and byte order must not follow the CPU).
    "tests/unit/test_messages.py::test_initiation_layout",
    "tests/unit/test_messages.py::test_response_layout",
    "tests/unit/test_messages.py::test_cookie_and_transport_layout",
    "tests/unit/test_messages.py::test_round_trip",
    "tests/unit/test_messages.py::test_sizes_are_exact",
    # The self-test's embedded known answers are the published ones.
    "tests/unit/test_selftest_cli.py::test_embedded_vectors_are_the_published_ones",
)

# On a further CPU model (armv7 without NEON): what depends on the CPU's features.
CPU_TESTS = (
    "tests/embedded/test_target.py",
    "tests/c/test_aead.py",
)
