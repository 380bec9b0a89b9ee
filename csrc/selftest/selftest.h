/* selftest.h - a tiny harness for the plain-C self-tests (no Python needed). */
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

extern int selftest_failures;

#define CHECK(cond, ...)                                                      \
    do {                                                                      \
        if (!(cond)) {                                                        \
            selftest_failures++;                                              \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                     \
            fputc('\n', stderr);                                              \
        }                                                                     \
    } while (0)

/* Each self-test file exports one of these; main.c lists them. */
void selftest_replay(void);
void selftest_aead(void);
void selftest_allowedips(void);
void selftest_indextable(void);
void selftest_keypair(void);
void selftest_checksum(void);
void selftest_blake2s(void);
void selftest_cookie(void);
void selftest_x25519(void);
void selftest_x25519_ifma(void);
void selftest_noise(void);

/* Hex to bytes (at most max); returns how many. */
size_t selftest_unhex(uint8_t *out, size_t max, const char *hex);
/* The reference X25519 (x25519.c), with libsodium's signatures, for the handshake's steps. */
int selftest_x25519_ref(unsigned char *q, const unsigned char *n, const unsigned char *p);
int selftest_x25519_ref_base(unsigned char *q, const unsigned char *n);
