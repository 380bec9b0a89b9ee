/*
 * checksum.c - the Internet checksum; see checksum.h.
 *
 * Ones' complement addition does not care about byte order (RFC 1071,
 * section 2(B)): words are loaded in the machine's own order, 32 bits at a
 * time into 64-bit accumulators (no carries to chase for any packet size),
 * and the folded result is swapped into network order once at the end.
 */
#define _GNU_SOURCE
#include "checksum.h"

#include <arpa/inet.h>
#include <string.h>

/* The native-order sum of p, unfolded. */
static uint64_t sum_native(const uint8_t *p, size_t len)
{
    uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    uint32_t w[4];
    uint16_t h;

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

uint32_t wg_csum_add(uint32_t sum, const uint8_t *p, size_t len)
{
    uint32_t folded = fold16(sum_native(p, len)) & 0xffffu;

    return fold16((uint64_t)sum + ntohs((uint16_t)folded));
}

uint32_t wg_csum_copy(uint32_t sum, uint8_t *dst, const uint8_t *src, size_t len)
{
    /* The sum runs over the copy while it is still in the cache. */
    memcpy(dst, src, len);
    return wg_csum_add(sum, dst, len);
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
