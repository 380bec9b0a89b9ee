/*
 * blake2s.c - BLAKE2s as RFC 7693 specifies it (sequential mode, no salt or
 * personalisation), keyed BLAKE2s and HMAC-BLAKE2s; see blake2s.h.
 */
#define _GNU_SOURCE                     /* explicit_bzero */
#include "blake2s.h"

#include <stdbool.h>
#include <string.h>

static const uint32_t IV[8] = {
    0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A,
    0x510E527F, 0x9B05688C, 0x1F83D9AB, 0x5BE0CD19,
};

/* The message word permutation of each of the ten rounds. */
static const uint8_t SIGMA[10][16] = {
    { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 },
    { 14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3 },
    { 11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4 },
    { 7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8 },
    { 9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13 },
    { 2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9 },
    { 12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11 },
    { 13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10 },
    { 6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5 },
    { 10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0 },
};

static uint32_t rotr(uint32_t x, unsigned int n)
{
    return x >> n | x << (32 - n);
}

static uint32_t load_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

#define G(a, b, c, d, x, y)          \
    do {                             \
        a = a + b + (x);             \
        d = rotr(d ^ a, 16);         \
        c = c + d;                   \
        b = rotr(b ^ c, 12);         \
        a = a + b + (y);             \
        d = rotr(d ^ a, 8);          \
        c = c + d;                   \
        b = rotr(b ^ c, 7);          \
    } while (0)

static void compress(struct blake2s_state *s, const uint8_t block[BLAKE2S_BLOCK_SIZE], bool last)
{
    uint32_t m[16], v[16];

    for (int i = 0; i < 16; i++)
        m[i] = load_le32(block + 4 * i);
    memcpy(v, s->h, sizeof(s->h));
    memcpy(v + 8, IV, sizeof(IV));
    v[12] ^= s->t[0];
    v[13] ^= s->t[1];
    if (last)
        v[14] = ~v[14];
    for (int r = 0; r < 10; r++) {
        const uint8_t *p = SIGMA[r];
        G(v[0], v[4], v[8], v[12], m[p[0]], m[p[1]]);
        G(v[1], v[5], v[9], v[13], m[p[2]], m[p[3]]);
        G(v[2], v[6], v[10], v[14], m[p[4]], m[p[5]]);
        G(v[3], v[7], v[11], v[15], m[p[6]], m[p[7]]);
        G(v[0], v[5], v[10], v[15], m[p[8]], m[p[9]]);
        G(v[1], v[6], v[11], v[12], m[p[10]], m[p[11]]);
        G(v[2], v[7], v[8], v[13], m[p[12]], m[p[13]]);
        G(v[3], v[4], v[9], v[14], m[p[14]], m[p[15]]);
    }
    for (int i = 0; i < 8; i++)
        s->h[i] ^= v[i] ^ v[i + 8];
    explicit_bzero(m, sizeof(m));
    explicit_bzero(v, sizeof(v));
}

static void count(struct blake2s_state *s, uint32_t n)
{
    s->t[0] += n;
    if (s->t[0] < n)
        s->t[1]++;
}

void wg_blake2s_init(struct blake2s_state *s, size_t outlen, const uint8_t *key, size_t keylen)
{
    memset(s, 0, sizeof(*s));
    memcpy(s->h, IV, sizeof(IV));
    /* Parameter block: digest length, key length, fanout 1, depth 1. */
    s->h[0] ^= 0x01010000u ^ (uint32_t)keylen << 8 ^ (uint32_t)outlen;
    s->outlen = outlen;
    if (keylen) {
        /* The key is the first block, zero-padded. */
        memcpy(s->buf, key, keylen);
        s->buflen = BLAKE2S_BLOCK_SIZE;
    }
}

void wg_blake2s_update(struct blake2s_state *s, const uint8_t *in, size_t len)
{
    while (len) {
        size_t take;
        /* The last block is compressed by final (with the last-block flag), so a full
         * buffer is only compressed once more input follows it. */
        if (s->buflen == BLAKE2S_BLOCK_SIZE) {
            count(s, BLAKE2S_BLOCK_SIZE);
            compress(s, s->buf, false);
            s->buflen = 0;
        }
        take = BLAKE2S_BLOCK_SIZE - s->buflen;
        if (take > len)
            take = len;
        memcpy(s->buf + s->buflen, in, take);
        s->buflen += take;
        in += take;
        len -= take;
    }
}

void wg_blake2s_final(struct blake2s_state *s, uint8_t *out)
{
    uint8_t full[BLAKE2S_HASH_SIZE];

    count(s, (uint32_t)s->buflen);
    memset(s->buf + s->buflen, 0, BLAKE2S_BLOCK_SIZE - s->buflen);
    compress(s, s->buf, true);
    for (int i = 0; i < 8; i++) {
        full[4 * i] = (uint8_t)s->h[i];
        full[4 * i + 1] = (uint8_t)(s->h[i] >> 8);
        full[4 * i + 2] = (uint8_t)(s->h[i] >> 16);
        full[4 * i + 3] = (uint8_t)(s->h[i] >> 24);
    }
    memcpy(out, full, s->outlen);
    explicit_bzero(full, sizeof(full));
    explicit_bzero(s, sizeof(*s));
}

void wg_blake2s(uint8_t *out, size_t outlen, const uint8_t *in, size_t inlen,
                const uint8_t *key, size_t keylen)
{
    struct blake2s_state s;

    wg_blake2s_init(&s, outlen, key, keylen);
    wg_blake2s_update(&s, in, inlen);
    wg_blake2s_final(&s, out);
}

void wg_hmac_blake2s(uint8_t *out, const uint8_t *key, size_t keylen,
                     const uint8_t *in, size_t inlen)
{
    uint8_t pad[BLAKE2S_BLOCK_SIZE] = { 0 }, inner[BLAKE2S_HASH_SIZE];
    struct blake2s_state s;

    if (keylen > BLAKE2S_BLOCK_SIZE)
        wg_blake2s(pad, BLAKE2S_HASH_SIZE, key, keylen, NULL, 0);
    else
        memcpy(pad, key, keylen);
    for (int i = 0; i < BLAKE2S_BLOCK_SIZE; i++)
        pad[i] ^= 0x36;
    wg_blake2s_init(&s, BLAKE2S_HASH_SIZE, NULL, 0);
    wg_blake2s_update(&s, pad, sizeof(pad));
    wg_blake2s_update(&s, in, inlen);
    wg_blake2s_final(&s, inner);
    for (int i = 0; i < BLAKE2S_BLOCK_SIZE; i++)
        pad[i] ^= 0x36 ^ 0x5c;
    wg_blake2s_init(&s, BLAKE2S_HASH_SIZE, NULL, 0);
    wg_blake2s_update(&s, pad, sizeof(pad));
    wg_blake2s_update(&s, inner, sizeof(inner));
    wg_blake2s_final(&s, out);
    explicit_bzero(pad, sizeof(pad));
    explicit_bzero(inner, sizeof(inner));
}

int wg_memeq_ct(const void *a, const void *b, size_t len)
{
    const volatile uint8_t *x = a, *y = b;
    uint8_t diff = 0;

    for (size_t i = 0; i < len; i++)
        diff |= x[i] ^ y[i];
    return diff == 0;
}
