/*
 * x25519_fuzz.c - libFuzzer driver for the eight-lane X25519 engine
 * (crypto/x25519-ifma.c) and the grouping in front of it (wg_x25519_many),
 * differential against libsodium's crypto_scalarmult one at a time (the
 * system's libsodium, loaded at run time as noise_fuzz.c does).
 *
 * The engine never branches on its inputs, so coverage cannot steer it: this
 * is differential random testing, with libFuzzer's mutations favouring runs of
 * 0x00 and 0xff and copied bytes, the patterns that stress the reduction
 * (u-coordinates at or above p, with the ignored top bit set, of small order).
 *
 * Input: a byte choosing the lane count (1-8), then a (scalar, point) pair of
 * 64 bytes per lane; lanes without a whole pair are dropped. On a machine
 * without IFMA only wg_x25519_many runs (then libsodium against itself).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../crypto/x25519-ifma.h"
#include "../crypto/x25519.h"
#include "fuzz.h"
#include "sodium.h"

#define KEY WG_X25519_LEN
#define LANES WG_X25519_IFMA_LANES

typedef int (*mult_fn)(unsigned char *q, const unsigned char *n, const unsigned char *p);
typedef int (*base_fn)(unsigned char *q, const unsigned char *n);

static mult_fn sodium_mult;
static bool ifma;

static void setup(void)
{
    sodium_mult = (mult_fn)fz_sodium("crypto_scalarmult");
    FUZZ_CHECK(wg_x25519_register(sodium_mult, (base_fn)fz_sodium("crypto_scalarmult_base")) == 0,
               "register libsodium");
    ifma = wg_x25519_ifma_usable();
    FUZZ_CHECK(strcmp(wg_x25519_engine(), ifma ? "ifma" : "sodium") == 0,
               "the engine proves itself at registration where it can run");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t got[LANES][KEY], want[LANES][KEY];
    uint8_t *out[LANES];
    const uint8_t *scalars[LANES], *points[LANES];
    int wanted_rc[LANES], rcs[LANES];
    size_t n;

    if (!sodium_mult)
        setup();
    if (size < 1 + 2 * KEY)
        return 0;
    n = 1 + data[0] % LANES;
    if (n > (size - 1) / (2 * KEY))
        n = (size - 1) / (2 * KEY);
    for (size_t l = 0; l < n; l++) {
        scalars[l] = data + 1 + l * 2 * KEY;
        points[l] = scalars[l] + KEY;
        out[l] = got[l];
        memset(want[l], 0, KEY);
        /* libsodium: -1 when the result is zero (a point of small order). */
        wanted_rc[l] = sodium_mult(want[l], scalars[l], points[l]) == 0 ? 0 : -EINVAL;
    }
    if (ifma) {
        memset(got, 0xa5, sizeof(got));
        wg_x25519_ifma(n, out, scalars, points);
        for (size_t l = 0; l < n; l++)
            FUZZ_CHECK(memcmp(got[l], want[l], KEY) == 0, "engine, lane %zu of %zu", l, n);
    }
    memset(got, 0xa5, sizeof(got));
    wg_x25519_many(n, out, scalars, points, rcs);
    for (size_t l = 0; l < n; l++) {
        FUZZ_CHECK(rcs[l] == wanted_rc[l], "wg_x25519_many rc, item %zu of %zu: %d, want %d", l,
                   n, rcs[l], wanted_rc[l]);
        FUZZ_CHECK(memcmp(got[l], want[l], KEY) == 0, "wg_x25519_many, item %zu of %zu", l, n);
    }
    return 0;
}
