/*
 * epoch.c - quiescent-state-based reclamation; see epoch.h for the theory.
 */
#include "epoch.h"

#include <errno.h>
#include <sched.h>
#include <time.h>

void wg_epoch_init(struct epoch *e)
{
    atomic_init(&e->now, 1);
    e->nreaders = 0;
    pthread_mutex_init(&e->lock, NULL);
    e->retired = NULL;
    e->tail = &e->retired;
    atomic_init(&e->pending, 0);
}

int wg_epoch_reader_add(struct epoch *e, struct epoch_reader *r)
{
    if (e->nreaders >= DP_MAX_READERS)
        return -ENOSPC;
    atomic_init(&r->seen, 0);
    e->readers[e->nreaders++] = r;
    return 0;
}

void wg_epoch_retire(struct epoch *e, struct epoch_head *head,
                     void (*free_fn)(struct epoch_head *head))
{
    head->free = free_fn;
    head->next = NULL;
    pthread_mutex_lock(&e->lock);
    /* Stamped under the lock so the list stays sorted by epoch. The unlink
     * that preceded this call is ordered before the increment (seq_cst). */
    head->epoch = atomic_fetch_add(&e->now, 1) + 1;
    *e->tail = head;
    e->tail = &head->next;
    atomic_fetch_add_explicit(&e->pending, 1, memory_order_relaxed);
    pthread_mutex_unlock(&e->lock);
}

/* The oldest epoch some online reader may still be in; UINT64_MAX if none. */
static uint64_t oldest_seen(struct epoch *e)
{
    uint64_t oldest = UINT64_MAX;

    atomic_thread_fence(memory_order_seq_cst);
    for (unsigned int i = 0; i < e->nreaders; i++) {
        uint64_t seen = atomic_load(&e->readers[i]->seen);
        if (seen != 0 && seen < oldest)
            oldest = seen;
    }
    return oldest;
}

void wg_epoch_reclaim(struct epoch *e)
{
    struct epoch_head *free_list, *head;
    uint64_t safe, oldest;

    if (!wg_epoch_has_pending(e))
        return;
    /* Objects retired after this load are left for a later call: a reader
     * offline during the scan below may have come online before they were
     * unlinked. */
    safe = atomic_load(&e->now);
    oldest = oldest_seen(e);
    if (oldest < safe)
        safe = oldest;
    pthread_mutex_lock(&e->lock);
    free_list = e->retired;
    head = NULL;
    /* Detach the prefix of objects every reader has moved past. */
    while (e->retired && e->retired->epoch <= safe) {
        head = e->retired;
        e->retired = head->next;
        atomic_fetch_sub_explicit(&e->pending, 1, memory_order_relaxed);
    }
    if (!head)
        free_list = NULL;
    else
        head->next = NULL;
    if (!e->retired)
        e->tail = &e->retired;
    pthread_mutex_unlock(&e->lock);
    while (free_list) {
        head = free_list;
        free_list = head->next;
        head->free(head);
    }
}

static bool readers_passed(struct epoch *e, uint64_t target)
{
    uint64_t oldest = oldest_seen(e);
    return oldest == UINT64_MAX || oldest >= target;
}

void wg_epoch_synchronize(struct epoch *e)
{
    uint64_t target = atomic_fetch_add(&e->now, 1) + 1;
    struct timespec pause = { 0, 20000 };

    /* Readers reach a quiescent point once per batch, so this waits at most
     * one batch's processing (or one bounded send wait). */
    for (unsigned int spins = 0; !readers_passed(e, target); spins++) {
        if (spins < 64)
            sched_yield();
        else
            nanosleep(&pause, NULL);
    }
    wg_epoch_reclaim(e);
}

void wg_epoch_destroy(struct epoch *e)
{
    struct epoch_head *head;

    while ((head = e->retired)) {
        e->retired = head->next;
        head->free(head);
    }
    e->tail = &e->retired;
    atomic_store(&e->pending, 0);
    pthread_mutex_destroy(&e->lock);
}
