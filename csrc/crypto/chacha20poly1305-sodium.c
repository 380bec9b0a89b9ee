/*
 * chacha20poly1305-sodium.c - libsodium's ChaCha20-Poly1305 (IETF) as a
 * backend, for comparison and as a fallback.
 *
 * The data plane links no libsodium of its own: Python takes the two
 * functions' addresses from pynacl's bundled library (after sodium_init(),
 * without which libsodium runs its slow generic code) and hands them over
 * once with wg_aead_register_sodium(). The backend is usable from then on.
 */
#include "chacha20poly1305.h"

#include <errno.h>
#include <string.h>

#include "../wg_dp.h"

typedef int (*sodium_encrypt_fn)(unsigned char *c, unsigned long long *clen,
                                 const unsigned char *m, unsigned long long mlen,
                                 const unsigned char *ad, unsigned long long adlen,
                                 const unsigned char *nsec, const unsigned char *npub,
                                 const unsigned char *k);
typedef int (*sodium_decrypt_fn)(unsigned char *m, unsigned long long *mlen, unsigned char *nsec,
                                 const unsigned char *c, unsigned long long clen,
                                 const unsigned char *ad, unsigned long long adlen,
                                 const unsigned char *npub, const unsigned char *k);

static sodium_encrypt_fn sodium_encrypt;
static sodium_decrypt_fn sodium_decrypt;

static bool registered(void)
{
    return __atomic_load_n(&sodium_decrypt, __ATOMIC_ACQUIRE) != NULL;
}

static void make_nonce(uint8_t nonce[WG_AEAD_NONCE_LEN], uint32_t nonce0, uint64_t counter)
{
    put_le32(nonce, nonce0);
    put_le64(nonce + 4, counter);
}

static void seal_core(uint8_t *dst, const uint8_t *src, size_t len, const uint8_t *ad,
                      size_t ad_len, uint32_t nonce0, uint64_t counter,
                      const uint8_t key[WG_AEAD_KEY_LEN])
{
    uint8_t nonce[WG_AEAD_NONCE_LEN];
    unsigned long long out_len;

    make_nonce(nonce, nonce0, counter);
    sodium_encrypt(dst, &out_len, src, len, ad, ad_len, NULL, nonce, key);
}

static bool open_core(uint8_t *dst, const uint8_t *src, size_t len, const uint8_t *ad,
                      size_t ad_len, uint32_t nonce0, uint64_t counter,
                      const uint8_t key[WG_AEAD_KEY_LEN])
{
    uint8_t nonce[WG_AEAD_NONCE_LEN];
    unsigned long long out_len;

    if (len < WG_AEAD_TAG_LEN)
        return false;
    make_nonce(nonce, nonce0, counter);
    if (sodium_decrypt(dst, &out_len, NULL, src, len, ad, ad_len, nonce, key) == 0)
        return true;
    /* libsodium verifies before it decrypts, but the contract is "wiped". */
    wipe(dst, len - WG_AEAD_TAG_LEN);
    return false;
}

WG_AEAD_ENTRY_POINTS(sodium, seal_core, open_core)

const struct wg_aead_backend wg_aead_sodium = {
    .name = "sodium",
    .usable = registered,
    .seal = sodium_seal,
    .open = sodium_open,
    .seal_nonce = sodium_seal_nonce,
    .open_nonce = sodium_open_nonce,
};

/* Once: a backend that is not usable gets no cached self-test verdict, so
 * the first status check after this tests it. */
int wg_aead_register_sodium(void *encrypt, void *decrypt)
{
    if (!encrypt || !decrypt)
        return -EINVAL;
    if (registered()) {
        bool same = sodium_encrypt == (sodium_encrypt_fn)encrypt &&
                    sodium_decrypt == (sodium_decrypt_fn)decrypt;
        return same ? 0 : -EALREADY;
    }
    __atomic_store_n(&sodium_encrypt, (sodium_encrypt_fn)encrypt, __ATOMIC_RELEASE);
    __atomic_store_n(&sodium_decrypt, (sodium_decrypt_fn)decrypt, __ATOMIC_RELEASE);
    return 0;
}
