/*
 * indextable.c - chained hash table with lock-free lookups; see indextable.h.
 *
 * Chains are singly linked lists published with release stores. Removal
 * unlinks an entry by pointing its predecessor past it; the entry keeps its
 * own `next`, so a reader standing on it can still walk on until the epoch
 * lets the owner free it.
 */
#define _GNU_SOURCE                     /* explicit_bzero */
#include "indextable.h"

#include <stdbool.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

/* Fibonacci hashing: good spread even if indices were sequential. */
static uint32_t bucket_of(const struct indextable *t, uint32_t index)
{
    return (uint32_t)((index * UINT32_C(2654435769)) >> t->shift) & t->mask;
}

int wg_indextable_init(struct indextable *t, uint32_t capacity)
{
    unsigned int bits = 6;

    while (bits < 24 && (UINT32_C(1) << bits) < 2 * (uint64_t)capacity)
        bits++;
    t->buckets = calloc((size_t)1 << bits, sizeof(*t->buckets));
    if (!t->buckets)
        return -ENOMEM;
    t->mask = (UINT32_C(1) << bits) - 1;
    t->shift = 32 - bits;
    t->pool_left = 0;
    pthread_mutex_init(&t->lock, NULL);
    return 0;
}

void wg_indextable_free(struct indextable *t)
{
    explicit_bzero(t->pool, sizeof(t->pool));
    t->pool_left = 0;
    free(t->buckets);
    t->buckets = NULL;
    pthread_mutex_destroy(&t->lock);
}

static bool taken(struct indextable *t, uint32_t index)
{
    return wg_indextable_lookup(t, index) != NULL;
}

/* The next random draw from the pool, refilled when empty (t->lock held);
 * -EAGAIN if the CSPRNG gave nothing. */
static int draw(struct indextable *t, uint32_t *index)
{
    if (!t->pool_left) {
        if (getrandom(t->pool, sizeof(t->pool), 0) != (ssize_t)sizeof(t->pool))
            return -EAGAIN;
        t->pool_left = INDEXTABLE_POOL;
    }
    *index = t->pool[--t->pool_left];
    t->pool[t->pool_left] = 0;          /* a draw is used once */
    return 0;
}

unsigned int wg_indextable_pool_left(struct indextable *t)
{
    unsigned int left;

    pthread_mutex_lock(&t->lock);
    left = t->pool_left;
    pthread_mutex_unlock(&t->lock);
    return left;
}

int wg_indextable_insert_random(struct indextable *t, struct index_entry *e)
{
    _Atomic(struct index_entry *) *head;
    uint32_t index;

    pthread_mutex_lock(&t->lock);
    /* A few million entries among 2^32 indices: a second draw is rare. */
    do {
        if (draw(t, &index)) {
            pthread_mutex_unlock(&t->lock);
            return -EAGAIN;
        }
    } while (taken(t, index));
    e->index = index;
    head = &t->buckets[bucket_of(t, index)];
    atomic_store_explicit(&e->next, atomic_load_explicit(head, memory_order_relaxed),
                          memory_order_relaxed);
    atomic_store_explicit(head, e, memory_order_release);
    pthread_mutex_unlock(&t->lock);
    return 0;
}

void wg_indextable_replace(struct indextable *t, struct index_entry *old, struct index_entry *new)
{
    _Atomic(struct index_entry *) *link = &t->buckets[bucket_of(t, old->index)];
    struct index_entry *cur;

    new->index = old->index;
    pthread_mutex_lock(&t->lock);
    while ((cur = atomic_load_explicit(link, memory_order_relaxed))) {
        if (cur == old) {
            atomic_store_explicit(&new->next, atomic_load_explicit(&old->next,
                                                                   memory_order_relaxed),
                                  memory_order_relaxed);
            atomic_store_explicit(link, new, memory_order_release);
            break;
        }
        link = &cur->next;
    }
    pthread_mutex_unlock(&t->lock);
}

void wg_indextable_remove(struct indextable *t, struct index_entry *e)
{
    _Atomic(struct index_entry *) *link = &t->buckets[bucket_of(t, e->index)];
    struct index_entry *cur;

    pthread_mutex_lock(&t->lock);
    while ((cur = atomic_load_explicit(link, memory_order_relaxed))) {
        if (cur == e) {
            atomic_store_explicit(link, atomic_load_explicit(&e->next, memory_order_relaxed),
                                  memory_order_release);
            break;
        }
        link = &cur->next;
    }
    pthread_mutex_unlock(&t->lock);
}

struct index_entry *wg_indextable_lookup(struct indextable *t, uint32_t index)
{
    struct index_entry *cur = atomic_load_explicit(&t->buckets[bucket_of(t, index)],
                                                   memory_order_acquire);

    while (cur && cur->index != index)
        cur = atomic_load_explicit(&cur->next, memory_order_acquire);
    return cur;
}
