/*
 * chacha20poly1305-avx512.c - ChaCha20 16 blocks at a time and Poly1305 8
 * blocks at a time with AVX-512 IFMA (52-bit multiply-accumulate).
 *
 * Theory of operation.
 *
 * ChaCha20 runs in batches. A full batch is 16 blocks "vertically": zmm
 * register i holds word i of 16 consecutive blocks, so each quarter-round
 * step is one instruction for all 16; a 16x16 transpose then turns the
 * words back into blocks. Short batches (4 or 8 blocks) run "horizontally":
 * one zmm holds one row of 4 blocks, one per 128-bit lane, which costs more
 * instructions per block but wastes none on short tails. A 1420-byte packet
 * takes 24 blocks: a vertical 16 (block 0 is the Poly1305 key) and a
 * horizontal 8. Keystream goes to a stack buffer; then the data is xored
 * with it, the last partial block with masked loads and stores.
 *
 * Poly1305 keeps 8 accumulators, one per zmm lane, in radix 2^44 (limbs of
 * 44, 44 and 42 bits), so that IFMA's 52-bit products have room for lazy
 * carries. Lane j takes blocks j, j+8, j+16, ... of each 128-byte group and
 * is multiplied by r^8 between groups; the last group is multiplied lane by
 * lane by r^8 .. r^1 (in lane order), so that the lanes' sum is the usual
 * Horner evaluation. Whatever is left (fewer than 8 full blocks, the padded
 * partial block, the lengths) goes through the scalar 64-bit code.
 *
 * One pass: each batch is MACed right after it is encrypted (seal), or
 * right before it is decrypted (open), while it is in L1.
 */
#include "chacha20poly1305.h"

#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>

#define AVX512 __attribute__((target("avx512f,avx512vl,avx512bw,avx512ifma,bmi2")))
#define INLINE static inline __attribute__((always_inline)) AVX512

/* Below this many bytes of ciphertext, setting up r^1..r^8 costs more
 * than the scalar code it saves. */
#define VECTOR_POLY_MIN 256
#define GROUP_SIZE 128                  /* 8 Poly1305 blocks, one per lane */
#define BATCH_MAX 1024                  /* 16 ChaCha20 blocks */

static bool usable(void)
{
    const uint32_t need = bit_AVX512F | bit_AVX512VL | bit_AVX512BW | bit_AVX512IFMA | bit_BMI2;

    return (cpuid7_ebx_if_os_saves(XCR0_AVX512) & need) == need;
}

/* ---- Poly1305 ------------------------------------------------------------ */

#define M44 ((UINT64_C(1) << 44) - 1)
#define M42 ((UINT64_C(1) << 42) - 1)

/* A multiplier in radix 2^44, with 20 * r1 and 20 * r2 for the terms that
 * wrap past 2^132 (2^132 = 4 * 2^130 = 20 mod p). */
struct mul44 {
    __m512i r0, r1, r2, s1, s2;
};

struct mac {
    struct poly1305_64 sc;              /* scalar state: key, and h outside the vector part */
    __m512i h0, h1, h2;                 /* 8 lane accumulators */
    struct mul44 r8;                    /* r^8 in every lane */
    struct mul44 last;                  /* r^8 .. r^1, in the lanes' block order */
    const uint8_t *ct;                  /* the ciphertext */
    size_t groups, groups_done;         /* 128-byte groups for the vector part */
    size_t ready;                       /* how much of ct mac_step may read */
    size_t done;                        /* bytes of ciphertext MACed by the scalar code */
    size_t len;
};

INLINE void to_limbs44(uint64_t h0, uint64_t h1, uint64_t h2, uint64_t out[3])
{
    out[0] = h0 & M44;
    out[1] = (h0 >> 44 | h1 << 20) & M44;
    out[2] = h1 >> 24 | h2 << 40;
}

/* h = (h + m) * r mod p for 8 lanes, leaving limbs below 2^44, 2^44 + 2^14
 * and 2^42: with a message block added, every input stays below 2^52,
 * as IFMA needs. Low and high halves of the products are summed apart;
 * a high half at limb k is worth 2^52 = 2^8 times limb k + 1. */
