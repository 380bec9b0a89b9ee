/*
 * noise_fuzz.c - libFuzzer driver for the handshake's message steps
 * (csrc/crypto/noise.c through wg_crypto.h) on forged input: what a
 * responder reads of an initiation (e, the encrypted static, the encrypted
 * timestamp) and what an initiator reads of a response (e, the encrypted
 * nothing), one step at a time and in the batches the responder runs.
 *
 * A real handshake between two fixed key pairs is made once; each input then
 * says which step to run and what to do to its message: bytes XORed into it,
 * another length of the encrypted part, another preshared key or static-
 * static secret, or a chain and message of its own. The rules: the untouched
 * message reads, with exactly the handshake's outputs; anything else fails
 * with -EBADMSG or -EINVAL (a forgery would have to beat Poly1305), and then
 * every output is zero. Inputs and outputs are heap blocks of their exact
 * sizes, so ASan sees any read or write past them.
 *
 * X25519 is libsodium's, as in pywg (pywg hands over pynacl's copy; here the
 * system's libsodium is loaded at run time), and the batches' groups of three
 * or more go through the IFMA engine where the CPU has it, as in pywg (the
 * x25519 target checks the engine against libsodium). The AEAD is the
 * backend the data plane selects.
 *
 * Speed: X25519 is a pure function, libsodium's code is not under test here,
 * and its one or two calls per step (some twenty steps in a typical input)
 * were over half of this target's time. So noise.c gets a scalarmult that
 * remembers libsodium's answers (result and return value) by (scalar,
 * point): the fixed keys' points always hit, and so do the points of every
 * step a mutation left alone, which is most of them. noise.c and x25519.c
 * run exactly as before, on exactly libsodium's results.
 */
#include <errno.h>
#include <pthread.h>

#include "../crypto/blake2s.h"
#include "../crypto/wg_crypto.h"
#include "../crypto/x25519.h"
#include "fuzz.h"
#include "sodium.h"

#define KEY WG_NOISE_KEY_LEN
#define CHAIN WG_NOISE_CHAIN_LEN
#define TAG WG_NOISE_TAG_LEN
#define STATIC_LEN (KEY + KEY + TAG)    /* e, then the encrypted static */
#define STAMP 12
#define MAX_ENCRYPTED 64
#define MAX_BATCH 4

static uint8_t chain0[CHAIN];           /* WireGuard's chain before the pre-message */
static uint8_t i_static[KEY], i_public[KEY], r_static[KEY], r_public[KEY];
static uint8_t i_eph[KEY], r_eph[KEY], ss[KEY], psk[KEY], stamp[STAMP];
static uint8_t initiation[STATIC_LEN + STAMP + TAG], response[KEY + TAG];
/* The responder's chain after the static, the payload and its response; the
 * initiator's before and after the response (the two last agree). */
static uint8_t r_chain1[CHAIN], r_chain2[CHAIN], r_chain3[CHAIN], i_chain1[CHAIN];
static uint8_t i_chain2[CHAIN];

/* The memo of crypto_scalarmult: direct-mapped, a slot per hash of (scalar,
 * point), the newest answer kept. Batches call it from the pool's threads. */
#define MEMO_SLOTS (1u << 14)

struct memo_slot {
    bool used;
    int rc;
    uint8_t scalar[KEY], point[KEY], out[KEY];
};

static int (*sodium_scalarmult)(unsigned char *q, const unsigned char *n, const unsigned char *p);
static struct memo_slot *memo;
static pthread_mutex_t memo_lock = PTHREAD_MUTEX_INITIALIZER;

static uint32_t memo_hash(const uint8_t *scalar, const uint8_t *point)
{
    uint32_t h = 2166136261u;           /* FNV-1a */

    for (unsigned int i = 0; i < KEY; i++)
        h = (h ^ scalar[i]) * 16777619u;
    for (unsigned int i = 0; i < KEY; i++)
        h = (h ^ point[i]) * 16777619u;
    return h % MEMO_SLOTS;
}

