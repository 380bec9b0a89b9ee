/*
 * poly1305.h - scalar Poly1305 (RFC 8439 section 2.5), in two widths.
 *
 * The accumulator h and the clamped key r are numbers below 2^130; every
 * block does h = (h + m + 2^128) * r mod p with p = 2^130 - 5, and the tag
 * is (h mod p) + s mod 2^128.
 *
 * poly1305_64: h in three 64-bit words (h2 holds bits 128 and up, a few
 * bits only), r in two. Clamping clears the low two bits of r1, so a
 * product term at 2^128 folds back as h * r1 * 2^128 = h * (r1 / 4) * 2^130
 * = h * 5 * r1 / 4 (mod p): that is s1 = r1 + r1 / 4, and no product needs
 * more than 64x64->128 multiplications. Needs unsigned __int128.
 *
 * poly1305_32: h and r in five 26-bit limbs, products 32x32->64, for
 * targets without a 128-bit type (armv7). Always compiled, so 64-bit hosts
 * test it too (the "portable32" backend).
 *
 * All blocks given to *_blocks are full 16-byte blocks with the 2^128 bit
 * set: the AEAD zero-pads its inputs to 16 bytes, so that is all it needs.
 */
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "chacha20.h"

#define POLY1305_BLOCK_SIZE 16
#define POLY1305_KEY_SIZE 32
#define POLY1305_TAG_SIZE 16

/* Overwrites secrets in a way the compiler may not drop as a dead store. */
static inline void wipe(void *p, size_t len)
{
    memset(p, 0, len);
    __asm__ __volatile__("" : : "r"(p) : "memory");
}

#if defined(__SIZEOF_INT128__)
typedef unsigned __int128 u128;

struct poly1305_64 {
    uint64_t h0, h1, h2;
    uint64_t r0, r1, s1;
    uint64_t pad0, pad1;            /* s, added at the end */
};

static inline void poly1305_64_init(struct poly1305_64 *st, const uint8_t key[POLY1305_KEY_SIZE])
{
    st->h0 = st->h1 = st->h2 = 0;
    st->r0 = get_le64(key) & UINT64_C(0x0ffffffc0fffffff);
    st->r1 = get_le64(key + 8) & UINT64_C(0x0ffffffc0ffffffc);
    st->s1 = st->r1 + (st->r1 >> 2);
    st->pad0 = get_le64(key + 16);
    st->pad1 = get_le64(key + 24);
}

/*
 * One multiplication h * r mod p, leaving h partially reduced: h2 stays
 * below 8, which keeps h2 * s1 and h2 * r0 within 64 bits. Carries are
 * plain 64-bit compares: gcc turns 128-bit additions of zero-extended
 * words into round trips through the stack, on the critical path.
 */
static inline __attribute__((always_inline)) void
poly1305_64_mul(uint64_t *h0, uint64_t *h1, uint64_t *h2, uint64_t r0, uint64_t r1, uint64_t s1)
{
    u128 d0 = (u128)*h0 * r0 + (u128)*h1 * s1;
    u128 d1 = (u128)*h0 * r1 + (u128)*h1 * r0 + (*h2 * s1) + (uint64_t)(d0 >> 64);
    uint64_t d2 = *h2 * r0 + (uint64_t)(d1 >> 64);
    /* Bits from 2^130 up are worth 5 times as much at 2^0. */
    uint64_t c = (d2 >> 2) + (d2 & ~UINT64_C(3));
    uint64_t lo = (uint64_t)d0 + c, mid;

    c = lo < c;
    mid = (uint64_t)d1 + c;
    c = mid < c;
    *h0 = lo;
    *h1 = mid;
    *h2 = (d2 & 3) + c;
}

/*
 * hibit is 1 for every block the AEAD feeds; 0 only for RFC 8439's raw
 * Poly1305 vectors, whose last partial block carries its own 0x01 byte.
 * Always inlined, with h in locals: the vector backends interleave a few
 * blocks at a time with their ChaCha20 rounds, and a call or a round trip
 * through memory per block would lengthen the multiplication chain.
 */
static inline __attribute__((always_inline)) void
poly1305_64_blocks_hibit(struct poly1305_64 *st, const uint8_t *m, size_t nblocks, uint64_t hibit)
{
    uint64_t h0 = st->h0, h1 = st->h1, h2 = st->h2;
    const uint64_t r0 = st->r0, r1 = st->r1, s1 = st->s1;

    for (size_t i = 0; i < nblocks; i++, m += POLY1305_BLOCK_SIZE) {
        uint64_t m0 = get_le64(m), m1 = get_le64(m + 8), c;

        h0 += m0;
        c = h0 < m0;
        h1 += c;
        h2 += hibit + (h1 < c);
        h1 += m1;
        h2 += h1 < m1;
        poly1305_64_mul(&h0, &h1, &h2, r0, r1, s1);
    }
    st->h0 = h0;
    st->h1 = h1;
    st->h2 = h2;
}