INLINE void mul_lanes(__m512i *h0, __m512i *h1, __m512i *h2, const struct mul44 *r)
{
    const __m512i zero = _mm512_setzero_si512(), m44 = _mm512_set1_epi64((long long)M44);
    __m512i l0, l1, l2, u0, u1, u2, c;

    l0 = _mm512_madd52lo_epu64(zero, *h0, r->r0);
    u0 = _mm512_madd52hi_epu64(zero, *h0, r->r0);
    l1 = _mm512_madd52lo_epu64(zero, *h0, r->r1);
    u1 = _mm512_madd52hi_epu64(zero, *h0, r->r1);
    l2 = _mm512_madd52lo_epu64(zero, *h0, r->r2);
    u2 = _mm512_madd52hi_epu64(zero, *h0, r->r2);
    l0 = _mm512_madd52lo_epu64(l0, *h1, r->s2);
    u0 = _mm512_madd52hi_epu64(u0, *h1, r->s2);
    l1 = _mm512_madd52lo_epu64(l1, *h1, r->r0);
    u1 = _mm512_madd52hi_epu64(u1, *h1, r->r0);
    l2 = _mm512_madd52lo_epu64(l2, *h1, r->r1);
    u2 = _mm512_madd52hi_epu64(u2, *h1, r->r1);
    l0 = _mm512_madd52lo_epu64(l0, *h2, r->s1);
    u0 = _mm512_madd52hi_epu64(u0, *h2, r->s1);
    l1 = _mm512_madd52lo_epu64(l1, *h2, r->s2);
    u1 = _mm512_madd52hi_epu64(u1, *h2, r->s2);
    l2 = _mm512_madd52lo_epu64(l2, *h2, r->r0);
    u2 = _mm512_madd52hi_epu64(u2, *h2, r->r0);

    l1 = _mm512_add_epi64(l1, _mm512_slli_epi64(u0, 8));
    l2 = _mm512_add_epi64(l2, _mm512_slli_epi64(u1, 8));
    c = _mm512_srli_epi64(l0, 44);
    l0 = _mm512_and_si512(l0, m44);
    l1 = _mm512_add_epi64(l1, c);
    c = _mm512_srli_epi64(l1, 44);
    l1 = _mm512_and_si512(l1, m44);
    l2 = _mm512_add_epi64(l2, c);
    /* Everything from 2^130 up, in units of 2^130, comes back times 5. */
    c = _mm512_add_epi64(_mm512_srli_epi64(l2, 42), _mm512_slli_epi64(u2, 10));
    l2 = _mm512_and_si512(l2, _mm512_set1_epi64((long long)M42));
    l0 = _mm512_add_epi64(l0, _mm512_add_epi64(c, _mm512_slli_epi64(c, 2)));
    c = _mm512_srli_epi64(l0, 44);
    *h0 = _mm512_and_si512(l0, m44);
    *h1 = _mm512_add_epi64(l1, c);
    *h2 = l2;
}

/* Adds 8 message blocks (128 bytes) to the lanes: lane order is blocks
 * 0, 4, 1, 5, 2, 6, 3, 7, as 64-bit unpacking leaves them. */
INLINE void add_group(struct mac *m, const uint8_t *p)
{
    const __m512i m44 = _mm512_set1_epi64((long long)M44);
    __m512i a = _mm512_loadu_si512((const void *)p), b = _mm512_loadu_si512((const void *)(p + 64));
    __m512i lo = _mm512_unpacklo_epi64(a, b), hi = _mm512_unpackhi_epi64(a, b);
    __m512i m0 = _mm512_and_si512(lo, m44);
    __m512i m1 = _mm512_and_si512(_mm512_or_si512(_mm512_srli_epi64(lo, 44),
                                                  _mm512_slli_epi64(hi, 20)), m44);
    __m512i m2 = _mm512_or_si512(_mm512_srli_epi64(hi, 24),
                                 _mm512_set1_epi64((long long)(UINT64_C(1) << 40)));

    m->h0 = _mm512_add_epi64(m->h0, m0);
    m->h1 = _mm512_add_epi64(m->h1, m1);
    m->h2 = _mm512_add_epi64(m->h2, m2);
}

