/*
 * queueing.c - spreading one batch's crypto over several threads (the
 * kernel module's per-CPU crypt workers; wireguard-go's encryption and
 * decryption goroutines).
 *
 * Theory of operation: a fork-join by index range. The packet thread that
 * has a batch to seal or open publishes it as a job of numbered chunks,
 * wakes the pool's helpers, and claims chunks itself like any of them, so a
 * helper that is slow to wake costs nothing but the wake-up: the caller
 * simply does more. It then waits until every chunk is done. Every packet is
 * sealed or opened in its own buffer, so neither the order of the packets
 * nor the counters the caller gave them change, and whatever the caller does
 * next (send in order, replay checks in order) is as without helpers.
 *
 * The packet threads call in only while they are behind (more than one
 * batch waiting: a flood, many flows). A steady stream that they keep up
 * with stays on one thread, where waking another would cost more than it
 * saves whenever no core is idle (measured: bench/RESULTS.md).
 *
 * Nothing spins: idle helpers sleep on a futex and the caller sleeps on
 * another while chunks others claimed are still running. A chunk is a
 * claim on (generation, chunk index) in one 64-bit word, so a helper that
 * wakes late for an old job can never take a chunk of a newer one.
 */
#define _GNU_SOURCE
#include "queueing.h"

#include <errno.h>
#include <linux/futex.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static void futex_wait(_Atomic uint32_t *word, uint32_t value)
{
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_PRIVATE, value, NULL, NULL, 0);
}

static void futex_wake(_Atomic uint32_t *word, int count)
{
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE_PRIVATE, count, NULL, NULL, 0);
}

/* Claims and runs chunks of the job of generation gen until none is left. */
static void work(struct crypt_pool *p, uint32_t gen)
{
    uint64_t claim = atomic_load_explicit(&p->claim, memory_order_acquire);

    for (;;) {
        uint32_t chunk = (uint32_t)claim, lo, hi;

        if ((uint32_t)(claim >> 32) != gen ||
            chunk >= atomic_load_explicit(&p->chunks, memory_order_relaxed))
            return;
        if (!atomic_compare_exchange_weak_explicit(&p->claim, &claim, claim + 1,
                                                   memory_order_acquire,
                                                   memory_order_acquire))
            continue;
        lo = chunk * p->chunk_size;
        hi = lo + p->chunk_size < p->n ? lo + p->chunk_size : p->n;
        p->fn(p->ctx, lo, hi);
        if (atomic_fetch_add(&p->done, 1) + 1 ==
                atomic_load_explicit(&p->chunks, memory_order_relaxed) &&
            atomic_load(&p->caller_waiting))
            futex_wake(&p->done, 1);
        claim = atomic_load_explicit(&p->claim, memory_order_acquire);
    }
}

static void *helper(void *arg)
{
    struct crypt_pool *p = arg;
    uint32_t seen = atomic_load(&p->seq);

    for (;;) {
        atomic_fetch_add(&p->sleeping, 1);
        while (atomic_load(&p->seq) == seen && !atomic_load(&p->stop))
            futex_wait(&p->seq, seen);
        atomic_fetch_sub(&p->sleeping, 1);
        if (atomic_load(&p->stop))
            return NULL;
        seen = atomic_load(&p->seq);
        work(p, (uint32_t)(atomic_load_explicit(&p->claim, memory_order_acquire) >> 32));
    }
}

/* The CPUs this process may use. Helpers only work on batches that are
 * worth sharing (wg_crypt_run), so idle ones cost nothing but memory. */
unsigned int wg_crypt_threads_default(void)
{
    cpu_set_t set;
    unsigned int cpus = 1;

    if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
        cpus = (unsigned int)CPU_COUNT(&set);
    return cpus < DP_MAX_CRYPTO_THREADS ? cpus : DP_MAX_CRYPTO_THREADS;
}

int wg_crypt_pool_start(struct crypt_pool *p, unsigned int threads)
{
    sigset_t all, old;
    int ret = 0;

    memset(p, 0, sizeof(*p));
    /* Signals stay with Python's main thread. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    for (; p->helpers + 1 < threads; p->helpers++) {
        ret = -pthread_create(&p->threads[p->helpers], NULL, helper, p);
        if (ret)
            break;
        pthread_setname_np(p->threads[p->helpers], "wg-dp-crypt");
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (ret)
        wg_crypt_pool_stop(p);
    return ret;
}

void wg_crypt_pool_stop(struct crypt_pool *p)
{
    atomic_store(&p->stop, true);
    atomic_fetch_add(&p->seq, 1);
    futex_wake(&p->seq, INT32_MAX);
    for (unsigned int i = 0; i < p->helpers; i++)
        pthread_join(p->threads[i], NULL);
    p->helpers = 0;
}

void wg_crypt_run(struct crypt_pool *p, crypt_fn fn, void *ctx, unsigned int n, size_t bytes)
{
    uint32_t gen, chunks;

    if (!p || !p->helpers || n < DP_CRYPTO_FORK_PACKETS || bytes < DP_CRYPTO_FORK_BYTES) {
        fn(ctx, 0, n);
        return;
    }
    /* Chunks small enough to share out, large enough not to be all claims. */
    p->chunk_size = n / (4 * (p->helpers + 1));
    if (p->chunk_size < DP_CRYPTO_CHUNK_MIN)
        p->chunk_size = DP_CRYPTO_CHUNK_MIN;
    chunks = (n + p->chunk_size - 1) / p->chunk_size;
    atomic_store_explicit(&p->chunks, chunks, memory_order_relaxed);
    p->fn = fn;
    p->ctx = ctx;
    p->n = n;
    atomic_store_explicit(&p->done, 0, memory_order_relaxed);
    gen = ++p->gen;
    atomic_store_explicit(&p->claim, (uint64_t)gen << 32, memory_order_release);
    atomic_fetch_add(&p->seq, 1);
    if (atomic_load(&p->sleeping))
        futex_wake(&p->seq, (int)p->helpers);
    work(p, gen);
    /* Chunks that helpers took may still be running. */
    for (;;) {
        uint32_t done = atomic_load(&p->done);
        if (done == chunks)
            break;
        atomic_store(&p->caller_waiting, true);
        if (atomic_load(&p->done) != chunks)
            futex_wait(&p->done, done);
        atomic_store(&p->caller_waiting, false);
    }
}
