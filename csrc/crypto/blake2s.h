/*
 * blake2s.h - BLAKE2s (RFC 7693): the hash of WireGuard's handshake, its
 * keyed form (mac1, mac2, cookies) and HMAC-BLAKE2s (the KDF). libsodium has
 * only BLAKE2b, so the C side brings its own; Python's is hashlib's, and the
 * tests hold the two to RFC 7693's vectors and to each other.
 */
#pragma once
#include <stddef.h>
#include <stdint.h>

#define BLAKE2S_BLOCK_SIZE 64
#define BLAKE2S_HASH_SIZE 32
#define BLAKE2S_KEY_SIZE 32

struct blake2s_state {
    uint32_t h[8];
    uint32_t t[2];                      /* bytes hashed so far */
    uint8_t buf[BLAKE2S_BLOCK_SIZE];
    size_t buflen;
    size_t outlen;
};

/* outlen 1..32; key NULL (keylen 0) or 1..32 bytes. */
void wg_blake2s_init(struct blake2s_state *s, size_t outlen, const uint8_t *key, size_t keylen);
void wg_blake2s_update(struct blake2s_state *s, const uint8_t *in, size_t len);
/* Writes outlen bytes and wipes the state. */
void wg_blake2s_final(struct blake2s_state *s, uint8_t *out);
void wg_blake2s(uint8_t *out, size_t outlen, const uint8_t *in, size_t inlen,
                const uint8_t *key, size_t keylen);
/* HMAC (RFC 2104) over BLAKE2s, as the Noise KDF uses it: out gets 32 bytes. */
void wg_hmac_blake2s(uint8_t *out, const uint8_t *key, size_t keylen,
                     const uint8_t *in, size_t inlen);
/* Equal in time independent of where they differ (for MACs and tags). */
int wg_memeq_ct(const void *a, const void *b, size_t len);