static int memo_scalarmult(unsigned char *q, const unsigned char *n, const unsigned char *p)
{
    struct memo_slot *slot = &memo[memo_hash(n, p)];
    uint8_t scalar[KEY], point[KEY], out[KEY];
    int rc;

    /* Copies first: q may be n or p. */
    memcpy(scalar, n, KEY), memcpy(point, p, KEY);
    pthread_mutex_lock(&memo_lock);
    if (slot->used && memcmp(slot->scalar, scalar, KEY) == 0 &&
        memcmp(slot->point, point, KEY) == 0) {
        memcpy(q, slot->out, KEY);
        rc = slot->rc;
        pthread_mutex_unlock(&memo_lock);
        return rc;
    }
    pthread_mutex_unlock(&memo_lock);
    rc = sodium_scalarmult(out, scalar, point);
    pthread_mutex_lock(&memo_lock);
    slot->used = true, slot->rc = rc;
    memcpy(slot->scalar, scalar, KEY), memcpy(slot->point, point, KEY), memcpy(slot->out, out, KEY);
    pthread_mutex_unlock(&memo_lock);
    memcpy(q, out, KEY);
    return rc;
}

static bool all_zero(const uint8_t *p, size_t n)
{
    uint8_t any = 0;

    for (size_t i = 0; i < n; i++)
        any |= p[i];
    return any == 0;
}

static void setup(void)
{
    static const char construction[] = "Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s";
    static const char identifier[] = "WireGuard v1 zx2c4 Jason@zx2c4.com";
    struct blake2s_state s;
    uint8_t got[KEY];

    sodium_scalarmult = (int (*)(unsigned char *, const unsigned char *,
                                 const unsigned char *))fz_sodium("crypto_scalarmult");
    memo = calloc(MEMO_SLOTS, sizeof(*memo));
    FUZZ_CHECK(memo, "memo");
    FUZZ_CHECK(wg_crypto_init((void *)memo_scalarmult,
                              fz_sodium("crypto_scalarmult_base"), NULL, NULL) == 0,
               "wg_crypto_init");
    wg_blake2s(chain0, KEY, (const uint8_t *)construction, strlen(construction), NULL, 0);
    wg_blake2s_init(&s, KEY, NULL, 0);
    wg_blake2s_update(&s, chain0, KEY);
    wg_blake2s_update(&s, (const uint8_t *)identifier, strlen(identifier));
    wg_blake2s_final(&s, chain0 + KEY);
    for (unsigned int i = 0; i < KEY; i++) {
        i_static[i] = (uint8_t)(i * 7 + 1), r_static[i] = (uint8_t)(i * 13 + 5);
        i_eph[i] = (uint8_t)(i * 29 + 3), r_eph[i] = (uint8_t)(i * 31 + 9);
        psk[i] = (uint8_t)(0xa0 ^ i);
    }
    for (unsigned int i = 0; i < STAMP; i++)
        stamp[i] = (uint8_t)(0x40 + i);
    FUZZ_CHECK(wg_x25519_base(i_public, i_static) == 0 && wg_x25519_base(r_public, r_static) == 0
               && wg_x25519(ss, i_static, r_public) == 0, "keys");
    FUZZ_CHECK(wg_noise_write_initiation(i_chain1, initiation, chain0, i_eph, i_public, r_public,
                                         ss, stamp, STAMP) == 0, "initiation");
    FUZZ_CHECK(wg_noise_read_initiation_static(r_chain1, got, chain0, r_static, r_public,
                                               initiation) == 0, "its static");
    FUZZ_CHECK(wg_noise_read_initiation_payload(r_chain2, got, r_chain1, ss,
                                                initiation + STATIC_LEN, STAMP + TAG) == 0 &&
               memcmp(got, stamp, STAMP) == 0, "its payload");
    FUZZ_CHECK(wg_noise_write_response(r_chain3, response, r_chain2, r_eph, initiation, i_public,
                                       psk, NULL, 0) == 0, "response");
    FUZZ_CHECK(wg_noise_read_response(i_chain2, got, i_chain1, i_eph, i_static, psk, response,
                                      TAG) == 0 && memcmp(i_chain2, r_chain3, CHAIN) == 0,
               "the response reads");
}

/* A copy of `len` bytes of `orig` (zeros past it) with input bytes XORed in:
 * the first input byte says how many mask bytes follow (0: none, untouched). */
