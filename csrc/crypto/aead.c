/*
 * aead.c - choosing a ChaCha20-Poly1305 backend, and proving it first.
 *
 * Theory of operation. Backends are listed in order of preference (fastest
 * first). None is used before it passes its self-test: RFC 8439's AEAD
 * vectors, the ciphertext of its ChaCha20 vectors that start at block 1 (an
 * AEAD's ciphertext is exactly that), tags computed by libsodium for
 * WireGuard-shaped nonces at lengths around every block and batch boundary,
 * agreement with the portable backend (sealing and opening, in place and
 * out of place, including ciphertexts of all ones, which stress Poly1305's
 * carries), and rejection of forgeries with the output wiped. The result is
 * cached per backend. wg_aead_init() then takes the first backend that
 * passes, or the one named by PYWG_AEAD.
 *
 * The self-test runs in well under a millisecond per backend; it uses heap
 * buffers sized by MAX_TEST_LEN, so it runs at start-up, never per packet.
 */
#include "aead.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../wg_dp_test.h"
#include "chacha20poly1305.h"
#include "rfc8439.h"

const struct wg_aead_backend *wg_aead;

static const struct wg_aead_backend *const backends[] = {
#if defined(__x86_64__)
    &wg_aead_avx512,
    &wg_aead_avx2,
#endif
#if (defined(__aarch64__) || defined(__arm__)) && !defined(__ARM_BIG_ENDIAN)
    &wg_aead_neon,
#endif
    &wg_aead_sodium,
    &wg_aead_portable,
    &wg_aead_portable32,
};
#define NBACKENDS (sizeof(backends) / sizeof(backends[0]))

enum { UNTESTED = 0, PASSED, FAILED };

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int verdict[NBACKENDS];
static bool initialized;
static int init_result;

/* Tags of libsodium's crypto_aead_chacha20poly1305_ietf_encrypt for key
 * 00 01 .. 1f, no associated data, nonce 4 zero bytes || LE64(0x0102030405060708
 * + len), plaintext byte i = (7 i + len) mod 256. */
static const struct {
    size_t len;
    const char *tag;
} sodium_tags[] = {
    {    0, "2752c39e5b6b57e6b8f924db3698b1ba" }, {    1, "f778c462d95fa69e1857a2f6519fce3e" },
    {   15, "ea291c856179d2e5a708cc6216b0890e" }, {   16, "a59ce79040d6cd44de566bd10695e3d1" },
    {   17, "ec76d5870d222fce63293aa6909df855" }, {   63, "5d0e6420380977a802d06452d936511f" },
    {   64, "4347ea3ea476f88acdd1d61f20d1988b" }, {   65, "e7e20819fe3c796c07238b5976509a52" },
    {  127, "35076f2c88b4af8af4bbf4ced7b78a9f" }, {  128, "7145ba2fcf602d4c595d8061ad47581e" },
    {  129, "75108dd41aafa3d3a109599d0fa8fc7f" }, {  191, "334d7f4cebd2f7102f6c68d44e68feab" },
    {  192, "2908172117ff697cdd3a952f648bea7f" }, {  193, "bdfa267a80458762937a915e999d3a1f" },
    {  255, "be31af55b32de3b10f46d115a7ef9f4e" }, {  256, "dfdae41543a37463792b65cd80054084" },
    {  257, "52ed0ad18c2657c0588d9ecc76c67b6b" }, {  447, "730a70722ab1a61143ccfa7aed0d4bc5" },
    {  448, "1a3c4300b12f35268dd863480aeb7c09" }, {  449, "ad6cc525c7a5ebc6e81b86e7a035d7e0" },
    {  511, "80edd2a00c09388ed3e70fdef099e152" }, {  512, "58e85c8ce6c65c228361c52eecd74dad" },
    {  513, "22396260fb18e2ff4915d54c55ed1e3d" }, {  575, "fe068648bf8e4ec52e585d6dd1168700" },
    {  576, "b4b5e3698a7f9586d88fa1589d5d173b" }, {  577, "cf47fd363fd65acab739d1470e484d43" },
    { 1023, "d6380079b5a646f682e64e9bfd644412" }, { 1024, "eb013c36aa7f4c72212dd1d796a40c14" },
    { 1025, "89a2126d417a1f5bc44e416afa3b2f5c" }, { 1087, "8d9fa3bcaf77653a610d38f7700a7729" },
    { 1088, "cf35820f460032b67781254b5645bb0d" }, { 1089, "c6e2c6daa1beeb88b0b7f8a648843ef5" },
    { 1420, "ea78d94beee4853f22577b057f9cec26" }, { 1421, "5d56c29a2e9b7f8b8aea1a8fa2f80d1a" },
    { 2047, "f5a5b40afc27e8a25b6da65ca7eae761" }, { 2048, "d55552eea32ea1bd129118bad6629991" },
    { 2049, "571ef078fe7bc3aef9cd66c40df763e8" }, { 4107, "f2253d7c0d198e96637dc8b961549e94" },
};

