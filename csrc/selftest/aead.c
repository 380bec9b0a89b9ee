/*
 * aead.c - ChaCha20-Poly1305: RFC 8439's vectors for the portable
 * primitives (ChaCha20 block, both Poly1305 widths, key generation), then
 * every backend this machine can run against the RFC's AEAD vectors and
 * against the portable backend at every length from 0 to 600 and some long
 * ones, in place and out of place, with forgeries rejected and wiped.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../crypto/chacha20poly1305.h"
#include "../crypto/rfc8439.h"
#include "../wg_dp_test.h"
#include "selftest.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))
#define MAX_LEN 70000

static size_t unhex(uint8_t *out, size_t max, const char *hex)
{
    size_t n = 0;

    for (; hex[0] && hex[1] && n < max; hex += 2) {
        char pair[3] = { hex[0], hex[1], 0 };
        out[n++] = (uint8_t)strtoul(pair, NULL, 16);
    }
    return n;
}

/* ChaCha20 from any block counter, one block at a time. */
static void chacha20_xor(uint8_t *dst, const uint8_t *src, size_t len, const uint8_t key[32],
                         const uint8_t nonce[12], uint32_t counter)
{
    uint32_t st[CHACHA20_STATE_WORDS];

    chacha20_init(st, key, get_le32(nonce), get_le64(nonce + 4));
    st[12] = counter;
    for (size_t off = 0; off < len; off += CHACHA20_BLOCK_SIZE, st[12]++) {
        size_t n = len - off < CHACHA20_BLOCK_SIZE ? len - off : CHACHA20_BLOCK_SIZE;
        chacha20_xor_block(dst + off, src + off, n, st);
    }
}

static void test_chacha20(void)
{
    static uint8_t key[32], nonce[12], pt[512], ct[512], out[512];

    for (size_t i = 0; i < COUNT(rfc8439_chacha20_vectors); i++) {
        const struct rfc8439_chacha20 *v = &rfc8439_chacha20_vectors[i];
        size_t len;

        unhex(key, sizeof(key), v->key);
        unhex(nonce, sizeof(nonce), v->nonce);
        len = unhex(pt, sizeof(pt), v->plaintext);
        unhex(ct, sizeof(ct), v->ciphertext);
        chacha20_xor(out, pt, len, key, nonce, v->counter);
        CHECK(memcmp(out, ct, len) == 0, "chacha20 %s", v->section);
    }
}

static void test_key_gen(void)
{
    uint8_t key[32], nonce[12], otk[32];
    uint32_t st[CHACHA20_STATE_WORDS], block[CHACHA20_STATE_WORDS];

    for (size_t i = 0; i < COUNT(rfc8439_key_gen_vectors); i++) {
        const struct rfc8439_key_gen *v = &rfc8439_key_gen_vectors[i];

        unhex(key, sizeof(key), v->key);
        unhex(nonce, sizeof(nonce), v->nonce);
        unhex(otk, sizeof(otk), v->otk);
        chacha20_init(st, key, get_le32(nonce), get_le64(nonce + 4));
        chacha20_block(st, block);
        for (int w = 0; w < 8; w++)
            CHECK(block[w] == get_le32(otk + 4 * w), "key gen %s word %d", v->section, w);
    }
}

/* Raw Poly1305 as RFC 8439 section 2.5 defines it: a last partial block
 * gets a 0x01 byte after it instead of the 2^128 bit. */
static void poly1305_raw(const uint8_t key[32], const uint8_t *msg, size_t len, uint8_t tag[16],
                         bool wide)
{
    size_t full = len / 16, rest = len % 16;
    uint8_t last[16] = { 0 };

    memcpy(last, msg + full * 16, rest);
    last[rest] = 1;
#if defined(__SIZEOF_INT128__)
    if (wide) {
        struct poly1305_64 st;

        poly1305_64_init(&st, key);
        poly1305_64_blocks(&st, msg, full);
        if (rest)
            poly1305_64_blocks_hibit(&st, last, 1, 0);
        poly1305_64_final(&st, tag);
        return;
    }
#endif
    (void)wide;
    struct poly1305_32 st;

    poly1305_32_init(&st, key);
    poly1305_32_blocks(&st, msg, full);
    if (rest)
        poly1305_32_blocks_hibit(&st, last, 1, 0);
    poly1305_32_final(&st, tag);
}

static void test_poly1305(void)
{
    static uint8_t key[32], msg[512], want[16], got[16];

    for (size_t i = 0; i < COUNT(rfc8439_poly1305_vectors); i++) {
        const struct rfc8439_poly1305 *v = &rfc8439_poly1305_vectors[i];
        size_t len;

        unhex(key, sizeof(key), v->key);
        len = unhex(msg, sizeof(msg), v->message);
        unhex(want, sizeof(want), v->tag);
        for (int wide = 0; wide < 2; wide++) {
            poly1305_raw(key, msg, len, got, wide);
            CHECK(memcmp(got, want, 16) == 0, "poly1305 %s (%s limbs)", v->section,
                  wide ? "64-bit" : "26-bit");
        }
    }
}

