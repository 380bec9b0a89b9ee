/*
 * indextable.c - the receiver-index hash table: inserts, duplicates,
 * removals in every order, and lookups of indices never inserted.
 */
#include <errno.h>
#include <stdlib.h>

#include "../indextable.h"
#include "selftest.h"

#define N 5000

void selftest_indextable(void)
{
    static struct index_entry entries[N];
    struct index_entry dup;
    struct indextable t;

    CHECK(wg_indextable_init(&t, 64) == 0, "init");
    /* Sequential indices (the worst case for a weak hash) and long chains:
     * N entries in a table sized for 64. */
    for (uint32_t i = 0; i < N; i++) {
        entries[i].index = i * 0x10000u + 7;
        CHECK(wg_indextable_insert(&t, &entries[i]) == 0, "insert %u", i);
    }
    dup.index = entries[N / 2].index;
    CHECK(wg_indextable_insert(&t, &dup) == -EEXIST, "a taken index is refused");
    for (uint32_t i = 0; i < N; i++) {
        CHECK(wg_indextable_lookup(&t, entries[i].index) == &entries[i], "lookup %u", i);
        CHECK(wg_indextable_lookup(&t, entries[i].index + 1) == NULL, "absent %u", i);
    }
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
