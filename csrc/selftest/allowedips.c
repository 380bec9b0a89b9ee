/*
 * allowedips.c - the tries against a brute-force reference: random prefixes
 * (IPv4 and IPv6, nested on purpose), random removals by prefix and by peer,
 * then lookups of random addresses and of addresses inside the prefixes.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../allowedips.h"
#include "../wg_dp.h"
#include "selftest.h"

#define ENTRIES 3000
#define PEERS 32

struct ref_entry {
    uint8_t family, cidr, addr[16];
    uint32_t peer;
    bool live;
};

static struct ref_entry ref[ENTRIES];
static unsigned int nref;
static uint64_t rng_state = 0x243f6a8885a308d3;

static uint64_t rnd(void)
{
    /* xorshift64*: reproducible, good enough to spread prefixes. */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dull;
}

static bool prefix_match(const uint8_t *a, const uint8_t *b, unsigned int cidr)
{
    unsigned int whole = cidr / 8, rest = cidr % 8;

    if (memcmp(a, b, whole))
        return false;
    return !rest || ((a[whole] ^ b[whole]) & (uint8_t)(0xff << (8 - rest))) == 0;
}

static void mask(uint8_t *addr, unsigned int cidr, unsigned int bytes)
{
    for (unsigned int i = 0; i < bytes; i++) {
        unsigned int keep = cidr > i * 8 ? cidr - i * 8 : 0;
        addr[i] &= keep >= 8 ? 0xff : (uint8_t)(0xff << (8 - keep));
    }
}

/* The latest live entry for the longest matching prefix (an insert of an
 * identical prefix replaced earlier ones). */
static uint32_t ref_lookup(uint8_t family, const uint8_t *addr)
{
    int best_cidr = -1;
    uint32_t best = WG_DP_PEER_NONE;

    for (unsigned int i = 0; i < nref; i++) {
        const struct ref_entry *e = &ref[i];
        if (e->live && e->family == family && prefix_match(e->addr, addr, e->cidr) &&
            (int)e->cidr >= best_cidr) {
            best_cidr = e->cidr;
            best = e->peer;
        }
    }
    return best;
}

static void ref_kill_same(uint8_t family, const uint8_t *addr, uint8_t cidr)
{
    for (unsigned int i = 0; i < nref; i++)
        if (ref[i].live && ref[i].family == family && ref[i].cidr == cidr &&
            memcmp(ref[i].addr, addr, 16) == 0)
            ref[i].live = false;
}

static void random_entry(struct ref_entry *e)
{
    unsigned int bytes;

    e->family = rnd() & 1 ? 4 : 6;
    bytes = e->family == 4 ? 4 : 16;
    memset(e->addr, 0, 16);
    /* Few distinct leading bytes, so that prefixes nest and share paths. */
    for (unsigned int i = 0; i < bytes; i++)
        e->addr[i] = i < 2 ? (uint8_t)(rnd() & 0x3) : (uint8_t)rnd();
    e->cidr = (uint8_t)(rnd() % (bytes * 8 + 1));
    mask(e->addr, e->cidr, bytes);
    e->peer = (uint32_t)(rnd() % PEERS);
    e->live = true;
}

static void check_lookups(struct allowedips *t, const char *stage)
{
    for (unsigned int i = 0; i < 4000; i++) {
        uint8_t addr[16] = { 0 }, family;
        unsigned int bytes;

        if (i % 2 && nref) {
            const struct ref_entry *e = &ref[rnd() % nref];
            family = e->family;
            bytes = family == 4 ? 4 : 16;
            for (unsigned int k = 0; k < bytes; k++)
                addr[k] = (uint8_t)rnd();
            /* Keep the entry's prefix, randomise the host bits. */
            for (unsigned int k = 0; k < e->cidr; k++) {
                uint8_t bit = (uint8_t)(0x80 >> (k % 8));
                addr[k / 8] = (uint8_t)((addr[k / 8] & ~bit) | (e->addr[k / 8] & bit));
            }
        } else {
            family = rnd() & 1 ? 4 : 6;
            bytes = family == 4 ? 4 : 16;
            for (unsigned int k = 0; k < bytes; k++)
                addr[k] = k < 2 ? (uint8_t)(rnd() & 0x3) : (uint8_t)rnd();
        }
        uint32_t got = wg_allowedips_lookup(t, family, addr), want = ref_lookup(family, addr);
        CHECK(got == want, "%s: lookup %u: got %u want %u", stage, i, got, want);
    }
}

void selftest_allowedips(void)
{
    struct allowedips t;
    struct epoch epoch;

    wg_epoch_init(&epoch);
    CHECK(wg_allowedips_init(&t, PEERS, &epoch) == 0, "init");
    for (nref = 0; nref < ENTRIES; nref++) {
        struct ref_entry *e = &ref[nref];
        random_entry(e);
        ref_kill_same(e->family, e->addr, e->cidr);
        e->live = true;
        CHECK(wg_allowedips_insert(&t, e->family, e->addr, e->cidr, e->peer) == 0, "insert");
    }
    check_lookups(&t, "after inserts");

    for (unsigned int i = 0; i < nref; i++) {
        struct ref_entry *e = &ref[i];
        int ret;
        if (!e->live || rnd() % 3)
            continue;
        ret = wg_allowedips_remove(&t, e->family, e->addr, e->cidr, (e->peer + 1) % PEERS);
        CHECK(ret == -ENOENT, "remove by a non-owner: %d", ret);
        ret = wg_allowedips_remove(&t, e->family, e->addr, e->cidr, e->peer);
        CHECK(ret == 0, "remove by the owner: %d", ret);
        e->live = false;
    }
    wg_epoch_reclaim(&epoch);
    check_lookups(&t, "after removals");

    for (uint32_t peer = 0; peer < PEERS; peer += 3) {
        wg_allowedips_remove_peer(&t, peer);
        for (unsigned int i = 0; i < nref; i++)
            if (ref[i].peer == peer)
                ref[i].live = false;
    }
    wg_epoch_reclaim(&epoch);
    check_lookups(&t, "after removing peers");

    for (uint32_t peer = 0; peer < PEERS; peer++)
        wg_allowedips_remove_peer(&t, peer);
    CHECK(atomic_load(&t.root4) == NULL && atomic_load(&t.root6) == NULL,
          "an empty table has no nodes left");
    wg_allowedips_free(&t);
    wg_epoch_destroy(&epoch);
}
