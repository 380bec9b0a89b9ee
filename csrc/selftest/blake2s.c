/*
 * blake2s.c - BLAKE2s against RFC 7693: "abc" (Appendix B) and the grand hash
 * of Appendix E over every digest length, input length and keying; HMAC
 * against RFC 2104's construction done by hand. tests/c/test_blake2s.py adds
 * a differential test against hashlib on random inputs and keys.
 */
#include <string.h>

#include "../crypto/blake2s.h"
#include "selftest.h"

static void seq(uint8_t *out, size_t len, uint32_t seed)
{
    uint32_t a = 0xDEAD4BADu * seed, b = 1, t;

    for (size_t i = 0; i < len; i++) {
        t = a + b;
        a = b;
        b = t;
        out[i] = (uint8_t)(t >> 24);
    }
}

static void appendix_e(void)
{
    static const uint8_t expected[32] = {
        0x6a, 0x41, 0x1f, 0x08, 0xce, 0x25, 0xad, 0xcd, 0xfb, 0x02, 0xab, 0xa6, 0x41, 0x45, 0x1c,
        0xec, 0x53, 0xc5, 0x98, 0xb2, 0x4f, 0x4f, 0xc7, 0x87, 0xfb, 0xdc, 0x88, 0x79, 0x7f, 0x4c,
        0x1d, 0xfe,
    };
    static const size_t outlens[] = { 16, 20, 28, 32 }, inlens[] = { 0, 3, 64, 65, 255, 1024 };
    uint8_t in[1024], key[32], md[32], grand[32];
    struct blake2s_state all;

    wg_blake2s_init(&all, 32, NULL, 0);
    for (size_t i = 0; i < 4; i++) {
        for (size_t j = 0; j < 6; j++) {
            seq(in, inlens[j], (uint32_t)inlens[j]);
            wg_blake2s(md, outlens[i], in, inlens[j], NULL, 0);
            wg_blake2s_update(&all, md, outlens[i]);
            seq(key, outlens[i], (uint32_t)outlens[i]);
            wg_blake2s(md, outlens[i], in, inlens[j], key, outlens[i]);
            wg_blake2s_update(&all, md, outlens[i]);
        }
    }
    wg_blake2s_final(&all, grand);
    CHECK(memcmp(grand, expected, 32) == 0, "RFC 7693 appendix E grand hash");
}

static void abc_and_pieces(void)
{
    static const uint8_t abc[32] = {
        0x50, 0x8c, 0x5e, 0x8c, 0x32, 0x7c, 0x14, 0xe2, 0xe1, 0xa7, 0x2b, 0xa3, 0x4e, 0xeb, 0x45,
        0x2f, 0x37, 0x45, 0x8b, 0x20, 0x9e, 0xd6, 0x3a, 0x29, 0x4d, 0x99, 0x9b, 0x4c, 0x86, 0x67,
        0x59, 0x82,
    };
    uint8_t md[32], whole[32], in[200];
    struct blake2s_state s;

    wg_blake2s(md, 32, (const uint8_t *)"abc", 3, NULL, 0);
    CHECK(memcmp(md, abc, 32) == 0, "RFC 7693 appendix B");
    /* Any split of the input gives the same hash. */
    seq(in, sizeof(in), 7);
    wg_blake2s(whole, 32, in, sizeof(in), NULL, 0);
    for (size_t cut = 0; cut <= sizeof(in); cut += 13) {
        wg_blake2s_init(&s, 32, NULL, 0);
        wg_blake2s_update(&s, in, cut);
        wg_blake2s_update(&s, in + cut, sizeof(in) - cut);
        wg_blake2s_final(&s, md);
        CHECK(memcmp(md, whole, 32) == 0, "split at %zu", cut);
    }
}

static void hmac(void)
{
    uint8_t key[32], msg[100], pad[64] = { 0 }, inner[32], by_hand[32], out[32];
    struct blake2s_state s;

    seq(key, sizeof(key), 1);
    seq(msg, sizeof(msg), 2);
    memcpy(pad, key, sizeof(key));
    for (int i = 0; i < 64; i++)
        pad[i] ^= 0x36;
    wg_blake2s_init(&s, 32, NULL, 0);
    wg_blake2s_update(&s, pad, 64);
    wg_blake2s_update(&s, msg, sizeof(msg));
    wg_blake2s_final(&s, inner);
    for (int i = 0; i < 64; i++)
        pad[i] ^= 0x36 ^ 0x5c;
    wg_blake2s_init(&s, 32, NULL, 0);
    wg_blake2s_update(&s, pad, 64);
    wg_blake2s_update(&s, inner, 32);
    wg_blake2s_final(&s, by_hand);
    wg_hmac_blake2s(out, key, sizeof(key), msg, sizeof(msg));
    CHECK(memcmp(out, by_hand, 32) == 0, "HMAC-BLAKE2s");
    CHECK(wg_memeq_ct(out, by_hand, 32) && !wg_memeq_ct(out, inner, 32), "constant-time compare");
}

void selftest_blake2s(void)
{
    appendix_e();
    abc_and_pieces();
    hmac();
}
