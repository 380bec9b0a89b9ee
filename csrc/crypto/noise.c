/*
 * noise.c - the message steps of Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s as
 * WireGuard runs them (whitepaper 5.4; the kernel's noise.c), and their
 * batches; see wg_crypto.h.
 *
 * Theory of operation. Each step copies the chain it is given into a local
 * state, mixes tokens into it in the pattern's order, and copies it out
 * only if every token succeeded. Every handshake key encrypts exactly one
 * message, so the AEAD counter is always 0, and the associated data is the
 * hash so far. In this psk pattern the "e" token also mixes e into the
 * chaining key (Noise spec 9.2). The KDF computes only the outputs a token
 * needs: one for e, ee and se, two for es and ss, three for psk.
 *
 * The batches hand their messages to the pool (workers.c) in groups, one
 * message a group unless the X25519 engine computes several at once
 * (x25519.h); an item writes only its own slots of the outputs, so the order
 * in which the threads run them changes nothing.
 */
#define _GNU_SOURCE                     /* explicit_bzero */
#include "noise.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "aead.h"
#include "blake2s.h"
#include "workers.h"
#include "x25519.h"

#define KEY WG_NOISE_KEY_LEN
#define TAG WG_NOISE_TAG_LEN
#define CHAIN WG_NOISE_CHAIN_LEN

/* The AEAD payloads of WireGuard's messages: a static key, nothing. */
#define ENCRYPTED_STATIC_LEN (KEY + TAG)
#define ENCRYPTED_NOTHING_LEN TAG
#define RESPONSE_LEN (KEY + ENCRYPTED_NOTHING_LEN)

/* Items per thread below which a batch of cheap steps stays on one thread. */
#define HASH_ONLY_GRAIN 16

struct state {
    uint8_t ck[KEY];
    uint8_t h[KEY];
};

_Static_assert(sizeof(struct state) == CHAIN, "a chain is a chaining key and a hash");

void wg_noise_kdf(uint8_t t1[KEY], uint8_t *t2, uint8_t *t3, const uint8_t *key, size_t key_len,
                  const uint8_t *in, size_t in_len)
{
    uint8_t prk[BLAKE2S_HASH_SIZE], t[BLAKE2S_HASH_SIZE + 1], next[BLAKE2S_HASH_SIZE];
    uint8_t *outputs[3] = { t1, t2, t3 };

    /* The key is read only here, so t1 may be the key. */
    wg_hmac_blake2s(prk, key, key_len, in, in_len);
    /* t holds the previous output, then the counter byte. */
    for (size_t i = 0, len = 0; i < 3 && outputs[i]; i++, len = KEY) {
        t[len] = (uint8_t)(i + 1);
        wg_hmac_blake2s(next, prk, sizeof(prk), t, len + 1);
        memcpy(outputs[i], next, KEY);
        memcpy(t, next, KEY);
    }
    explicit_bzero(prk, sizeof(prk));
    explicit_bzero(t, sizeof(t));
    explicit_bzero(next, sizeof(next));
}

static void mix_hash(struct state *s, const uint8_t *data, size_t len)
{
    struct blake2s_state b;

    wg_blake2s_init(&b, BLAKE2S_HASH_SIZE, NULL, 0);
    wg_blake2s_update(&b, s->h, KEY);
    wg_blake2s_update(&b, data, len);
    wg_blake2s_final(&b, s->h);
}

/* ck = KDF1(ck, ikm), or with key: ck, key = KDF2(ck, ikm). */
static void mix_key(struct state *s, uint8_t *key, const uint8_t *ikm, size_t len)
{
    wg_noise_kdf(s->ck, key, NULL, s->ck, KEY, ikm, len);
}

/* The "e" token of a psk pattern: MixHash(e), MixKey(e). */
static void mix_ephemeral(struct state *s, const uint8_t e[KEY])
{
    mix_hash(s, e, KEY);
    mix_key(s, NULL, e, KEY);
}

static int mix_dh(struct state *s, uint8_t *key, const uint8_t private_key[KEY],
                  const uint8_t public_key[KEY])
{
    uint8_t shared[KEY];
    int rc = wg_x25519(shared, private_key, public_key);

    if (rc == 0)
        mix_key(s, key, shared, KEY);
    explicit_bzero(shared, sizeof(shared));
    return rc;
}

