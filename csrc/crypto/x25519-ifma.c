/*
 * x25519-ifma.c - eight X25519 scalar multiplications at once with AVX-512
 * IFMA (52-bit multiply-accumulate): a responder's batch of handshakes has
 * dozens of independent ones, and one lane per multiplication costs about
 * a fifth of a scalar ladder on a core that has IFMA.
 *
 * Theory of operation. RFC 7748's Montgomery ladder, "vertically": a field
 * element of the eight lanes is five zmm registers, register j holding
 * limb j (52 bits, radix 2^52) of every lane, so each field operation is a
 * handful of instructions for all eight. Every lane runs the same
 * instructions; a lane's scalar bits only choose, through an opmask, which
 * of its two points a blend keeps (the conditional swap), so the time is
 * independent of every scalar and every point.
 *
 * IFMA multiplies only the low 52 bits of its inputs, so an element that
 * goes into a product must have every limb below 2^52: sums, differences
 * and products are brought back to that form ("normalized": limbs 0-3
 * below 2^52, limb 4 below 2^48, so the value is below 2^256) right after
 * they are formed. The value itself is kept reduced only loosely (below
 * 2^256, not below p) until the end, where each lane is made canonical.
 *
 * Reduction: p = 2^255 - 19, so 2^255 = 19 and 2^260 = 32 * 19 = 608
 * (mod p). A product's columns 5-9 (weights 2^260 and up) fold into
 * columns 0-4 times 608; the bits of limb 4 at 2^255 and up fold into
 * limb 0 times 19.
 */
#define _GNU_SOURCE                     /* explicit_bzero */
#include "x25519-ifma.h"

#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>

#include "chacha20poly1305.h"           /* cpuid7_ebx_if_os_saves */

#define IFMA __attribute__((target("avx512f,avx512dq,avx512ifma")))
#define INLINE static inline __attribute__((always_inline)) IFMA
/* Every loop over limbs or vectors unrolled whole, at any -O: the arrays of
 * registers must stay registers. */
#define UNROLL _Pragma("GCC unroll 32")

#define LANES WG_X25519_IFMA_LANES
#define M52 ((UINT64_C(1) << 52) - 1)
#define M47 ((UINT64_C(1) << 47) - 1)
#define A24 121665                      /* (486662 - 2) / 4, RFC 7748 */

typedef struct {
    __m512i v[5];
} fe8;

bool wg_x25519_ifma_usable(void)
{
    const uint32_t need = bit_AVX512F | bit_AVX512DQ | bit_AVX512IFMA;

    return (cpuid7_ebx_if_os_saves(XCR0_AVX512) & need) == need;
}

INLINE __m512i splat(uint64_t x)
{
    return _mm512_set1_epi64((long long)x);
}

INLINE __m512i times19(__m512i x)
{
    return _mm512_add_epi64(_mm512_add_epi64(x, _mm512_slli_epi64(x, 1)),
                            _mm512_slli_epi64(x, 4));
}

INLINE __m512i times608(__m512i x)
{
    return _mm512_mullo_epi64(x, splat(608));
}

/* Limbs below 2^63 (limb 0 below 2^62) to normalized form: the bits of limb 4
 * at 2^255 and up fold first, so that the carry chain can end at limb 4. */
INLINE void normalize(fe8 *r)
{
    __m512i c = _mm512_srli_epi64(r->v[4], 47);

    r->v[4] = _mm512_and_si512(r->v[4], splat(M47));
    r->v[0] = _mm512_add_epi64(r->v[0], times19(c));
    UNROLL
    for (int i = 0; i < 4; i++) {
        c = _mm512_srli_epi64(r->v[i], 52);
        r->v[i] = _mm512_and_si512(r->v[i], splat(M52));
        r->v[i + 1] = _mm512_add_epi64(r->v[i + 1], c);
    }
}

INLINE void fe8_add(fe8 *r, const fe8 *a, const fe8 *b)
{
    UNROLL
    for (int i = 0; i < 5; i++)
        r->v[i] = _mm512_add_epi64(a->v[i], b->v[i]);
    normalize(r);
}

/* a - b as a + 16p - b: 16p's limbs (2^53 - 304, 2^53 - 2 three times, 2^51 - 2)
 * are each at least a normalized limb, so no limb goes negative. */
