/*
 * cookie.c - mac1, mac2 and cookie replies on the receive thread; see cookie.h.
 */
#define _GNU_SOURCE                     /* explicit_bzero */
#include "cookie.h"

#include <errno.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/random.h>

/* libsodium's crypto_aead_xchacha20poly1305_ietf_encrypt. */
typedef int (*xaead_encrypt_fn)(uint8_t *c, unsigned long long *clen, const uint8_t *m,
                                unsigned long long mlen, const uint8_t *ad,
                                unsigned long long adlen, const uint8_t *nsec,
                                const uint8_t *npub, const uint8_t *k);
static _Atomic(xaead_encrypt_fn) xaead_encrypt;

int wg_cookie_register_sodium(void *encrypt)
{
    atomic_store(&xaead_encrypt, (xaead_encrypt_fn)encrypt);
    return 0;
}

void wg_cookie_checker_init(struct cookie_checker *c)
{
    memset(c, 0, sizeof(*c));
    pthread_mutex_init(&c->lock, NULL);
}

void wg_cookie_checker_free(struct cookie_checker *c)
{
    pthread_mutex_destroy(&c->lock);
    explicit_bzero(c, sizeof(*c));
}

static void labelled_hash(uint8_t out[BLAKE2S_HASH_SIZE], const uint8_t label[8],
                          const uint8_t *public_key)
{
    struct blake2s_state s;

    wg_blake2s_init(&s, BLAKE2S_HASH_SIZE, NULL, 0);
    wg_blake2s_update(&s, label, 8);
    wg_blake2s_update(&s, public_key, NOISE_PUBLIC_KEY_LEN);
    wg_blake2s_final(&s, out);
}

void wg_cookie_checker_set_key(struct cookie_checker *c, const uint8_t *public_key)
{
    pthread_mutex_lock(&c->lock);
    c->has_key = public_key != NULL;
    if (public_key) {
        labelled_hash(c->mac1_key, LABEL_MAC1, public_key);
        labelled_hash(c->cookie_key, LABEL_COOKIE, public_key);
    } else {
        explicit_bzero(c->mac1_key, sizeof(c->mac1_key));
        explicit_bzero(c->cookie_key, sizeof(c->cookie_key));
    }
    pthread_mutex_unlock(&c->lock);
}

/* A new secret every COOKIE_SECRET_MAX_AGE_S; the old one stays for mac2. */
static void rotate_secret(struct cookie_checker *c, uint64_t now)
{
    uint64_t age = (uint64_t)COOKIE_SECRET_MAX_AGE_S * 1000000000u;

    if (c->secret_birth_ns && now - c->secret_birth_ns < age)
        return;
    memcpy(c->secret[1], c->secret[0], BLAKE2S_HASH_SIZE);
    if (getrandom(c->secret[0], BLAKE2S_HASH_SIZE, 0) != BLAKE2S_HASH_SIZE)
        return;                         /* keep the old secret; try again next time */
    if (!c->secret_birth_ns)
        memcpy(c->secret[1], c->secret[0], BLAKE2S_HASH_SIZE);
    c->secret_birth_ns = now;
}

static void make_cookie(uint8_t cookie[COOKIE_LEN], const uint8_t secret[BLAKE2S_HASH_SIZE],
                        const struct wg_endpoint *src)
{
    uint8_t port[2] = { (uint8_t)(src->port >> 8), (uint8_t)src->port };
    struct blake2s_state s;

    wg_blake2s_init(&s, COOKIE_LEN, secret, BLAKE2S_HASH_SIZE);
    wg_blake2s_update(&s, src->addr, src->family == 4 ? 4 : 16);
    wg_blake2s_update(&s, port, sizeof(port));
    wg_blake2s_final(&s, cookie);
}

static bool mac_matches(const uint8_t *key, size_t keylen, const uint8_t *msg, size_t covered)
{
    uint8_t mac[MESSAGE_MAC_LEN];
    bool ok;

    wg_blake2s(mac, MESSAGE_MAC_LEN, msg, covered, key, keylen);
    ok = wg_memeq_ct(mac, msg + covered, MESSAGE_MAC_LEN);
    explicit_bzero(mac, sizeof(mac));
    return ok;
}

