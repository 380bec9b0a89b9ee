/*
 * x25519.c - a reference X25519 for the self-tests, written from RFC 7748
 * (section 5's Montgomery ladder), and checked here against the RFC's
 * vectors. The plain-C self-tests link no libsodium, so this is what they
 * register for the handshake's steps (csrc/crypto/x25519.h): slow and
 * simple, an independent implementation of the same function.
 *
 * Field elements mod p = 2^255 - 19 are 16 signed limbs of 16 bits
 * (int64_t, so sums and differences need no carry before a product);
 * 2^256 = 38 (mod p) folds the top half of a product back.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../crypto/wg_crypto.h"
#include "../crypto/x25519.h"
#include "selftest.h"

typedef int64_t fe[16];

size_t selftest_unhex(uint8_t *out, size_t max, const char *hex)
{
    size_t n = 0;

    for (; hex[0] && hex[1] && n < max; hex += 2) {
        char pair[3] = { hex[0], hex[1], 0 };
        out[n++] = (uint8_t)strtoul(pair, NULL, 16);
    }
    return n;
}

static void carry(fe a)
{
    for (int i = 0; i < 16; i++) {
        int64_t c = a[i] >> 16;          /* floor: limbs may be negative */

        a[i] -= c * 65536;
        if (i < 15)
            a[i + 1] += c;
        else
            a[0] += 38 * c;
    }
}

static void add(fe out, const fe a, const fe b)
{
    for (int i = 0; i < 16; i++)
        out[i] = a[i] + b[i];
}

static void sub(fe out, const fe a, const fe b)
{
    for (int i = 0; i < 16; i++)
        out[i] = a[i] - b[i];
}

static void mul(fe out, const fe a, const fe b)
{
    int64_t t[31] = { 0 };

    for (int i = 0; i < 16; i++)
        for (int j = 0; j < 16; j++)
            t[i + j] += a[i] * b[j];
    for (int i = 0; i < 15; i++)
        t[i] += 38 * t[i + 16];
    memcpy(out, t, sizeof(fe));
    carry(out);
    carry(out);
}

/* Swaps a and b if bit is 1, without a branch on it. */
static void cswap(fe a, fe b, int64_t bit)
{
    int64_t mask = -bit;

    for (int i = 0; i < 16; i++) {
        int64_t t = mask & (a[i] ^ b[i]);

        a[i] ^= t;
        b[i] ^= t;
    }
}

/* a^(p - 2) = 1/a: p - 2 = 2^255 - 21 has every bit of 0..254 set but 2 and 4. */
static void invert(fe out, const fe a)
{
    fe c;

    memcpy(c, a, sizeof(fe));
    for (int i = 253; i >= 0; i--) {
        mul(c, c, c);
        if (i != 2 && i != 4)
            mul(c, c, a);
    }
    memcpy(out, c, sizeof(fe));
}

static void unpack(fe out, const uint8_t in[32])
{
    for (int i = 0; i < 16; i++)
        out[i] = in[2 * i] | (int64_t)in[2 * i + 1] << 8;
    out[15] &= 0x7fff;                  /* the u-coordinate's top bit is ignored */
}

/* The canonical bytes: subtract p while the value is at least p (twice suffices). */
static void pack(uint8_t out[32], const fe a)
{
    fe t, m;

    memcpy(t, a, sizeof(fe));
    carry(t);
    carry(t);
    carry(t);
    for (int pass = 0; pass < 2; pass++) {
        int64_t borrow;

        m[0] = t[0] - 0xffed;
        for (int i = 1; i < 15; i++) {
            m[i] = t[i] - 0xffff - ((m[i - 1] >> 16) & 1);
            m[i - 1] &= 0xffff;
        }
        m[15] = t[15] - 0x7fff - ((m[14] >> 16) & 1);
        m[14] &= 0xffff;
        borrow = (m[15] >> 16) & 1;     /* 1: t < p, keep t */
        cswap(t, m, 1 - borrow);
    }
    for (int i = 0; i < 16; i++) {
        out[2 * i] = (uint8_t)(t[i] & 0xff);
        out[2 * i + 1] = (uint8_t)(t[i] >> 8);
    }
}