/* An X25519 result a batch computed beforehand (struct dh), or NULL: compute it here. */
struct dh {
    uint8_t shared[KEY];
    int rc;
};

static int mix_dh_from(struct state *s, uint8_t *key, const uint8_t private_key[KEY],
                       const uint8_t public_key[KEY], const struct dh *done)
{
    if (!done)
        return mix_dh(s, key, private_key, public_key);
    if (done->rc == 0)
        mix_key(s, key, done->shared, KEY);
    return done->rc;
}

static const struct wg_aead_backend *aead(void)
{
    return __atomic_load_n(&wg_aead, __ATOMIC_ACQUIRE);
}

/* out gets len + 16 bytes; wipes the key. */
static void encrypt_and_hash(struct state *s, uint8_t key[KEY], uint8_t *out,
                             const uint8_t *plaintext, size_t len)
{
    aead()->seal(out, plaintext, len, s->h, KEY, 0, key);
    explicit_bzero(key, KEY);
    mix_hash(s, out, len + TAG);
}

/* out gets len - 16 bytes; wipes the key. */
static int decrypt_and_hash(struct state *s, uint8_t key[KEY], uint8_t *out,
                            const uint8_t *ciphertext, size_t len)
{
    bool ok = len >= TAG && aead()->open(out, ciphertext, len, s->h, KEY, 0, key);

    explicit_bzero(key, KEY);
    if (!ok)
        return -EBADMSG;
    mix_hash(s, ciphertext, len);
    return 0;
}

static bool ready(void)
{
    return aead() != NULL && wg_x25519_ready();
}

/* The end of every step: the state out on success, zeros everywhere on failure. */
static int finish(int rc, struct state *s, uint8_t *chain_out, uint8_t *out, size_t out_len)
{
    if (rc == 0)
        memcpy(chain_out, s, CHAIN);
    else {
        explicit_bzero(chain_out, CHAIN);
        if (out)
            explicit_bzero(out, out_len);
    }
    explicit_bzero(s, sizeof(*s));
    return rc;
}

int wg_noise_write_initiation(uint8_t *chain_out, uint8_t *message, const uint8_t *chain,
                              const uint8_t *ephemeral_private,
                              const uint8_t *local_static_public, const uint8_t *remote_static,
                              const uint8_t *static_static, const uint8_t *payload,
                              size_t payload_len)
{
    size_t message_len = KEY + ENCRYPTED_STATIC_LEN + payload_len + TAG;
    uint8_t key[KEY];
    struct state s;
    int rc;

    memcpy(&s, chain, CHAIN);
    if (!ready())
        return finish(-ENODEV, &s, chain_out, message, message_len);
    /* A zero static-static secret: the peer's key is of small order. */
    if (wg_x25519_is_zero(static_static, KEY))
        return finish(-EINVAL, &s, chain_out, message, message_len);
    mix_hash(&s, remote_static, KEY);                               /* <- s */
    rc = wg_x25519_base(message, ephemeral_private);                /* e */
    if (rc == 0) {
        mix_ephemeral(&s, message);
        rc = mix_dh(&s, key, ephemeral_private, remote_static);    /* es */
    }
    if (rc == 0) {
        encrypt_and_hash(&s, key, message + KEY, local_static_public, KEY);    /* s */
        mix_key(&s, key, static_static, KEY);                                 /* ss */
        encrypt_and_hash(&s, key, message + KEY + ENCRYPTED_STATIC_LEN, payload, payload_len);
    }
    explicit_bzero(key, sizeof(key));
    return finish(rc, &s, chain_out, message, message_len);
}

/* es: NULL, or the batch's X25519(local_static_private, e). */
static int read_initiation_static(uint8_t *chain_out, uint8_t *remote_static, const uint8_t *chain,
                                  const uint8_t *local_static_private,
                                  const uint8_t *local_static_public, const uint8_t *message,
                                  const struct dh *es)
{
    uint8_t key[KEY];
    struct state s;
    int rc;

    memcpy(&s, chain, CHAIN);
    if (!ready())
        return finish(-ENODEV, &s, chain_out, remote_static, KEY);
    mix_hash(&s, local_static_public, KEY);                         /* <- s */
    mix_ephemeral(&s, message);                                     /* e */
    rc = mix_dh_from(&s, key, local_static_private, message, es);   /* es */
    if (rc == 0)
        rc = decrypt_and_hash(&s, key, remote_static, message + KEY, ENCRYPTED_STATIC_LEN);
    explicit_bzero(key, sizeof(key));
    return finish(rc, &s, chain_out, remote_static, KEY);
}

