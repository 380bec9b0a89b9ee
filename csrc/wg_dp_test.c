/*
 * wg_dp_test.c - the hooks wg_dp_test.h declares that live nowhere else,
 * built only into the test module.
 *
 * wg_allowedips_bench, for `make bench`: lookups per second in a trie of
 * random prefixes, timed in C so that Python's call cost does not hide the
 * trie's.
 *
 * The prefixes are random (xorshift from the seed) with lengths spread the
 * way routing tables spread them (mostly /16-/32 for IPv4, /32-/128 for
 * IPv6), each owned by a peer among 1024; lookups are random addresses,
 * half of them inside an inserted prefix so both hits and misses count.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "allowedips.h"
#include "device.h"
#include "replay.h"
#include "wg_dp_test.h"

#define BENCH_PEERS 1024

size_t wg_replay_size(void)
{
    return sizeof(struct wg_replay);
}

/* Where the hit count goes, so the compiler cannot drop the timed loop. */
static volatile uint64_t bench_sink;

static uint64_t next_random(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void random_addr(uint64_t *s, uint8_t *addr, size_t len)
{
    for (size_t i = 0; i < len; i += 8) {
        uint64_t r = next_random(s);
        memcpy(addr + i, &r, len - i < 8 ? len - i : 8);
    }
}

static uint8_t random_cidr(uint64_t *s, uint8_t family)
{
    uint64_t r = next_random(s);
    return family == 4 ? (uint8_t)(16 + r % 17) : (uint8_t)(32 + r % 97);
}

int wg_allowedips_bench(int family, size_t prefixes, uint64_t lookups, uint64_t seed,
                        uint64_t *elapsed_ns)
{
    size_t len = family == 4 ? 4 : 16;
    uint8_t (*probes)[16] = NULL;
    struct allowedips t;
    struct epoch e;
    uint64_t s = seed | 1, start, found = 0;
    int rc;

    if ((family != 4 && family != 6) || !elapsed_ns || lookups == 0)
        return -EINVAL;
    wg_epoch_init(&e);
    if ((rc = wg_allowedips_init(&t, BENCH_PEERS, &e)))
        goto out_epoch;
    probes = calloc(4096, sizeof(*probes));
    if (!probes) {
        rc = -ENOMEM;
        goto out_trie;
    }
    for (size_t i = 0; i < prefixes; i++) {
        uint8_t addr[16] = { 0 };
        random_addr(&s, addr, len);
        if ((rc = wg_allowedips_insert(&t, (uint8_t)family, addr, random_cidr(&s, (uint8_t)family),
                                       (uint32_t)(next_random(&s) % BENCH_PEERS))))
            goto out_probes;
        if (i < 2048)
            memcpy(probes[i], addr, len);  /* a hit: inside a prefix just inserted */
    }
    for (size_t i = prefixes < 2048 ? prefixes : 2048; i < 4096; i++)
        random_addr(&s, probes[i], len);     /* mostly misses */
    start = now_ns();
    for (uint64_t i = 0; i < lookups; i++)
        found += wg_allowedips_lookup(&t, (uint8_t)family, probes[i % 4096]) != WG_DP_PEER_NONE;
    *elapsed_ns = now_ns() - start;
    bench_sink = found;
out_probes:
    free(probes);
out_trie:
    wg_allowedips_free(&t);
out_epoch:
    wg_epoch_destroy(&e);
    return rc;
}