static uint8_t *forge(struct fuzz_input *in, const uint8_t *orig, size_t orig_len, size_t len,
                      bool *touched)
{
    uint8_t *m = malloc(len ? len : 1);
    size_t masks = fz_u8(in) % 8;

    memset(m, 0, len);
    memcpy(m, orig, orig_len < len ? orig_len : len);
    *touched = len != orig_len;
    for (size_t i = 0; i < masks && len; i++) {
        size_t at = fz_u8(in) % len;
        uint8_t x = fz_u8(in);
        m[at] ^= x;
    }
    /* Compare with the original rather than trust the masks (two may cancel). */
    if (!*touched)
        *touched = memcmp(m, orig, len) != 0;
    return m;
}

/* The result of a step: exactly the handshake's outputs, or a clean failure. */
static void expect(int rc, bool valid, const uint8_t *chain_out, const uint8_t *want_chain,
                   const uint8_t *out, const uint8_t *want_out, size_t out_len, const char *step)
{
    if (valid) {
        FUZZ_CHECK(rc == 0, "%s: the untouched message: %d", step, rc);
        FUZZ_CHECK(memcmp(chain_out, want_chain, CHAIN) == 0, "%s: chain", step);
        FUZZ_CHECK(!out_len || memcmp(out, want_out, out_len) == 0, "%s: output", step);
        return;
    }
    FUZZ_CHECK(rc == -EBADMSG || rc == -EINVAL, "%s: a forged message: %d", step, rc);
    FUZZ_CHECK(all_zero(chain_out, CHAIN), "%s: chain left after a failure", step);
    FUZZ_CHECK(all_zero(out, out_len), "%s: output left after a failure", step);
}

static void initiation_static(struct fuzz_input *in)
{
    bool touched;
    uint8_t *m = forge(in, initiation, STATIC_LEN, STATIC_LEN, &touched);
    uint8_t *chain = malloc(CHAIN), *remote = malloc(KEY);

    memset(chain, 0xa5, CHAIN), memset(remote, 0xa5, KEY);
    expect(wg_noise_read_initiation_static(chain, remote, chain0, r_static, r_public, m),
           !touched, chain, r_chain1, remote, i_public, KEY, "initiation static");
    free(m), free(chain), free(remote);
}

static void initiation_payload(struct fuzz_input *in)
{
    size_t len = fz_u8(in) % (MAX_ENCRYPTED + 1), out_len = len >= TAG ? len - TAG : 0;
    uint8_t secret[KEY];
    bool touched, same_secret = true;
    uint8_t *m = forge(in, initiation + STATIC_LEN, STAMP + TAG, len, &touched);
    uint8_t *chain = malloc(CHAIN), *payload = malloc(out_len ? out_len : 1);

    memcpy(secret, ss, KEY);
    switch (fz_u8(in) % 8) {
    case 0:                             /* a small-order peer's: all zero */
        memset(secret, 0, KEY), same_secret = false;
        break;
    case 1:                             /* another peer's */
        secret[fz_u8(in) % KEY] ^= (uint8_t)(fz_u8(in) | 1), same_secret = false;
        break;
    }
    memset(chain, 0xa5, CHAIN), memset(payload, 0xa5, out_len);
    expect(wg_noise_read_initiation_payload(chain, payload, r_chain1, secret, m, len),
           !touched && same_secret, chain, r_chain2, payload, stamp, out_len,
           "initiation payload");
    free(m), free(chain), free(payload);
}

static void read_response(struct fuzz_input *in)
{
    size_t len = fz_u8(in) % (MAX_ENCRYPTED + 1), out_len = len >= TAG ? len - TAG : 0;
    uint8_t key[KEY];
    bool touched, same_psk = true;
    uint8_t *m = forge(in, response, KEY + TAG, KEY + len, &touched);
    uint8_t *chain = malloc(CHAIN), *payload = malloc(out_len ? out_len : 1);

    memcpy(key, psk, KEY);
    if (fz_u8(in) % 4 == 0)
        key[fz_u8(in) % KEY] ^= (uint8_t)(fz_u8(in) | 1), same_psk = false;
    memset(chain, 0xa5, CHAIN), memset(payload, 0xa5, out_len);
    expect(wg_noise_read_response(chain, payload, i_chain1, i_eph, i_static, key, m, len),
           !touched && same_psk, chain, i_chain2, payload, NULL, out_len, "response");
    free(m), free(chain), free(payload);
}

