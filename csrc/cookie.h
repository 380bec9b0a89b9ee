/*
 * cookie.h - the responder's side of WireGuard's DoS defence (the kernel's
 * cookie.c checker half): mac1 of every handshake message, and under load
 * mac2 (a MAC keyed by a cookie only the sender's address can have received)
 * and cookie replies. It runs on the receive thread, before a handshake
 * message may go up to Python.
 *
 * The cookie for a source is MAC(secret, address || port); the secret is
 * random and changes every COOKIE_SECRET_MAX_AGE_S, and mac2 is accepted
 * under the current secret or the one before, so a cookie handed out just
 * before a change still works. Replies seal the cookie with
 * XChaCha20-Poly1305 (libsodium's, registered at start-up) under a key only
 * our public key's holders can derive, with the message's mac1 as AD.
 */
#pragma once
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "crypto/blake2s.h"
#include "messages.h"
#include "wg_dp.h"

struct cookie_checker {
    pthread_mutex_t lock;               /* keys (control calls) against their use (RX) */
    bool has_key;
    uint8_t mac1_key[BLAKE2S_HASH_SIZE];   /* HASH(LABEL_MAC1 || our public key) */
    uint8_t cookie_key[BLAKE2S_HASH_SIZE]; /* HASH(LABEL_COOKIE || our public key) */
    uint8_t secret[2][BLAKE2S_HASH_SIZE];  /* current, previous */
    uint64_t secret_birth_ns;           /* 0: no secret yet */
    uint8_t nonces[COOKIE_NONCE_LEN * 64]; /* random nonces, drawn in bulk */
    unsigned int nonces_left;
};

enum cookie_mac_state {
    COOKIE_MAC_INVALID,                 /* wrong size, no key, or mac1 wrong */
    COOKIE_MAC_VALID,                   /* mac1 right (mac2 not asked for, or wrong) */
    COOKIE_MAC_VALID_WITH_COOKIE,       /* mac1 and mac2 right */
};

void wg_cookie_checker_init(struct cookie_checker *c);
void wg_cookie_checker_free(struct cookie_checker *c);
/* Control call: our public key (NULL: none, every message fails mac1). */
void wg_cookie_checker_set_key(struct cookie_checker *c, const uint8_t *public_key);
/* A type 1 or 2 message of its exact size from src; mac2 only if check_mac2. */
enum cookie_mac_state wg_cookie_validate(struct cookie_checker *c, const uint8_t *msg, size_t len,
                                         const struct wg_endpoint *src, bool check_mac2,
                                         uint64_t now);
/* The 64-byte cookie reply to msg (whose mac1 was valid) for src: 0, or
 * -ENOTSUP while no XChaCha20-Poly1305 is registered. */
int wg_cookie_reply(struct cookie_checker *c, const uint8_t *msg, size_t len,
                    const struct wg_endpoint *src, uint64_t now,
                    uint8_t out[MESSAGE_COOKIE_REPLY_SIZE]);
