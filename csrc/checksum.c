/*
 * checksum.c - the Internet checksum; see checksum.h.
 *
 * Ones' complement addition does not care about byte order (RFC 1071,
 * section 2(B)): words are loaded in the machine's own order, 32 bits at a
 * time into 64-bit accumulators (no carries to chase for any packet size),
 * and the folded result is swapped into network order once at the end. On
 * x86_64 the bulk goes 32 bytes a round through SSE2 (always there), and a
 * copy is made in the same pass: segments of a super-packet are copied and
 * summed at once.
 */
#define _GNU_SOURCE
#include "checksum.h"

#include <arpa/inet.h>
#include <string.h>

#if defined(__x86_64__) && defined(__SSE2__)
#include <emmintrin.h>

/* 32 bytes a round: 32-bit words widened into four 64-bit lanes, copied on
 * the way if dst is given. Leaves the last len % 32 bytes to the caller. */
static uint64_t sum_blocks(uint8_t *dst, const uint8_t **p, size_t *len)
{
    __m128i acc0 = _mm_setzero_si128(), acc1 = _mm_setzero_si128();
    const __m128i zero = _mm_setzero_si128();
    const uint8_t *src = *p;
    uint64_t lanes[2];
    size_t n = *len;

    for (; n >= 32; src += 32, n -= 32) {
        __m128i v0 = _mm_loadu_si128((const __m128i *)src);
        __m128i v1 = _mm_loadu_si128((const __m128i *)(src + 16));

        if (dst) {
            _mm_storeu_si128((__m128i *)dst, v0);
            _mm_storeu_si128((__m128i *)(dst + 16), v1);
            dst += 32;
        }
        acc0 = _mm_add_epi64(acc0, _mm_unpacklo_epi32(v0, zero));
        acc1 = _mm_add_epi64(acc1, _mm_unpackhi_epi32(v0, zero));
        acc0 = _mm_add_epi64(acc0, _mm_unpacklo_epi32(v1, zero));
        acc1 = _mm_add_epi64(acc1, _mm_unpackhi_epi32(v1, zero));
    }
    _mm_storeu_si128((__m128i *)lanes, _mm_add_epi64(acc0, acc1));
    *p = src;
    *len = n;
    return lanes[0] + lanes[1];
}
#else
static uint64_t sum_blocks(uint8_t *dst, const uint8_t **p, size_t *len)
{
    uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    const uint8_t *src = *p;
    uint32_t w[4];
    size_t n = *len;

    for (; n >= 16; src += 16, n -= 16) {
        memcpy(w, src, 16);
        if (dst) {
            memcpy(dst, w, 16);
            dst += 16;
        }
        a0 += w[0];
        a1 += w[1];
        a2 += w[2];
        a3 += w[3];
    }
    *p = src;
    *len = n;
    return a0 + a1 + a2 + a3;
}
#endif

/* The native-order sum of p, unfolded; copied to dst on the way if given. */
static uint64_t sum_native(uint8_t *dst, const uint8_t *p, size_t len)
{
    const uint8_t *start = p;
    uint64_t a0 = sum_blocks(dst, &p, &len), a1 = 0, a2 = 0, a3 = 0;
    uint32_t w[4];
    uint16_t h;

    if (dst)
        memcpy(dst + (p - start), p, len);
    for (; len >= 16; p += 16, len -= 16) {
        memcpy(w, p, 16);
        a0 += w[0];
        a1 += w[1];
        a2 += w[2];
        a3 += w[3];
    }
    for (; len >= 4; p += 4, len -= 4) {
        memcpy(w, p, 4);
        a0 += w[0];
    }
    if (len >= 2) {
        memcpy(&h, p, 2);
        a1 += h;
        p += 2;
        len -= 2;
    }
    if (len) {
        uint8_t last[2] = { p[0], 0 };
        memcpy(&h, last, 2);
        a2 += h;
    }
    return a0 + a1 + a2 + a3;
}

static uint32_t fold16(uint64_t a)
{
    a = (a & 0xffffffffu) + (a >> 32);
    a = (a & 0xffffffffu) + (a >> 32);
    a = (a & 0xffffu) + (a >> 16);
    a = (a & 0xffffu) + (a >> 16);
    return (uint32_t)((a & 0xffffu) + (a >> 16));
}

static uint32_t add_native(uint32_t sum, uint64_t native)
{
    return fold16((uint64_t)sum + ntohs((uint16_t)(fold16(native) & 0xffffu)));
}

uint32_t wg_csum_add(uint32_t sum, const uint8_t *p, size_t len)
{
    return add_native(sum, sum_native(NULL, p, len));
}

uint32_t wg_csum_copy(uint32_t sum, uint8_t *dst, const uint8_t *src, size_t len)
{
    /* One pass: every word is loaded once, stored and added. */
    return add_native(sum, sum_native(dst, src, len));
}

uint16_t wg_csum_fold_partial(uint32_t sum)
{
    return (uint16_t)fold16(sum);
}

uint16_t wg_csum_fold(uint32_t sum)
{
    return (uint16_t)~fold16(sum);
}

uint32_t wg_csum_pseudo(const uint8_t *ip, int family, uint8_t proto, uint32_t l4_len)
{
    uint8_t tail[8] = { 0 };
    uint32_t sum;

    tail[2] = (uint8_t)(l4_len >> 8);
    tail[3] = (uint8_t)l4_len;
    tail[7] = proto;
    if (family == 4) {
        sum = wg_csum_add(0, ip + 12, 8);   /* source and destination */
        return wg_csum_add(sum, tail, 8);
    }
    sum = wg_csum_add(0, ip + 8, 32);
    /* IPv6's 32-bit length (RFC 8200, 8.1): the same words for any length
     * below 2^16, and the upper half of a larger one. */
    tail[0] = 0;
    tail[1] = (uint8_t)(l4_len >> 16);
    return wg_csum_add(sum, tail, 8);
}
