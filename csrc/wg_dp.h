/*
 * wg_dp.h - the whole boundary between pywg's Python control plane and its C
 * data plane. cffi reads this file as its cdef (csrc/build_ffi.py strips the
 * preprocessor lines it cannot parse), so keep it to plain declarations,
 * integer #defines and fixed-size types.
 *
 * Conventions: functions return 0 (or a count) on success and a negative
 * errno on failure; Python wraps that once, in pywg/datapath.py.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- exposed for tests and benchmarks ------------------------------------ */

/* The replay window (replay.h); callers allocate wg_replay_size() bytes. */
struct wg_replay;
size_t wg_replay_size(void);
void wg_replay_init(struct wg_replay *r);
bool wg_replay_check(struct wg_replay *r, uint64_t counter, uint64_t reject_after);
