/*
 * keypair.c - keypairs, their rotation and their end; see keypair.h.
 */
#define _GNU_SOURCE                     /* struct mmsghdr, in6_pktinfo, explicit_bzero */
#include "keypair.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "peer.h"

void wg_keypair_free_now(struct keypair *kp)
{
    explicit_bzero(kp, sizeof(*kp));
    free(kp);
}

static void keypair_free_rcu(struct epoch_head *head)
{
    wg_keypair_free_now((struct keypair *)((char *)head - offsetof(struct keypair, rcu)));
}

/* Takes kp out of the index table now and frees it once no thread can hold
 * it. Any thread may call this. */
static void keypair_drop(struct wg_dp *dp, struct keypair *kp)
{
    if (!kp)
        return;
    wg_indextable_remove(&dp->indextable, &kp->entry);
    wg_epoch_retire(&dp->epoch, &kp->rcu, keypair_free_rcu);
}

static struct keypair *keypair_new(struct peer *peer, const struct wg_keypair_params *p)
{
    struct keypair *kp = calloc(1, sizeof(*kp));

    if (!kp)
        return NULL;
    kp->entry.kind = INDEX_KEYPAIR;
    kp->peer = peer;
    kp->remote_index = p->remote_index;
    kp->initiator = p->initiator != 0;
    kp->birth_ns = p->birth_ns;
    atomic_init(&kp->send_counter, 0);
    memcpy(kp->send_key, p->send_key, sizeof(kp->send_key));
    memcpy(kp->recv_key, p->recv_key, sizeof(kp->recv_key));
    wg_replay_init(&kp->replay);
    return kp;
}

static struct keypair *take(_Atomic(struct keypair *) *slot)
{
    return atomic_exchange_explicit(slot, NULL, memory_order_acq_rel);
}

static void put(_Atomic(struct keypair *) *slot, struct keypair *kp)
{
    atomic_store_explicit(slot, kp, memory_order_release);
}

/* The kernel's add_new_keypair; caller holds peer->lock. */
static void rotate_in(struct wg_dp *dp, struct peer *peer, struct keypair *kp)
{
    if (kp->initiator) {
        struct keypair *next = take(&peer->next);
        if (next) {
            /* A responder keypair never confirmed: it becomes previous so
             * late packets under it still decrypt; current goes. */
            keypair_drop(dp, take(&peer->previous));
            put(&peer->previous, next);
            keypair_drop(dp, take(&peer->current));
        } else {
            keypair_drop(dp, take(&peer->previous));
            put(&peer->previous, take(&peer->current));
        }
        put(&peer->current, kp);
    } else {
        keypair_drop(dp, take(&peer->next));
        keypair_drop(dp, take(&peer->previous));
        put(&peer->next, kp);
    }
}

static void forget_handshake(struct wg_dp *dp, struct peer *peer)
{
    if (peer->handshake_indexed)
        wg_indextable_remove(&dp->indextable, &peer->handshake);
    peer->handshake_indexed = false;
}

int wg_keypair_index_new(struct wg_dp *dp, struct peer *peer, uint32_t *index)
{
    int ret;

    forget_handshake(dp, peer);
    peer->handshake.kind = INDEX_HANDSHAKE;
    ret = wg_indextable_insert_random(&dp->indextable, &peer->handshake);
    peer->handshake_indexed = ret == 0;
    *index = peer->handshake.index;
    return ret;
}

int wg_keypair_install(struct wg_dp *dp, struct peer *peer, const struct wg_keypair_params *p)
{
    struct keypair *kp;

    if (!peer->handshake_indexed || peer->handshake.index != p->local_index)
        return -ESTALE;
    kp = keypair_new(peer, p);
    if (!kp)
        return -ENOMEM;
    wg_indextable_replace(&dp->indextable, &peer->handshake, &kp->entry);
    peer->handshake_indexed = false;
    pthread_mutex_lock(&peer->lock);
    rotate_in(dp, peer, kp);
    pthread_mutex_unlock(&peer->lock);
    return 0;
}

bool wg_keypair_confirm(struct wg_dp *dp, struct peer *peer, struct keypair *kp)
{
    bool confirmed = false;

    pthread_mutex_lock(&peer->lock);
    if (atomic_load_explicit(&peer->next, memory_order_relaxed) == kp) {
        keypair_drop(dp, take(&peer->previous));
        put(&peer->previous, take(&peer->current));
        put(&peer->current, take(&peer->next));
        confirmed = true;
    }
    pthread_mutex_unlock(&peer->lock);
    return confirmed;
}

void wg_keypairs_clear(struct wg_dp *dp, struct peer *peer)
{
    forget_handshake(dp, peer);
    pthread_mutex_lock(&peer->lock);
    keypair_drop(dp, take(&peer->previous));
    keypair_drop(dp, take(&peer->current));
    keypair_drop(dp, take(&peer->next));
    pthread_mutex_unlock(&peer->lock);
}

struct keypair *wg_keypair_sendable(struct wg_dp *dp, struct peer *peer, uint64_t now)
{
    struct keypair *kp = atomic_load_explicit(&peer->current, memory_order_acquire);

    if (!kp || now - kp->birth_ns >= dp->timing.reject_after_time_ns ||
        atomic_load_explicit(&kp->send_counter, memory_order_relaxed) >=
            dp->timing.reject_after_messages)
        return NULL;
    return kp;
}

uint32_t wg_keypair_reserve(struct wg_dp *dp, struct keypair *kp, uint32_t n, uint64_t *first)
{
    uint64_t limit = dp->timing.reject_after_messages;
    uint64_t cur = atomic_load_explicit(&kp->send_counter, memory_order_relaxed);
    uint64_t take;

    /* A CAS, not fetch_add: a counter at or past the limit must never be
     * handed out, and must not wrap. */
    do {
        if (cur >= limit)
            return 0;
        take = limit - cur < n ? limit - cur : n;
    } while (!atomic_compare_exchange_weak_explicit(&kp->send_counter, &cur, cur + take,
                                                    memory_order_relaxed,
                                                    memory_order_relaxed));
    *first = cur;
    return (uint32_t)take;
}
