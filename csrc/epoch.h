/*
 * epoch.h - deferred freeing for the tables the packet threads read without
 * locks (allowed-IPs tries, the index table, keypairs, peers).
 *
 * Theory of operation (quiescent-state-based reclamation, the user-space
 * cousin of the kernel's RCU): writers unlink an object with an atomic
 * pointer store, then retire it. Retiring stamps it with a new epoch. Each
 * packet thread is a registered reader that, at the top of its loop (where
 * it holds no pointers into the tables), publishes the epoch it has seen,
 * and marks itself offline while it sleeps in poll(). An object is freed
 * once every reader is offline or has published an epoch at least as new as
 * the object's stamp: no reader can still hold a pointer to it.
 *
 * Readers other than the packet threads (the control calls from Python) are
 * not registered: they hold the device's control mutex, and wg_epoch_reclaim
 * runs only under that mutex.
 */
#pragma once
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "messages.h"

struct epoch_head {
    struct epoch_head *next;
    uint64_t epoch;
    void (*free)(struct epoch_head *head);
};

struct epoch_reader {
    _Atomic uint64_t seen;              /* 0: offline, holds nothing */
};

struct epoch {
    _Atomic uint64_t now;
    struct epoch_reader *readers[DP_MAX_READERS];
    unsigned int nreaders;
    pthread_mutex_t lock;               /* protects the retired list */
    struct epoch_head *retired;         /* oldest first */
    struct epoch_head **tail;
    _Atomic uint64_t pending;
};

void wg_epoch_init(struct epoch *e);
/* Frees every retired object; only when no reader can run. */
void wg_epoch_destroy(struct epoch *e);
/* Registration happens before the reader threads start. */
int wg_epoch_reader_add(struct epoch *e, struct epoch_reader *r);

/* Any thread may retire; the object is freed by a later reclaim. */
void wg_epoch_retire(struct epoch *e, struct epoch_head *head,
                     void (*free_fn)(struct epoch_head *head));
/* Frees what no reader can reach any more. Caller holds the control mutex. */
void wg_epoch_reclaim(struct epoch *e);
/* Waits until every reader has passed a quiescent point, then reclaims.
 * Caller holds the control mutex and no peer lock. */
void wg_epoch_synchronize(struct epoch *e);

static inline void wg_epoch_online(struct epoch *e, struct epoch_reader *r)
{
    /* Release: the reads this thread made of the tables before this quiescent point
     * happen before a reclaim that sees the new epoch frees what they read (relaxed,
     * a weakly ordered CPU such as aarch64 may let the store overtake those loads). */
    atomic_store_explicit(&r->seen, atomic_load(&e->now), memory_order_release);
    /* The store must be visible before this thread loads any table pointer. */
    atomic_thread_fence(memory_order_seq_cst);
}

/* A quiescent point is the same as coming online again. */
static inline void wg_epoch_quiescent(struct epoch *e, struct epoch_reader *r)
{
    wg_epoch_online(e, r);
}

static inline void wg_epoch_offline(struct epoch_reader *r)
{
    atomic_store_explicit(&r->seen, 0, memory_order_release);
}

static inline bool wg_epoch_has_pending(struct epoch *e)
{
    return atomic_load_explicit(&e->pending, memory_order_relaxed) != 0;
}