static void test_rfc_aead(const char *name)
{
    static uint8_t key[32], nonce[12], aad[64], pt[512], ct[512 + 16], out[512 + 16];

    for (size_t i = 0; i < COUNT(rfc8439_aead_vectors); i++) {
        const struct rfc8439_aead *v = &rfc8439_aead_vectors[i];
        size_t len, aad_len;

        unhex(key, sizeof(key), v->key);
        unhex(nonce, sizeof(nonce), v->nonce);
        aad_len = unhex(aad, sizeof(aad), v->aad);
        len = unhex(pt, sizeof(pt), v->plaintext);
        unhex(ct, len, v->ciphertext);
        unhex(ct + len, 16, v->tag);
        CHECK(wg_aead_seal_with(name, out, pt, len, aad, aad_len, nonce, key) == 0 &&
              memcmp(out, ct, len + 16) == 0, "%s: seal RFC 8439 %s", name, v->section);
        CHECK(wg_aead_open_with(name, out, ct, len + 16, aad, aad_len, nonce, key) == 0 &&
              memcmp(out, pt, len) == 0, "%s: open RFC 8439 %s", name, v->section);
        ct[len / 2] ^= 1;
        CHECK(wg_aead_open_with(name, out, ct, len + 16, aad, aad_len, nonce, key) == -EBADMSG,
              "%s: forged RFC 8439 %s accepted", name, v->section);
    }
}

struct bufs {
    uint8_t pt[MAX_LEN], ref[MAX_LEN + 16], ct[MAX_LEN + 16], io[MAX_LEN + 16];
};

static uint64_t rng_state = 0x243f6a8885a308d3;

static uint64_t next_random(void)
{
    /* splitmix64: reproducible test data, not for secrets */
    uint64_t z = (rng_state += UINT64_C(0x9e3779b97f4a7c15));

    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static void fill(uint8_t *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        p[i] = (uint8_t)next_random();
}

static bool zeroed(const uint8_t *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (p[i])
            return false;
    return true;
}

/* One length: the backend must equal portable, out of place and in place,
 * and refuse a flipped bit with its output zeroed. */
static void test_length(const struct wg_aead_backend *b, struct bufs *t, size_t len)
{
    uint8_t key[32], ad[20];
    size_t ad_len = len % 21 == 20 ? 20 : 0, at;
    uint64_t counter = next_random();

    fill(key, sizeof(key));
    fill(ad, sizeof(ad));
    fill(t->pt, len);
    wg_aead_portable.seal(t->ref, t->pt, len, ad, ad_len, counter, key);

    b->seal(t->ct, t->pt, len, ad, ad_len, counter, key);
    CHECK(memcmp(t->ct, t->ref, len + 16) == 0, "%s: seal %zu differs", b->name, len);
    memcpy(t->io, t->pt, len);
    b->seal(t->io, t->io, len, ad, ad_len, counter, key);
    CHECK(memcmp(t->io, t->ref, len + 16) == 0, "%s: in-place seal %zu differs", b->name, len);

    memset(t->io, 0x5a, len);
    CHECK(b->open(t->io, t->ref, len + 16, ad, ad_len, counter, key) &&
          memcmp(t->io, t->pt, len) == 0, "%s: open %zu", b->name, len);
    memcpy(t->io, t->ref, len + 16);
    CHECK(b->open(t->io, t->io, len + 16, ad, ad_len, counter, key) &&
          memcmp(t->io, t->pt, len) == 0, "%s: in-place open %zu", b->name, len);

    at = (size_t)(next_random() % (len + 16));
    memcpy(t->io, t->ref, len + 16);
    t->io[at] ^= (uint8_t)(1u << (next_random() % 8));
    CHECK(!b->open(t->io, t->io, len + 16, ad, ad_len, counter, key) && zeroed(t->io, len),
          "%s: forgery at %zu of %zu accepted or not wiped", b->name, at, len);
    memset(t->ct, 0x5a, len);
    CHECK(!b->open(t->ct, t->ref, len + 16, ad, ad_len, counter ^ 1, key) && zeroed(t->ct, len),
          "%s: wrong counter accepted at %zu", b->name, len);
}

static void test_backend(const struct wg_aead_backend *b, struct bufs *t)
{
    static const size_t long_lengths[] = { 1023, 1024, 1025, 1420, 1472, 2048, 4095, 4096,
                                           8192, 9000, 16383, 65535, MAX_LEN };

    test_rfc_aead(b->name);
    for (size_t len = 0; len <= 600; len++)
        test_length(b, t, len);
    for (size_t i = 0; i < COUNT(long_lengths); i++)
        test_length(b, t, long_lengths[i]);
}

void selftest_aead(void)
{
    const char *names[16], *chosen = NULL;
    int n = wg_aead_backends(names, COUNT(names));
    struct bufs *t = malloc(sizeof(*t));

    test_chacha20();
    test_key_gen();
    test_poly1305();
    CHECK(wg_aead_init() == 0 && (chosen = wg_aead_name()) != NULL, "wg_aead_init");
    printf("selftest aead: selected %s\n", chosen ? chosen : "nothing");
    CHECK(t != NULL, "malloc");
    for (int i = 0; t && i < n && i < (int)COUNT(names); i++) {
        int rc = wg_aead_status(names[i]);
        const struct wg_aead_backend *b = NULL;

        if (rc == -ENOTSUP) {
            printf("selftest aead: %s not usable here, skipped\n", names[i]);
            continue;
        }
        CHECK(rc == 0, "%s failed its start-up self-test (%d)", names[i], rc);
        if (wg_aead_select(names[i]) == 0)
            b = wg_aead;
        if (b)
            test_backend(b, t);
    }
    if (chosen)
        wg_aead_select(chosen);
    free(t);
}
