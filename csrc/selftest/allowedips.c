/*
 * allowedips.c - the tries against a brute-force reference, and their shape.
 *
 * Random prefixes (IPv4 and IPv6, nested on purpose), owners changed by
 * inserting again, removals by prefix and by peer; prefixes of every length
 * on one path and beside it, across the trie's byte boundaries (8/9, 16/17,
 * 24/25, 120/121 ...); lookups of random addresses, of addresses inside the
 * prefixes and at their edges (first, last, one before, one after). After
 * every stage wg_allowedips_check verifies the structure. Then the shape:
 * no node for a single prefix, nodes collapsing as prefixes go, an emptied
 * subtree leaving nothing behind; a dense node whose removals kill entries
 * in place until it is rebuilt; removals while memory runs out; and
 * lookups on other threads (epoch readers) while the table churns around
 * the prefixes they look up (under `make asan`, a node freed too early is
 * a use after free).
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "../allowedips.h"
#include "../wg_dp.h"
#include "selftest.h"

#define ENTRIES 4000
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

static unsigned int bytes_of(uint8_t family)
{
    return family == 4 ? 4 : 16;
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
 * identical prefix kills earlier ones). */
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

/* The live entry with this prefix, if any. */
static struct ref_entry *ref_find(uint8_t family, const uint8_t *addr, uint8_t cidr)
{
    for (unsigned int i = 0; i < nref; i++)
        if (ref[i].live && ref[i].family == family && ref[i].cidr == cidr &&
            memcmp(ref[i].addr, addr, 16) == 0)
            return &ref[i];
    return NULL;
}

/* Inserts into both; the table's answer must be `want`. */
static void insert_both(struct allowedips *t, uint8_t family, const uint8_t *addr, uint8_t cidr,
                        uint32_t peer, int want)
{
    struct ref_entry *e, *old;
    int ret;

    CHECK(nref < ENTRIES, "reference full");
    if (nref >= ENTRIES)
        return;
    e = &ref[nref];
    e->family = family;
    e->cidr = cidr;
    memset(e->addr, 0, 16);
    memcpy(e->addr, addr, bytes_of(family));
    mask(e->addr, cidr, bytes_of(family));
    e->peer = peer;
    ret = wg_allowedips_insert(t, family, addr, cidr, peer);
    CHECK(ret == want, "insert /%u for %u: %d, expected %d", cidr, peer, ret, want);
    if (ret)
        return;
    if ((old = ref_find(family, e->addr, cidr)))
        old->live = false;
    e->live = true;
    nref++;
}

static void remove_both(struct allowedips *t, struct ref_entry *e)
{
    int ret = wg_allowedips_remove(t, e->family, e->addr, e->cidr, (e->peer + 1) % PEERS);

    CHECK(ret == -ENOENT, "remove by a non-owner: %d", ret);
    ret = wg_allowedips_remove(t, e->family, e->addr, e->cidr, e->peer);
    CHECK(ret == 0, "remove by the owner: %d", ret);
    ret = wg_allowedips_remove(t, e->family, e->addr, e->cidr, e->peer);
    CHECK(ret == -ENOENT, "remove twice: %d", ret);
    e->live = false;
}

static void remove_peer_both(struct allowedips *t, uint32_t peer)
{
    wg_allowedips_remove_peer(t, peer);
    for (unsigned int i = 0; i < nref; i++)
        if (ref[i].peer == peer)
            ref[i].live = false;
}

static void probe(struct allowedips *t, uint8_t family, const uint8_t *addr, const char *stage)
{
    uint32_t got = wg_allowedips_lookup(t, family, addr), want = ref_lookup(family, addr);

    CHECK(got == want, "%s: lookup in v%u %02x%02x%02x%02x..: got %u want %u", stage, family,
          addr[0], addr[1], addr[2], addr[3], got, want);
}

/* Adds delta (+1 or -1) to a big-endian address, wrapping. */
static void step(uint8_t *addr, unsigned int bytes, int delta)
{
    for (unsigned int i = bytes; i-- > 0;) {
        addr[i] = (uint8_t)(addr[i] + delta);
        if (addr[i] != (delta > 0 ? 0x00 : 0xff))
            return;
    }
}

