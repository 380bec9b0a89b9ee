/*
 * x25519.c - X25519 through the functions Python registered, and many at
 * once through the IFMA engine where it runs and agrees with them; see x25519.h.
 */
#define _GNU_SOURCE                     /* explicit_bzero */
#include "x25519.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "x25519-ifma.h"

static wg_x25519_fn scalarmult;
static wg_x25519_base_fn scalarmult_base;

static void choose_engine(void);

bool wg_x25519_ready(void)
{
    return __atomic_load_n(&scalarmult_base, __ATOMIC_ACQUIRE) != NULL;
}

int wg_x25519_register(wg_x25519_fn mult, wg_x25519_base_fn base)
{
    if (!mult || !base)
        return -EINVAL;
    if (wg_x25519_ready())
        return mult == scalarmult && base == scalarmult_base ? 0 : -EALREADY;
    /* The base function last: ready() reads it, so both are visible once it is. */
    __atomic_store_n(&scalarmult, mult, __ATOMIC_RELEASE);
    choose_engine();
    __atomic_store_n(&scalarmult_base, base, __ATOMIC_RELEASE);
    return 0;
}

bool wg_x25519_is_zero(const uint8_t *p, size_t len)
{
    const volatile uint8_t *v = p;
    uint8_t acc = 0;

    for (size_t i = 0; i < len; i++)
        acc |= v[i];
    return acc == 0;
}

int wg_x25519(uint8_t out[WG_X25519_LEN], const uint8_t secret[WG_X25519_LEN],
              const uint8_t public_key[WG_X25519_LEN])
{
    int failed;

    if (!wg_x25519_ready())
        return -ENODEV;
    /* libsodium refuses small-order points itself; the zero test covers any other
     * implementation registered here, as the kernel's curve25519() caller does. */
    failed = scalarmult(out, secret, public_key) != 0;
    if (failed | wg_x25519_is_zero(out, WG_X25519_LEN)) {
        explicit_bzero(out, WG_X25519_LEN);
        return -EINVAL;
    }
    return 0;
}

int wg_x25519_base(uint8_t out[WG_X25519_LEN], const uint8_t secret[WG_X25519_LEN])
{
    if (!wg_x25519_ready())
        return -ENODEV;
    return scalarmult_base(out, secret) == 0 ? 0 : -EINVAL;
}

/* ---- many at once --------------------------------------------------------- */

/* Below this many in one call, one at a time through libsodium is cheaper than
 * a call of the eight-lane engine (one lane costs a fifth of libsodium's one). */
#define IFMA_MIN 3

static bool ifma_on;                    /* set once, at registration */

_Static_assert(WG_X25519_IFMA_LANES <= WG_X25519_LANES_MAX, "batches group at most LANES_MAX");

/* RFC 7748 section 5.2's two vectors, and each lane against the registered
 * function: the engine must agree before it is used. */
