/*
 * checksum.c - the Internet checksum against RFC 1071's worked example and
 * against a byte-at-a-time sum over every length and alignment, with and
 * without the copy (the vector and scalar paths meet at every boundary).
 */
#include <stdint.h>
#include <string.h>

#include "../checksum.h"
#include "selftest.h"

/* Big-endian 16-bit words one at a time, folded at the end. */
static uint32_t reference(uint32_t sum, const uint8_t *p, size_t len)
{
    uint64_t acc = sum;

    for (size_t i = 0; i + 1 < len; i += 2)
        acc += (uint32_t)(p[i] << 8 | p[i + 1]);
    if (len & 1)
        acc += (uint32_t)p[len - 1] << 8;
    while (acc >> 16)
        acc = (acc & 0xffff) + (acc >> 16);
    return (uint32_t)acc;
}

void selftest_checksum(void)
{
    static const uint8_t rfc[8] = { 0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7 };
    static uint8_t buf[1600], copy[1600];
    uint32_t x = 0x2545f491;

    CHECK(wg_csum_fold_partial(wg_csum_add(0, rfc, 8)) == 0xddf2, "RFC 1071 4.1");
    CHECK(wg_csum_fold(wg_csum_add(0, rfc, 8)) == (uint16_t)~0xddf2, "complemented");
    for (size_t i = 0; i < sizeof(buf); i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        buf[i] = (uint8_t)x;
    }
    for (size_t off = 0; off < 8; off++) {
        for (size_t len = 0; len + off <= 1100; len++) {
            uint32_t want = reference(0x1234, buf + off, len);
            uint32_t got = wg_csum_fold_partial(wg_csum_add(0x1234, buf + off, len));
            uint32_t copied;

            memset(copy, 0xa5, sizeof(copy));
            copied = wg_csum_fold_partial(wg_csum_copy(0x1234, copy + 3, buf + off, len));
            CHECK(got == want, "sum at offset %zu, length %zu: %04x, not %04x", off, len, got,
                  want);
            CHECK(copied == want && !memcmp(copy + 3, buf + off, len) && copy[2] == 0xa5 &&
                      copy[3 + len] == 0xa5,
                  "copy at offset %zu, length %zu", off, len);
        }
    }
}
