/*
 * workers.h - a small pool of threads that runs one function over the items
 * of a batch: how the handshake's batches (noise.c) use every core.
 *
 * The caller works too, so a pool for k usable cores has k - 1 threads. They
 * start with the first batch worth sharing (after any fork, then) and sleep
 * between batches; wg_workers_stop() joins them, and the next batch starts
 * them again. One batch runs at a time: concurrent callers queue.
 */
#pragma once
#include <stddef.h>

#define WG_WORKERS_MAX 64                  /* threads of the pool, the caller's included */

typedef void (*wg_work_fn)(void *ctx, size_t i);

/* fn(ctx, i) for every i in [0, n), each exactly once, on the caller's thread
 * and the pool's; returns when all are done. The pool helps only if every
 * thread gets at least `grain` items (smaller batches cost less alone). */
void wg_workers_run(size_t n, size_t grain, wg_work_fn fn, void *ctx);
/* Threads a batch may use, the caller's included: the usable cores. */
unsigned int wg_workers_count(void);
/* Joins the pool's threads (idempotent). */
void wg_workers_stop(void);
