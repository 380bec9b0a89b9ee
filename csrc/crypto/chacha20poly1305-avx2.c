/*
 * chacha20poly1305-avx2.c - ChaCha20 8 blocks at a time with AVX2, and
 * Poly1305 with the scalar 64-bit code compiled for MULX, interleaved with
 * it so that the vector and the multiplier ports work at once.
 *
 * Theory of operation. A full ChaCha20 batch is 8 blocks "vertically" (ymm
 * register i holds word i of 8 blocks), followed by an 8x8 transpose.
 * Short batches (2 or 4 blocks) run "horizontally", a row of 2 blocks per
 * register. Keystream goes to a stack buffer, then is xored into the data.
 *
 * Poly1305 is scalar, because a multiplication chain per 16 bytes on the
 * integer ports costs no vector throughput: while batch n's keystream is
 * being computed, the MAC of batch n - 1's ciphertext (seal) or of batch
 * n's ciphertext (open, which has it already) runs in the same loop, a few
 * blocks per double round, and out-of-order execution overlaps the two.
 */
#include "chacha20poly1305.h"

#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>

#define AVX2 __attribute__((target("avx2,bmi2")))
#define INLINE static inline __attribute__((always_inline)) AVX2

#define BATCH_MAX 512                   /* 8 ChaCha20 blocks */

static bool usable(void)
{
    const uint32_t need = bit_AVX2 | bit_BMI2;

    return (cpuid7_ebx_if_os_saves(XCR0_AVX) & need) == need;
}

/* ---- Poly1305, fed in pieces ------------------------------------------- */

/* The MAC over the ciphertext, which it may be handed a few blocks at a
 * time (see step): pos is where it has got to, end how far it may go. */
struct mac {
    struct poly1305_64 sc;
    const uint8_t *pos, *end;
};

INLINE void mac_step(struct mac *m, size_t nblocks)
{
    size_t avail = (size_t)(m->end - m->pos) / POLY1305_BLOCK_SIZE;

    if (nblocks > avail)
        nblocks = avail;
    poly1305_64_blocks(&m->sc, m->pos, nblocks);
    m->pos += nblocks * POLY1305_BLOCK_SIZE;
}

/* ---- ChaCha20 --------------------------------------------------------- */

INLINE __m256i rot16(__m256i x)
{
    const __m256i idx = _mm256_setr_epi8(2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13,
                                         2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13);
    return _mm256_shuffle_epi8(x, idx);
}

INLINE __m256i rot8(__m256i x)
{
    const __m256i idx = _mm256_setr_epi8(3, 0, 1, 2, 7, 4, 5, 6, 11, 8, 9, 10, 15, 12, 13, 14,
                                         3, 0, 1, 2, 7, 4, 5, 6, 11, 8, 9, 10, 15, 12, 13, 14);
    return _mm256_shuffle_epi8(x, idx);
}

#define ROTL(x, n) _mm256_or_si256(_mm256_slli_epi32(x, n), _mm256_srli_epi32(x, 32 - (n)))

#define QR(a, b, c, d)                                                                       \
    do {                                                                                     \
        a = _mm256_add_epi32(a, b); d = rot16(_mm256_xor_si256(d, a));                        \
        c = _mm256_add_epi32(c, d); b = _mm256_xor_si256(b, c); b = ROTL(b, 12);             \
        a = _mm256_add_epi32(a, b); d = rot8(_mm256_xor_si256(d, a));                         \
        c = _mm256_add_epi32(c, d); b = _mm256_xor_si256(b, c); b = ROTL(b, 7);              \
    } while (0)

/* 8 blocks from block counter ctr into ks (512 bytes); MACs up to 3
 * blocks per double round on the side. */
INLINE void chacha20_x8(const uint32_t st[CHACHA20_STATE_WORDS], uint32_t ctr, uint8_t *ks,
                        struct mac *m)
{
    __m256i x[16], t[16], in12;

