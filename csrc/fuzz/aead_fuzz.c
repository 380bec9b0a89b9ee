/*
 * aead_fuzz.c - libFuzzer harness for the ChaCha20-Poly1305 backends.
 *
 * Input: 32 bytes of key, 8 of counter, 1 of associated-data length (mod
 * 33) and then the associated data and the body. The body is taken as the
 * ciphertext to produce: its plaintext is body xor portable's keystream,
 * so the fuzzer steers the bytes Poly1305 sees (carries, all-ones limbs)
 * directly. Every usable backend must then seal to exactly the portable
 * backend's output, in place and not, open it back, and refuse it (with the
 * output wiped) once a bit chosen by the input is flipped.
 *
 * Built by `make fuzz` with clang -fsanitize=fuzzer,address,undefined.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../crypto/chacha20poly1305.h"
#include "../wg_dp_test.h"

#define MAX_BODY 70000

static uint8_t pt[MAX_BODY], ref[MAX_BODY + 16], out[MAX_BODY + 16], io[MAX_BODY + 16];

static void check(bool ok, const char *what, const char *backend, size_t len)
{
    if (!ok) {
        fprintf(stderr, "aead_fuzz: %s: %s at length %zu\n", backend, what, len);
        abort();
    }
}

static void fuzz_backend(const struct wg_aead_backend *b, const uint8_t key[32], uint64_t counter,
                         const uint8_t *ad, size_t ad_len, size_t len, size_t flip)
{
    b->seal(out, pt, len, ad, ad_len, counter, key);
    check(memcmp(out, ref, len + 16) == 0, "seal differs from portable", b->name, len);
    memcpy(io, pt, len);
    b->seal(io, io, len, ad, ad_len, counter, key);
    check(memcmp(io, ref, len + 16) == 0, "in-place seal differs", b->name, len);
    check(b->open(io, io, len + 16, ad, ad_len, counter, key) && memcmp(io, pt, len) == 0,
          "in-place open", b->name, len);
    memcpy(io, ref, len + 16);
    io[flip / 8 % (len + 16)] ^= (uint8_t)(1u << (flip % 8));
    memset(out, 0x55, len);
    check(!b->open(out, io, len + 16, ad, ad_len, counter, key), "forgery accepted", b->name, len);
    for (size_t i = 0; i < len; i++)
        check(out[i] == 0, "output of a forgery not wiped", b->name, len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *names[16];
    static int nnames;
    uint8_t key[32];
    uint64_t counter;
    size_t ad_len, len, flip;
    const uint8_t *ad;

    if (!nnames) {
        if (wg_aead_init() != 0)
            abort();
        nnames = wg_aead_backends(names, 16);
    }
    if (size < 41)
        return 0;
    memcpy(key, data, 32);
    counter = get_le64(data + 32);
    ad_len = data[40] % 33;
    data += 41;
    size -= 41;
    if (ad_len > size)
        ad_len = size;
    ad = data;
    len = size - ad_len < MAX_BODY ? size - ad_len : MAX_BODY;
    /* pt = wanted ciphertext xor keystream: seal zeros to get the keystream. */
    memset(pt, 0, len);
    wg_aead_portable.seal(ref, pt, len, NULL, 0, counter, key);
    for (size_t i = 0; i < len; i++)
        pt[i] = ref[i] ^ data[ad_len + i];
    wg_aead_portable.seal(ref, pt, len, ad, ad_len, counter, key);
    check(memcmp(ref, data + ad_len, len) == 0, "keystream", "portable", len);
    flip = (size_t)counter ^ (size_t)(counter >> 32);
    for (int i = 0; i < nnames; i++) {
        const char *name = names[i];
        int rc = wg_aead_status(name);

        /* Skip what this CPU cannot run (and sodium, never registered here);
         * a failed start-up self-test is a finding in itself. */
        if (rc == -ENOTSUP)
            continue;
        check(rc == 0 && wg_aead_select(name) == 0, "start-up self-test failed", name, 0);
        fuzz_backend(wg_aead, key, counter, ad, ad_len, len, flip);
    }
    return 0;
}
