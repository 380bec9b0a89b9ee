/*
 * x25519-ifma.h - eight X25519 scalar multiplications at once on x86_64
 * cores with AVX-512 IFMA (csrc/crypto/x25519.h decides when to use them).
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WG_X25519_IFMA_LANES 8

/* Whether this machine (and its OS) can run wg_x25519_ifma. */
bool wg_x25519_ifma_usable(void);
/* out[i] = X25519(scalars[i], points[i]) for i < n (at most 8; scalars are
 * clamped inside, the points' top bits ignored), in time independent of
 * every input. Results are not checked for zero: the caller does that.
 * Only after wg_x25519_ifma_usable() said yes. */
void wg_x25519_ifma(size_t n, uint8_t *const out[], const uint8_t *const scalars[],
                    const uint8_t *const points[]);
