/*
 * chacha20poly1305-neon.c - ChaCha20 with ARM NEON (Advanced SIMD), four
 * blocks at a time, and the scalar Poly1305 of the target's word size.
 *
 * Theory of operation. A full batch is 4 blocks "vertically": q register i
 * holds word i of 4 consecutive blocks, so a quarter round is 4 vector
 * additions, xors and rotations for 4 blocks at once; a 4x4 transpose per
 * group of 4 words turns the result back into 4 blocks of keystream. Short
 * batches (one or two blocks: small packets and tails) run "horizontally",
 * one block per 4 registers (a row each), with lane rotations between the
 * column and the diagonal rounds. Keystream goes to a stack buffer and is
 * xored into the data 16 bytes at a time.
 *
 * Poly1305 stays scalar: on aarch64 the 64-bit code (two 64x64->128
 * multiplications per block is what the integer unit does best); on armv7
 * the 26-bit code that the portable backend runs there. The MAC follows
 * each batch (seal: the ciphertext just written; open: the ciphertext
 * before an in-place decryption overwrites it).
 *
 * aarch64 always has NEON (the AAPCS64 requires it). On armv7 it is
 * optional (Debian's armhf baseline is VFPv3-D16 without it, and routers
 * with a Cortex-A9 without NEON exist), so only this file is compiled for
 * NEON, and usable() asks the kernel's hardware capabilities at run time:
 * on a CPU without NEON the backend is never selected and its code never
 * runs. Big-endian ARM is left to the portable code (lane order differs).
 */
#include "chacha20poly1305.h"

#if (defined(__aarch64__) || defined(__arm__)) && !defined(__ARM_BIG_ENDIAN)
#include <string.h>
#include <sys/auxv.h>

#if defined(__arm__)
#include <asm/hwcap.h>

/* Everything from here to the pop is compiled for NEON: only code that
 * runs after usable() said yes. */
#pragma GCC push_options
#pragma GCC target("fpu=neon")
#endif

#include <arm_neon.h>

#define INLINE static inline __attribute__((always_inline))
#define BATCH_MAX 256                   /* 4 ChaCha20 blocks */

typedef uint32x4_t v4;

/* ---- Poly1305 in the target's word size ------------------------------- */

#if defined(__SIZEOF_INT128__)
typedef struct poly1305_64 mac_state;
#define mac_init poly1305_64_init
#define mac_blocks poly1305_64_blocks
#define mac_finish poly1305_64_final
#else
typedef struct poly1305_32 mac_state;
#define mac_init poly1305_32_init
#define mac_blocks poly1305_32_blocks
#define mac_finish poly1305_32_final
#endif

/* MACs len bytes zero-padded to a multiple of 16, as RFC 8439's AEAD does. */
INLINE void mac_padded(mac_state *m, const uint8_t *p, size_t len)
{
    uint8_t block[POLY1305_BLOCK_SIZE] = { 0 };
    size_t full = len / POLY1305_BLOCK_SIZE, rest = len % POLY1305_BLOCK_SIZE;

    mac_blocks(m, p, full);
    if (rest) {
        memcpy(block, p + full * POLY1305_BLOCK_SIZE, rest);
        mac_blocks(m, block, 1);
    }
}

/* The lengths block, and the tag. */
INLINE void mac_final(mac_state *m, size_t ad_len, size_t ct_len, uint8_t tag[POLY1305_TAG_SIZE])
{
    uint8_t block[POLY1305_BLOCK_SIZE];

    aead_lengths_block(block, ad_len, ct_len);
    mac_blocks(m, block, 1);
    mac_finish(m, tag);
}

/* ---- ChaCha20 --------------------------------------------------------- */

/* Rotations left: by 16, swap the halves of each word; by 8 (aarch64), a
 * byte shuffle; otherwise a shift and a shift-right-and-insert. A
 * statement expression, because the shift counts must be constants. */
#define ROTL(x, n)                                                                           \
    ({                                                                                       \
        v4 x_ = (x);                                                                         \
        vsriq_n_u32(vshlq_n_u32(x_, n), x_, 32 - (n));                                       \
    })