/* The first and last address of e's prefix, and one before and after. */
static void probe_edges(struct allowedips *t, const struct ref_entry *e, const char *stage)
{
    unsigned int bytes = bytes_of(e->family);
    uint8_t addr[16];

    memcpy(addr, e->addr, 16);
    probe(t, e->family, addr, stage);
    step(addr, bytes, -1);
    probe(t, e->family, addr, stage);
    memcpy(addr, e->addr, 16);
    for (unsigned int k = e->cidr; k < bytes * 8; k++)
        addr[k / 8] |= (uint8_t)(0x80 >> (k % 8));
    probe(t, e->family, addr, stage);
    step(addr, bytes, 1);
    probe(t, e->family, addr, stage);
}

static void random_address(uint8_t family, uint8_t *addr)
{
    memset(addr, 0, 16);
    /* Few distinct leading bytes, so that prefixes nest and share paths. */
    for (unsigned int i = 0; i < bytes_of(family); i++)
        addr[i] = i < 2 ? (uint8_t)(rnd() & 0x3) : (uint8_t)rnd();
}

static void check_table(struct allowedips *t, const char *stage)
{
    size_t nodes = 0, prefixes = 0;
    int rule = wg_allowedips_check(t, &nodes, &prefixes);

    CHECK(rule == 0, "%s: structural rule %d broken", stage, rule);
    CHECK(nodes == 0 || nodes < prefixes, "%s: %zu nodes for %zu prefixes", stage, nodes,
          prefixes);
}

static void check_lookups(struct allowedips *t, const char *stage)
{
    for (unsigned int i = 0; i < 3000; i++) {
        uint8_t addr[16] = { 0 }, family;
        const struct ref_entry *e = nref ? &ref[rnd() % nref] : NULL;

        if (e && i % 3 == 0) {
            family = e->family;
            for (unsigned int k = 0; k < bytes_of(family); k++)
                addr[k] = (uint8_t)rnd();
            /* Keep the entry's prefix, randomise the host bits. */
            for (unsigned int k = 0; k < e->cidr; k++) {
                uint8_t bit = (uint8_t)(0x80 >> (k % 8));
                addr[k / 8] = (uint8_t)((addr[k / 8] & ~bit) | (e->addr[k / 8] & bit));
            }
            probe(t, family, addr, stage);
        } else if (e && i % 3 == 1) {
            probe_edges(t, e, stage);
        } else {
            family = rnd() & 1 ? 4 : 6;
            random_address(family, addr);
            probe(t, family, addr, stage);
        }
    }
    check_table(t, stage);
}

static void random_tables(void)
{
    struct allowedips t;
    struct epoch epoch;

    nref = 0;
    wg_epoch_init(&epoch);
    CHECK(wg_allowedips_init(&t, PEERS, &epoch) == 0, "init");
    for (unsigned int i = 0; i < 3000; i++) {
        uint8_t family = rnd() & 1 ? 4 : 6, addr[16];
        random_address(family, addr);
        insert_both(&t, family, addr, (uint8_t)(rnd() % (bytes_of(family) * 8 + 1)),
                    (uint32_t)(rnd() % PEERS), 0);
    }
    check_lookups(&t, "after inserts");

    /* New owners for a sixth of the prefixes, by inserting them again. */
    for (unsigned int i = 0, n = nref; i < n; i++)
        if (ref[i].live && rnd() % 6 == 0)
            insert_both(&t, ref[i].family, ref[i].addr, ref[i].cidr, (uint32_t)(rnd() % PEERS), 0);
    check_lookups(&t, "after owner changes");

    for (unsigned int i = 0; i < nref; i++)
        if (ref[i].live && rnd() % 3 == 0)
            remove_both(&t, &ref[i]);
    wg_epoch_reclaim(&epoch);
    check_lookups(&t, "after removals");

    for (uint32_t peer = 0; peer < PEERS; peer += 3)
        remove_peer_both(&t, peer);
    wg_epoch_reclaim(&epoch);
    check_lookups(&t, "after removing peers");

    for (uint32_t peer = 0; peer < PEERS; peer++)
        wg_allowedips_remove_peer(&t, peer);
    CHECK(atomic_load(&t.root4) == 0 && atomic_load(&t.root6) == 0,
          "an empty table has no nodes left");
    wg_allowedips_free(&t);
    wg_epoch_destroy(&epoch);
}

