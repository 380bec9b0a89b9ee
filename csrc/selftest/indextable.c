/*
 * indextable.c - the receiver-index hash table: random indices that never
 * collide, long chains, removals in every order, a handshake's index handed
 * to its keypair, and lookups of indices never drawn.
 */
#include <stdbool.h>
#include <stdlib.h>

#include "../indextable.h"
#include "selftest.h"

#define N 5000

static bool all_distinct(const struct index_entry *e, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        for (uint32_t j = i + 1; j < n; j++)
            if (e[i].index == e[j].index)
                return false;
    return true;
}

void selftest_indextable(void)
{
    static struct index_entry entries[N];
    struct index_entry handshake = { .kind = INDEX_HANDSHAKE }, keypair = { .kind = INDEX_KEYPAIR };
    struct indextable t;
    uint32_t index;

    /* N entries in a table sized for 64: long chains. */
    CHECK(wg_indextable_init(&t, 64) == 0, "init");
    for (uint32_t i = 0; i < N; i++)
        CHECK(wg_indextable_insert_random(&t, &entries[i]) == 0, "insert %u", i);
    CHECK(all_distinct(entries, N), "random indices are unique");
    for (uint32_t i = 0; i < N; i++) {
        CHECK(wg_indextable_lookup(&t, entries[i].index) == &entries[i], "lookup %u", i);
        if (!wg_indextable_lookup(&t, entries[i].index + 1))
            continue;
        CHECK(wg_indextable_lookup(&t, entries[i].index + 1)->index == entries[i].index + 1,
              "a neighbour found is the neighbour");
    }
    /* A handshake's index passes to its keypair: same index, new entry. */
    CHECK(wg_indextable_insert_random(&t, &handshake) == 0, "handshake");
    index = handshake.index;
    wg_indextable_replace(&t, &handshake, &keypair);
    CHECK(keypair.index == index, "the keypair takes the handshake's index");
    CHECK(wg_indextable_lookup(&t, index) == &keypair, "and its place");
    wg_indextable_remove(&t, &handshake);           /* no longer linked: harmless */
    CHECK(wg_indextable_lookup(&t, index) == &keypair, "still there");
    wg_indextable_remove(&t, &keypair);
    CHECK(wg_indextable_lookup(&t, index) == NULL, "gone with the keypair");
    /* Remove every third (heads, middles and tails of chains), then check all. */
    for (uint32_t i = 0; i < N; i += 3)
        wg_indextable_remove(&t, &entries[i]);
    wg_indextable_remove(&t, &entries[0]);          /* twice: harmless */
    for (uint32_t i = 0; i < N; i++) {
        struct index_entry *want = i % 3 ? &entries[i] : NULL;
        CHECK(wg_indextable_lookup(&t, entries[i].index) == want, "after removal %u", i);
    }
    for (uint32_t i = 0; i < N; i++)
        wg_indextable_remove(&t, &entries[i]);
    for (uint32_t i = 0; i < N; i++)
        CHECK(wg_indextable_lookup(&t, entries[i].index) == NULL, "emptied %u", i);
    wg_indextable_free(&t);
}
