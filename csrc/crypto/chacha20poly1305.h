/*
 * chacha20poly1305.h - what the backends share inside csrc/crypto; the rest
 * of the data plane sees only aead.h.
 *
 * Every backend has one core per direction taking (nonce0, counter), where
 * nonce0 is the first 32-bit word of RFC 8439's nonce (0 for WireGuard), and
 * exports the four entry points of struct wg_aead_backend as thin wrappers
 * made by WG_AEAD_ENTRY_POINTS.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aead.h"
#include "chacha20.h"
#include "poly1305.h"

extern const struct wg_aead_backend wg_aead_portable;
extern const struct wg_aead_backend wg_aead_portable32;
extern const struct wg_aead_backend wg_aead_avx2;
extern const struct wg_aead_backend wg_aead_avx512;
extern const struct wg_aead_backend wg_aead_neon;
extern const struct wg_aead_backend wg_aead_sodium;

/* Constant-time comparison of two tags: no branch or index depends on them. */
static inline bool tag_equal(const uint8_t a[POLY1305_TAG_SIZE], const uint8_t b[POLY1305_TAG_SIZE])
{
    uint32_t diff = 0;

    for (int i = 0; i < POLY1305_TAG_SIZE; i++)
        diff |= (uint32_t)(a[i] ^ b[i]);
    __asm__ __volatile__("" : "+r"(diff));
    return ((diff - 1) >> 8) & 1;
}

/* The last 16 bytes Poly1305 sees: the two lengths, little-endian. */
static inline void aead_lengths_block(uint8_t block[POLY1305_BLOCK_SIZE], size_t ad_len,
                                      size_t ct_len)
{
    put_le64(block, (uint64_t)ad_len);
    put_le64(block + 8, (uint64_t)ct_len);
}

#define WG_AEAD_ENTRY_POINTS(prefix, seal_core, open_core)                                 \
    static void prefix##_seal(uint8_t *dst, const uint8_t *src, size_t len,               \
                              const uint8_t *ad, size_t ad_len, uint64_t counter,          \
                              const uint8_t key[WG_AEAD_KEY_LEN])                          \
    {                                                                                      \
        seal_core(dst, src, len, ad, ad_len, 0, counter, key);                             \
    }                                                                                      \
    static bool prefix##_open(uint8_t *dst, const uint8_t *src, size_t len,               \
                              const uint8_t *ad, size_t ad_len, uint64_t counter,          \
                              const uint8_t key[WG_AEAD_KEY_LEN])                          \
    {                                                                                      \
        return open_core(dst, src, len, ad, ad_len, 0, counter, key);                      \
    }                                                                                      \
    static void prefix##_seal_nonce(uint8_t *dst, const uint8_t *src, size_t len,         \
                                    const uint8_t *ad, size_t ad_len,                      \
                                    const uint8_t nonce[WG_AEAD_NONCE_LEN],                \
                                    const uint8_t key[WG_AEAD_KEY_LEN])                    \
    {                                                                                      \
        seal_core(dst, src, len, ad, ad_len, get_le32(nonce), get_le64(nonce + 4), key);   \
    }                                                                                      \
    static bool prefix##_open_nonce(uint8_t *dst, const uint8_t *src, size_t len,         \
                                    const uint8_t *ad, size_t ad_len,                      \
                                    const uint8_t nonce[WG_AEAD_NONCE_LEN],                \
                                    const uint8_t key[WG_AEAD_KEY_LEN])                    \
    {                                                                                      \
        return open_core(dst, src, len, ad, ad_len, get_le32(nonce), get_le64(nonce + 4),  \
                         key);                                                             \
    }

#if defined(__x86_64__)
#include <cpuid.h>

/* Which register state the OS saves on context switches (XCR0). */
static inline uint64_t xgetbv0(void)
{
    uint32_t lo, hi;

    __asm__ __volatile__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (uint64_t)hi << 32 | lo;
}

#define XCR0_AVX 0x06u                  /* XMM and YMM state */
#define XCR0_AVX512 0xe6u               /* and opmask, ZMM0-15 upper halves, ZMM16-31 */

/* cpuid leaf 7's EBX, or 0 if the OS does not save the state `xcr0` names. */
static inline uint32_t cpuid7_ebx_if_os_saves(uint32_t xcr0)
{
    uint32_t a, b, c, d;

    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_OSXSAVE) || !(c & bit_AVX))
        return 0;
    if ((xgetbv0() & xcr0) != xcr0)
        return 0;
    if (__get_cpuid_max(0, NULL) < 7)
        return 0;
    __cpuid_count(7, 0, a, b, c, d);
    return b;
}
#endif
