/*
 * wg_dp.h - the whole boundary between pywg's Python control plane and its C
 * data plane. cffi reads this file as its cdef (csrc/build_ffi.py strips the
 * preprocessor lines it cannot parse), so keep it to plain declarations,
 * integer #defines and fixed-size types.
 *
 * Conventions: functions return 0 (or a count) on success and a negative
 * errno on failure; Python wraps that once, in pywg/datapath.py.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- exposed for tests and benchmarks ------------------------------------ */

/* The replay window (replay.h); callers allocate wg_replay_size() bytes. */
struct wg_replay;
size_t wg_replay_size(void);
void wg_replay_init(struct wg_replay *r);
bool wg_replay_check(struct wg_replay *r, uint64_t counter, uint64_t reject_after);

/* ---- crypto backends (csrc/crypto/aead.h) -------------------------------- */

/* ChaCha20-Poly1305 backends: "avx512", "avx2" (x86_64), "sodium" (once
 * registered), "portable" and "portable32". wg_aead_init() self-tests them
 * and selects the first that passes, or the one PYWG_AEAD names; call
 * wg_aead_register_sodium() before it for libsodium to be considered.
 * Status and select: 0, -ENOENT (no such name), -ENOTSUP (not on this CPU,
 * or sodium not registered), -EIO (failed its self-test). */
int wg_aead_init(void);
int wg_aead_select(const char *name);
int wg_aead_status(const char *name);
const char *wg_aead_name(void);            /* the selected one; NULL before init */
/* Every compiled-in name, fastest first; writes up to max, returns the count. */
int wg_aead_backends(const char **names, size_t max);
/* libsodium's crypto_aead_chacha20poly1305_ietf_encrypt and _decrypt. */
int wg_aead_register_sodium(void *encrypt, void *decrypt);
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