INLINE void fe8_sub(fe8 *r, const fe8 *a, const fe8 *b)
{
    static const uint64_t p16[5] = {
        (UINT64_C(1) << 53) - 304, (UINT64_C(1) << 53) - 2, (UINT64_C(1) << 53) - 2,
        (UINT64_C(1) << 53) - 2, (UINT64_C(1) << 51) - 2,
    };

    UNROLL
    for (int i = 0; i < 5; i++)
        r->v[i] = _mm512_sub_epi64(_mm512_add_epi64(a->v[i], splat(p16[i])), b->v[i]);
    normalize(r);
}

/* Columns t[0..9] of a product (each below 2^57) to a normalized element.
 * Column 9 holds one high half, so it is below 2^52 and folds whole. */
INLINE void reduce(fe8 *r, __m512i t[10])
{
    UNROLL
    for (int k = 5; k < 9; k++) {
        t[k - 5] = _mm512_add_epi64(t[k - 5], times608(_mm512_and_si512(t[k], splat(M52))));
        t[k - 4] = _mm512_add_epi64(t[k - 4], times608(_mm512_srli_epi64(t[k], 52)));
    }
    t[4] = _mm512_add_epi64(t[4], times608(t[9]));
    UNROLL
    for (int i = 0; i < 5; i++)
        r->v[i] = t[i];
    normalize(r);
}

INLINE void fe8_mul(fe8 *r, const fe8 *a, const fe8 *b)
{
    __m512i t[10];

    UNROLL
    for (int k = 0; k < 10; k++)
        t[k] = _mm512_setzero_si512();
    UNROLL
    for (int i = 0; i < 5; i++) {
        UNROLL
        for (int j = 0; j < 5; j++) {
            t[i + j] = _mm512_madd52lo_epu64(t[i + j], a->v[i], b->v[j]);
            t[i + j + 1] = _mm512_madd52hi_epu64(t[i + j + 1], a->v[i], b->v[j]);
        }
    }
    reduce(r, t);
}

/* The cross products once, doubled, then the squares. */
INLINE void fe8_sqr(fe8 *r, const fe8 *a)
{
    __m512i t[10];

    UNROLL
    for (int k = 0; k < 10; k++)
        t[k] = _mm512_setzero_si512();
    UNROLL
    for (int i = 0; i < 5; i++) {
        UNROLL
        for (int j = i + 1; j < 5; j++) {
            t[i + j] = _mm512_madd52lo_epu64(t[i + j], a->v[i], a->v[j]);
            t[i + j + 1] = _mm512_madd52hi_epu64(t[i + j + 1], a->v[i], a->v[j]);
        }
    }
    UNROLL
    for (int k = 0; k < 10; k++)
        t[k] = _mm512_add_epi64(t[k], t[k]);
    UNROLL
    for (int i = 0; i < 5; i++) {
        t[2 * i] = _mm512_madd52lo_epu64(t[2 * i], a->v[i], a->v[i]);
        t[2 * i + 1] = _mm512_madd52hi_epu64(t[2 * i + 1], a->v[i], a->v[i]);
    }
    reduce(r, t);
}

INLINE void fe8_sqr_n(fe8 *r, const fe8 *a, int n)
{
    fe8_sqr(r, a);
    for (int i = 1; i < n; i++)
        fe8_sqr(r, r);
}

/* aa + a24 * e: a24 is below 2^17, so the high halves are small and limb 4's
 * (weight 2^260) folds times 608. */
INLINE void fe8_add_a24_mul(fe8 *r, const fe8 *aa, const fe8 *e)
{
    __m512i hi[5];

    UNROLL
    for (int i = 0; i < 5; i++) {
        r->v[i] = _mm512_madd52lo_epu64(aa->v[i], e->v[i], splat(A24));
        hi[i] = _mm512_madd52hi_epu64(_mm512_setzero_si512(), e->v[i], splat(A24));
    }
    UNROLL
    for (int i = 0; i < 4; i++)
        r->v[i + 1] = _mm512_add_epi64(r->v[i + 1], hi[i]);
    r->v[0] = _mm512_add_epi64(r->v[0], times608(hi[4]));
    normalize(r);
}

/* Lanes set in m exchange a and b; the others keep both. */
INLINE void fe8_cswap(__mmask8 m, fe8 *a, fe8 *b)
{
    UNROLL
    for (int i = 0; i < 5; i++) {
        __m512i x = a->v[i];

        a->v[i] = _mm512_mask_blend_epi64(m, a->v[i], b->v[i]);
        b->v[i] = _mm512_mask_blend_epi64(m, b->v[i], x);
    }
}