/* RFC 7748 section 5, with libsodium's contract: -1 for an all-zero result. */
int selftest_x25519_ref(unsigned char *q, const unsigned char *n, const unsigned char *p)
{
    static const fe a24 = { 0xdb41, 1 };          /* 121665 */
    fe x1, x2 = { 1 }, z2 = { 0 }, x3, z3 = { 1 };
    fe A, AA, B, BB, E, C, D, DA, CB, t;
    uint8_t k[32];
    int64_t swap = 0;

    memcpy(k, n, 32);
    k[0] &= 248;
    k[31] = (k[31] & 127) | 64;
    unpack(x1, p);
    memcpy(x3, x1, sizeof(fe));
    for (int i = 254; i >= 0; i--) {
        int64_t bit = (k[i / 8] >> (i % 8)) & 1;

        swap ^= bit;
        cswap(x2, x3, swap);
        cswap(z2, z3, swap);
        swap = bit;
        add(A, x2, z2);
        mul(AA, A, A);
        sub(B, x2, z2);
        mul(BB, B, B);
        sub(E, AA, BB);
        add(C, x3, z3);
        sub(D, x3, z3);
        mul(DA, D, A);
        mul(CB, C, B);
        add(t, DA, CB);
        mul(x3, t, t);
        sub(t, DA, CB);
        mul(t, t, t);
        mul(z3, x1, t);
        mul(x2, AA, BB);
        mul(t, a24, E);
        add(t, AA, t);
        mul(z2, E, t);
    }
    cswap(x2, x3, swap);
    cswap(z2, z3, swap);
    invert(z2, z2);
    mul(x2, x2, z2);
    pack(q, x2);
    return wg_x25519_is_zero(q, 32) ? -1 : 0;
}

int selftest_x25519_ref_base(unsigned char *q, const unsigned char *n)
{
    static const uint8_t nine[32] = { 9 };

    return selftest_x25519_ref(q, n, nine);
}

void selftest_x25519(void)
{
    static const struct {
        const char *scalar, *u, *out;
    } rfc[] = {
        /* RFC 7748 section 5.2 */
        { "a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
          "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c",
          "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552" },
        { "4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d",
          "e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493",
          "95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957" },
        /* Section 6.1: Alice's and Bob's public keys, then their shared secret. */
        { "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
          "0900000000000000000000000000000000000000000000000000000000000000",
          "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a" },
        { "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb",
          "0900000000000000000000000000000000000000000000000000000000000000",
          "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f" },
        { "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
          "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f",
          "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742" },
    };
    /* Points of small order: X25519 with them is zero whatever the scalar. */
    static const char *low_order[] = {
        "0000000000000000000000000000000000000000000000000000000000000000",
        "0100000000000000000000000000000000000000000000000000000000000000",
        "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    };
    uint8_t k[32], u[32], want[32], got[32];

    for (size_t i = 0; i < sizeof(rfc) / sizeof(rfc[0]); i++) {
        selftest_unhex(k, 32, rfc[i].scalar);
        selftest_unhex(u, 32, rfc[i].u);
        selftest_unhex(want, 32, rfc[i].out);
        CHECK(selftest_x25519_ref(got, k, u) == 0 && memcmp(got, want, 32) == 0,
              "RFC 7748 vector %zu", i);
    }
    /* What the handshake calls, over the reference: results, and refusals. */
    CHECK(wg_crypto_init((void *)selftest_x25519_ref, (void *)selftest_x25519_ref_base, NULL,
                         NULL) == 0, "wg_crypto_init");
    selftest_unhex(k, 32, rfc[4].scalar);
    selftest_unhex(u, 32, rfc[4].u);
    selftest_unhex(want, 32, rfc[4].out);
    CHECK(wg_x25519(got, k, u) == 0 && memcmp(got, want, 32) == 0, "wg_x25519");
    selftest_unhex(want, 32, rfc[2].out);
    CHECK(wg_x25519_base(got, k) == 0 && memcmp(got, want, 32) == 0,
          "wg_x25519_base: Alice's public key");
    for (size_t i = 0; i < sizeof(low_order) / sizeof(low_order[0]); i++) {
        selftest_unhex(u, 32, low_order[i]);
        memset(got, 0xa5, sizeof(got));
        CHECK(wg_x25519(got, k, u) == -EINVAL && wg_x25519_is_zero(got, 32),
              "low-order point %zu refused, output zeroed", i);
    }
}
