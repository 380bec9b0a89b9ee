/*
 * fuzz.h - what the libFuzzer drivers share: an input read as a stream of
 * choices, and a check that stops the run with a message.
 *
 * An input that runs out reads as zeros, so every prefix of an input is an
 * input too and the fuzzer can shorten what it found. The drivers build
 * with clang -fsanitize=fuzzer,address,undefined (`make fuzz`) and, over the
 * kept corpora and crash inputs only, with any compiler and replay_main.c
 * (`make fuzz-regress`).
 */
#pragma once
#include <endian.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fuzz_input {
    const uint8_t *p;
    size_t left;
};

static inline bool fz_more(const struct fuzz_input *in)
{
    return in->left > 0;
}

static inline uint8_t fz_u8(struct fuzz_input *in)
{
    if (!in->left)
        return 0;
    in->left--;
    return *in->p++;
}

static inline uint16_t fz_u16(struct fuzz_input *in)
{
    uint16_t v = fz_u8(in);
    return (uint16_t)(v | fz_u8(in) << 8);
}

static inline uint32_t fz_u32(struct fuzz_input *in)
{
    uint32_t v = fz_u16(in);
    return v | (uint32_t)fz_u16(in) << 16;
}

static inline uint64_t fz_u64(struct fuzz_input *in)
{
    uint64_t v = fz_u32(in);
    return v | (uint64_t)fz_u32(in) << 32;
}

/* n bytes into dst, zeros past the end of the input. */
static inline void fz_bytes(struct fuzz_input *in, void *dst, size_t n)
{
    size_t k = n < in->left ? n : in->left;

    memcpy(dst, in->p, k);
    memset((uint8_t *)dst + k, 0, n - k);
    in->p += k;
    in->left -= k;
}

/* Up to n bytes of the input itself; *len gets how many. */
static inline const uint8_t *fz_take(struct fuzz_input *in, size_t n, size_t *len)
{
    const uint8_t *p = in->p;

    *len = n < in->left ? n : in->left;
    in->p += *len;
    in->left -= *len;
    return p;
}

/* len bytes from a seed (xorshift64, its state's bytes low first), a word at
 * a time: the drivers fill whole super-packets and coalesced receives with it
 * for every input, so each word is one store but for the tail. */
static inline void fz_pattern(uint8_t *p, size_t len, uint64_t seed)
{
    uint64_t s = seed | 1, le;
    size_t i = 0;

    for (; i < len; i += 8) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        le = htole64(s);
        if (len - i < 8)
            break;
        memcpy(p + i, &le, 8);
    }
    for (unsigned int k = 0; i + k < len; k++)
        p[i + k] = (uint8_t)(s >> (8 * k));
}

#define FUZZ_CHECK(cond, ...)                                                           \
    do {                                                                                \
        if (!(cond)) {                                                                  \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond);   \
            fprintf(stderr, __VA_ARGS__);                                               \
            fputc('\n', stderr);                                                        \
            abort();                                                                    \
        }                                                                               \
    } while (0)

/* The Internet checksum (RFC 1071) the plain way, big-endian 16-bit words
 * added up: the drivers' own, independent of csrc/checksum.c. Returns the
 * folded, uncomplemented sum of sum and p. Eight bytes are loaded at a time
 * and split into their four words (the offload driver sums every byte of
 * every segment it expects, under ASan: one checked load instead of eight);
 * a 64-bit total cannot overflow for any length a packet has. */
static inline uint32_t fz_csum(uint32_t sum, const uint8_t *p, size_t len)
{
    uint64_t total = sum, w;
    size_t i = 0;

    for (; i + 8 <= len; i += 8) {
        memcpy(&w, p + i, 8);
        w = be64toh(w);
        total += (w >> 48) + (w >> 32 & 0xffff) + (w >> 16 & 0xffff) + (w & 0xffff);
    }
    for (; i + 1 < len; i += 2)
        total += (uint32_t)(p[i] << 8 | p[i + 1]);
    if (len & 1)
        total += (uint32_t)p[len - 1] << 8;
    while (total >> 16)
        total = (total & 0xffff) + (total >> 16);
    return (uint32_t)total;
}

/* The pseudo-header's sum for a transport header after the IP header ip. */
static inline uint32_t fz_pseudo(const uint8_t *ip, uint8_t proto, uint32_t l4_len)
{
    uint8_t tail[8] = { 0, (uint8_t)(l4_len >> 16), (uint8_t)(l4_len >> 8), (uint8_t)l4_len,
                        0, 0, 0, proto };

    if (ip[0] >> 4 == 4)
        return fz_csum(fz_csum(0, ip + 12, 8), tail, 8);
    return fz_csum(fz_csum(0, ip + 8, 32), tail, 8);
}

static inline uint16_t fz_be16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t fz_be32(const uint8_t *p)
{
    return (uint32_t)fz_be16(p) << 16 | fz_be16(p + 2);
}

static inline void fz_put_be16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static inline void fz_put_be32(uint8_t *p, uint32_t v)
{
    fz_put_be16(p, (uint16_t)(v >> 16));
    fz_put_be16(p + 2, (uint16_t)v);
}
