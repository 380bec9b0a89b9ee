/*
 * ratelimiter.h - the per-source budget for handshake messages under load
 * (the kernel's ratelimiter.c): a token bucket per IPv4 address or IPv6 /64,
 * RATELIMIT_PACKETS_PER_SECOND with bursts of RATELIMIT_PACKETS_BURSTABLE.
 *
 * The table is fixed in size and open-addressed. A source idle for a second
 * has a full bucket again, which is what a source never seen has, so its
 * slot counts as free: idle sources are forgotten without a sweep. A source
 * that finds no free slot within a short probe is refused, as the kernel
 * refuses when its table is full. Only the receive thread uses it: no lock.
 */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "messages.h"
#include "wg_dp.h"

struct ratelimit_slot {
    uint64_t key;                       /* the address or /64, with its family */
    uint64_t last_ns;                   /* 0: never used */
    uint64_t tokens_ns;                 /* credit, in nanoseconds of packets */
};

struct ratelimiter {
    struct ratelimit_slot *slots;
    uint64_t seed;                      /* random: where a source lands is not guessable */
};

int wg_ratelimiter_init(struct ratelimiter *r);
void wg_ratelimiter_free(struct ratelimiter *r);
/* Whether one more handshake message from src may be processed at now. */
bool wg_ratelimiter_allow(struct ratelimiter *r, const struct wg_endpoint *src, uint64_t now);
