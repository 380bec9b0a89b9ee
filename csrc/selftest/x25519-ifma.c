/*
 * x25519-ifma.c - the eight-lane IFMA X25519 engine against RFC 7748 and the
 * reference ladder (x25519.c here), lane by lane, and wg_x25519_many (which
 * groups calls for it) against wg_x25519 one at a time. On a machine without
 * IFMA only the second part runs: wg_x25519_many then calls wg_x25519.
 */
#include <errno.h>
#include <string.h>

#include "../crypto/x25519-ifma.h"
#include "../crypto/x25519.h"
#include "selftest.h"

#define LANES WG_X25519_IFMA_LANES

/* Deterministic inputs (xorshift64), so a failure repeats. */
static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static void fill(uint8_t *out, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        out[i] = (uint8_t)(rng_state >> 32);
    }
}

/* u-coordinates that stress the reduction: 0, 1, p - 1, p, p + 1, 2^255 - 1
 * (non-canonical, reduced mod p), all ones (top bit ignored), and 9. */
static void edge_point(uint8_t u[32], size_t which)
{
    memset(u, 0, 32);
    switch (which % 8) {
    case 1: u[0] = 1; break;
    case 2: memset(u, 0xff, 32); u[0] = 0xec; u[31] = 0x7f; break;
    case 3: memset(u, 0xff, 32); u[0] = 0xed; u[31] = 0x7f; break;
    case 4: memset(u, 0xff, 32); u[0] = 0xee; u[31] = 0x7f; break;
    case 5: memset(u, 0xff, 32); u[31] = 0x7f; break;
    case 6: memset(u, 0xff, 32); break;
    case 7: u[0] = 9; break;
    default: break;
    }
}

/* One call of n lanes against the reference, lane by lane. */
static void check_lanes(size_t n, uint8_t k[LANES][32], uint8_t u[LANES][32], const char *what)
{
    uint8_t got[LANES][32], want[32];
    uint8_t *out[LANES];
    const uint8_t *ks[LANES], *us[LANES];

    for (size_t l = 0; l < n; l++) {
        out[l] = got[l];
        ks[l] = k[l];
        us[l] = u[l];
    }
    wg_x25519_ifma(n, out, ks, us);
    for (size_t l = 0; l < n; l++) {
        memset(want, 0, sizeof(want));
        (void)selftest_x25519_ref(want, k[l], u[l]);
        CHECK(memcmp(got[l], want, 32) == 0, "%s: lane %zu of %zu", what, l, n);
    }
}

static void engine_vectors(void)
{
    uint8_t k[LANES][32], u[LANES][32], out[32], next[32];
    uint8_t *outs[1] = { out };
    const uint8_t *ks[1], *us[1];
    uint8_t want[32];

    /* RFC 7748 5.2, iterated: k = u = 9, then k = the result and u = the old k. */
    memset(k[0], 0, 32);
    k[0][0] = 9;
    memcpy(u[0], k[0], 32);
    for (int i = 1; i <= 1000; i++) {
        ks[0] = k[0];
        us[0] = u[0];
        wg_x25519_ifma(1, outs, ks, us);
        memcpy(next, out, 32);
        memcpy(u[0], k[0], 32);
        memcpy(k[0], next, 32);
        if (i == 1) {
            selftest_unhex(want, 32,
                           "422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079");
            CHECK(memcmp(k[0], want, 32) == 0, "RFC 7748 iterated, once");
        }
    }
    selftest_unhex(want, 32, "684cf59ba83309552800ef566f2f4d3c1c3887c49360e3875f2eb94d99532c51");
    CHECK(memcmp(k[0], want, 32) == 0, "RFC 7748 iterated, 1,000 times");

    /* Random scalars with random and edge points, every lane count. */
    for (int round = 0; round < 64; round++) {
        size_t n = (size_t)round % LANES + 1;

        for (size_t l = 0; l < n; l++) {
            fill(k[l], 32);
            if ((round + (int)l) % 3 == 0)
                edge_point(u[l], (size_t)round + l);
            else
                fill(u[l], 32);
        }
        check_lanes(n, k, u, "random and edge inputs");
    }
}

/* wg_x25519_many over every count up to three groups, a low-order point among them. */
static void many_matches_single(void)
{
    enum { MAX = 3 * LANES + 2 };
    uint8_t k[MAX][32], u[MAX][32], got[MAX][32], want[32];
    uint8_t *out[MAX];
    const uint8_t *ks[MAX], *us[MAX];
    int rcs[MAX];

    for (size_t n = 1; n <= MAX; n++) {
        for (size_t i = 0; i < n; i++) {
            fill(k[i], 32);
            fill(u[i], 32);
            if (i == n / 2)
                memset(u[i], 0, 32);                /* order 1: refused */
            out[i] = got[i];
            ks[i] = k[i];
            us[i] = u[i];
        }
        memset(got, 0xa5, sizeof(got));
        wg_x25519_many(n, out, ks, us, rcs);
        for (size_t i = 0; i < n; i++) {
            int rc = wg_x25519(want, k[i], u[i]);

            CHECK(rcs[i] == rc && memcmp(got[i], want, 32) == 0,
                  "wg_x25519_many(%zu), item %zu: rc %d, want %d", n, i, rcs[i], rc);
        }
        CHECK(rcs[n / 2] == -EINVAL && wg_x25519_is_zero(got[n / 2], 32),
              "wg_x25519_many(%zu): the low-order point refused, output zeroed", n);
    }
}

void selftest_x25519_ifma(void)
{
    if (wg_x25519_ifma_usable())
        engine_vectors();
    /* selftest_x25519 registered the reference: the engine was checked against it. */
    CHECK(strcmp(wg_x25519_engine(), wg_x25519_ifma_usable() ? "ifma" : "sodium") == 0,
          "engine %s", wg_x25519_engine());
    CHECK(wg_x25519_lanes() == (wg_x25519_ifma_usable() ? LANES : 1), "lanes");
    many_matches_single();
}
