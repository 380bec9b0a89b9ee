/*
 * x25519.h - X25519 (RFC 7748) for the handshake: borrowed from libsodium
 * one at a time, and eight at a time with AVX-512 IFMA where the core has
 * it (x25519-ifma.c) for the batches of a busy responder.
 *
 * pywg links no libsodium of its own: Python hands over the addresses of
 * pynacl's crypto_scalarmult and crypto_scalarmult_base (after
 * sodium_init(), without which libsodium runs its slowest code) once, with
 * wg_crypto_init(); the plain-C self-tests hand over their own reference.
 * Both functions are thread-safe, so a batch may call them from every worker.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WG_X25519_LEN 32
#define WG_X25519_LANES_MAX 8          /* the most wg_x25519_lanes() says */

/* libsodium's signatures: 0, or -1 if the result would be all zero. */
typedef int (*wg_x25519_fn)(unsigned char *q, const unsigned char *n, const unsigned char *p);
typedef int (*wg_x25519_base_fn)(unsigned char *q, const unsigned char *n);

/* Once; the same pair again is accepted, another pair is -EALREADY. */
int wg_x25519_register(wg_x25519_fn scalarmult, wg_x25519_base_fn scalarmult_base);
bool wg_x25519_ready(void);

/* out = X25519(secret, public_key): 0, or -EINVAL with out zeroed if the
 * result is all zero (a public key of small order), -ENODEV if nothing is
 * registered. The check is constant-time. */
int wg_x25519(uint8_t out[WG_X25519_LEN], const uint8_t secret[WG_X25519_LEN],
              const uint8_t public_key[WG_X25519_LEN]);
/* The public key of a private key (clamped inside): 0 or -ENODEV. */
int wg_x25519_base(uint8_t out[WG_X25519_LEN], const uint8_t secret[WG_X25519_LEN]);
/* Multiplications that wg_x25519_many does for about the price of one: 8 with
 * the IFMA engine, 1 without. Batches group their items by this. */
size_t wg_x25519_lanes(void);
/* wg_x25519(out[i], secrets[i], public_keys[i]) for i < n, result in rcs[i];
 * eight at a time with the IFMA engine where at least three share a call. */
void wg_x25519_many(size_t n, uint8_t *const out[], const uint8_t *const secrets[],
                    const uint8_t *const public_keys[], int rcs[]);
/* The engine of wg_x25519_many: "ifma" or "sodium". */
const char *wg_x25519_engine(void);
/* Whether len bytes are all zero, in time independent of where a non-zero byte is. */
bool wg_x25519_is_zero(const uint8_t *p, size_t len);