#define MAX_TEST_LEN 4200

/* Test buffers: plaintext, ciphertext (+tag) and a decryption. */
struct bufs {
    uint8_t pt[MAX_TEST_LEN], ct[MAX_TEST_LEN + WG_AEAD_TAG_LEN];
    uint8_t ref[MAX_TEST_LEN + WG_AEAD_TAG_LEN], out[MAX_TEST_LEN + WG_AEAD_TAG_LEN];
};

static size_t unhex(uint8_t *out, size_t max, const char *hex)
{
    size_t n = 0;

    for (; hex[0] && hex[1] && n < max; hex += 2) {
        char pair[3] = { hex[0], hex[1], 0 };
        out[n++] = (uint8_t)strtoul(pair, NULL, 16);
    }
    return n;
}

static bool all_zero(const uint8_t *p, size_t len)
{
    uint8_t acc = 0;

    for (size_t i = 0; i < len; i++)
        acc |= p[i];
    return acc == 0;
}

static bool check_rfc_aead(const struct wg_aead_backend *b, struct bufs *t)
{
    for (size_t i = 0; i < sizeof(rfc8439_aead_vectors) / sizeof(rfc8439_aead_vectors[0]); i++) {
        const struct rfc8439_aead *v = &rfc8439_aead_vectors[i];
        uint8_t key[32], nonce[12], aad[64];
        size_t aad_len, len;

        unhex(key, sizeof(key), v->key);
        unhex(nonce, sizeof(nonce), v->nonce);
        aad_len = unhex(aad, sizeof(aad), v->aad);
        len = unhex(t->pt, MAX_TEST_LEN, v->plaintext);
        unhex(t->ref, len, v->ciphertext);
        unhex(t->ref + len, WG_AEAD_TAG_LEN, v->tag);
        b->seal_nonce(t->ct, t->pt, len, aad, aad_len, nonce, key);
        if (memcmp(t->ct, t->ref, len + WG_AEAD_TAG_LEN) != 0)
            return false;
        if (!b->open_nonce(t->out, t->ref, len + WG_AEAD_TAG_LEN, aad, aad_len, nonce, key) ||
            memcmp(t->out, t->pt, len) != 0)
            return false;
    }
    return true;
}

/* ChaCha20 vectors that start at block 1 are the ciphertext of an AEAD
 * without associated data. */
static bool check_rfc_chacha20(const struct wg_aead_backend *b, struct bufs *t)
{
    for (size_t i = 0; i < sizeof(rfc8439_chacha20_vectors) / sizeof(rfc8439_chacha20_vectors[0]);
         i++) {
        const struct rfc8439_chacha20 *v = &rfc8439_chacha20_vectors[i];
        uint8_t key[32], nonce[12];
        size_t len;

        if (v->counter != 1)
            continue;
        unhex(key, sizeof(key), v->key);
        unhex(nonce, sizeof(nonce), v->nonce);
        len = unhex(t->pt, MAX_TEST_LEN, v->plaintext);
        unhex(t->ref, len, v->ciphertext);
        b->seal_nonce(t->ct, t->pt, len, NULL, 0, nonce, key);
        if (memcmp(t->ct, t->ref, len) != 0)
            return false;
    }
    return true;
}

