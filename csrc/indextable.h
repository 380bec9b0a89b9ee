/*
 * indextable.h - receiver index to handshake or keypair: the hash table every
 * message that names one of our indices (types 2, 3 and 4) is routed through.
 *
 * The data plane is the one owner of indices: it draws them at random, unique
 * per device (the kernel's index_hashtable). An entry is embedded in what it
 * names: a peer's pending handshake (struct peer) or a keypair (struct
 * keypair), and a handshake's entry hands its index over to the keypair the
 * handshake becomes. Lookups run on the receive thread without locks (an
 * epoch reader); changes take the table's own lock, because both control
 * calls and the receive thread (when a responder's keypair is confirmed and
 * the oldest one is dropped) make them. A reader standing on an entry that
 * moves may miss another entry once: a handshake message lost, never memory.
 *
 * Random indices are drawn from the kernel's CSPRNG a pool at a time (one
 * getrandom for INDEXTABLE_POOL of them: a responder draws one per handshake),
 * each used once, under the table's lock.
 */
#pragma once
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

enum index_kind { INDEX_HANDSHAKE, INDEX_KEYPAIR };

struct index_entry {
    _Atomic(struct index_entry *) next;
    uint32_t index;
    uint32_t kind;                      /* enum index_kind */
};

#define INDEXTABLE_POOL 64

struct indextable {
    _Atomic(struct index_entry *) *buckets;
    uint32_t mask;
    unsigned int shift;
    pthread_mutex_t lock;
    unsigned int pool_left;             /* unused draws at the start of pool[] */
    uint32_t pool[INDEXTABLE_POOL];
};

/* capacity: the most entries expected; the table gets about twice as many
 * buckets, so chains stay around one entry long. */
int wg_indextable_init(struct indextable *t, uint32_t capacity);
void wg_indextable_free(struct indextable *t);
/* Gives e a random index no other entry has, and inserts it; -EAGAIN if the
 * CSPRNG gave nothing. */
int wg_indextable_insert_random(struct indextable *t, struct index_entry *e);
/* new takes old's index and its place in one step; old is unlinked. */
void wg_indextable_replace(struct indextable *t, struct index_entry *old, struct index_entry *new);
/* Unlinks e (if present); the caller retires the memory through the epoch. */
void wg_indextable_remove(struct indextable *t, struct index_entry *e);
struct index_entry *wg_indextable_lookup(struct indextable *t, uint32_t index);
/* How many draws the pool holds now (for tests of its refill). */
unsigned int wg_indextable_pool_left(struct indextable *t);
