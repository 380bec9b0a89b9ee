/*
 * indextable.h - receiver index to keypair: the hash table a type 4 message
 * is routed through.
 *
 * Indices are chosen by Python (random, unique per device). Entries are
 * embedded in the keypair they name. Lookups run on the receive thread
 * without locks (an epoch reader); insert and remove take the table's own
 * lock, because both Python's calls and the receive thread (when a
 * responder's keypair is confirmed and the oldest one is dropped) change it.
 */
#pragma once
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

struct index_entry {
    _Atomic(struct index_entry *) next;
    uint32_t index;
};

struct indextable {
    _Atomic(struct index_entry *) *buckets;
    uint32_t mask;
    unsigned int shift;
    pthread_mutex_t lock;
};

/* capacity: the most entries expected; the table gets about twice as many
 * buckets, so chains stay around one entry long. */
int wg_indextable_init(struct indextable *t, uint32_t capacity);
void wg_indextable_free(struct indextable *t);
/* -EEXIST if the index is taken. */
int wg_indextable_insert(struct indextable *t, struct index_entry *e);
/* Unlinks e (if present); the caller retires the memory through the epoch. */
void wg_indextable_remove(struct indextable *t, struct index_entry *e);
struct index_entry *wg_indextable_lookup(struct indextable *t, uint32_t index);