/* A message and a chain of the input's own: no reference to compare with, so
 * only the failure rules (the chance of a valid forgery is 2^-128). */
static void own_chain(struct fuzz_input *in)
{
    uint8_t chain_in[CHAIN], *m = malloc(STATIC_LEN), *chain = malloc(CHAIN), *remote = malloc(KEY);

    fz_bytes(in, chain_in, CHAIN);
    fz_bytes(in, m, STATIC_LEN);
    memset(chain, 0xa5, CHAIN), memset(remote, 0xa5, KEY);
    expect(wg_noise_read_initiation_static(chain, remote, chain_in, r_static, r_public, m),
           false, chain, NULL, remote, NULL, KEY, "own chain");
    free(m), free(chain), free(remote);
}

/* The responder's batches over n initiations a stride apart, some forged:
 * each message's result as the single step gives it. */
static void batches(struct fuzz_input *in)
{
    size_t n = 1 + fz_u8(in) % MAX_BATCH, stride = sizeof(initiation) + fz_u8(in) % 8;
    size_t len = sizeof(initiation) - STATIC_LEN;
    uint8_t *msgs = calloc(n, stride), *chains = malloc(n * CHAIN), *remotes = malloc(n * KEY);
    uint8_t *chains2 = malloc(n * CHAIN), *payloads = malloc(n * STAMP), *secrets = malloc(n * KEY);
    int rcs[MAX_BATCH], rcs2[MAX_BATCH];
    bool valid[MAX_BATCH];

    for (size_t i = 0; i < n; i++) {
        bool touched;
        uint8_t *m = forge(in, initiation, sizeof(initiation), sizeof(initiation), &touched);
        memcpy(msgs + i * stride, m, sizeof(initiation));
        valid[i] = !touched;
        free(m);
    }
    memset(chains, 0xa5, n * CHAIN), memset(remotes, 0xa5, n * KEY);
    FUZZ_CHECK(wg_noise_read_initiations_static(n, chains, remotes, rcs, chain0, r_static,
                                                r_public, msgs, stride) == 0, "batch call");
    for (size_t i = 0; i < n; i++) {
        /* The payload alone may be forged: the static part still reads. */
        expect(rcs[i], memcmp(msgs + i * stride, initiation, STATIC_LEN) == 0, chains + i * CHAIN, r_chain1, remotes + i * KEY, i_public, KEY, "batch static");
        memcpy(secrets + i * KEY, ss, KEY);
    }
    memset(chains2, 0xa5, n * CHAIN), memset(payloads, 0xa5, n * STAMP);
    FUZZ_CHECK(wg_noise_read_initiations_payload(n, chains2, payloads, rcs2, chains, secrets,
                                                 msgs + STATIC_LEN, stride, len) == 0,
               "batch call");
    for (size_t i = 0; i < n; i++) {
        /* After a failed static the chain is zeros: its payload must fail too. */
        expect(rcs2[i], valid[i], chains2 + i * CHAIN, r_chain2, payloads + i * STAMP, stamp,
               STAMP, "batch payload");
    }
    FUZZ_CHECK(wg_noise_read_initiations_payload(n, chains2, payloads, rcs2, chains, secrets,
                                                 msgs + STATIC_LEN, stride, TAG - 1) == -EINVAL,
               "a batch shorter than a tag");
    free(msgs), free(chains), free(remotes), free(chains2), free(payloads), free(secrets);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool ready;
    struct fuzz_input in = { data, size };

    if (!ready) {
        setup();
        ready = true;
    }
    while (fz_more(&in)) {
        switch (fz_u8(&in) % 5) {
        case 0:
            initiation_static(&in);
            break;
        case 1:
            initiation_payload(&in);
            break;
        case 2:
            read_response(&in);
            break;
        case 3:
            own_chain(&in);
            break;
        default:
            batches(&in);
            break;
        }
    }
    return 0;
}