/* Every address that leaves `a` at one bit, and `a` itself. */
static void probe_path(struct allowedips *t, uint8_t family, const uint8_t *a, const char *stage)
{
    uint8_t addr[16];

    probe(t, family, a, stage);
    for (unsigned int k = 0; k < bytes_of(family) * 8; k++) {
        memcpy(addr, a, 16);
        addr[k / 8] ^= (uint8_t)(0x80 >> (k % 8));
        probe(t, family, addr, stage);
    }
}

static void shuffle(unsigned int *order, unsigned int n)
{
    for (unsigned int i = n; i > 1; i--) {
        unsigned int j = (unsigned int)(rnd() % i), tmp = order[i - 1];
        order[i - 1] = order[j];
        order[j] = tmp;
    }
}

/*
 * Prefixes of lengths around every byte boundary on one path, and for each
 * its sibling (the same length, last bit flipped), inserted and removed in
 * random orders; after each step every address that leaves the path at any
 * bit is looked up.
 */
static void byte_boundaries(uint8_t family)
{
    static const uint8_t lens4[] = { 0, 1, 7, 8, 9, 15, 16, 17, 23, 24, 25, 31, 32 };
    static const uint8_t lens6[] = { 0, 1, 8, 9, 16, 17, 63, 64, 65, 112, 119, 120, 121, 127, 128 };
    const uint8_t *lens = family == 4 ? lens4 : lens6;
    unsigned int nlens = family == 4 ? sizeof(lens4) : sizeof(lens6), order[2 * sizeof(lens6)];
    uint8_t path[16] = { 0x0a, 0x14, 0x1e, 0x28, 0x20, 0x01, 0x0d, 0xb8,
                         0x55, 0xaa, 0x00, 0xff, 0x80, 0x7f, 0x01, 0xfe };
    struct allowedips t;
    struct epoch epoch;

    nref = 0;
    wg_epoch_init(&epoch);
    CHECK(wg_allowedips_init(&t, PEERS, &epoch) == 0, "init");
    for (unsigned int round = 0; round < 8; round++) {
        for (unsigned int i = 0; i < 2 * nlens; i++)
            order[i] = i;
        shuffle(order, 2 * nlens);
        for (unsigned int i = 0; i < 2 * nlens; i++) {
            unsigned int l = order[i] % nlens;
            uint8_t addr[16];
            memcpy(addr, path, 16);
            if (order[i] >= nlens && lens[l])
                addr[(lens[l] - 1) / 8] ^= (uint8_t)(0x80 >> ((lens[l] - 1) % 8));
            insert_both(&t, family, addr, lens[l], (uint32_t)(order[i] % PEERS), 0);
            probe_path(&t, family, path, "boundaries, inserting");
            check_table(&t, "boundaries, inserting");
        }
        for (unsigned int i = 0; i < nref; i++)
            order[i] = i;
        shuffle(order, nref);
        for (unsigned int i = 0; i < nref; i++) {
            struct ref_entry *e = &ref[order[i]];
            if (!e->live)
                continue;
            if (rnd() % 4 == 0)
                remove_peer_both(&t, e->peer);
            else
                remove_both(&t, e);
            probe_path(&t, family, path, "boundaries, removing");
            check_table(&t, "boundaries, removing");
        }
        CHECK(atomic_load(family == 4 ? &t.root4 : &t.root6) == 0, "boundaries: empty again");
        nref = 0;
        wg_epoch_reclaim(&epoch);
        /* Another path next round. */
        for (unsigned int k = 0; k < 16; k++)
            path[k] = (uint8_t)rnd();
    }
    wg_allowedips_free(&t);
    wg_epoch_destroy(&epoch);
}

static void expect_shape(struct allowedips *t, size_t nodes, size_t prefixes, const char *stage)
{
    size_t got_nodes = 99, got_prefixes = 99;
    int rule = wg_allowedips_check(t, &got_nodes, &got_prefixes);

    CHECK(rule == 0 && got_nodes == nodes && got_prefixes == prefixes,
          "%s: rule %d, %zu nodes and %zu prefixes, expected %zu and %zu", stage, rule, got_nodes,
          got_prefixes, nodes, prefixes);
}