static bool check_sodium_tags(const struct wg_aead_backend *b, struct bufs *t)
{
    uint8_t key[32], tag[WG_AEAD_TAG_LEN];

    for (int i = 0; i < 32; i++)
        key[i] = (uint8_t)i;
    for (size_t i = 0; i < sizeof(sodium_tags) / sizeof(sodium_tags[0]); i++) {
        size_t len = sodium_tags[i].len;
        uint64_t counter = UINT64_C(0x0102030405060708) + len;

        for (size_t j = 0; j < len; j++)
            t->pt[j] = (uint8_t)(7 * j + len);
        unhex(tag, sizeof(tag), sodium_tags[i].tag);
        b->seal(t->ct, t->pt, len, NULL, 0, counter, key);
        if (memcmp(t->ct + len, tag, sizeof(tag)) != 0)
            return false;
        memcpy(t->out, t->ct, len + WG_AEAD_TAG_LEN);
        if (!b->open(t->out, t->out, len + WG_AEAD_TAG_LEN, NULL, 0, counter, key) ||
            memcmp(t->out, t->pt, len) != 0)
            return false;
    }
    return true;
}

/* One length against the portable backend: ordinary data, then a
 * ciphertext of all ones (plaintext = keystream xor ones). */
static bool check_against_portable(const struct wg_aead_backend *b, struct bufs *t, size_t len,
                                   const uint8_t key[32], uint64_t counter)
{
    const struct wg_aead_backend *ref = &wg_aead_portable;
    uint8_t ad[13] = "associated";
    size_t ad_len = len % 14;

    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) {
            memset(t->pt, 0, len);
            ref->seal(t->ref, t->pt, len, NULL, 0, counter, key);
            for (size_t i = 0; i < len; i++)
                t->pt[i] = (uint8_t)(t->ref[i] ^ 0xff);
            ad_len = 0;
        }
        ref->seal(t->ref, t->pt, len, ad, ad_len, counter, key);
        b->seal(t->ct, t->pt, len, ad, ad_len, counter, key);
        if (memcmp(t->ct, t->ref, len + WG_AEAD_TAG_LEN) != 0)
            return false;
        memcpy(t->out, t->pt, len);
        b->seal(t->out, t->out, len, ad, ad_len, counter, key);
        if (memcmp(t->out, t->ref, len + WG_AEAD_TAG_LEN) != 0)
            return false;
        if (!b->open(t->out, t->out, len + WG_AEAD_TAG_LEN, ad, ad_len, counter, key) ||
            memcmp(t->out, t->pt, len) != 0)
            return false;
    }
    return true;
}

/* A flipped bit anywhere must fail, and leave the output zeroed. */
static bool check_forgery(const struct wg_aead_backend *b, struct bufs *t, size_t len,
                          const uint8_t key[32], uint64_t counter)
{
    size_t at = (len * 7 + 3) % (len + WG_AEAD_TAG_LEN);

    b->seal(t->ct, t->pt, len, NULL, 0, counter, key);
    t->ct[at] ^= 0x20;
    memset(t->out, 0xa5, len);
    if (b->open(t->out, t->ct, len + WG_AEAD_TAG_LEN, NULL, 0, counter, key) ||
        !all_zero(t->out, len))
        return false;
    if (b->open(t->out, t->ct, len + WG_AEAD_TAG_LEN, NULL, 0, counter + 1, key))
        return false;
    return !b->open(t->out, t->ct, WG_AEAD_TAG_LEN - 1, NULL, 0, counter, key);
}