INLINE void set_mul44(struct mul44 *r, const uint64_t limbs[8][3])
{
    uint64_t v[3][8] __attribute__((aligned(64)));

    for (int l = 0; l < 8; l++)
        for (int k = 0; k < 3; k++)
            v[k][l] = limbs[l][k];
    r->r0 = _mm512_load_si512((const void *)v[0]);
    r->r1 = _mm512_load_si512((const void *)v[1]);
    r->r2 = _mm512_load_si512((const void *)v[2]);
    /* 20 r = 16 r + 4 r */
    r->s1 = _mm512_add_epi64(_mm512_slli_epi64(r->r1, 4), _mm512_slli_epi64(r->r1, 2));
    r->s2 = _mm512_add_epi64(_mm512_slli_epi64(r->r2, 4), _mm512_slli_epi64(r->r2, 2));
}

/* r^1 .. r^8 with the scalar code (whose multiplier must be the clamped r),
 * then the vector multipliers. The accumulators start from the scalar h
 * (the associated data's MAC) in lane 0, the lane of the first block. */
INLINE void start_vector(struct mac *m)
{
    static const int lane_power[8] = { 8, 4, 7, 3, 6, 2, 5, 1 };
    uint64_t pow[9][3], limbs[8][3], h[3];
    uint64_t p0 = m->sc.r0, p1 = m->sc.r1, p2 = 0;

    for (int k = 1; k <= 8; k++) {
        to_limbs44(p0, p1, p2, pow[k]);
        if (k < 8)
            poly1305_64_mul(&p0, &p1, &p2, m->sc.r0, m->sc.r1, m->sc.s1);
    }
    for (int l = 0; l < 8; l++)
        memcpy(limbs[l], pow[8], sizeof(pow[8]));
    set_mul44(&m->r8, limbs);
    for (int l = 0; l < 8; l++)
        memcpy(limbs[l], pow[lane_power[l]], sizeof(pow[0]));
    set_mul44(&m->last, limbs);
    to_limbs44(m->sc.h0, m->sc.h1, m->sc.h2, h);
    m->h0 = _mm512_maskz_set1_epi64(1, (long long)h[0]);
    m->h1 = _mm512_maskz_set1_epi64(1, (long long)h[1]);
    m->h2 = _mm512_maskz_set1_epi64(1, (long long)h[2]);
    wipe(pow, sizeof(pow));
    wipe(limbs, sizeof(limbs));
}

/* Sums the lanes back into the scalar h (h2 kept below 8). */
INLINE void finish_vector(struct mac *m)
{
    uint64_t h0 = (uint64_t)_mm512_reduce_add_epi64(m->h0);
    uint64_t h1 = (uint64_t)_mm512_reduce_add_epi64(m->h1);
    uint64_t h2 = (uint64_t)_mm512_reduce_add_epi64(m->h2);
    u128 t = (u128)h0 + ((u128)h1 << 44);
    uint64_t w0 = (uint64_t)t, w1, w2, c;

    t = (t >> 64) + ((u128)h2 << 24);
    w1 = (uint64_t)t;
    w2 = (uint64_t)(t >> 64);
    c = (w2 >> 2) * 5;
    w2 &= 3;
    t = (u128)w0 + c;
    m->sc.h0 = (uint64_t)t;
    t = (u128)w1 + (uint64_t)(t >> 64);
    m->sc.h1 = (uint64_t)t;
    m->sc.h2 = w2 + (uint64_t)(t >> 64);
}

/* One group, if there is one ready: ChaCha20's round loops call this, so
 * that the MAC's multiplication chain overlaps their independent work. */
INLINE void mac_step(struct mac *m)
{
    if (m->groups_done < m->groups && (m->groups_done + 1) * GROUP_SIZE <= m->ready) {
        add_group(m, m->ct + m->groups_done * GROUP_SIZE);
        m->groups_done++;
        mul_lanes(&m->h0, &m->h1, &m->h2, m->groups_done < m->groups ? &m->r8 : &m->last);
    }
}

/* No MAC work until the key exists: mac_step does nothing. */
static inline void mac_idle(struct mac *m)
{
    m->ct = NULL;
    m->groups = m->groups_done = m->ready = 0;
}