INLINE v4 rot16(v4 x)
{
    return vreinterpretq_u32_u16(vrev32q_u16(vreinterpretq_u16_u32(x)));
}

#if defined(__aarch64__)
INLINE v4 rot8(v4 x)
{
    static const uint8_t idx[16] = { 3, 0, 1, 2, 7, 4, 5, 6, 11, 8, 9, 10, 15, 12, 13, 14 };

    return vreinterpretq_u32_u8(vqtbl1q_u8(vreinterpretq_u8_u32(x), vld1q_u8(idx)));
}
#else
#define rot8(x) ROTL(x, 8)
#endif

#define QR(a, b, c, d)                                                                       \
    do {                                                                                     \
        a = vaddq_u32(a, b); d = rot16(veorq_u32(d, a));                                     \
        c = vaddq_u32(c, d); b = ROTL(veorq_u32(b, c), 12);                                  \
        a = vaddq_u32(a, b); d = rot8(veorq_u32(d, a));                                      \
        c = vaddq_u32(c, d); b = ROTL(veorq_u32(b, c), 7);                                   \
    } while (0)

INLINE void store_u32(uint8_t *p, v4 x)
{
    vst1q_u8(p, vreinterpretq_u8_u32(x));
}

/* Four blocks from block counter ctr into ks (256 bytes). */
INLINE void chacha20_x4(const uint32_t st[CHACHA20_STATE_WORDS], uint32_t ctr, uint8_t *ks)
{
    static const uint32_t lanes[4] = { 0, 1, 2, 3 };
    v4 x[CHACHA20_STATE_WORDS], in12;

    for (int i = 0; i < CHACHA20_STATE_WORDS; i++)
        x[i] = vdupq_n_u32(st[i]);
    in12 = vaddq_u32(vdupq_n_u32(ctr), vld1q_u32(lanes));
    x[12] = in12;
    for (int i = 0; i < CHACHA20_DOUBLE_ROUNDS; i++) {
        QR(x[0], x[4], x[8], x[12]);
        QR(x[1], x[5], x[9], x[13]);
        QR(x[2], x[6], x[10], x[14]);
        QR(x[3], x[7], x[11], x[15]);
        QR(x[0], x[5], x[10], x[15]);
        QR(x[1], x[6], x[11], x[12]);
        QR(x[2], x[7], x[8], x[13]);
        QR(x[3], x[4], x[9], x[14]);
    }
    for (int i = 0; i < CHACHA20_STATE_WORDS; i++)
        x[i] = vaddq_u32(x[i], i == 12 ? in12 : vdupq_n_u32(st[i]));
    /* Words 4g..4g+3 of the 4 blocks: a 4x4 transpose gives each block's
     * 16 bytes at offset 16 g. */
    for (int g = 0; g < 4; g++) {
        uint32x4x2_t ab = vtrnq_u32(x[4 * g], x[4 * g + 1]);
        uint32x4x2_t cd = vtrnq_u32(x[4 * g + 2], x[4 * g + 3]);
        uint8_t *out = ks + 16 * g;

        store_u32(out, vcombine_u32(vget_low_u32(ab.val[0]), vget_low_u32(cd.val[0])));
        store_u32(out + 64, vcombine_u32(vget_low_u32(ab.val[1]), vget_low_u32(cd.val[1])));
        store_u32(out + 128, vcombine_u32(vget_high_u32(ab.val[0]), vget_high_u32(cd.val[0])));
        store_u32(out + 192, vcombine_u32(vget_high_u32(ab.val[1]), vget_high_u32(cd.val[1])));
    }
}

/* Moves b, c, d so that the diagonals line up as columns, and back. */
#define DIAGONALIZE(b, c, d)                                                                 \
    do {                                                                                     \
        b = vextq_u32(b, b, 1);                                                              \
        c = vextq_u32(c, c, 2);                                                              \
        d = vextq_u32(d, d, 3);                                                              \
    } while (0)
#define UNDIAGONALIZE(b, c, d)                                                               \
    do {                                                                                     \
        b = vextq_u32(b, b, 3);                                                              \
        c = vextq_u32(c, c, 2);                                                              \
        d = vextq_u32(d, d, 1);                                                              \
    } while (0)