int wg_noise_read_initiation_static(uint8_t *chain_out, uint8_t *remote_static,
                                    const uint8_t *chain, const uint8_t *local_static_private,
                                    const uint8_t *local_static_public, const uint8_t *message)
{
    return read_initiation_static(chain_out, remote_static, chain, local_static_private,
                                  local_static_public, message, NULL);
}

int wg_noise_read_initiation_payload(uint8_t *chain_out, uint8_t *payload, const uint8_t *chain,
                                     const uint8_t *static_static, const uint8_t *encrypted,
                                     size_t encrypted_len)
{
    size_t payload_len = encrypted_len >= TAG ? encrypted_len - TAG : 0;
    uint8_t key[KEY];
    struct state s;
    int rc;

    memcpy(&s, chain, CHAIN);
    if (!ready())
        return finish(-ENODEV, &s, chain_out, payload, payload_len);
    if (wg_x25519_is_zero(static_static, KEY))
        return finish(-EINVAL, &s, chain_out, payload, payload_len);
    mix_key(&s, key, static_static, KEY);                           /* ss */
    rc = decrypt_and_hash(&s, key, payload, encrypted, encrypted_len);
    return finish(rc, &s, chain_out, payload, payload_len);
}

/* done: NULL, or the batch's three X25519 results with ephemeral_private: the
 * public key, ee and se. */
static int write_response(uint8_t *chain_out, uint8_t *message, const uint8_t *chain,
                          const uint8_t *ephemeral_private, const uint8_t *remote_ephemeral,
                          const uint8_t *remote_static, const uint8_t *preshared_key,
                          const uint8_t *payload, size_t payload_len, const struct dh done[3])
{
    size_t message_len = KEY + payload_len + TAG;
    uint8_t key[KEY], temp[KEY];
    struct state s;
    int rc;

    memcpy(&s, chain, CHAIN);
    if (!ready())
        return finish(-ENODEV, &s, chain_out, message, message_len);
    if (done) {                                                     /* e */
        memcpy(message, done[0].shared, KEY);
        rc = done[0].rc;
    } else
        rc = wg_x25519_base(message, ephemeral_private);
    if (rc == 0) {
        mix_ephemeral(&s, message);
        rc = mix_dh_from(&s, NULL, ephemeral_private, remote_ephemeral,   /* ee */
                         done ? &done[1] : NULL);
    }
    if (rc == 0)
        rc = mix_dh_from(&s, NULL, ephemeral_private, remote_static,      /* se */
                         done ? &done[2] : NULL);
    if (rc == 0) {
        wg_noise_kdf(s.ck, temp, key, s.ck, KEY, preshared_key, KEY);   /* psk */
        mix_hash(&s, temp, KEY);
        encrypt_and_hash(&s, key, message + KEY, payload, payload_len);
    }
    explicit_bzero(key, sizeof(key));
    explicit_bzero(temp, sizeof(temp));
    return finish(rc, &s, chain_out, message, message_len);
}

int wg_noise_write_response(uint8_t *chain_out, uint8_t *message, const uint8_t *chain,
                            const uint8_t *ephemeral_private, const uint8_t *remote_ephemeral,
                            const uint8_t *remote_static, const uint8_t *preshared_key,
                            const uint8_t *payload, size_t payload_len)
{
    return write_response(chain_out, message, chain, ephemeral_private, remote_ephemeral,
                          remote_static, preshared_key, payload, payload_len, NULL);
}

int wg_noise_read_response(uint8_t *chain_out, uint8_t *payload, const uint8_t *chain,
                           const uint8_t *ephemeral_private, const uint8_t *local_static_private,
                           const uint8_t *preshared_key, const uint8_t *message,
                           size_t encrypted_len)
{
    size_t payload_len = encrypted_len >= TAG ? encrypted_len - TAG : 0;
    uint8_t key[KEY], temp[KEY];
    struct state s;
    int rc;

    memcpy(&s, chain, CHAIN);
    if (!ready())
        return finish(-ENODEV, &s, chain_out, payload, payload_len);
    mix_ephemeral(&s, message);                                     /* e */
    rc = mix_dh(&s, NULL, ephemeral_private, message);              /* ee */
    if (rc == 0)
        rc = mix_dh(&s, NULL, local_static_private, message);       /* se */
    if (rc == 0) {
        wg_noise_kdf(s.ck, temp, key, s.ck, KEY, preshared_key, KEY);   /* psk */
        mix_hash(&s, temp, KEY);
        rc = decrypt_and_hash(&s, key, payload, message + KEY, encrypted_len);
    }
    explicit_bzero(key, sizeof(key));
    explicit_bzero(temp, sizeof(temp));
    return finish(rc, &s, chain_out, payload, payload_len);
}

