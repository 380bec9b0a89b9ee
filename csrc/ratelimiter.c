/*
 * ratelimiter.c - token buckets per source; see ratelimiter.h.
 */
#include "ratelimiter.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>


#define NSEC_PER_SEC 1000000000ull
#define PACKET_COST (NSEC_PER_SEC / RATELIMIT_PACKETS_PER_SECOND)
#define TOKEN_MAX (PACKET_COST * RATELIMIT_PACKETS_BURSTABLE)

int wg_ratelimiter_init(struct ratelimiter *r)
{
    r->slots = calloc(DP_RATELIMIT_SLOTS, sizeof(*r->slots));
    if (!r->slots)
        return -ENOMEM;
    if (getrandom(&r->seed, sizeof(r->seed), 0) != sizeof(r->seed))
        r->seed = (uint64_t)(uintptr_t)r->slots * 0x9E3779B97F4A7C15ull;
    return 0;
}

void wg_ratelimiter_free(struct ratelimiter *r)
{
    free(r->slots);
    r->slots = NULL;
}

/* An IPv4 address, or the /64 of an IPv6 one (one host may own all of it). */
static uint64_t source_key(const struct wg_endpoint *src)
{
    uint64_t key = 0;

    memcpy(&key, src->addr, src->family == 4 ? 4 : 8);
    return src->family == 4 ? key : key ^ (1ull << 63) ^ 0x5bd1e995u;
}

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    return x ^ (x >> 33);
}

static bool idle(const struct ratelimit_slot *s, uint64_t now)
{
    return !s->last_ns || now - s->last_ns >= NSEC_PER_SEC;
}

bool wg_ratelimiter_allow(struct ratelimiter *r, const struct wg_endpoint *src, uint64_t now)
{
    uint64_t key = source_key(src), h = mix(key ^ r->seed);
    struct ratelimit_slot *free_slot = NULL;

    for (unsigned int i = 0; i < DP_RATELIMIT_PROBE; i++) {
        struct ratelimit_slot *s = &r->slots[(h + i) & (DP_RATELIMIT_SLOTS - 1)];
        if (!idle(s, now) && s->key == key) {
            uint64_t tokens = s->tokens_ns + (now - s->last_ns);
            s->tokens_ns = tokens > TOKEN_MAX ? TOKEN_MAX : tokens;
            s->last_ns = now;
            if (s->tokens_ns < PACKET_COST)
                return false;
            s->tokens_ns -= PACKET_COST;
            return true;
        }
        if (!free_slot && idle(s, now))
            free_slot = s;
    }
    if (!free_slot)
        return false;                   /* the table is full around here: refuse */
    *free_slot = (struct ratelimit_slot){ key, now ? now : 1, TOKEN_MAX - PACKET_COST };
    return true;
}
