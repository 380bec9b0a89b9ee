/*
 * chacha20.h - the ChaCha20 block function (RFC 8439 section 2.3) and the
 * byte-order helpers every backend shares.
 *
 * Loads and stores go through explicit little-endian helpers, so the
 * portable code is right on big-endian machines too; compilers turn them
 * into plain moves on little-endian ones.
 */
#pragma once
#include <stddef.h>
#include <stdint.h>

#define CHACHA20_BLOCK_SIZE 64
#define CHACHA20_STATE_WORDS 16
#define CHACHA20_DOUBLE_ROUNDS 10

static inline uint32_t get_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t get_le64(const uint8_t *p)
{
    return (uint64_t)get_le32(p) | (uint64_t)get_le32(p + 4) << 32;
}

static inline void put_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static inline void put_le64(uint8_t *p, uint64_t v)
{
    put_le32(p, (uint32_t)v);
    put_le32(p + 4, (uint32_t)(v >> 32));
}

static inline uint32_t rotl32(uint32_t v, int n)
{
    return v << n | v >> (32 - n);
}

/*
 * The initial state for block 0. WireGuard's nonce is 4 zero bytes and the
 * little-endian message counter; RFC 8439's vectors use arbitrary first 4
 * bytes, hence nonce0 (the first nonce word).
 */
static inline void chacha20_init(uint32_t st[CHACHA20_STATE_WORDS], const uint8_t key[32],
                                 uint32_t nonce0, uint64_t counter)
{
    st[0] = 0x61707865; /* "expand 32-byte k" */
    st[1] = 0x3320646e;
    st[2] = 0x79622d32;
    st[3] = 0x6b206574;
    for (int i = 0; i < 8; i++)
        st[4 + i] = get_le32(key + 4 * i);
    st[12] = 0; /* block counter */
    st[13] = nonce0;
    st[14] = (uint32_t)counter;
    st[15] = (uint32_t)(counter >> 32);
}

#define CHACHA20_QR(a, b, c, d)                                                              \
    do {                                                                                     \
        a += b; d = rotl32(d ^ a, 16);                                                      \
        c += d; b = rotl32(b ^ c, 12);                                                      \
        a += b; d = rotl32(d ^ a, 8);                                                       \
        c += d; b = rotl32(b ^ c, 7);                                                       \
    } while (0)

/* One 64-byte keystream block, as 16 words, for block counter st[12]. */
static inline void chacha20_block(const uint32_t st[CHACHA20_STATE_WORDS],
                                  uint32_t out[CHACHA20_STATE_WORDS])
{
    uint32_t x[CHACHA20_STATE_WORDS];

    for (int i = 0; i < CHACHA20_STATE_WORDS; i++)
        x[i] = st[i];
    for (int i = 0; i < CHACHA20_DOUBLE_ROUNDS; i++) {
        CHACHA20_QR(x[0], x[4], x[8], x[12]);
        CHACHA20_QR(x[1], x[5], x[9], x[13]);
        CHACHA20_QR(x[2], x[6], x[10], x[14]);
        CHACHA20_QR(x[3], x[7], x[11], x[15]);
        CHACHA20_QR(x[0], x[5], x[10], x[15]);
        CHACHA20_QR(x[1], x[6], x[11], x[12]);
        CHACHA20_QR(x[2], x[7], x[8], x[13]);
        CHACHA20_QR(x[3], x[4], x[9], x[14]);
    }
    for (int i = 0; i < CHACHA20_STATE_WORDS; i++)
        out[i] = x[i] + st[i];
}

/* XORs len bytes (at most one block) of keystream for st[12] into dst. */
static inline void chacha20_xor_block(uint8_t *dst, const uint8_t *src, size_t len,
                                      const uint32_t st[CHACHA20_STATE_WORDS])
{
    uint32_t ks[CHACHA20_STATE_WORDS];
    uint8_t bytes[CHACHA20_BLOCK_SIZE];

    chacha20_block(st, ks);
    for (int i = 0; i < CHACHA20_STATE_WORDS; i++)
        put_le32(bytes + 4 * i, ks[i]);
    for (size_t i = 0; i < len; i++)
        dst[i] = src[i] ^ bytes[i];
}
