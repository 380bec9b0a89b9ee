/*
 * workers.c - the handshake's pool of threads; see workers.h.
 *
 * Theory of operation: a fork-join over item indices. The caller publishes
 * a job (function, context, count) under the pool's lock, wakes the
 * helpers, and claims items one at a time from an atomic counter like any
 * of them, so a helper that is slow to wake costs nothing but the wake-up:
 * the caller simply does more. A helper joins a job under the lock (busy
 * counts it) and leaves it under the lock; the caller returns, and publishes
 * the next job, only when no helper is inside one, so a helper can never
 * claim an item of a job other than the one it read. Handshake items are
 * tens of microseconds of X25519 each, so one claim per item is cheap.
 *
 * Nothing spins: idle helpers and a waiting caller sleep on condition
 * variables. Helpers block every signal (they stay with Python's thread).
 */
#define _GNU_SOURCE
#include "workers.h"

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

static struct {
    pthread_mutex_t run;                /* held by the one batch running */
    pthread_mutex_t lock;               /* the fields below */
    pthread_cond_t wake;                /* helpers: a new job, or stop */
    pthread_cond_t idle;                /* the caller: busy fell to 0 */
    bool started, stopping, atfork;
    unsigned int helpers;
    uint64_t generation;
    unsigned int busy;                  /* helpers inside the current job */
    wg_work_fn fn;
    void *ctx;
    size_t n;
    size_t next;                        /* the next unclaimed item (atomic) */
    pthread_t threads[WG_WORKERS_MAX];
} pool = {
    .run = PTHREAD_MUTEX_INITIALIZER,
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .wake = PTHREAD_COND_INITIALIZER,
    .idle = PTHREAD_COND_INITIALIZER,
};

static void claim_all(wg_work_fn fn, void *ctx, size_t n)
{
    for (;;) {
        size_t i = __atomic_fetch_add(&pool.next, 1, __ATOMIC_RELAXED);

        if (i >= n)
            return;
        fn(ctx, i);
    }
}

static void *helper(void *arg)
{
    uint64_t seen = (uint64_t)(uintptr_t)arg;

    pthread_mutex_lock(&pool.lock);
    for (;;) {
        wg_work_fn fn;
        void *ctx;
        size_t n;

        while (!pool.stopping && pool.generation == seen)
            pthread_cond_wait(&pool.wake, &pool.lock);
        if (pool.stopping)
            break;
        seen = pool.generation;
        fn = pool.fn;
        ctx = pool.ctx;
        n = pool.n;
        pool.busy++;
        pthread_mutex_unlock(&pool.lock);
        claim_all(fn, ctx, n);
        pthread_mutex_lock(&pool.lock);
        if (--pool.busy == 0)
            pthread_cond_signal(&pool.idle);
    }
    pthread_mutex_unlock(&pool.lock);
    return NULL;
}

unsigned int wg_workers_count(void)
{
    cpu_set_t set;
    unsigned int cpus = 1;

    if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
        cpus = (unsigned int)CPU_COUNT(&set);
    return cpus < WG_WORKERS_MAX ? cpus : WG_WORKERS_MAX;
}

/* In a child of fork() the helpers do not exist: start afresh. */
static void after_fork_in_child(void)
{
    pthread_mutex_init(&pool.run, NULL);
    pthread_mutex_init(&pool.lock, NULL);
    pthread_cond_init(&pool.wake, NULL);
    pthread_cond_init(&pool.idle, NULL);
    pool.started = pool.stopping = false;
    pool.helpers = pool.busy = 0;
}

/* Holding pool.run. A helper that cannot be created leaves fewer: the
 * caller's thread alone still does every item. */
static void start(void)
{
    unsigned int want = wg_workers_count() - 1;
    sigset_t all, old;

    if (!pool.atfork && pthread_atfork(NULL, NULL, after_fork_in_child) == 0)
        pool.atfork = true;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_mutex_lock(&pool.lock);
    for (pool.helpers = 0; pool.helpers < want; pool.helpers++) {
        if (pthread_create(&pool.threads[pool.helpers], NULL, helper,
                           (void *)(uintptr_t)pool.generation) != 0)
            break;
        pthread_setname_np(pool.threads[pool.helpers], "wg-handshake");
    }
    pool.started = true;
    pthread_mutex_unlock(&pool.lock);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

void wg_workers_run(size_t n, size_t grain, wg_work_fn fn, void *ctx)
{
    if (grain == 0)
        grain = 1;
    if (n < 2 * grain || wg_workers_count() < 2) {
        for (size_t i = 0; i < n; i++)
            fn(ctx, i);
        return;
    }
    pthread_mutex_lock(&pool.run);
    if (!pool.started)
        start();
    pthread_mutex_lock(&pool.lock);
    /* A helper that woke late for the last job may still be in it. */
    while (pool.busy)
        pthread_cond_wait(&pool.idle, &pool.lock);
    pool.fn = fn;
    pool.ctx = ctx;
    pool.n = n;
    __atomic_store_n(&pool.next, 0, __ATOMIC_RELAXED);
    pool.generation++;
    pthread_cond_broadcast(&pool.wake);
    pthread_mutex_unlock(&pool.lock);
    claim_all(fn, ctx, n);
    pthread_mutex_lock(&pool.lock);
    while (pool.busy)
        pthread_cond_wait(&pool.idle, &pool.lock);
    pthread_mutex_unlock(&pool.lock);
    pthread_mutex_unlock(&pool.run);
}

void wg_workers_stop(void)
{
    pthread_mutex_lock(&pool.run);
    if (pool.started) {
        pthread_mutex_lock(&pool.lock);
        pool.stopping = true;
        pthread_cond_broadcast(&pool.wake);
        pthread_mutex_unlock(&pool.lock);
        for (unsigned int i = 0; i < pool.helpers; i++)
            pthread_join(pool.threads[i], NULL);
        pthread_mutex_lock(&pool.lock);
        pool.helpers = 0;
        pool.started = pool.stopping = false;
        pthread_mutex_unlock(&pool.lock);
    }
    pthread_mutex_unlock(&pool.run);
}