int wg_noise_split(uint8_t *keys, const uint8_t *chain)
{
    wg_noise_kdf(keys, keys + KEY, NULL, chain, KEY, NULL, 0);
    return 0;
}

/* ---- batches -------------------------------------------------------------- */

/* A batch's X25519 work goes to the pool in groups of wg_x25519_lanes() items
 * (one, or eight with the IFMA engine): a group first computes its items'
 * multiplications together, then runs each item's step with them. */
#define GROUP_MAX WG_X25519_LANES_MAX

struct batch {
    uint8_t *out1, *out2;
    int *rcs;
    const uint8_t *in1, *in2, *in3, *in4;
    const uint8_t *messages;
    size_t stride, len;
    size_t n, group;                    /* items, and items per group */
};

static size_t groups(struct batch *b, size_t n)
{
    b->n = n;
    b->group = wg_x25519_lanes();
    return (n + b->group - 1) / b->group;
}

/* The items of group g: [*first, *first + return value). */
static size_t group_items(const struct batch *b, size_t g, size_t *first)
{
    *first = g * b->group;
    return b->n - *first < b->group ? b->n - *first : b->group;
}

/* X25519(secrets[j], publics[j]) for j < k into done[j]. */
static void compute(size_t k, struct dh *done, const uint8_t *const *secrets,
                    const uint8_t *const *publics)
{
    /* Filled up to k only; the initializers keep the compiler from warning. */
    uint8_t *out[3 * GROUP_MAX] = { NULL };
    int rcs[3 * GROUP_MAX] = { 0 };

    for (size_t j = 0; j < k; j++)
        out[j] = done[j].shared;
    wg_x25519_many(k, out, secrets, publics, rcs);
    for (size_t j = 0; j < k; j++)
        done[j].rc = rcs[j];
}

static void static_static_group(void *ctx, size_t g)
{
    struct batch *b = ctx;
    const uint8_t *secrets[GROUP_MAX] = { NULL }, *publics[GROUP_MAX] = { NULL };
    uint8_t *out[GROUP_MAX] = { NULL };
    size_t first, k = group_items(b, g, &first);

    for (size_t j = 0; j < k; j++) {
        out[j] = b->out1 + (first + j) * KEY;
        secrets[j] = b->in1;
        publics[j] = b->messages + (first + j) * KEY;
    }
    wg_x25519_many(k, out, secrets, publics, b->rcs + first);
}

int wg_noise_static_statics(size_t n, uint8_t *secrets, int *rcs, const uint8_t *private_key,
                            const uint8_t *public_keys)
{
    struct batch b = { .out1 = secrets, .rcs = rcs, .in1 = private_key,
                       .messages = public_keys };

    if (!ready())
        return -ENODEV;
    wg_workers_run(groups(&b, n), 1, static_static_group, &b);
    return 0;
}

static void read_static_group(void *ctx, size_t g)
{
    struct batch *b = ctx;
    const uint8_t *secrets[GROUP_MAX] = { NULL }, *publics[GROUP_MAX] = { NULL };
    struct dh es[GROUP_MAX];
    size_t first, k = group_items(b, g, &first);

    for (size_t j = 0; j < k; j++) {
        secrets[j] = b->in2;
        publics[j] = b->messages + (first + j) * b->stride;     /* e */
    }
    compute(k, es, secrets, publics);
    for (size_t j = 0, i = first; j < k; j++, i++)
        b->rcs[i] = read_initiation_static(b->out1 + i * CHAIN, b->out2 + i * KEY, b->in1,
                                           b->in2, b->in3, b->messages + i * b->stride, &es[j]);
    explicit_bzero(es, sizeof(es));
}

