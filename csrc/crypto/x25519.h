/*
 * x25519.h - X25519 (RFC 7748) for the handshake, borrowed from libsodium.
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
/* Whether len bytes are all zero, in time independent of where a non-zero byte is. */
bool wg_x25519_is_zero(const uint8_t *p, size_t len);