INLINE void mac_start(struct mac *m, const uint8_t *poly_key, const uint8_t *ad, size_t ad_len,
                      const uint8_t *ct, size_t len)
{
    uint8_t block[POLY1305_BLOCK_SIZE] = { 0 };

    poly1305_64_init(&m->sc, poly_key);
    poly1305_64_blocks(&m->sc, ad, ad_len / POLY1305_BLOCK_SIZE);
    if (ad_len % POLY1305_BLOCK_SIZE) {
        memcpy(block, ad + ad_len - ad_len % POLY1305_BLOCK_SIZE, ad_len % POLY1305_BLOCK_SIZE);
        poly1305_64_blocks(&m->sc, block, 1);
    }
    m->ct = ct;
    m->len = len;
    m->done = 0;
    m->ready = 0;
    m->groups_done = 0;
    m->groups = len >= VECTOR_POLY_MIN ? len / GROUP_SIZE : 0;
    if (m->groups)
        start_vector(m);
}

/* MACs the ciphertext up to upto as far as whole blocks allow, and all of
 * it (padding included) once upto reaches the end. */
INLINE void mac_upto(struct mac *m, size_t upto)
{
    const uint8_t *ct = m->ct;
    size_t full;

    if (upto > m->len)
        upto = m->len;
    if (m->ready < upto)
        m->ready = upto;
    while (m->groups_done < m->groups && (m->groups_done + 1) * GROUP_SIZE <= upto)
        mac_step(m);
    if (m->groups_done < m->groups)
        return;
    if (m->done < m->groups * GROUP_SIZE) {
        finish_vector(m);
        m->done = m->groups * GROUP_SIZE;
    }
    if (upto <= m->done)
        return;
    full = (upto - m->done) / POLY1305_BLOCK_SIZE;
    poly1305_64_blocks(&m->sc, ct + m->done, full);
    m->done += full * POLY1305_BLOCK_SIZE;
    if (upto == m->len && m->done < m->len) {
        uint8_t block[POLY1305_BLOCK_SIZE] = { 0 };

        memcpy(block, ct + m->done, m->len - m->done);
        poly1305_64_blocks(&m->sc, block, 1);
        m->done = m->len;
    }
}

INLINE void mac_final(struct mac *m, size_t ad_len, uint8_t tag[POLY1305_TAG_SIZE])
{
    uint8_t block[POLY1305_BLOCK_SIZE];

    aead_lengths_block(block, ad_len, m->len);
    poly1305_64_blocks(&m->sc, block, 1);
    poly1305_64_final(&m->sc, tag);
}

/* ---- ChaCha20 --------------------------------------------------------- */

#define ROUND_STEP(a, b, d, n)                                                               \
    do {                                                                                     \
        a = _mm512_add_epi32(a, b);                                                          \
        d = _mm512_rol_epi32(_mm512_xor_si512(d, a), n);                                     \
    } while (0)

#define VQR(a, b, c, d)                                                                      \
    do {                                                                                     \
        ROUND_STEP(a, b, d, 16);                                                             \
        ROUND_STEP(c, d, b, 12);                                                             \
        ROUND_STEP(a, b, d, 8);                                                              \
        ROUND_STEP(c, d, b, 7);                                                              \
    } while (0)

/* Transposes four registers' 128-bit lanes: out[k] = { r0.k, r1.k, r2.k, r3.k }. */
INLINE void transpose_lanes(__m512i r0, __m512i r1, __m512i r2, __m512i r3, __m512i out[4])
{
    __m512i s0 = _mm512_shuffle_i32x4(r0, r1, 0x44), s1 = _mm512_shuffle_i32x4(r0, r1, 0xee);
    __m512i s2 = _mm512_shuffle_i32x4(r2, r3, 0x44), s3 = _mm512_shuffle_i32x4(r2, r3, 0xee);

    out[0] = _mm512_shuffle_i32x4(s0, s2, 0x88);
    out[1] = _mm512_shuffle_i32x4(s0, s2, 0xdd);
    out[2] = _mm512_shuffle_i32x4(s1, s3, 0x88);
    out[3] = _mm512_shuffle_i32x4(s1, s3, 0xdd);
}

/* 16 blocks from block counter ctr into ks (1024 bytes). */
INLINE void chacha20_x16(const uint32_t st[CHACHA20_STATE_WORDS], uint32_t ctr, uint8_t *ks,
                         struct mac *m)
{
    __m512i x[16], in[16], t[16], blk[4];

