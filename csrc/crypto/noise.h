/*
 * noise.h - what noise.c offers inside csrc/ besides the boundary functions
 * of wg_crypto.h: the KDF, for the self-tests' vectors.
 */
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "wg_crypto.h"

/* HKDF over HMAC-BLAKE2s with an empty info, as Noise defines it: prk =
 * HMAC(key, in), t1 = HMAC(prk, 0x01), t2 = HMAC(prk, t1 || 0x02), t3 =
 * HMAC(prk, t2 || 0x03). t3, or t2 and t3, may be NULL (not wanted); t1 may be the
 * key itself. */
void wg_noise_kdf(uint8_t t1[WG_NOISE_KEY_LEN], uint8_t *t2, uint8_t *t3, const uint8_t *key,
                  size_t key_len, const uint8_t *in, size_t in_len);