    for (int i = 0; i < 16; i++)
        x[i] = _mm256_set1_epi32((int)st[i]);
    in12 = _mm256_add_epi32(_mm256_set1_epi32((int)ctr), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    x[12] = in12;
    for (int i = 0; i < CHACHA20_DOUBLE_ROUNDS; i++) {
        QR(x[0], x[4], x[8], x[12]);
        QR(x[1], x[5], x[9], x[13]);
        QR(x[2], x[6], x[10], x[14]);
        QR(x[3], x[7], x[11], x[15]);
        mac_step(m, 2);
        QR(x[0], x[5], x[10], x[15]);
        QR(x[1], x[6], x[11], x[12]);
        QR(x[2], x[7], x[8], x[13]);
        QR(x[3], x[4], x[9], x[14]);
        mac_step(m, 2);
    }
    for (int i = 0; i < 16; i++)
        x[i] = _mm256_add_epi32(x[i], i == 12 ? in12 : _mm256_set1_epi32((int)st[i]));
    /* Dwords, then qwords: t[4g + k] has words 4g..4g+3 of blocks k and 4 + k. */
    for (int g = 0; g < 4; g++) {
        __m256i a = x[4 * g], b = x[4 * g + 1], c = x[4 * g + 2], d = x[4 * g + 3];
        __m256i ab_lo = _mm256_unpacklo_epi32(a, b), ab_hi = _mm256_unpackhi_epi32(a, b);
        __m256i cd_lo = _mm256_unpacklo_epi32(c, d), cd_hi = _mm256_unpackhi_epi32(c, d);

        t[4 * g + 0] = _mm256_unpacklo_epi64(ab_lo, cd_lo);
        t[4 * g + 1] = _mm256_unpackhi_epi64(ab_lo, cd_lo);
        t[4 * g + 2] = _mm256_unpacklo_epi64(ab_hi, cd_hi);
        t[4 * g + 3] = _mm256_unpackhi_epi64(ab_hi, cd_hi);
    }
    for (int k = 0; k < 4; k++) {
        uint8_t *lo = ks + 64 * k, *hi = ks + 64 * (4 + k);

        _mm256_storeu_si256((__m256i *)lo, _mm256_permute2x128_si256(t[k], t[4 + k], 0x20));
        _mm256_storeu_si256((__m256i *)(lo + 32), _mm256_permute2x128_si256(t[8 + k], t[12 + k], 0x20));
        _mm256_storeu_si256((__m256i *)hi, _mm256_permute2x128_si256(t[k], t[4 + k], 0x31));
        _mm256_storeu_si256((__m256i *)(hi + 32), _mm256_permute2x128_si256(t[8 + k], t[12 + k], 0x31));
    }
}

#define DIAGONALIZE(b, c, d)                                                                 \
    do {                                                                                     \
        b = _mm256_shuffle_epi32(b, 0x39);                                                   \
        c = _mm256_shuffle_epi32(c, 0x4e);                                                   \
        d = _mm256_shuffle_epi32(d, 0x93);                                                   \
    } while (0)
#define UNDIAGONALIZE(b, c, d)                                                               \
    do {                                                                                     \
        b = _mm256_shuffle_epi32(b, 0x93);                                                   \
        c = _mm256_shuffle_epi32(c, 0x4e);                                                   \
        d = _mm256_shuffle_epi32(d, 0x39);                                                   \
    } while (0)

INLINE void store_rows(uint8_t *ks, __m256i a, __m256i b, __m256i c, __m256i d)
{
    _mm256_storeu_si256((__m256i *)ks, _mm256_permute2x128_si256(a, b, 0x20));
    _mm256_storeu_si256((__m256i *)(ks + 32), _mm256_permute2x128_si256(c, d, 0x20));
    _mm256_storeu_si256((__m256i *)(ks + 64), _mm256_permute2x128_si256(a, b, 0x31));
    _mm256_storeu_si256((__m256i *)(ks + 96), _mm256_permute2x128_si256(c, d, 0x31));
}

/* 2 * nsets blocks (nsets 1 or 2) from block counter ctr, a row of two
 * blocks per register; the sets are independent and interleave. */
INLINE void chacha20_rows(const uint32_t st[CHACHA20_STATE_WORDS], uint32_t ctr, uint8_t *ks,
                          int nsets, struct mac *m)
{
    __m256i a0 = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)st));
    __m256i b0 = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(st + 4)));
    __m256i c0 = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(st + 8)));
    __m256i d0 = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(st + 12)));
    __m256i in_d1, in_d2, a1, b1, c1, d1, a2, b2, c2, d2;

    d0 = _mm256_blend_epi32(d0, _mm256_set1_epi32((int)ctr), 0x11);
    in_d1 = _mm256_add_epi32(d0, _mm256_setr_epi32(0, 0, 0, 0, 1, 0, 0, 0));
    in_d2 = _mm256_add_epi32(d0, _mm256_setr_epi32(2, 0, 0, 0, 3, 0, 0, 0));
    a1 = a2 = a0;
    b1 = b2 = b0;
    c1 = c2 = c0;
    d1 = in_d1;
    d2 = in_d2;
    for (int i = 0; i < CHACHA20_DOUBLE_ROUNDS; i++) {
        QR(a1, b1, c1, d1);
        if (nsets == 2)
            QR(a2, b2, c2, d2);
        DIAGONALIZE(b1, c1, d1);
        if (nsets == 2)
            DIAGONALIZE(b2, c2, d2);
        mac_step(m, 1);
        QR(a1, b1, c1, d1);
        if (nsets == 2)
            QR(a2, b2, c2, d2);
        UNDIAGONALIZE(b1, c1, d1);
        if (nsets == 2)
            UNDIAGONALIZE(b2, c2, d2);
    }
    store_rows(ks, _mm256_add_epi32(a1, a0), _mm256_add_epi32(b1, b0), _mm256_add_epi32(c1, c0),
               _mm256_add_epi32(d1, in_d1));
    if (nsets == 2)
        store_rows(ks + 128, _mm256_add_epi32(a2, a0), _mm256_add_epi32(b2, b0),
                   _mm256_add_epi32(c2, c0), _mm256_add_epi32(d2, in_d2));
}