static bool self_test(const struct wg_aead_backend *b)
{
    static const size_t lengths[] = { 0, 1, 16, 63, 64, 65, 127, 128, 129, 191, 192, 193, 255,
                                      256, 257, 320, 383, 384, 385, 448, 511, 512, 513, 767,
                                      768, 960, 1023, 1024, 1025, 1087, 1088, 1152, 1420, 1472,
                                      1536, 2047, 2048, 2049, 3000, 4096, MAX_TEST_LEN };
    struct bufs *t = calloc(1, sizeof(*t));
    uint8_t key[32];
    bool ok;

    if (!t)
        return false;
    ok = check_rfc_aead(b, t) && check_rfc_chacha20(b, t) && check_sodium_tags(b, t);
    for (size_t i = 0; ok && i < sizeof(lengths) / sizeof(lengths[0]); i++) {
        size_t len = lengths[i];
        uint64_t counter = UINT64_C(0xfedcba9876543210) ^ (len * UINT64_C(0x9e3779b97f4a7c15));

        for (int j = 0; j < 32; j++)
            key[j] = (uint8_t)(len * 31 + (size_t)j * 101);
        for (size_t j = 0; j < len; j++)
            t->pt[j] = (uint8_t)(j * 13 + len);
        ok = check_against_portable(b, t, len, key, counter) &&
             check_forgery(b, t, len, key, counter);
    }
    free(t);
    return ok;
}

static int index_of(const char *name)
{
    for (size_t i = 0; i < NBACKENDS; i++)
        if (strcmp(backends[i]->name, name) == 0)
            return (int)i;
    return -ENOENT;
}

/* 0 if usable and proven, -ENOTSUP if this machine cannot run it (or, for
 * sodium, nothing was registered), -EIO if it failed its self-test.
 * Must hold lock. */
static int status_locked(size_t i)
{
    const struct wg_aead_backend *b = backends[i];

    if (!b->usable())
        return -ENOTSUP;
    if (verdict[i] == UNTESTED) {
        /* The reference must itself be right before anything is compared to it. */
        if (b != &wg_aead_portable && status_locked((size_t)index_of("portable")) != 0)
            return -EIO;
        verdict[i] = self_test(b) ? PASSED : FAILED;
    }
    return verdict[i] == PASSED ? 0 : -EIO;
}

static int select_locked(const char *name)
{
    int i = index_of(name), rc;

    if (i < 0)
        return i;
    rc = status_locked((size_t)i);
    if (rc == 0) {
        __atomic_store_n(&wg_aead, backends[i], __ATOMIC_RELEASE);
        initialized = true;
        init_result = 0;
    }
    return rc;
}

int wg_aead_init(void)
{
    const char *wanted = getenv("PYWG_AEAD");
    int rc = -EIO;

    pthread_mutex_lock(&lock);
    if (initialized) {
        rc = init_result;
    } else if (wanted && *wanted) {
        rc = select_locked(wanted);
    } else {
        for (size_t i = 0; i < NBACKENDS && rc != 0; i++)
            if (status_locked(i) == 0)
                rc = select_locked(backends[i]->name);
    }
    initialized = true;
    init_result = rc;
    pthread_mutex_unlock(&lock);
    return rc;
}

int wg_aead_select(const char *name)
{
    int rc;

    if (!name)
        return -EINVAL;
    pthread_mutex_lock(&lock);
    rc = select_locked(name);
    pthread_mutex_unlock(&lock);
    return rc;
}

const char *wg_aead_name(void)
{
    const struct wg_aead_backend *b = __atomic_load_n(&wg_aead, __ATOMIC_ACQUIRE);

    return b ? b->name : NULL;
}

int wg_aead_status(const char *name)
{
    int i, rc;

    if (!name)
        return -EINVAL;
    pthread_mutex_lock(&lock);
    i = index_of(name);
    rc = i < 0 ? i : status_locked((size_t)i);
    pthread_mutex_unlock(&lock);
    return rc;
}

int wg_aead_backends(const char **names, size_t max)
{
    size_t n = 0;

    for (size_t i = 0; i < NBACKENDS; i++) {
        if (n < max && names)
            names[n] = backends[i]->name;
        n++;
    }
    return (int)n;
}

