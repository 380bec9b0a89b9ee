/*
 * chacha20poly1305.c - the portable backends: plain C, one block at a time.
 *
 * "portable" uses 64-bit Poly1305 limbs where the compiler has unsigned
 * __int128 (x86_64, aarch64, ...) and 26-bit limbs elsewhere (armv7);
 * WG_AEAD_FORCE_32BIT forces the latter. On 64-bit targets the 26-bit code
 * is also registered as "portable32", so that the path armv7 runs is tested
 * on every machine. The other backends are checked against these.
 *
 * One pass: each 64-byte block is encrypted and then MACed while it is
 * still in registers and L1 (seal), or MACed and then decrypted (open; the
 * MAC must see the ciphertext before an in-place decryption overwrites it).
 */
#include "chacha20poly1305.h"

#include <string.h>

#if defined(__SIZEOF_INT128__) && !defined(WG_AEAD_FORCE_32BIT)
#define HAVE_POLY1305_64 1
#else
#define HAVE_POLY1305_64 0
#endif

enum mac_width { MAC_32, MAC_64 };

/* Poly1305 of either width behind one interface; the width is a constant
 * at every call site, so the unused branch disappears. */
struct mac {
#if HAVE_POLY1305_64
    struct poly1305_64 p64;
#endif
    struct poly1305_32 p32;
};

static inline void mac_init(struct mac *m, const uint8_t key[POLY1305_KEY_SIZE], enum mac_width w)
{
#if HAVE_POLY1305_64
    if (w == MAC_64) {
        poly1305_64_init(&m->p64, key);
        return;
    }
#endif
    (void)w;
    poly1305_32_init(&m->p32, key);
}

static inline void mac_blocks(struct mac *m, const uint8_t *p, size_t nblocks, enum mac_width w)
{
#if HAVE_POLY1305_64
    if (w == MAC_64) {
        poly1305_64_blocks(&m->p64, p, nblocks);
        return;
    }
#endif
    (void)w;
    poly1305_32_blocks(&m->p32, p, nblocks);
}

/* MACs len bytes zero-padded to a multiple of 16, as RFC 8439's AEAD does. */
static inline void mac_padded(struct mac *m, const uint8_t *p, size_t len, enum mac_width w)
{
    uint8_t block[POLY1305_BLOCK_SIZE] = { 0 };
    size_t full = len / POLY1305_BLOCK_SIZE, rest = len % POLY1305_BLOCK_SIZE;

    mac_blocks(m, p, full, w);
    if (rest) {
        memcpy(block, p + full * POLY1305_BLOCK_SIZE, rest);
        mac_blocks(m, block, 1, w);
    }
}

static inline void mac_final(struct mac *m, size_t ad_len, size_t ct_len,
                             uint8_t tag[POLY1305_TAG_SIZE], enum mac_width w)
{
    uint8_t block[POLY1305_BLOCK_SIZE];

    aead_lengths_block(block, ad_len, ct_len);
    mac_blocks(m, block, 1, w);
#if HAVE_POLY1305_64
    if (w == MAC_64) {
        poly1305_64_final(&m->p64, tag);
        return;
    }
#endif
    poly1305_32_final(&m->p32, tag);
}

/* XORs one block of keystream into up to 64 bytes, a word at a time. */
static inline void xor_block(uint8_t *dst, const uint8_t *src, size_t len,
                             const uint32_t st[CHACHA20_STATE_WORDS])
{
    uint32_t ks[CHACHA20_STATE_WORDS];

    if (len < CHACHA20_BLOCK_SIZE) {
        chacha20_xor_block(dst, src, len, st);
        return;
    }
    chacha20_block(st, ks);
    for (int i = 0; i < CHACHA20_STATE_WORDS; i++)
        put_le32(dst + 4 * i, get_le32(src + 4 * i) ^ ks[i]);
}

/* Block 0 of the stream is the Poly1305 key; the message starts at block 1. */
static inline void start(uint32_t st[CHACHA20_STATE_WORDS], struct mac *m, const uint8_t *ad,
                         size_t ad_len, uint32_t nonce0, uint64_t counter,
                         const uint8_t key[WG_AEAD_KEY_LEN], enum mac_width w)
{
    uint32_t block[CHACHA20_STATE_WORDS];
    uint8_t mac_key[POLY1305_KEY_SIZE];

    chacha20_init(st, key, nonce0, counter);
    chacha20_block(st, block);
    for (int i = 0; i < 8; i++)
        put_le32(mac_key + 4 * i, block[i]);
    mac_init(m, mac_key, w);
    mac_padded(m, ad, ad_len, w);
    st[12] = 1;
    wipe(block, sizeof(block));
    wipe(mac_key, sizeof(mac_key));
}

