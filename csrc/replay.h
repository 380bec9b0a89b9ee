/*
 * replay.h - the receive-side replay window for transport counters.
 *
 * RFC 6479's scheme, as the kernel module and wireguard-go use it: a ring of
 * 128 64-bit words, of which one is always being recycled, so 8128 counters
 * behind the highest one seen are tracked. Not safe for concurrent use: the
 * receive path checks counters in order, per keypair, on one thread.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "messages.h"

#define REPLAY_WORDS (COUNTER_BITS_TOTAL / 64)

struct wg_replay {
    uint64_t top;                        /* highest counter seen, plus one (0: none) */
    uint64_t bitmap[REPLAY_WORDS];
};

void wg_replay_init(struct wg_replay *r);
/* True if `counter` is fresh (and records it); false if it is a replay, too
 * old for the window, or at or beyond `reject_after`. */
bool wg_replay_check(struct wg_replay *r, uint64_t counter, uint64_t reject_after);
