/*
 * wg_dp_test.h - hooks for the tests and the micro-benchmarks, never for the
 * product: csrc/build_ffi_test.py builds them, with everything wg_dp.h
 * declares, into the test-only module _wgdp_test (in build/, not shipped).
 * cffi reads this file as a cdef too, so the same rules as wg_dp.h hold.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wg_dp.h"

/* ---- the replay window (replay.h); callers allocate wg_replay_size() bytes */
struct wg_replay;
size_t wg_replay_size(void);
void wg_replay_init(struct wg_replay *r);
bool wg_replay_check(struct wg_replay *r, uint64_t counter, uint64_t reject_after);

/* Allowed-IPs lookups, timed in C: `prefixes` random prefixes of `family` (4
 * or 6), then `lookups` lookups of random addresses (half inside a prefix). */
int wg_allowedips_bench(int family, size_t prefixes, uint64_t lookups, uint64_t seed,
                        uint64_t *elapsed_ns);
/* The same table's inserts, timed, and the heap it holds once built (bytes;
 * 0 where the C library cannot say). */
int wg_allowedips_bench_build(int family, size_t prefixes, uint64_t seed, uint64_t *elapsed_ns,
                              uint64_t *heap_bytes);

/* ---- receiver indices (indextable.h) ------------------------------------- */
/* Gives n entries of a fresh table random indices (indices[i]), noting after
 * each draw how many the pool still held (pool_left[i]); then looks each index
 * up. 0, -ENOENT if a lookup did not find its entry, or -errno. */
int wg_indextable_draws(uint32_t n, uint32_t *indices, uint32_t *pool_left);

/* ---- BLAKE2s (csrc/crypto/blake2s.h), for the differential test ------------ */
void wg_blake2s(uint8_t *out, size_t outlen, const uint8_t *in, size_t inlen,
                const uint8_t *key, size_t keylen);
void wg_hmac_blake2s(uint8_t *out, const uint8_t *key, size_t keylen,
                     const uint8_t *in, size_t inlen);

/* ---- crypto backends (csrc/crypto/aead.h) -------------------------------- */

/* Makes the named backend the one in use (wg_dp.h lists the backends, and
 * wg_aead_status's codes, which this returns too). */
int wg_aead_select(const char *name);
/* One seal (dst gets len + 16 bytes) or open (src is len bytes with the tag;
 * -EBADMSG if forged, dst wiped) with a named backend (NULL: the selected
 * one). A 12-byte nonce whose first 4 bytes are zero goes through the
 * WireGuard entry point (counter = the other 8, little-endian). */
int wg_aead_seal_with(const char *backend, uint8_t *dst, const uint8_t *src, size_t len,
                      const uint8_t *ad, size_t ad_len, const uint8_t *nonce, const uint8_t *key);
int wg_aead_open_with(const char *backend, uint8_t *dst, const uint8_t *src, size_t len,
                      const uint8_t *ad, size_t ad_len, const uint8_t *nonce, const uint8_t *key);
/* Seals (open = 0) or opens `iterations` packets of len bytes in a C loop. */
int wg_aead_bench(const char *backend, int open, size_t len, uint64_t iterations,
                  uint64_t *elapsed_ns);