/* nblocks (1 or 2) blocks from block counter ctr into ks, a row of one
 * block per register; two blocks interleave, being independent. */
INLINE void chacha20_rows(const uint32_t st[CHACHA20_STATE_WORDS], uint32_t ctr, uint8_t *ks,
                          int nblocks)
{
    const v4 a0 = vld1q_u32(st), b0 = vld1q_u32(st + 4), c0 = vld1q_u32(st + 8);
    const v4 d0 = vsetq_lane_u32(ctr, vld1q_u32(st + 12), 0);
    const v4 e0 = vsetq_lane_u32(ctr + 1, d0, 0);
    v4 a1 = a0, b1 = b0, c1 = c0, d1 = d0, a2 = a0, b2 = b0, c2 = c0, d2 = e0;

    for (int i = 0; i < CHACHA20_DOUBLE_ROUNDS; i++) {
        QR(a1, b1, c1, d1);
        if (nblocks == 2)
            QR(a2, b2, c2, d2);
        DIAGONALIZE(b1, c1, d1);
        if (nblocks == 2)
            DIAGONALIZE(b2, c2, d2);
        QR(a1, b1, c1, d1);
        if (nblocks == 2)
            QR(a2, b2, c2, d2);
        UNDIAGONALIZE(b1, c1, d1);
        if (nblocks == 2)
            UNDIAGONALIZE(b2, c2, d2);
    }
    store_u32(ks, vaddq_u32(a1, a0));
    store_u32(ks + 16, vaddq_u32(b1, b0));
    store_u32(ks + 32, vaddq_u32(c1, c0));
    store_u32(ks + 48, vaddq_u32(d1, d0));
    if (nblocks == 2) {
        store_u32(ks + 64, vaddq_u32(a2, a0));
        store_u32(ks + 80, vaddq_u32(b2, b0));
        store_u32(ks + 96, vaddq_u32(c2, c0));
        store_u32(ks + 112, vaddq_u32(d2, e0));
    }
}

/* Keystream for at least min(need, 256) bytes from block ctr; returns how
 * many bytes it made (64, 128 or 256). */
INLINE size_t chacha20_batch(const uint32_t st[CHACHA20_STATE_WORDS], uint32_t ctr, uint8_t *ks,
                             size_t need)
{
    if (need > 2 * CHACHA20_BLOCK_SIZE) {
        chacha20_x4(st, ctr, ks);
        return 4 * CHACHA20_BLOCK_SIZE;
    }
    chacha20_rows(st, ctr, ks, need > CHACHA20_BLOCK_SIZE ? 2 : 1);
    return need > CHACHA20_BLOCK_SIZE ? 2 * CHACHA20_BLOCK_SIZE : CHACHA20_BLOCK_SIZE;
}

INLINE void xor_stream(uint8_t *dst, const uint8_t *src, const uint8_t *ks, size_t len)
{
    size_t off = 0;

    for (; off + 16 <= len; off += 16)
        vst1q_u8(dst + off, veorq_u8(vld1q_u8(src + off), vld1q_u8(ks + off)));
    for (; off < len; off++)
        dst[off] = src[off] ^ ks[off];
}

/* ---- the AEAD ------------------------------------------------------------ */

/* Block 0's first 32 bytes are the Poly1305 key; the message's keystream
 * starts at block 1, in the same batch. Returns the batch's size. */
INLINE size_t start(uint32_t st[CHACHA20_STATE_WORDS], mac_state *m, uint8_t *ks,
                    const uint8_t *ad, size_t ad_len, size_t len, uint32_t nonce0,
                    uint64_t counter, const uint8_t key[WG_AEAD_KEY_LEN])
{
    size_t made;

    chacha20_init(st, key, nonce0, counter);
    made = chacha20_batch(st, 0, ks, CHACHA20_BLOCK_SIZE + len);
    mac_init(m, ks);
    mac_padded(m, ad, ad_len);
    return made;
}