    for (int i = 0; i < 16; i++)
        in[i] = _mm512_set1_epi32((int)st[i]);
    in[12] = _mm512_add_epi32(_mm512_set1_epi32((int)ctr),
                              _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
    for (int i = 0; i < 16; i++)
        x[i] = in[i];
    for (int i = 0; i < CHACHA20_DOUBLE_ROUNDS; i++) {
        VQR(x[0], x[4], x[8], x[12]);
        VQR(x[1], x[5], x[9], x[13]);
        VQR(x[2], x[6], x[10], x[14]);
        VQR(x[3], x[7], x[11], x[15]);
        VQR(x[0], x[5], x[10], x[15]);
        VQR(x[1], x[6], x[11], x[12]);
        VQR(x[2], x[7], x[8], x[13]);
        VQR(x[3], x[4], x[9], x[14]);
        mac_step(m);
    }
    for (int i = 0; i < 16; i++)
        x[i] = _mm512_add_epi32(x[i], in[i]);
    /* Interleave dwords, then qwords: t[4g + k] has words 4g..4g+3 of
     * blocks k, 4 + k, 8 + k, 12 + k in its four lanes. */
    for (int g = 0; g < 4; g++) {
        __m512i a = x[4 * g], b = x[4 * g + 1], c = x[4 * g + 2], d = x[4 * g + 3];
        __m512i ab_lo = _mm512_unpacklo_epi32(a, b), ab_hi = _mm512_unpackhi_epi32(a, b);
        __m512i cd_lo = _mm512_unpacklo_epi32(c, d), cd_hi = _mm512_unpackhi_epi32(c, d);

        t[4 * g + 0] = _mm512_unpacklo_epi64(ab_lo, cd_lo);
        t[4 * g + 1] = _mm512_unpackhi_epi64(ab_lo, cd_lo);
        t[4 * g + 2] = _mm512_unpacklo_epi64(ab_hi, cd_hi);
        t[4 * g + 3] = _mm512_unpackhi_epi64(ab_hi, cd_hi);
    }
    for (int k = 0; k < 4; k++) {
        transpose_lanes(t[k], t[4 + k], t[8 + k], t[12 + k], blk);
        for (int lane = 0; lane < 4; lane++)
            _mm512_storeu_si512((void *)(ks + 64 * (4 * lane + k)), blk[lane]);
    }
}

#define HQR(a, b, c, d)                                                                      \
    do {                                                                                     \
        ROUND_STEP(a, b, d, 16);                                                             \
        ROUND_STEP(c, d, b, 12);                                                             \
        ROUND_STEP(a, b, d, 8);                                                              \
        ROUND_STEP(c, d, b, 7);                                                              \
    } while (0)

/* Rotates rows b, c, d so the next quarter-rounds work on diagonals. */
#define DIAGONALIZE(b, c, d)                                                                 \
    do {                                                                                     \
        b = _mm512_shuffle_epi32(b, 0x39);                                                   \
        c = _mm512_shuffle_epi32(c, 0x4e);                                                   \
        d = _mm512_shuffle_epi32(d, 0x93);                                                   \
    } while (0)
#define UNDIAGONALIZE(b, c, d)                                                               \
    do {                                                                                     \
        b = _mm512_shuffle_epi32(b, 0x93);                                                   \
        c = _mm512_shuffle_epi32(c, 0x4e);                                                   \
        d = _mm512_shuffle_epi32(d, 0x39);                                                   \
    } while (0)

INLINE void store_rows(uint8_t *ks, __m512i a, __m512i b, __m512i c, __m512i d)
{
    __m512i blk[4];

    transpose_lanes(a, b, c, d, blk);
    for (int k = 0; k < 4; k++)
        _mm512_storeu_si512((void *)(ks + 64 * k), blk[k]);
}

/* 4 * nsets blocks (nsets 1 or 2) from block counter ctr into ks, one row
 * of 4 blocks per register; the two sets are independent, so their
 * instructions interleave. */
INLINE void chacha20_rows(const uint32_t st[CHACHA20_STATE_WORDS], uint32_t ctr, uint8_t *ks,
                          int nsets, struct mac *m)
{
    const __m512i lanes = _mm512_setr_epi32(0, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0);
    __m512i a0 = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)st));
    __m512i b0 = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)(st + 4)));
    __m512i c0 = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)(st + 8)));
    __m512i d0 = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)(st + 12)));
    __m512i a1, b1, c1, d1, a2, b2, c2, d2, in_d1, in_d2;

    d0 = _mm512_mask_set1_epi32(d0, 0x1111, (int)ctr);
    in_d1 = _mm512_add_epi32(d0, lanes);
    in_d2 = _mm512_add_epi32(in_d1, _mm512_setr_epi32(4, 0, 0, 0, 4, 0, 0, 0, 4, 0, 0, 0, 4, 0,
                                                      0, 0));
    a1 = a2 = a0;
    b1 = b2 = b0;
    c1 = c2 = c0;
    d1 = in_d1;
    d2 = in_d2;
    for (int i = 0; i < CHACHA20_DOUBLE_ROUNDS; i++) {
        HQR(a1, b1, c1, d1);
        if (nsets == 2)
            HQR(a2, b2, c2, d2);
        DIAGONALIZE(b1, c1, d1);
        if (nsets == 2)
            DIAGONALIZE(b2, c2, d2);
        HQR(a1, b1, c1, d1);
        if (nsets == 2)
            HQR(a2, b2, c2, d2);
        UNDIAGONALIZE(b1, c1, d1);
        if (nsets == 2)
            UNDIAGONALIZE(b2, c2, d2);
        mac_step(m);
    }
    store_rows(ks, _mm512_add_epi32(a1, a0), _mm512_add_epi32(b1, b0), _mm512_add_epi32(c1, c0),
               _mm512_add_epi32(d1, in_d1));
    if (nsets == 2)
        store_rows(ks + 256, _mm512_add_epi32(a2, a0), _mm512_add_epi32(b2, b0),
                   _mm512_add_epi32(c2, c0), _mm512_add_epi32(d2, in_d2));
}

