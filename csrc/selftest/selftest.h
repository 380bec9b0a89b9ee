/* selftest.h - a tiny harness for the plain-C self-tests (no Python needed). */
#pragma once
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