/* How much keystream one batch makes for `need` more bytes. */
static inline size_t batch_bytes(size_t need)
{
    return need <= 128 ? 128 : need <= 256 ? 256 : 512;
}

/* Keystream for at least `need` bytes (at most 512) from block ctr;
 * returns batch_bytes(need). */
INLINE size_t chacha20_batch(const uint32_t st[CHACHA20_STATE_WORDS], uint32_t ctr, uint8_t *ks,
                             size_t need, struct mac *m)
{
    size_t made = batch_bytes(need);

    if (made == 512)
        chacha20_x8(st, ctr, ks, m);
    else
        chacha20_rows(st, ctr, ks, made == 256 ? 2 : 1, m);
    return made;
}

INLINE void xor_stream(uint8_t *dst, const uint8_t *src, const uint8_t *ks, size_t len)
{
    size_t off = 0;

    for (; off + 32 <= len; off += 32) {
        __m256i a = _mm256_loadu_si256((const __m256i *)(src + off));
        __m256i k = _mm256_loadu_si256((const __m256i *)(ks + off));
        _mm256_storeu_si256((__m256i *)(dst + off), _mm256_xor_si256(a, k));
    }
    for (; off < len; off++)
        dst[off] = src[off] ^ ks[off];
}

/* ---- the AEAD ------------------------------------------------------------ */

INLINE void mac_start(struct mac *m, const uint8_t *poly_key, const uint8_t *ad, size_t ad_len)
{
    uint8_t block[POLY1305_BLOCK_SIZE] = { 0 };

    poly1305_64_init(&m->sc, poly_key);
    poly1305_64_blocks(&m->sc, ad, ad_len / POLY1305_BLOCK_SIZE);
    if (ad_len % POLY1305_BLOCK_SIZE) {
        memcpy(block, ad + ad_len - ad_len % POLY1305_BLOCK_SIZE, ad_len % POLY1305_BLOCK_SIZE);
        poly1305_64_blocks(&m->sc, block, 1);
    }
}

/* The rest of the ciphertext up to len, and its padding. */
INLINE void mac_rest(struct mac *m, const uint8_t *ct, size_t len)
{
    uint8_t block[POLY1305_BLOCK_SIZE] = { 0 };
    size_t rest = (size_t)(ct + len - m->pos);

    poly1305_64_blocks(&m->sc, m->pos, rest / POLY1305_BLOCK_SIZE);
    if (rest % POLY1305_BLOCK_SIZE) {
        memcpy(block, ct + len - rest % POLY1305_BLOCK_SIZE, rest % POLY1305_BLOCK_SIZE);
        poly1305_64_blocks(&m->sc, block, 1);
    }
    m->pos = m->end = ct + len;
}

/* The lengths, and the tag. */
INLINE void mac_final(struct mac *m, size_t len, size_t ad_len, uint8_t tag[POLY1305_TAG_SIZE])
{
    uint8_t block[POLY1305_BLOCK_SIZE];

    aead_lengths_block(block, ad_len, len);
    poly1305_64_blocks(&m->sc, block, 1);
    poly1305_64_final(&m->sc, tag);
}