/* seal and open walk the message in the same batches: the first one's
 * keystream starts at ks + 64, every later one at ks. */
static void seal_core(uint8_t *dst, const uint8_t *src, size_t len, const uint8_t *ad,
                      size_t ad_len, uint32_t nonce0, uint64_t counter,
                      const uint8_t key[WG_AEAD_KEY_LEN])
{
    uint8_t ks[BATCH_MAX] __attribute__((aligned(16)));
    uint32_t st[CHACHA20_STATE_WORDS];
    mac_state m;
    size_t made = start(st, &m, ks, ad, ad_len, len, nonce0, counter, key);
    size_t n = len < made - CHACHA20_BLOCK_SIZE ? len : made - CHACHA20_BLOCK_SIZE, off = 0;
    uint32_t ctr = (uint32_t)(made / CHACHA20_BLOCK_SIZE);
    const uint8_t *stream = ks + CHACHA20_BLOCK_SIZE;

    for (;;) {
        xor_stream(dst + off, src + off, stream, n);
        if (off + n == len) {
            mac_padded(&m, dst + off, n);
            break;
        }
        mac_blocks(&m, dst + off, n / POLY1305_BLOCK_SIZE);
        off += n;
        made = chacha20_batch(st, ctr, ks, len - off);
        ctr += (uint32_t)(made / CHACHA20_BLOCK_SIZE);
        n = len - off < made ? len - off : made;
        stream = ks;
    }
    mac_final(&m, ad_len, len, dst + len);
    wipe(ks, sizeof(ks));
    wipe(st, sizeof(st));
}

static bool open_core(uint8_t *dst, const uint8_t *src, size_t len, const uint8_t *ad,
                      size_t ad_len, uint32_t nonce0, uint64_t counter,
                      const uint8_t key[WG_AEAD_KEY_LEN])
{
    uint8_t ks[BATCH_MAX] __attribute__((aligned(16)));
    uint8_t tag[POLY1305_TAG_SIZE];
    uint32_t st[CHACHA20_STATE_WORDS];
    mac_state m;
    size_t made, n, off = 0;
    uint32_t ctr;
    const uint8_t *stream = ks + CHACHA20_BLOCK_SIZE;
    bool ok;

    if (len < POLY1305_TAG_SIZE)
        return false;
    len -= POLY1305_TAG_SIZE;
    made = start(st, &m, ks, ad, ad_len, len, nonce0, counter, key);
    n = len < made - CHACHA20_BLOCK_SIZE ? len : made - CHACHA20_BLOCK_SIZE;
    ctr = (uint32_t)(made / CHACHA20_BLOCK_SIZE);
    for (;;) {
        /* MAC first: dst may be src. */
        if (off + n == len) {
            mac_padded(&m, src + off, n);
            xor_stream(dst + off, src + off, stream, n);
            break;
        }
        mac_blocks(&m, src + off, n / POLY1305_BLOCK_SIZE);
        xor_stream(dst + off, src + off, stream, n);
        off += n;
        made = chacha20_batch(st, ctr, ks, len - off);
        ctr += (uint32_t)(made / CHACHA20_BLOCK_SIZE);
        n = len - off < made ? len - off : made;
        stream = ks;
    }
    mac_final(&m, ad_len, len, tag);
    ok = tag_equal(tag, src + len);
    if (!ok)
        wipe(dst, len);
    wipe(ks, sizeof(ks));
    wipe(st, sizeof(st));
    return ok;
}

WG_AEAD_ENTRY_POINTS(neon, seal_core, open_core)

#if defined(__arm__)
#pragma GCC pop_options
#endif

/* Compiled for the baseline CPU: it runs before anything else in this file. */
static bool usable(void)
{
#if defined(__aarch64__)
    return true;
#else
    return (getauxval(AT_HWCAP) & HWCAP_NEON) != 0;
#endif
}

const struct wg_aead_backend wg_aead_neon = {
    .name = "neon",
    .usable = usable,
    .seal = neon_seal,
    .open = neon_open,
    .seal_nonce = neon_seal_nonce,
    .open_nonce = neon_open_nonce,
};
#endif /* NEON */