/* How much keystream one batch makes for `need` more bytes. */
static inline size_t batch_bytes(size_t need)
{
    return need <= 256 ? 256 : need <= 512 ? 512 : 1024;
}

/* Keystream for at least `need` bytes (at most 1024) from block ctr, with
 * up to 10 groups of MAC work on the side; returns batch_bytes(need). */
INLINE size_t chacha20_batch(const uint32_t st[CHACHA20_STATE_WORDS], uint32_t ctr, uint8_t *ks,
                             size_t need, struct mac *m)
{
    size_t made = batch_bytes(need);

    if (made == 1024)
        chacha20_x16(st, ctr, ks, m);
    else
        chacha20_rows(st, ctr, ks, made == 512 ? 2 : 1, m);
    return made;
}

INLINE void xor_stream(uint8_t *dst, const uint8_t *src, const uint8_t *ks, size_t len)
{
    size_t off = 0;

    for (; off + 64 <= len; off += 64) {
        __m512i m = _mm512_loadu_si512((const void *)(src + off));
        __m512i k = _mm512_loadu_si512((const void *)(ks + off));
        _mm512_storeu_si512((void *)(dst + off), _mm512_xor_si512(m, k));
    }
    if (off < len) {
        __mmask64 mask = _bzhi_u64(~UINT64_C(0), (unsigned)(len - off));
        __m512i m = _mm512_maskz_loadu_epi8(mask, src + off);
        __m512i k = _mm512_maskz_loadu_epi8(mask, ks + off);
        _mm512_mask_storeu_epi8(dst + off, mask, _mm512_xor_si512(m, k));
    }
}

/* ---- the AEAD ------------------------------------------------------------ */

static inline size_t round_up_group(size_t n)
{
    return (n + GROUP_SIZE - 1) / GROUP_SIZE * GROUP_SIZE;
}

static inline size_t min_size(size_t a, size_t b)
{
    return a < b ? a : b;
}