/* No node for one prefix; nodes collapse as prefixes go; an emptied subtree leaves nothing. */
static void shape(void)
{
    static const uint8_t a[4] = { 10, 1, 1, 0 }, b[4] = { 10, 1, 2, 0 }, c[4] = { 10, 0, 0, 0 };
    struct allowedips t;
    struct epoch epoch;
    uint8_t addr[16] = { 10, 5 };

    wg_epoch_init(&epoch);
    CHECK(wg_allowedips_init(&t, PEERS, &epoch) == 0, "init");
    expect_shape(&t, 0, 0, "empty");
    CHECK(wg_allowedips_insert(&t, 4, a, 24, 1) == 0, "insert");
    expect_shape(&t, 0, 1, "one prefix is a leaf");
    CHECK(wg_allowedips_insert(&t, 4, b, 24, 2) == 0, "insert");
    expect_shape(&t, 1, 2, "two /24s share a node");
    CHECK(wg_allowedips_insert(&t, 4, c, 8, 3) == 0, "insert");
    expect_shape(&t, 2, 3, "a /8 above them");
    CHECK(wg_allowedips_lookup(&t, 4, (const uint8_t[]){ 10, 1, 3, 1 }) == 3, "the /8 covers");
    CHECK(wg_allowedips_remove(&t, 4, a, 24, 1) == 0, "remove");
    expect_shape(&t, 1, 2, "a node with one prefix left is a leaf");
    CHECK(wg_allowedips_remove(&t, 4, c, 8, 3) == 0, "remove");
    expect_shape(&t, 0, 1, "a node with one child left gives way to it");
    CHECK(wg_allowedips_lookup(&t, 4, (const uint8_t[]){ 10, 1, 2, 9 }) == 2, "still found");
    CHECK(wg_allowedips_remove(&t, 4, b, 24, 2) == 0, "remove");
    expect_shape(&t, 0, 0, "empty again");

    /* A subtree of 300 prefixes of one peer beside one of another. */
    CHECK(wg_allowedips_insert(&t, 4, c, 8, 3) == 0, "insert");
    for (unsigned int i = 0; i < 300; i++) {
        addr[2] = (uint8_t)i;
        addr[3] = (uint8_t)(i * 7);
        CHECK(wg_allowedips_insert(&t, 4, addr, (uint8_t)(24 + i % 9), 4) == 0, "insert");
    }
    CHECK(wg_allowedips_check(&t, NULL, NULL) == 0, "subtree");
    wg_allowedips_remove_peer(&t, 4);
    expect_shape(&t, 0, 1, "an emptied subtree leaves nothing");
    wg_allowedips_remove_peer(&t, 3);
    expect_shape(&t, 0, 0, "empty at last");
    wg_allowedips_free(&t);
    wg_epoch_destroy(&epoch);
}

static unsigned int live_entries(void)
{
    unsigned int live = 0;

    for (unsigned int i = 0; i < nref; i++)
        live += ref[i].live;
    return live;
}

/*
 * A dense node: the 256 host routes of a /24 (a gateway's peers) under
 * shorter prefixes. Removals kill entries in place and rebuild the node once
 * half of it is dead; inserts bring killed ones back.
 */
