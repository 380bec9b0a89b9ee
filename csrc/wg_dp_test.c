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
 * wg_allowedips_bench_build times building the same table, and says how
 * much heap it holds.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "allowedips.h"
#include "device.h"
#include "indextable.h"
#include "replay.h"
#include "wg_dp_test.h"

#define BENCH_PEERS 1024

int wg_indextable_draws(uint32_t n, uint32_t *indices, uint32_t *pool_left)
{
    struct indextable t;
    struct index_entry *entries = calloc(n ? n : 1, sizeof(*entries));
    int ret = entries ? wg_indextable_init(&t, n) : -ENOMEM;

    if (ret) {
        free(entries);
        return ret;
    }
    for (uint32_t i = 0; i < n && !ret; i++) {
        ret = wg_indextable_insert_random(&t, &entries[i]);
        indices[i] = entries[i].index;
        pool_left[i] = wg_indextable_pool_left(&t);
    }
    for (uint32_t i = 0; i < n && !ret; i++)
        if (wg_indextable_lookup(&t, indices[i]) != &entries[i])
            ret = -ENOENT;
    wg_indextable_free(&t);
    free(entries);
    return ret;
}

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

/* A table of `prefixes` random prefixes, as both benchmarks build it; the
 * first probes (up to 2048) get addresses inside the prefixes just inserted,
 * and *next is left where the generator stands. */
static int bench_table(struct allowedips *t, struct epoch *e, int family, size_t prefixes,
                       uint64_t seed, uint8_t (*probes)[16], uint64_t *next)
{
    size_t len = family == 4 ? 4 : 16;
    uint64_t s = seed | 1;
    int rc;

    if ((rc = wg_allowedips_init(t, BENCH_PEERS, e)))
        return rc;
    for (size_t i = 0; i < prefixes; i++) {
        uint8_t addr[16] = { 0 };
        random_addr(&s, addr, len);
        if ((rc = wg_allowedips_insert(t, (uint8_t)family, addr, random_cidr(&s, (uint8_t)family),
                                       (uint32_t)(next_random(&s) % BENCH_PEERS)))) {
            wg_allowedips_free(t);
            return rc;
        }
        if (probes && i < 2048)
            memcpy(probes[i], addr, len);  /* a hit: inside a prefix just inserted */
        if (i % 1024 == 1023)
            wg_epoch_reclaim(e);           /* what inserts replaced; no reader runs */
    }
    wg_epoch_reclaim(e);
    *next = s;
    return 0;
}

int wg_allowedips_bench(int family, size_t prefixes, uint64_t lookups, uint64_t seed,
                        uint64_t *elapsed_ns)
{
    size_t len = family == 4 ? 4 : 16;
    uint8_t (*probes)[16] = NULL;
    struct allowedips t;
    struct epoch e;
    uint64_t s, start, found = 0;
    int rc;

    if ((family != 4 && family != 6) || !elapsed_ns || lookups == 0)
        return -EINVAL;
    probes = calloc(4096, sizeof(*probes));
    if (!probes)
        return -ENOMEM;
    wg_epoch_init(&e);
    if ((rc = bench_table(&t, &e, family, prefixes, seed, probes, &s)))
        goto out;
    for (size_t i = prefixes < 2048 ? prefixes : 2048; i < 4096; i++)
        random_addr(&s, probes[i], len);     /* mostly misses */
    start = now_ns();
    for (uint64_t i = 0; i < lookups; i++)
        found += wg_allowedips_lookup(&t, (uint8_t)family, probes[i % 4096]) != WG_DP_PEER_NONE;
    *elapsed_ns = now_ns() - start;
    bench_sink = found;
    wg_allowedips_free(&t);
out:
    wg_epoch_destroy(&e);
    free(probes);
    return rc;
}

/* The heap in use, where the C library says (glibc); 0 elsewhere. */
static uint64_t heap_in_use(void)
{
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
    struct mallinfo2 m = mallinfo2();
    return (uint64_t)m.uordblks + (uint64_t)m.hblkhd;
#else
    return 0;
#endif
}

int wg_allowedips_bench_build(int family, size_t prefixes, uint64_t seed, uint64_t *elapsed_ns,
                              uint64_t *heap_bytes)
{
    struct allowedips t;
    struct epoch e;
    uint64_t s, start, before;
    int rc;

    if ((family != 4 && family != 6) || !elapsed_ns || !heap_bytes || prefixes == 0)
        return -EINVAL;
    wg_epoch_init(&e);
    before = heap_in_use();
    start = now_ns();
    if (!(rc = bench_table(&t, &e, family, prefixes, seed, NULL, &s))) {
        uint64_t after = heap_in_use();
        *elapsed_ns = now_ns() - start;
        *heap_bytes = before && after > before ? after - before : 0;
        wg_allowedips_free(&t);
    }
    wg_epoch_destroy(&e);
    return rc;
}