/* Seal: batch k's keystream is made while batch k - 1's ciphertext is MACed. */
AVX512 static void seal_core(uint8_t *dst, const uint8_t *src, size_t len, const uint8_t *ad,
                             size_t ad_len, uint32_t nonce0, uint64_t counter,
                             const uint8_t key[WG_AEAD_KEY_LEN])
{
    uint8_t ks[BATCH_MAX] __attribute__((aligned(64)));
    uint32_t st[CHACHA20_STATE_WORDS];
    struct mac m;
    size_t made, n, off, used;
    uint32_t ctr;

    mac_idle(&m);
    chacha20_init(st, key, nonce0, counter);
    made = used = chacha20_batch(st, 0, ks, len + CHACHA20_BLOCK_SIZE, &m);
    mac_start(&m, ks, ad, ad_len, dst, len);
    off = min_size(len, made - CHACHA20_BLOCK_SIZE);
    xor_stream(dst, src, ks + CHACHA20_BLOCK_SIZE, off);
    ctr = (uint32_t)(made / CHACHA20_BLOCK_SIZE);
    while (off < len) {
        m.ready = off;
        made = chacha20_batch(st, ctr, ks, len - off, &m);
        used = made > used ? made : used;
        n = min_size(len - off, made);
        xor_stream(dst + off, src + off, ks, n);
        off += n;
        ctr += (uint32_t)(made / CHACHA20_BLOCK_SIZE);
    }
    mac_upto(&m, len);
    mac_final(&m, ad_len, dst + len);
    wipe(ks, used);
    wipe(st, sizeof(st));
}

/*
 * Open: the whole ciphertext is there from the start, so the MAC may run
 * ahead; each batch's data is decrypted one batch late, after the next
 * batch's keystream (and the MAC work stitched into it), and never before
 * the MAC has read it, which in-place decryption would destroy.
 */
AVX512 static bool open_core(uint8_t *dst, const uint8_t *src, size_t len, const uint8_t *ad,
                             size_t ad_len, uint32_t nonce0, uint64_t counter,
                             const uint8_t key[WG_AEAD_KEY_LEN])
{
    uint8_t ks[2][BATCH_MAX] __attribute__((aligned(64)));
    uint8_t tag[POLY1305_TAG_SIZE];
    uint32_t st[CHACHA20_STATE_WORDS];
    struct mac m;
    size_t made, prev_off, prev_len, off, used[2] = { 0, 0 };
    const uint8_t *prev_ks;
    uint32_t ctr;
    bool ok;

    if (len < POLY1305_TAG_SIZE)
        return false;
    len -= POLY1305_TAG_SIZE;
    mac_idle(&m);
    chacha20_init(st, key, nonce0, counter);
    made = used[0] = chacha20_batch(st, 0, ks[0], len + CHACHA20_BLOCK_SIZE, &m);
    mac_start(&m, ks[0], ad, ad_len, src, len);
    m.ready = len;
    prev_off = 0;
    prev_len = min_size(len, made - CHACHA20_BLOCK_SIZE);
    prev_ks = ks[0] + CHACHA20_BLOCK_SIZE;
    off = prev_len;
    ctr = (uint32_t)(made / CHACHA20_BLOCK_SIZE);
    for (int i = 1; off < len; i ^= 1) {
        made = chacha20_batch(st, ctr, ks[i], len - off, &m);
        used[i] = made > used[i] ? made : used[i];
        mac_upto(&m, round_up_group(prev_off + prev_len));
        xor_stream(dst + prev_off, src + prev_off, prev_ks, prev_len);
        prev_off = off;
        prev_len = min_size(len - off, made);
        prev_ks = ks[i];
        off += prev_len;
        ctr += (uint32_t)(made / CHACHA20_BLOCK_SIZE);
    }
    mac_upto(&m, len);
    xor_stream(dst + prev_off, src + prev_off, prev_ks, prev_len);
    mac_final(&m, ad_len, tag);
    ok = tag_equal(tag, src + len);
    if (!ok)
        wipe(dst, len);
    wipe(ks[0], used[0]);
    wipe(ks[1], used[1]);
    wipe(st, sizeof(st));
    return ok;
}

WG_AEAD_ENTRY_POINTS(avx512, seal_core, open_core)

const struct wg_aead_backend wg_aead_avx512 = {
    .name = "avx512",
    .usable = usable,
    .seal = avx512_seal,
    .open = avx512_open,
    .seal_nonce = avx512_seal_nonce,
    .open_nonce = avx512_open_nonce,
};
#endif /* __x86_64__ */