int wg_noise_read_initiations_static(size_t n, uint8_t *chains_out, uint8_t *remote_statics,
                                     int *rcs, const uint8_t *chain,
                                     const uint8_t *local_static_private,
                                     const uint8_t *local_static_public,
                                     const uint8_t *messages, size_t stride)
{
    struct batch b = { .out1 = chains_out, .out2 = remote_statics, .rcs = rcs, .in1 = chain,
                       .in2 = local_static_private, .in3 = local_static_public,
                       .messages = messages, .stride = stride };

    if (!ready())
        return -ENODEV;
    wg_workers_run(groups(&b, n), 1, read_static_group, &b);
    return 0;
}

static void read_payload_item(void *ctx, size_t i)
{
    struct batch *b = ctx;

    b->rcs[i] = wg_noise_read_initiation_payload(b->out1 + i * CHAIN, b->out2 + i * (b->len - TAG),
                                                 b->in1 + i * CHAIN, b->in2 + i * KEY,
                                                 b->messages + i * b->stride, b->len);
}

int wg_noise_read_initiations_payload(size_t n, uint8_t *chains_out, uint8_t *payloads, int *rcs,
                                      const uint8_t *chains, const uint8_t *static_statics,
                                      const uint8_t *encrypted, size_t stride,
                                      size_t encrypted_len)
{
    struct batch b = { .out1 = chains_out, .out2 = payloads, .rcs = rcs, .in1 = chains,
                       .in2 = static_statics, .messages = encrypted, .stride = stride,
                       .len = encrypted_len };

    if (!ready())
        return -ENODEV;
    if (encrypted_len < TAG)
        return -EINVAL;
    /* No X25519 here: a few microseconds per message. */
    wg_workers_run(n, HASH_ONLY_GRAIN, read_payload_item, &b);
    return 0;
}

/* Message i's response and session keys; done as write_response takes it. */
static void respond(struct batch *b, size_t i, const struct dh *done)
{
    uint8_t chain[CHAIN];
    int rc = write_response(chain, b->out1 + i * RESPONSE_LEN, b->messages + i * CHAIN,
                            b->in1 + i * KEY, b->in2 + i * KEY, b->in3 + i * KEY,
                            b->in4 + i * KEY, NULL, 0, done);

    if (rc == 0)
        wg_noise_split(b->out2 + i * CHAIN, chain);
    else
        explicit_bzero(b->out2 + i * CHAIN, CHAIN);
    explicit_bzero(chain, sizeof(chain));
    b->rcs[i] = rc;
}

static void write_response_group(void *ctx, size_t g)
{
    static const uint8_t base_point[KEY] = { 9 };
    struct batch *b = ctx;
    const uint8_t *secrets[3 * GROUP_MAX] = { NULL }, *publics[3 * GROUP_MAX] = { NULL };
    struct dh done[3 * GROUP_MAX];          /* per item: e's public key, ee, se */
    size_t first, k = group_items(b, g, &first);

    /* One at a time, the step's own calls are cheaper: libsodium's fixed-base
     * multiplication for e costs about half of a ladder. */
    if (b->group == 1) {
        respond(b, first, NULL);
        return;
    }
    for (size_t j = 0, i = first; j < k; j++, i++) {
        secrets[3 * j] = secrets[3 * j + 1] = secrets[3 * j + 2] = b->in1 + i * KEY;
        publics[3 * j] = base_point;
        publics[3 * j + 1] = b->in2 + i * KEY;
        publics[3 * j + 2] = b->in3 + i * KEY;
    }
    compute(3 * k, done, secrets, publics);
    for (size_t j = 0; j < k; j++)
        respond(b, first + j, &done[3 * j]);
    explicit_bzero(done, sizeof(done));
}

int wg_noise_write_responses(size_t n, uint8_t *messages, uint8_t *keys, int *rcs,
                             const uint8_t *chains, const uint8_t *ephemeral_privates,
                             const uint8_t *remote_ephemerals, const uint8_t *remote_statics,
                             const uint8_t *preshared_keys)
{
    struct batch b = { .out1 = messages, .out2 = keys, .rcs = rcs, .messages = chains,
                       .in1 = ephemeral_privates, .in2 = remote_ephemerals,
                       .in3 = remote_statics, .in4 = preshared_keys };

    if (!ready())
        return -ENODEV;
    wg_workers_run(groups(&b, n), 1, write_response_group, &b);
    return 0;
}