static void dense(void)
{
    uint8_t addr[16] = { 10, 7, 7, 0 };
    unsigned int order[256];
    struct allowedips t;
    struct epoch epoch;
    size_t nodes, prefixes;

    nref = 0;
    wg_epoch_init(&epoch);
    CHECK(wg_allowedips_init(&t, PEERS, &epoch) == 0, "init");
    insert_both(&t, 4, addr, 16, 3, 0);
    insert_both(&t, 4, addr, 24, 1, 0);
    addr[3] = 128;
    insert_both(&t, 4, addr, 25, 2, 0);
    for (unsigned int i = 0; i < 256; i++) {
        addr[3] = (uint8_t)i;
        insert_both(&t, 4, addr, 32, i % PEERS, 0);
        order[i] = i;
    }
    check_lookups(&t, "dense");
    shuffle(order, 256);
    for (unsigned int i = 0; i < 256; i++) {
        struct ref_entry *e;
        addr[3] = (uint8_t)order[i];
        e = ref_find(4, addr, 32);
        remove_both(&t, e);
        if (i == 40) {
            CHECK(wg_allowedips_check(&t, &nodes, &prefixes) == 0 && prefixes > live_entries(),
                  "dense: removals kill in place (%zu prefixes, %u live)", prefixes,
                  live_entries());
        }
        if (i % 3 == 0 && i > 100) {    /* one back, with another owner */
            addr[3] = (uint8_t)order[i - 50];
            insert_both(&t, 4, addr, 32, 7, 0);
        }
        if (i % 8 == 0) {
            for (unsigned int k = 0; k < 256; k++) {
                addr[3] = (uint8_t)k;
                probe(&t, 4, addr, "dense, removing");
            }
            check_table(&t, "dense, removing");
        }
    }
    CHECK(wg_allowedips_check(&t, &nodes, &prefixes) == 0 && prefixes < 200,
          "dense: rebuilt as it emptied (%zu prefixes)", prefixes);
    check_lookups(&t, "dense, removed");
    for (uint32_t peer = 0; peer < PEERS; peer++)
        remove_peer_both(&t, peer);
    expect_shape(&t, 0, 0, "dense: empty");
    wg_allowedips_free(&t);
    wg_epoch_destroy(&epoch);
}

/* Out of memory: inserts fail whole, removals still remove (in place). */
static void out_of_memory(void)
{
    struct allowedips t;
    struct epoch epoch;

    nref = 0;
    wg_epoch_init(&epoch);
    CHECK(wg_allowedips_init(&t, PEERS, &epoch) == 0, "init");
    for (unsigned int i = 0; i < 1500; i++) {
        uint8_t family = rnd() & 1 ? 4 : 6, addr[16];
        random_address(family, addr);
        insert_both(&t, family, addr, (uint8_t)(rnd() % (bytes_of(family) * 8 + 1)),
                    (uint32_t)(rnd() % PEERS), 0);
    }
    t.alloc_budget = 0;
    for (unsigned int i = 0; i < 200; i++) {
        uint8_t family = rnd() & 1 ? 4 : 6, addr[16];
        random_address(family, addr);
        if (!ref_find(family, addr, (uint8_t)(bytes_of(family) * 8)))   /* a new host route */
            insert_both(&t, family, addr, (uint8_t)(bytes_of(family) * 8), 1, -ENOMEM);
    }
    check_lookups(&t, "failed inserts");
    for (unsigned int i = 0; i < nref; i++)
        if (ref[i].live && rnd() % 3 == 0)
            remove_both(&t, &ref[i]);
    check_lookups(&t, "removals without memory");
    remove_peer_both(&t, 5);
    check_lookups(&t, "removing a peer without memory");
    /* What was killed in place comes back without memory; the rest may not. */
    for (unsigned int i = 0; i < nref; i++) {
        struct ref_entry *old;
        int ret;
        if (ref[i].live || rnd() % 2)
            continue;
        ret = wg_allowedips_insert(&t, ref[i].family, ref[i].addr, ref[i].cidr, 6);
        CHECK(ret == 0 || ret == -ENOMEM, "insert without memory: %d", ret);
        if (ret)
            continue;
        if ((old = ref_find(ref[i].family, ref[i].addr, ref[i].cidr)))
            old->live = false;
        ref[i].live = true;
        ref[i].peer = 6;
    }
    check_lookups(&t, "inserts again without memory");
    t.alloc_budget = -1;
    for (unsigned int i = 0; i < nref; i++)
        if (ref[i].live && rnd() % 2 == 0)
            remove_both(&t, &ref[i]);
    wg_epoch_reclaim(&epoch);
    check_lookups(&t, "memory back");
    for (uint32_t peer = 0; peer < PEERS; peer++)
        remove_peer_both(&t, peer);
    check_lookups(&t, "all peers gone");
    wg_allowedips_free(&t);
    wg_epoch_destroy(&epoch);
}

#define STABLE 64

struct reader {
    pthread_t thread;
    struct allowedips *t;
    struct epoch *epoch;
    struct epoch_reader self;
    _Atomic bool *stop;
    unsigned long lookups, wrong;
};