static bool ifma_proven(void)
{
    static const uint8_t scalar[2][32] = {
        { 0xa5, 0x46, 0xe3, 0x6b, 0xf0, 0x52, 0x7c, 0x9d, 0x3b, 0x16, 0x15, 0x4b, 0x82, 0x46,
          0x5e, 0xdd, 0x62, 0x14, 0x4c, 0x0a, 0xc1, 0xfc, 0x5a, 0x18, 0x50, 0x6a, 0x22, 0x44,
          0xba, 0x44, 0x9a, 0xc4 },
        { 0x4b, 0x66, 0xe9, 0xd4, 0xd1, 0xb4, 0x67, 0x3c, 0x5a, 0xd2, 0x26, 0x91, 0x95, 0x7d,
          0x6a, 0xf5, 0xc1, 0x1b, 0x64, 0x21, 0xe0, 0xea, 0x01, 0xd4, 0x2c, 0xa4, 0x16, 0x9e,
          0x79, 0x18, 0xba, 0x0d },
    };
    static const uint8_t u[2][32] = {
        { 0xe6, 0xdb, 0x68, 0x67, 0x58, 0x30, 0x30, 0xdb, 0x35, 0x94, 0xc1, 0xa4, 0x24, 0xb1,
          0x5f, 0x7c, 0x72, 0x66, 0x24, 0xec, 0x26, 0xb3, 0x35, 0x3b, 0x10, 0xa9, 0x03, 0xa6,
          0xd0, 0xab, 0x1c, 0x4c },
        { 0xe5, 0x21, 0x0f, 0x12, 0x78, 0x68, 0x11, 0xd3, 0xf4, 0xb7, 0x95, 0x9d, 0x05, 0x38,
          0xae, 0x2c, 0x31, 0xdb, 0xe7, 0x10, 0x6f, 0xc0, 0x3c, 0x3e, 0xfc, 0x4c, 0xd5, 0x49,
          0xc7, 0x15, 0xa4, 0x93 },
    };
    static const uint8_t want[2][32] = {
        { 0xc3, 0xda, 0x55, 0x37, 0x9d, 0xe9, 0xc6, 0x90, 0x8e, 0x94, 0xea, 0x4d, 0xf2, 0x8d,
          0x08, 0x4f, 0x32, 0xec, 0xcf, 0x03, 0x49, 0x1c, 0x71, 0xf7, 0x54, 0xb4, 0x07, 0x55,
          0x77, 0xa2, 0x85, 0x52 },
        { 0x95, 0xcb, 0xde, 0x94, 0x76, 0xe8, 0x90, 0x7d, 0x7a, 0xad, 0xe4, 0x5c, 0xb4, 0xb8,
          0x73, 0xf8, 0x8b, 0x59, 0x5a, 0x68, 0x79, 0x9f, 0xa1, 0x52, 0xe6, 0xf8, 0xf7, 0x64,
          0x7a, 0xac, 0x79, 0x57 },
    };
    uint8_t got[WG_X25519_IFMA_LANES][32], ref[32];
    uint8_t *out[WG_X25519_IFMA_LANES];
    const uint8_t *n[WG_X25519_IFMA_LANES], *p[WG_X25519_IFMA_LANES];
    bool ok = true;

    /* Lane l: scalar l % 2 with u-coordinate l / 2 % 2, so every lane differs
     * from its neighbours and two of them are the RFC's. */
    for (size_t l = 0; l < WG_X25519_IFMA_LANES; l++) {
        out[l] = got[l];
        n[l] = scalar[l % 2];
        p[l] = l / 2 % 2 ? u[(l + 1) % 2] : u[l % 2];
    }
    wg_x25519_ifma(WG_X25519_IFMA_LANES, out, n, p);
    ok = memcmp(got[0], want[0], 32) == 0 && memcmp(got[1], want[1], 32) == 0;
    for (size_t l = 0; l < WG_X25519_IFMA_LANES && ok; l++)
        ok = scalarmult(ref, n[l], p[l]) == 0 && memcmp(ref, got[l], 32) == 0;
    return ok;
}

/* Once, by the first registration: PYWG_X25519=sodium keeps libsodium alone
 * (for experiments and comparisons). */
static void choose_engine(void)
{
    const char *wanted = getenv("PYWG_X25519");

    ifma_on = !(wanted && strcmp(wanted, "sodium") == 0) && wg_x25519_ifma_usable() &&
              ifma_proven();
}

size_t wg_x25519_lanes(void)
{
    return ifma_on ? WG_X25519_IFMA_LANES : 1;
}

const char *wg_x25519_engine(void)
{
    return ifma_on ? "ifma" : "sodium";
}

void wg_x25519_many(size_t n, uint8_t *const out[], const uint8_t *const secrets[],
                    const uint8_t *const public_keys[], int rcs[])
{
    size_t i = 0;

    if (!wg_x25519_ready()) {
        for (; i < n; i++)
            rcs[i] = -ENODEV;
        return;
    }
    while (ifma_on && n - i >= IFMA_MIN) {
        size_t k = n - i < WG_X25519_IFMA_LANES ? n - i : WG_X25519_IFMA_LANES;

        wg_x25519_ifma(k, out + i, secrets + i, public_keys + i);
        for (size_t j = i; j < i + k; j++) {
            rcs[j] = wg_x25519_is_zero(out[j], WG_X25519_LEN) ? -EINVAL : 0;
            if (rcs[j])
                explicit_bzero(out[j], WG_X25519_LEN);
        }
        i += k;
    }
    for (; i < n; i++)
        rcs[i] = wg_x25519(out[i], secrets[i], public_keys[i]);
}