static inline __attribute__((always_inline)) void
poly1305_64_blocks(struct poly1305_64 *st, const uint8_t *m, size_t nblocks)
{
    poly1305_64_blocks_hibit(st, m, nblocks, 1);
}

/* h mod p, plus s, in constant time; wipes the state. */
static inline void poly1305_64_final(struct poly1305_64 *st, uint8_t tag[POLY1305_TAG_SIZE])
{
    uint64_t h0 = st->h0, h1 = st->h1, h2 = st->h2, g0, g1, g2, mask;
    u128 t;

    /* Fold everything above 2^130 once more: now h < 2^130 + small. */
    t = (u128)h0 + (h2 >> 2) * 5;
    h2 &= 3;
    h0 = (uint64_t)t;
    t = (u128)h1 + (uint64_t)(t >> 64);
    h1 = (uint64_t)t;
    h2 += (uint64_t)(t >> 64);
    /* g = h + 5 - 2^130: if it does not go negative, h >= p and g is h mod p. */
    t = (u128)h0 + 5;
    g0 = (uint64_t)t;
    t = (u128)h1 + (uint64_t)(t >> 64);
    g1 = (uint64_t)t;
    g2 = h2 + (uint64_t)(t >> 64);
    mask = (uint64_t)0 - (g2 >> 2);     /* all ones if h >= p */
    h0 = (h0 & ~mask) | (g0 & mask);
    h1 = (h1 & ~mask) | (g1 & mask);
    t = (u128)h0 + st->pad0;
    put_le64(tag, (uint64_t)t);
    put_le64(tag + 8, h1 + st->pad1 + (uint64_t)(t >> 64));
    wipe(st, sizeof(*st));
}
#endif /* __SIZEOF_INT128__ */

struct poly1305_32 {
    uint32_t h[5];
    uint32_t r[5];
    uint32_t s[5];                  /* 5 * r, s[0] unused */
    uint32_t pad[4];
};

static inline void poly1305_32_init(struct poly1305_32 *st, const uint8_t key[POLY1305_KEY_SIZE])
{
    /* r clamped and cut into 26-bit limbs at bits 0, 26, 52, 78, 104. */
    st->r[0] = get_le32(key) & 0x3ffffff;
    st->r[1] = (get_le32(key + 3) >> 2) & 0x3ffff03;
    st->r[2] = (get_le32(key + 6) >> 4) & 0x3ffc0ff;
    st->r[3] = (get_le32(key + 9) >> 6) & 0x3f03fff;
    st->r[4] = (get_le32(key + 12) >> 8) & 0x00fffff;
    for (int i = 0; i < 5; i++) {
        st->h[i] = 0;
        st->s[i] = st->r[i] * 5;
    }
    for (int i = 0; i < 4; i++)
        st->pad[i] = get_le32(key + 16 + 4 * i);
}