/* z^(p - 2) = 1/z (and 0 for 0), by the usual chain of 254 squarings and
 * 11 multiplications: p - 2 = 2^255 - 21. */
IFMA static void fe8_invert(fe8 *r, const fe8 *z)
{
    fe8 z2, z9, z11, z5_0, z10_0, z20_0, z50_0, z100_0, t;

    fe8_sqr(&z2, z);                    /* 2 */
    fe8_sqr_n(&t, &z2, 2);              /* 8 */
    fe8_mul(&z9, &t, z);                /* 9 */
    fe8_mul(&z11, &z9, &z2);            /* 11 */
    fe8_sqr(&t, &z11);                  /* 22 */
    fe8_mul(&z5_0, &t, &z9);            /* 2^5 - 1 */
    fe8_sqr_n(&t, &z5_0, 5);
    fe8_mul(&z10_0, &t, &z5_0);         /* 2^10 - 1 */
    fe8_sqr_n(&t, &z10_0, 10);
    fe8_mul(&z20_0, &t, &z10_0);        /* 2^20 - 1 */
    fe8_sqr_n(&t, &z20_0, 20);
    fe8_mul(&t, &t, &z20_0);            /* 2^40 - 1 */
    fe8_sqr_n(&t, &t, 10);
    fe8_mul(&z50_0, &t, &z10_0);        /* 2^50 - 1 */
    fe8_sqr_n(&t, &z50_0, 50);
    fe8_mul(&z100_0, &t, &z50_0);       /* 2^100 - 1 */
    fe8_sqr_n(&t, &z100_0, 100);
    fe8_mul(&t, &t, &z100_0);           /* 2^200 - 1 */
    fe8_sqr_n(&t, &t, 50);
    fe8_mul(&t, &t, &z50_0);            /* 2^250 - 1 */
    fe8_sqr_n(&t, &t, 5);               /* 2^255 - 32 */
    fe8_mul(r, &t, &z11);               /* 2^255 - 21 */
}

/* One lane's u-coordinate (top bit ignored, as RFC 7748 says) into limbs. */
static void unpack(uint64_t limbs[5][LANES], size_t lane, const uint8_t u[32])
{
    uint64_t w[4];

    for (int i = 0; i < 4; i++) {
        w[i] = 0;
        for (int b = 7; b >= 0; b--)
            w[i] = w[i] << 8 | u[8 * i + b];
    }
    w[3] &= ~(UINT64_C(1) << 63);
    limbs[0][lane] = w[0] & M52;
    limbs[1][lane] = (w[0] >> 52 | w[1] << 12) & M52;
    limbs[2][lane] = (w[1] >> 40 | w[2] << 24) & M52;
    limbs[3][lane] = (w[2] >> 28 | w[3] << 36) & M52;
    limbs[4][lane] = w[3] >> 16;
}

/* Limbs 0-3 below 2^52 and limb 4 below 2^47 + 2^12: carry, then fold bit 255 and up. */
static void fold_top(uint64_t l[5])
{
    uint64_t c = l[4] >> 47;

    l[4] &= M47;
    l[0] += 19 * c;
    for (int i = 0; i < 4; i++) {
        l[i + 1] += l[i] >> 52;
        l[i] &= M52;
    }
}

/* One lane's normalized value to its canonical 32 bytes, without a branch. */
static void pack(uint8_t out[32], uint64_t limbs[5][LANES], size_t lane)
{
    uint64_t l[5], t[5], w[4], keep;

    for (int i = 0; i < 5; i++)
        l[i] = limbs[i][lane];
    fold_top(l);
    fold_top(l);                        /* now below 2^255 */
    /* value >= p exactly when value + 19 reaches 2^255. */
    memcpy(t, l, sizeof(t));
    t[0] += 19;
    for (int i = 0; i < 4; i++) {
        t[i + 1] += t[i] >> 52;
        t[i] &= M52;
    }
    keep = (t[4] >> 47) - 1;            /* all ones: below p, keep l */
    t[4] &= M47;
    for (int i = 0; i < 5; i++)
        l[i] = (l[i] & keep) | (t[i] & ~keep);
    w[0] = l[0] | l[1] << 52;
    w[1] = l[1] >> 12 | l[2] << 40;
    w[2] = l[2] >> 24 | l[3] << 28;
    w[3] = l[3] >> 36 | l[4] << 16;
    for (int i = 0; i < 32; i++)
        out[i] = (uint8_t)(w[i / 8] >> (8 * (i % 8)));
    explicit_bzero(l, sizeof(l));
    explicit_bzero(t, sizeof(t));
    explicit_bzero(w, sizeof(w));
}