AVX2 static void seal_core(uint8_t *dst, const uint8_t *src, size_t len, const uint8_t *ad,
                           size_t ad_len, uint32_t nonce0, uint64_t counter,
                           const uint8_t key[WG_AEAD_KEY_LEN])
{
    uint8_t ks[BATCH_MAX] __attribute__((aligned(32)));
    uint32_t st[CHACHA20_STATE_WORDS];
    struct mac m = { .pos = dst, .end = dst };
    size_t made, n, off;
    uint32_t ctr;

    chacha20_init(st, key, nonce0, counter);
    made = chacha20_batch(st, 0, ks, len + CHACHA20_BLOCK_SIZE, &m);
    mac_start(&m, ks, ad, ad_len);
    n = len < made - CHACHA20_BLOCK_SIZE ? len : made - CHACHA20_BLOCK_SIZE;
    xor_stream(dst, src, ks + CHACHA20_BLOCK_SIZE, n);
    off = n;
    ctr = (uint32_t)(made / CHACHA20_BLOCK_SIZE);
    while (off < len) {
        /* The ciphertext so far is ready to MAC while the next batch is made. */
        m.end = dst + off;
        made = chacha20_batch(st, ctr, ks, len - off, &m);
        n = len - off < made ? len - off : made;
        xor_stream(dst + off, src + off, ks, n);
        off += n;
        ctr += (uint32_t)(made / CHACHA20_BLOCK_SIZE);
    }
    mac_rest(&m, dst, len);
    mac_final(&m, len, ad_len, dst + len);
    wipe(ks, sizeof(ks));
    wipe(st, sizeof(st));
}

AVX2 static bool open_core(uint8_t *dst, const uint8_t *src, size_t len, const uint8_t *ad,
                           size_t ad_len, uint32_t nonce0, uint64_t counter,
                           const uint8_t key[WG_AEAD_KEY_LEN])
{
    uint8_t ks[BATCH_MAX] __attribute__((aligned(32)));
    uint8_t tag[POLY1305_TAG_SIZE];
    uint32_t st[CHACHA20_STATE_WORDS];
    struct mac m = { .pos = src, .end = src };
    size_t made, n, off;
    uint32_t ctr;
    bool ok;

    if (len < POLY1305_TAG_SIZE)
        return false;
    len -= POLY1305_TAG_SIZE;
    chacha20_init(st, key, nonce0, counter);
    made = chacha20_batch(st, 0, ks, len + CHACHA20_BLOCK_SIZE, &m);
    mac_start(&m, ks, ad, ad_len);
    n = len < made - CHACHA20_BLOCK_SIZE ? len : made - CHACHA20_BLOCK_SIZE;
    /* The first batch's ciphertext is MACed before it is decrypted (in
     * place or not); each later one while its keystream is being made. */
    m.end = src + n / POLY1305_BLOCK_SIZE * POLY1305_BLOCK_SIZE;
    mac_step(&m, n / POLY1305_BLOCK_SIZE);
    if (n == len)
        mac_rest(&m, src, len);
    xor_stream(dst, src, ks + CHACHA20_BLOCK_SIZE, n);
    off = n;
    ctr = (uint32_t)(made / CHACHA20_BLOCK_SIZE);
    while (off < len) {
        n = len - off < batch_bytes(len - off) ? len - off : batch_bytes(len - off);
        m.end = src + (off + n) / POLY1305_BLOCK_SIZE * POLY1305_BLOCK_SIZE;
        made = chacha20_batch(st, ctr, ks, len - off, &m);
        mac_step(&m, (size_t)(m.end - m.pos) / POLY1305_BLOCK_SIZE);
        if (off + n == len)
            mac_rest(&m, src, len);
        xor_stream(dst + off, src + off, ks, n);
        off += n;
        ctr += (uint32_t)(made / CHACHA20_BLOCK_SIZE);
    }
    mac_final(&m, len, ad_len, tag);
    ok = tag_equal(tag, src + len);
    if (!ok)
        wipe(dst, len);
    wipe(ks, sizeof(ks));
    wipe(st, sizeof(st));
    return ok;
}

WG_AEAD_ENTRY_POINTS(avx2, seal_core, open_core)

const struct wg_aead_backend wg_aead_avx2 = {
    .name = "avx2",
    .usable = usable,
    .seal = avx2_seal,
    .open = avx2_open,
    .seal_nonce = avx2_seal_nonce,
    .open_nonce = avx2_open_nonce,
};
#endif /* __x86_64__ */