static inline void poly1305_32_blocks_hibit(struct poly1305_32 *st, const uint8_t *m,
                                            size_t nblocks, uint32_t hibit)
{
    const uint32_t r0 = st->r[0], r1 = st->r[1], r2 = st->r[2], r3 = st->r[3], r4 = st->r[4];
    const uint32_t s1 = st->s[1], s2 = st->s[2], s3 = st->s[3], s4 = st->s[4];
    uint32_t h0 = st->h[0], h1 = st->h[1], h2 = st->h[2], h3 = st->h[3], h4 = st->h[4];

    for (size_t i = 0; i < nblocks; i++, m += POLY1305_BLOCK_SIZE) {
        uint64_t d0, d1, d2, d3, d4;
        uint32_t c;

        h0 += get_le32(m) & 0x3ffffff;
        h1 += (get_le32(m + 3) >> 2) & 0x3ffffff;
        h2 += (get_le32(m + 6) >> 4) & 0x3ffffff;
        h3 += (get_le32(m + 9) >> 6) & 0x3ffffff;
        h4 += (get_le32(m + 12) >> 8) | (hibit << 24);

        /* Limb i*j lands at 26(i+j); past 2^130 it wraps with a factor 5. */
        d0 = (uint64_t)h0 * r0 + (uint64_t)h1 * s4 + (uint64_t)h2 * s3 +
             (uint64_t)h3 * s2 + (uint64_t)h4 * s1;
        d1 = (uint64_t)h0 * r1 + (uint64_t)h1 * r0 + (uint64_t)h2 * s4 +
             (uint64_t)h3 * s3 + (uint64_t)h4 * s2;
        d2 = (uint64_t)h0 * r2 + (uint64_t)h1 * r1 + (uint64_t)h2 * r0 +
             (uint64_t)h3 * s4 + (uint64_t)h4 * s3;
        d3 = (uint64_t)h0 * r3 + (uint64_t)h1 * r2 + (uint64_t)h2 * r1 +
             (uint64_t)h3 * r0 + (uint64_t)h4 * s4;
        d4 = (uint64_t)h0 * r4 + (uint64_t)h1 * r3 + (uint64_t)h2 * r2 +
             (uint64_t)h3 * r1 + (uint64_t)h4 * r0;

        c = (uint32_t)(d0 >> 26); h0 = (uint32_t)d0 & 0x3ffffff;
        d1 += c; c = (uint32_t)(d1 >> 26); h1 = (uint32_t)d1 & 0x3ffffff;
        d2 += c; c = (uint32_t)(d2 >> 26); h2 = (uint32_t)d2 & 0x3ffffff;
        d3 += c; c = (uint32_t)(d3 >> 26); h3 = (uint32_t)d3 & 0x3ffffff;
        d4 += c; c = (uint32_t)(d4 >> 26); h4 = (uint32_t)d4 & 0x3ffffff;
        h0 += c * 5; c = h0 >> 26; h0 &= 0x3ffffff;
        h1 += c;
    }
    st->h[0] = h0; st->h[1] = h1; st->h[2] = h2; st->h[3] = h3; st->h[4] = h4;
}

static inline void poly1305_32_blocks(struct poly1305_32 *st, const uint8_t *m, size_t nblocks)
{
    poly1305_32_blocks_hibit(st, m, nblocks, 1);
}

static inline void poly1305_32_final(struct poly1305_32 *st, uint8_t tag[POLY1305_TAG_SIZE])
{
    uint32_t h0 = st->h[0], h1 = st->h[1], h2 = st->h[2], h3 = st->h[3], h4 = st->h[4];
    uint32_t g0, g1, g2, g3, g4, c, mask;
    uint64_t f;

    /* Full carry, so every limb is below 2^26 and h < 2^130 + small. */
    c = h1 >> 26; h1 &= 0x3ffffff;
    h2 += c; c = h2 >> 26; h2 &= 0x3ffffff;
    h3 += c; c = h3 >> 26; h3 &= 0x3ffffff;
    h4 += c; c = h4 >> 26; h4 &= 0x3ffffff;
    h0 += c * 5; c = h0 >> 26; h0 &= 0x3ffffff;
    h1 += c;
    /* g = h + 5 - 2^130; pick it when it does not go negative (h >= p). */
    g0 = h0 + 5; c = g0 >> 26; g0 &= 0x3ffffff;
    g1 = h1 + c; c = g1 >> 26; g1 &= 0x3ffffff;
    g2 = h2 + c; c = g2 >> 26; g2 &= 0x3ffffff;
    g3 = h3 + c; c = g3 >> 26; g3 &= 0x3ffffff;
    g4 = h4 + c - (1u << 26);
    mask = (g4 >> 31) - 1;              /* all ones if g4 did not underflow */
    h0 = (h0 & ~mask) | (g0 & mask);
    h1 = (h1 & ~mask) | (g1 & mask);
    h2 = (h2 & ~mask) | (g2 & mask);
    h3 = (h3 & ~mask) | (g3 & mask);
    h4 = (h4 & ~mask) | (g4 & mask);
    /* Repack to 4 x 32 bits and add s mod 2^128. */
    h0 = h0 | h1 << 26;
    h1 = h1 >> 6 | h2 << 20;
    h2 = h2 >> 12 | h3 << 14;
    h3 = h3 >> 18 | h4 << 8;
    f = (uint64_t)h0 + st->pad[0]; put_le32(tag, (uint32_t)f);
    f = (uint64_t)h1 + st->pad[1] + (f >> 32); put_le32(tag + 4, (uint32_t)f);
    f = (uint64_t)h2 + st->pad[2] + (f >> 32); put_le32(tag + 8, (uint32_t)f);
    f = (uint64_t)h3 + st->pad[3] + (f >> 32); put_le32(tag + 12, (uint32_t)f);
    wipe(st, sizeof(*st));
}