IFMA static void load(fe8 *r, uint64_t limbs[5][LANES])
{
    for (int i = 0; i < 5; i++)
        r->v[i] = _mm512_loadu_si512(limbs[i]);
}

IFMA static void store(uint64_t limbs[5][LANES], const fe8 *a)
{
    for (int i = 0; i < 5; i++)
        _mm512_storeu_si512(limbs[i], a->v[i]);
}

/* swaps[i]: the lanes whose clamped scalar has different bits i and i + 1
 * (bit 255 is 0), the ladder's conditional swap before step i; swaps[255]
 * is bit 0, the final swap. */
static void swap_masks(uint8_t swaps[256], size_t n, const uint8_t *const scalars[])
{
    uint8_t k[LANES][32];

    memset(k, 0, sizeof(k));
    for (size_t l = 0; l < n; l++) {
        memcpy(k[l], scalars[l], 32);
        k[l][0] &= 248;
        k[l][31] = (uint8_t)((k[l][31] & 127) | 64);
    }
    for (int i = 0; i < 256; i++) {
        int bit = i < 255 ? i : 0;
        uint8_t m = 0;

        for (size_t l = 0; l < LANES; l++) {
            unsigned int here = (k[l][bit / 8] >> (bit % 8)) & 1;
            unsigned int above = bit < 254 ? (k[l][(bit + 1) / 8] >> ((bit + 1) % 8)) & 1 : 0;

            m |= (uint8_t)((i < 255 ? here ^ above : here) << l);
        }
        swaps[i] = m;
    }
    explicit_bzero(k, sizeof(k));
}

IFMA static void ladder(uint64_t out[5][LANES], uint64_t u[5][LANES], const uint8_t swaps[256])
{
    fe8 x1, x2, z2, x3, z3, a, aa, b, bb, e, c, d, da, cb, t;

    load(&x1, u);
    x3 = x1;
    for (int i = 0; i < 5; i++) {
        x2.v[i] = z3.v[i] = splat(i == 0);
        z2.v[i] = _mm512_setzero_si512();
    }
    for (int i = 254; i >= 0; i--) {
        fe8_cswap(swaps[i], &x2, &x3);
        fe8_cswap(swaps[i], &z2, &z3);
        fe8_add(&a, &x2, &z2);
        fe8_sqr(&aa, &a);
        fe8_sub(&b, &x2, &z2);
        fe8_sqr(&bb, &b);
        fe8_sub(&e, &aa, &bb);
        fe8_add(&c, &x3, &z3);
        fe8_sub(&d, &x3, &z3);
        fe8_mul(&da, &d, &a);
        fe8_mul(&cb, &c, &b);
        fe8_add(&t, &da, &cb);
        fe8_sqr(&x3, &t);
        fe8_sub(&t, &da, &cb);
        fe8_sqr(&t, &t);
        fe8_mul(&z3, &x1, &t);
        fe8_mul(&x2, &aa, &bb);
        fe8_add_a24_mul(&t, &aa, &e);
        fe8_mul(&z2, &e, &t);
    }
    fe8_cswap(swaps[255], &x2, &x3);
    fe8_cswap(swaps[255], &z2, &z3);
    fe8_invert(&z2, &z2);
    fe8_mul(&x2, &x2, &z2);
    store(out, &x2);
}

void wg_x25519_ifma(size_t n, uint8_t *const out[], const uint8_t *const scalars[],
                    const uint8_t *const points[])
{
    /* Unused lanes compute with u = 0 and scalar 0: the same instructions. */
    uint64_t u[5][LANES], x[5][LANES];
    uint8_t swaps[256];

    if (n > LANES)
        n = LANES;
    memset(u, 0, sizeof(u));
    for (size_t l = 0; l < n; l++)
        unpack(u, l, points[l]);
    swap_masks(swaps, n, scalars);
    ladder(x, u, swaps);
    for (size_t l = 0; l < n; l++)
        pack(out[l], x, l);
    explicit_bzero(swaps, sizeof(swaps));
    explicit_bzero(x, sizeof(x));
    explicit_bzero(u, sizeof(u));
}

#else

bool wg_x25519_ifma_usable(void)
{
    return false;
}

void wg_x25519_ifma(size_t n, uint8_t *const out[], const uint8_t *const scalars[],
                    const uint8_t *const points[])
{
    (void)n;
    (void)out;
    (void)scalars;
    (void)points;
}

#endif
