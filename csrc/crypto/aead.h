/*
 * aead.h - ChaCha20-Poly1305 (RFC 8439) for the data plane, with backends
 * chosen at run time.
 *
 * WireGuard's transport nonce is 4 zero bytes followed by the little-endian
 * 64-bit counter, so backends take the counter, not a nonce. The data plane
 * passes no associated data; the parameter exists for the RFC vectors.
 *
 * Every backend is checked against known answers before it can be selected;
 * wg_aead_init() picks the fastest one that passed (or the one named in the
 * PYWG_AEAD environment variable) and wg_aead (never NULL after init) is
 * what the packet paths call.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WG_AEAD_KEY_LEN 32
#define WG_AEAD_TAG_LEN 16
#define WG_AEAD_NONCE_LEN 12

/* Encrypts len bytes of src into dst and appends the 16-byte tag at
 * dst + len. dst may equal src (in place); otherwise they must not overlap. */
typedef void (*wg_aead_seal_fn)(uint8_t *dst, const uint8_t *src, size_t len,
                                const uint8_t *ad, size_t ad_len, uint64_t counter,
                                const uint8_t key[WG_AEAD_KEY_LEN]);

/* Verifies and decrypts src (len bytes including the tag) into dst, which
 * gets len - 16 bytes. Returns false, with dst wiped, if authentication
 * fails; the tag comparison is constant-time. dst may equal src. */
typedef bool (*wg_aead_open_fn)(uint8_t *dst, const uint8_t *src, size_t len,
                                const uint8_t *ad, size_t ad_len, uint64_t counter,
                                const uint8_t key[WG_AEAD_KEY_LEN]);

/* The same with RFC 8439's whole 96-bit nonce instead of WireGuard's
 * (4 zero bytes and the counter): for the RFC's vectors and the tests. */
typedef void (*wg_aead_seal_nonce_fn)(uint8_t *dst, const uint8_t *src, size_t len,
                                      const uint8_t *ad, size_t ad_len,
                                      const uint8_t nonce[WG_AEAD_NONCE_LEN],
                                      const uint8_t key[WG_AEAD_KEY_LEN]);
typedef bool (*wg_aead_open_nonce_fn)(uint8_t *dst, const uint8_t *src, size_t len,
                                      const uint8_t *ad, size_t ad_len,
                                      const uint8_t nonce[WG_AEAD_NONCE_LEN],
                                      const uint8_t key[WG_AEAD_KEY_LEN]);

struct wg_aead_backend {
    const char *name;              /* "portable", "avx2", "avx512", "sodium", ... */
    bool (*usable)(void);          /* CPU support, checked at run time */
    wg_aead_seal_fn seal;
    wg_aead_open_fn open;
    wg_aead_seal_nonce_fn seal_nonce;
    wg_aead_open_nonce_fn open_nonce;
};

/* The selected backend; valid after wg_aead_init(). Packet paths load it
 * once per batch; wg_aead_select() may swap it at run time (tests, bench). */
extern const struct wg_aead_backend *wg_aead;

int wg_aead_init(void);            /* idempotent, thread-safe; 0 or -errno */

/* The longest message a backend accepts: RFC 8439's limit (2^32 - 1 blocks
 * of keystream after the one that makes the Poly1305 key). */
#define WG_AEAD_MAX_LEN (((uint64_t)1 << 38) - 64)