static bool mac2_matches(struct cookie_checker *c, const uint8_t *msg, size_t len,
                         const struct wg_endpoint *src, uint64_t now)
{
    uint8_t cookie[COOKIE_LEN];
    bool ok = false;

    rotate_secret(c, now);
    for (int i = 0; i < 2 && !ok; i++) {
        make_cookie(cookie, c->secret[i], src);
        ok = mac_matches(cookie, COOKIE_LEN, msg, len - MESSAGE_MAC_LEN);
    }
    explicit_bzero(cookie, sizeof(cookie));
    return ok;
}

static bool zero_mac(const uint8_t *mac)
{
    uint8_t any = 0;

    for (int i = 0; i < MESSAGE_MAC_LEN; i++)
        any |= mac[i];
    return any == 0;
}

enum cookie_mac_state wg_cookie_validate(struct cookie_checker *c, const uint8_t *msg, size_t len,
                                         const struct wg_endpoint *src, bool check_mac2,
                                         uint64_t now)
{
    enum cookie_mac_state state = COOKIE_MAC_INVALID;

    if (len < 2 * MESSAGE_MAC_LEN)
        return state;
    pthread_mutex_lock(&c->lock);
    if (c->has_key && mac_matches(c->mac1_key, sizeof(c->mac1_key), msg,
                                  len - 2 * MESSAGE_MAC_LEN)) {
        state = COOKIE_MAC_VALID;
        /* A sender without a cookie sends a zero mac2 (whitepaper 5.4.4): nothing to
         * check, which spares a flood's messages two cookie MACs each. */
        if (check_mac2 && !zero_mac(msg + len - MESSAGE_MAC_LEN) &&
            mac2_matches(c, msg, len, src, now))
            state = COOKIE_MAC_VALID_WITH_COOKIE;
    }
    pthread_mutex_unlock(&c->lock);
    return state;
}

static const uint8_t *next_nonce(struct cookie_checker *c)
{
    if (!c->nonces_left) {
        if (getrandom(c->nonces, sizeof(c->nonces), 0) != (ssize_t)sizeof(c->nonces))
            return NULL;
        c->nonces_left = sizeof(c->nonces) / COOKIE_NONCE_LEN;
    }
    return c->nonces + COOKIE_NONCE_LEN * --c->nonces_left;
}

int wg_cookie_reply(struct cookie_checker *c, const uint8_t *msg, size_t len,
                    const struct wg_endpoint *src, uint64_t now,
                    uint8_t out[MESSAGE_COOKIE_REPLY_SIZE])
{
    xaead_encrypt_fn encrypt = atomic_load(&xaead_encrypt);
    const uint8_t *mac1 = msg + len - 2 * MESSAGE_MAC_LEN, *nonce;
    uint8_t cookie[COOKIE_LEN];
    unsigned long long sealed_len;
    int ret = -ENOTSUP;

    if (!encrypt)
        return ret;
    pthread_mutex_lock(&c->lock);
    rotate_secret(c, now);
    nonce = next_nonce(c);
    if (nonce && c->has_key) {
        make_cookie(cookie, c->secret[0], src);
        put_le32(out, MESSAGE_HANDSHAKE_COOKIE);
        memcpy(out + MESSAGE_COOKIE_RECEIVER, msg + 4, 4);   /* the message's sender index */
        memcpy(out + 8, nonce, COOKIE_NONCE_LEN);
        ret = encrypt(out + 8 + COOKIE_NONCE_LEN, &sealed_len, cookie, COOKIE_LEN, mac1,
                      MESSAGE_MAC_LEN, NULL, nonce, c->cookie_key) ? -EIO : 0;
        explicit_bzero(cookie, sizeof(cookie));
    }
    pthread_mutex_unlock(&c->lock);
    return ret;
}