/* The named backend if it is proven, else NULL with *rc set. */
static const struct wg_aead_backend *proven(const char *name, int *rc)
{
    const struct wg_aead_backend *b;
    int i;

    if (!name) {
        b = __atomic_load_n(&wg_aead, __ATOMIC_ACQUIRE);
        *rc = b ? 0 : -ENODEV;
        return b;
    }
    pthread_mutex_lock(&lock);
    i = index_of(name);
    *rc = i < 0 ? i : status_locked((size_t)i);
    pthread_mutex_unlock(&lock);
    return *rc == 0 ? backends[i] : NULL;
}

/* A function, not an inline comparison: with a 32-bit size_t the test is
 * always false, and -Wtype-limits would say so. */
static bool longer_than(uint64_t len, uint64_t max)
{
    return len > max;
}

static bool wireguard_nonce(const uint8_t nonce[WG_AEAD_NONCE_LEN], uint64_t *counter)
{
    *counter = get_le64(nonce + 4);
    return get_le32(nonce) == 0;
}

int wg_aead_seal_with(const char *backend, uint8_t *dst, const uint8_t *src, size_t len,
                      const uint8_t *ad, size_t ad_len, const uint8_t *nonce, const uint8_t *key)
{
    int rc;
    const struct wg_aead_backend *b = proven(backend, &rc);
    uint64_t counter;

    if (!b)
        return rc;
    if (longer_than(len, WG_AEAD_MAX_LEN))
        return -EMSGSIZE;
    if (wireguard_nonce(nonce, &counter))
        b->seal(dst, src, len, ad, ad_len, counter, key);
    else
        b->seal_nonce(dst, src, len, ad, ad_len, nonce, key);
    return 0;
}

int wg_aead_open_with(const char *backend, uint8_t *dst, const uint8_t *src, size_t len,
                      const uint8_t *ad, size_t ad_len, const uint8_t *nonce, const uint8_t *key)
{
    int rc;
    const struct wg_aead_backend *b = proven(backend, &rc);
    uint64_t counter;
    bool ok;

    if (!b)
        return rc;
    if (longer_than(len, WG_AEAD_MAX_LEN + WG_AEAD_TAG_LEN))
        return -EMSGSIZE;
    if (wireguard_nonce(nonce, &counter))
        ok = b->open(dst, src, len, ad, ad_len, counter, key);
    else
        ok = b->open_nonce(dst, src, len, ad, ad_len, nonce, key);
    return ok ? 0 : -EBADMSG;
}

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int wg_aead_bench(const char *backend, int open, size_t len, uint64_t iterations,
                  uint64_t *elapsed_ns)
{
    int rc;
    const struct wg_aead_backend *b = proven(backend, &rc);
    uint8_t key[WG_AEAD_KEY_LEN];
    uint8_t *src, *dst;
    uint64_t start;

    if (!b)
        return rc;
    if (len > (1u << 20) || !elapsed_ns)
        return -EINVAL;
    src = calloc(1, len + WG_AEAD_TAG_LEN);
    dst = calloc(1, len + WG_AEAD_TAG_LEN);
    if (!src || !dst) {
        free(src);
        free(dst);
        return -ENOMEM;
    }
    for (size_t i = 0; i < sizeof(key); i++)
        key[i] = (uint8_t)(i * 7 + 1);
    for (size_t i = 0; i < len; i++)
        src[i] = (uint8_t)i;
    rc = 0;
    if (open) {
        /* Every iteration opens the same valid packet, out of place. */
        b->seal(src, src, len, NULL, 0, 0, key);
        start = now_ns();
        for (uint64_t i = 0; i < iterations; i++)
            if (!b->open(dst, src, len + WG_AEAD_TAG_LEN, NULL, 0, 0, key))
                rc = -EIO;
    } else {
        start = now_ns();
        for (uint64_t i = 0; i < iterations; i++)
            b->seal(dst, src, len, NULL, 0, i, key);
    }
    *elapsed_ns = now_ns() - start;
    free(src);
    free(dst);
    return rc;
}