static inline __attribute__((always_inline)) void
seal_core(uint8_t *dst, const uint8_t *src, size_t len, const uint8_t *ad, size_t ad_len,
          uint32_t nonce0, uint64_t counter, const uint8_t key[WG_AEAD_KEY_LEN],
          enum mac_width w)
{
    uint32_t st[CHACHA20_STATE_WORDS];
    struct mac m;
    size_t off;

    start(st, &m, ad, ad_len, nonce0, counter, key, w);
    for (off = 0; off + CHACHA20_BLOCK_SIZE <= len; off += CHACHA20_BLOCK_SIZE, st[12]++) {
        xor_block(dst + off, src + off, CHACHA20_BLOCK_SIZE, st);
        mac_blocks(&m, dst + off, CHACHA20_BLOCK_SIZE / POLY1305_BLOCK_SIZE, w);
    }
    if (off < len) {
        xor_block(dst + off, src + off, len - off, st);
        mac_padded(&m, dst + off, len - off, w);
    }
    mac_final(&m, ad_len, len, dst + len, w);
    wipe(st, sizeof(st));
}

static inline __attribute__((always_inline)) bool
open_core(uint8_t *dst, const uint8_t *src, size_t len, const uint8_t *ad, size_t ad_len,
          uint32_t nonce0, uint64_t counter, const uint8_t key[WG_AEAD_KEY_LEN],
          enum mac_width w)
{
    uint32_t st[CHACHA20_STATE_WORDS];
    uint8_t tag[POLY1305_TAG_SIZE];
    struct mac m;
    size_t off;
    bool ok;

    if (len < POLY1305_TAG_SIZE)
        return false;
    len -= POLY1305_TAG_SIZE;
    start(st, &m, ad, ad_len, nonce0, counter, key, w);
    for (off = 0; off + CHACHA20_BLOCK_SIZE <= len; off += CHACHA20_BLOCK_SIZE, st[12]++) {
        mac_blocks(&m, src + off, CHACHA20_BLOCK_SIZE / POLY1305_BLOCK_SIZE, w);
        xor_block(dst + off, src + off, CHACHA20_BLOCK_SIZE, st);
    }
    if (off < len) {
        mac_padded(&m, src + off, len - off, w);
        xor_block(dst + off, src + off, len - off, st);
    }
    mac_final(&m, ad_len, len, tag, w);
    ok = tag_equal(tag, src + len);
    if (!ok)
        wipe(dst, len);
    wipe(st, sizeof(st));
    return ok;
}

#if HAVE_POLY1305_64
static void seal64(uint8_t *dst, const uint8_t *src, size_t len, const uint8_t *ad, size_t ad_len,
                   uint32_t nonce0, uint64_t counter, const uint8_t key[WG_AEAD_KEY_LEN])
{
    seal_core(dst, src, len, ad, ad_len, nonce0, counter, key, MAC_64);
}

static bool open64(uint8_t *dst, const uint8_t *src, size_t len, const uint8_t *ad, size_t ad_len,
                   uint32_t nonce0, uint64_t counter, const uint8_t key[WG_AEAD_KEY_LEN])
{
    return open_core(dst, src, len, ad, ad_len, nonce0, counter, key, MAC_64);
}
#endif

static void seal32(uint8_t *dst, const uint8_t *src, size_t len, const uint8_t *ad, size_t ad_len,
                   uint32_t nonce0, uint64_t counter, const uint8_t key[WG_AEAD_KEY_LEN])
{
    seal_core(dst, src, len, ad, ad_len, nonce0, counter, key, MAC_32);
}

static bool open32(uint8_t *dst, const uint8_t *src, size_t len, const uint8_t *ad, size_t ad_len,
                   uint32_t nonce0, uint64_t counter, const uint8_t key[WG_AEAD_KEY_LEN])
{
    return open_core(dst, src, len, ad, ad_len, nonce0, counter, key, MAC_32);
}

static bool always(void)
{
    return true;
}

#if HAVE_POLY1305_64
WG_AEAD_ENTRY_POINTS(portable, seal64, open64)
static bool only_on_64bit_hosts(void)
{
    return true;
}
#else
WG_AEAD_ENTRY_POINTS(portable, seal32, open32)
static bool only_on_64bit_hosts(void)
{
    /* "portable" is the 26-bit code already. */
    return false;
}
#endif
WG_AEAD_ENTRY_POINTS(portable32, seal32, open32)

const struct wg_aead_backend wg_aead_portable = {
    .name = "portable",
    .usable = always,
    .seal = portable_seal,
    .open = portable_open,
    .seal_nonce = portable_seal_nonce,
    .open_nonce = portable_open_nonce,
};

const struct wg_aead_backend wg_aead_portable32 = {
    .name = "portable32",
    .usable = only_on_64bit_hosts,
    .seal = portable32_seal,
    .open = portable32_open,
    .seal_nonce = portable32_seal_nonce,
    .open_nonce = portable32_open_nonce,
};