/* The addresses whose host routes never change: 10.s.s*7.1 and fd00::s:1. */
static void stable_address(unsigned int s, uint8_t family, uint8_t *addr)
{
    memset(addr, 0, 16);
    if (family == 4) {
        addr[0] = 10, addr[1] = (uint8_t)(s % 4), addr[2] = (uint8_t)(s * 7), addr[3] = 1;
    } else {
        addr[0] = 0xfd, addr[13] = (uint8_t)(s % 4), addr[14] = (uint8_t)(s * 7), addr[15] = 1;
    }
}

static void *reader_run(void *arg)
{
    struct reader *r = arg;
    uint64_t x = (uint64_t)(uintptr_t)arg | 1;

    wg_epoch_online(r->epoch, &r->self);
    while (!atomic_load(r->stop)) {
        for (unsigned int i = 0; i < 256; i++, r->lookups++) {
            uint8_t family = i & 1 ? 4 : 6, addr[16];
            uint32_t peer;
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            stable_address((unsigned int)(x % STABLE), family, addr);
            r->wrong += wg_allowedips_lookup(r->t, family, addr) != 1;
            addr[family == 4 ? 3 : 15] = (uint8_t)(x >> 8);   /* a neighbour: anything */
            peer = wg_allowedips_lookup(r->t, family, addr);
            r->wrong += peer != WG_DP_PEER_NONE && peer >= PEERS;
        }
        wg_epoch_quiescent(r->epoch, &r->self);
    }
    wg_epoch_offline(&r->self);
    return NULL;
}

/* Churn: prefixes of every length around the stable host routes come and go. */
static void concurrent_readers(void)
{
    struct reader readers[2];
    struct allowedips t;
    struct epoch epoch;
    _Atomic bool stop = false;

    wg_epoch_init(&epoch);
    CHECK(wg_allowedips_init(&t, PEERS, &epoch) == 0, "init");
    for (unsigned int s = 0; s < STABLE; s++) {
        uint8_t addr[16];
        stable_address(s, 4, addr);
        CHECK(wg_allowedips_insert(&t, 4, addr, 32, 1) == 0, "insert");
        stable_address(s, 6, addr);
        CHECK(wg_allowedips_insert(&t, 6, addr, 128, 1) == 0, "insert");
    }
    for (unsigned int i = 0; i < 2; i++) {
        readers[i] = (struct reader){ .t = &t, .epoch = &epoch, .stop = &stop };
        CHECK(wg_epoch_reader_add(&epoch, &readers[i].self) == 0, "reader");
    }
    for (unsigned int i = 0; i < 2; i++)
        CHECK(pthread_create(&readers[i].thread, NULL, reader_run, &readers[i]) == 0, "thread");
    for (unsigned int op = 0; op < 30000; op++) {
        uint8_t family = rnd() & 1 ? 4 : 6, addr[16];
        unsigned int bits = bytes_of(family) * 8;
        uint8_t cidr = (uint8_t)(rnd() % bits);      /* never a host route: those are stable */
        uint32_t peer = 2 + (uint32_t)(rnd() % (PEERS - 2));
        stable_address((unsigned int)(rnd() % STABLE), family, addr);
        addr[bytes_of(family) - 1] = (uint8_t)rnd();
        if (rnd() % 3)
            CHECK(wg_allowedips_insert(&t, family, addr, cidr, peer) == 0, "churn insert");
        else if (rnd() % 50)
            (void)wg_allowedips_remove(&t, family, addr, cidr, peer);
        else
            wg_allowedips_remove_peer(&t, peer);
        wg_epoch_reclaim(&epoch);
    }
    atomic_store(&stop, true);
    for (unsigned int i = 0; i < 2; i++) {
        pthread_join(readers[i].thread, NULL);
        CHECK(readers[i].wrong == 0 && readers[i].lookups > 0,
              "reader %u: %lu wrong of %lu lookups", i, readers[i].wrong, readers[i].lookups);
    }
    check_table(&t, "after churn");
    wg_allowedips_free(&t);
    wg_epoch_destroy(&epoch);
}

void selftest_allowedips(void)
{
    random_tables();
    byte_boundaries(4);
    byte_boundaries(6);
    shape();
    dense();
    out_of_memory();
    concurrent_readers();
}
