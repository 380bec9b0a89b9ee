/*
 * peer.c - a peer's life in its slot, its endpoint, its queue of staged
 * packets, its counters and timestamps, and the active list the timer tick
 * reads.
 */
#define _GNU_SOURCE                     /* struct mmsghdr, in6_pktinfo, explicit_bzero */
#include "peer.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "keypair.h"

int wg_active_init(struct active_list *a, uint32_t max_peers)
{
    a->queued = calloc(max_peers, sizeof(*a->queued));
    a->ring = calloc(max_peers, sizeof(*a->ring));
    if (!a->queued || !a->ring) {
        free((void *)a->queued);
        free(a->ring);
        a->queued = NULL;
        a->ring = NULL;
        return -ENOMEM;
    }
    a->head = a->count = 0;
    pthread_mutex_init(&a->lock, NULL);
    return 0;
}

void wg_active_free(struct active_list *a)
{
    free((void *)a->queued);
    free(a->ring);
    a->ring = NULL;
    pthread_mutex_destroy(&a->lock);
}

void wg_peer_mark_active(struct wg_dp *dp, struct peer *peer)
{
    struct active_list *a = &dp->active;

    /* One flag per slot keeps each slot in the ring at most once, so a ring
     * of max_peers entries never overflows. */
    if (atomic_load_explicit(&a->queued[peer->slot], memory_order_relaxed) ||
        atomic_exchange(&a->queued[peer->slot], 1))
        return;
    pthread_mutex_lock(&a->lock);
    a->ring[(a->head + a->count++) % dp->max_peers] = peer->slot;
    pthread_mutex_unlock(&a->lock);
}

uint32_t wg_active_take(struct wg_dp *dp, uint32_t *peers, uint32_t max)
{
    struct active_list *a = &dp->active;
    uint32_t n = 0;

    pthread_mutex_lock(&a->lock);
    while (n < max && a->count) {
        uint32_t slot = a->ring[a->head];
        a->head = (a->head + 1) % dp->max_peers;
        a->count--;
        /* Cleared before Python reads the peer's info: a change after the
         * read marks the slot again. */
        atomic_store(&a->queued[slot], 0);
        peers[n++] = slot;
    }
    pthread_mutex_unlock(&a->lock);
    return n;
}

void wg_peer_get_endpoint(struct peer *peer, struct wg_endpoint *out)
{
    pthread_mutex_lock(&peer->lock);
    *out = peer->endpoint;
    pthread_mutex_unlock(&peer->lock);
}

static bool same_remote(const struct wg_endpoint *a, const struct wg_endpoint *b)
{
    size_t alen = a->family == 4 ? 4 : 16;
    return a->family == b->family && a->port == b->port && a->scope_id == b->scope_id &&
           memcmp(a->addr, b->addr, alen) == 0;
}

static bool same_src(const struct wg_endpoint *a, const struct wg_endpoint *b)
{
    return a->src_ifindex == b->src_ifindex && memcmp(a->src_addr, b->src_addr, 16) == 0;
}

bool wg_peer_update_endpoint(struct peer *peer, const struct wg_endpoint *ep)
{
    bool moved;

    pthread_mutex_lock(&peer->lock);
    moved = !same_remote(&peer->endpoint, ep);
    if (moved || !same_src(&peer->endpoint, ep))
        peer->endpoint = *ep;
    pthread_mutex_unlock(&peer->lock);
    return moved;
}

void wg_peer_forget_src(struct peer *peer)
{
    pthread_mutex_lock(&peer->lock);
    memset(peer->endpoint.src_addr, 0, sizeof(peer->endpoint.src_addr));
    peer->endpoint.src_ifindex = 0;
    pthread_mutex_unlock(&peer->lock);
}

void wg_peer_rekey_event(struct wg_dp *dp, struct peer *peer, uint32_t type,
                         _Atomic uint64_t *last, uint64_t now)
{
    uint64_t prev = atomic_load_explicit(last, memory_order_relaxed);

    /* Python rate-limits handshakes itself; this only keeps a busy peer
     * from filling the ring with the same request. */
    if (prev && now - prev < dp->timing.rekey_timeout_ns)
        return;
    if (atomic_compare_exchange_strong(last, &prev, now))
        wg_device_notify(dp, type, peer->slot, now);
}

void wg_peer_sent(struct wg_dp *dp, struct peer *peer, uint64_t bytes, bool data, uint64_t now)
{
    uint64_t zero = 0;

    atomic_fetch_add_explicit(&peer->tx_bytes, bytes, memory_order_relaxed);
    atomic_store_explicit(&peer->last_tx_auth_ns, now, memory_order_relaxed);
    atomic_store_explicit(&peer->first_rx_data_since_tx_ns, 0, memory_order_relaxed);
    if (data) {
        atomic_store_explicit(&peer->last_tx_data_ns, now, memory_order_relaxed);
        atomic_compare_exchange_strong(&peer->first_tx_data_since_rx_ns, &zero, now);
    }
    wg_peer_mark_active(dp, peer);
}

void wg_peer_received(struct wg_dp *dp, struct peer *peer, uint64_t bytes, bool data,
                      uint64_t now)
{
    uint64_t zero = 0;

    atomic_fetch_add_explicit(&peer->rx_bytes, bytes, memory_order_relaxed);
    atomic_store_explicit(&peer->last_rx_auth_ns, now, memory_order_relaxed);
    atomic_store_explicit(&peer->first_tx_data_since_rx_ns, 0, memory_order_relaxed);
    if (data) {
        atomic_store_explicit(&peer->last_rx_data_ns, now, memory_order_relaxed);
        atomic_compare_exchange_strong(&peer->first_rx_data_since_tx_ns, &zero, now);
    }
    wg_peer_mark_active(dp, peer);
}

void wg_peer_staged_free(struct wg_dp *dp, struct staged_packet *sp)
{
    atomic_fetch_sub_explicit(&dp->staged_total, 1, memory_order_relaxed);
    atomic_fetch_sub_explicit(&dp->staged_bytes, sp->len, memory_order_relaxed);
    free(sp);
}

struct staged_packet *wg_peer_unstage(struct peer *peer)
{
    struct staged_packet *sp = peer->staged_head;

    if (!sp)
        return NULL;
    peer->staged_head = sp->next;
    if (!peer->staged_head)
        peer->staged_tail = &peer->staged_head;
    atomic_fetch_sub_explicit(&peer->staged_count, 1, memory_order_relaxed);
    return sp;
}

void wg_peer_stage(struct wg_dp *dp, struct peer *peer, const uint8_t *data, uint32_t len)
{
    struct staged_packet *sp;
    uint64_t bytes;
    uint32_t total;

    if (peer->removed) {
        stat_add(dp, STAT_DROP_STAGED_CLEARED, 1);
        return;
    }
    if (atomic_load_explicit(&peer->staged_count, memory_order_relaxed) >= MAX_STAGED_PACKETS) {
        wg_peer_staged_free(dp, wg_peer_unstage(peer));
        stat_add(dp, STAT_DROP_STAGED_OVERFLOW, 1);
    }
    /* Bounded in packets and in bytes (a large MTU makes large packets). */
    total = atomic_fetch_add_explicit(&dp->staged_total, 1, memory_order_relaxed);
    bytes = atomic_fetch_add_explicit(&dp->staged_bytes, len, memory_order_relaxed);
    if (total >= DP_STAGED_TOTAL_MAX || bytes + len > DP_STAGED_BYTES_MAX ||
        !(sp = malloc(sizeof(*sp) + DP_HEADROOM + len + DP_TAILROOM))) {
        atomic_fetch_sub_explicit(&dp->staged_total, 1, memory_order_relaxed);
        atomic_fetch_sub_explicit(&dp->staged_bytes, len, memory_order_relaxed);
        stat_add(dp, STAT_DROP_STAGED_OVERFLOW, 1);
        return;
    }
    sp->next = NULL;
    sp->len = len;
    memcpy(sp->buf + DP_HEADROOM, data, len);
    *peer->staged_tail = sp;
    peer->staged_tail = &sp->next;
    atomic_fetch_add_explicit(&peer->staged_count, 1, memory_order_relaxed);
}

/* Caller holds peer->tx_lock. */
static void purge_staged(struct wg_dp *dp, struct peer *peer)
{
    struct staged_packet *sp;

    while ((sp = wg_peer_unstage(peer))) {
        wg_peer_staged_free(dp, sp);
        stat_add(dp, STAT_DROP_STAGED_CLEARED, 1);
    }
    peer->handshake_asked = false;
}

void wg_peer_clear_staged(struct wg_dp *dp, struct peer *peer)
{
    pthread_mutex_lock(&peer->tx_lock);
    purge_staged(dp, peer);
    pthread_mutex_unlock(&peer->tx_lock);
}

int wg_peer_create(struct wg_dp *dp, uint32_t slot)
{
    struct peer *peer = calloc(1, sizeof(*peer));

    if (!peer)
        return -ENOMEM;
    peer->slot = slot;
    pthread_mutex_init(&peer->lock, NULL);
    pthread_mutex_init(&peer->tx_lock, NULL);
    peer->staged_tail = &peer->staged_head;
    atomic_store_explicit(&dp->peers[slot], peer, memory_order_release);
    return 0;
}

void wg_peer_free_now(struct peer *peer)
{
    struct keypair *slots[3] = { atomic_load(&peer->previous), atomic_load(&peer->current),
                                 atomic_load(&peer->next) };
    struct staged_packet *sp;

    for (int i = 0; i < 3; i++)
        if (slots[i])
            wg_keypair_free_now(slots[i]);
    while ((sp = wg_peer_unstage(peer)))
        free(sp);
    pthread_mutex_destroy(&peer->lock);
    pthread_mutex_destroy(&peer->tx_lock);
    free(peer);
}

static void peer_free_rcu(struct epoch_head *head)
{
    wg_peer_free_now((struct peer *)((char *)head - offsetof(struct peer, rcu)));
}

void wg_peer_remove(struct wg_dp *dp, struct peer *peer)
{
    atomic_store_explicit(&dp->peers[peer->slot], NULL, memory_order_release);
    wg_allowedips_remove_peer(&dp->allowedips, peer->slot);
    wg_keypairs_clear(dp, peer);
    pthread_mutex_lock(&peer->tx_lock);
    peer->removed = true;
    purge_staged(dp, peer);
    pthread_mutex_unlock(&peer->tx_lock);
    wg_epoch_retire(&dp->epoch, &peer->rcu, peer_free_rcu);
}

void wg_peer_set_endpoint(struct peer *peer, const struct wg_endpoint *ep)
{
    pthread_mutex_lock(&peer->lock);
    peer->endpoint = *ep;
    pthread_mutex_unlock(&peer->lock);
}

static void keypair_info(struct keypair *kp, uint32_t *index, uint8_t *has)
{
    *has = kp != NULL;
    *index = kp ? kp->entry.index : 0;
}

void wg_peer_transfer(struct peer *peer, struct wg_peer_transfer *out)
{
    pthread_mutex_lock(&peer->lock);
    out->family = peer->endpoint.family;
    memcpy(out->addr, peer->endpoint.addr, sizeof(out->addr));
    out->port = peer->endpoint.port;
    pthread_mutex_unlock(&peer->lock);
    out->rx_bytes = atomic_load_explicit(&peer->rx_bytes, memory_order_relaxed);
    out->tx_bytes = atomic_load_explicit(&peer->tx_bytes, memory_order_relaxed);
}

void wg_peer_info(struct peer *peer, struct wg_peer_info *out)
{
    struct keypair *cur;

    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&peer->lock);
    out->endpoint = peer->endpoint;
    cur = atomic_load(&peer->current);
    keypair_info(atomic_load(&peer->previous), &out->previous_index, &out->has_previous);
    keypair_info(cur, &out->current_index, &out->has_current);
    keypair_info(atomic_load(&peer->next), &out->next_index, &out->has_next);
    if (cur) {
        out->current_birth_ns = cur->birth_ns;
        out->current_send_counter = atomic_load(&cur->send_counter);
        out->current_initiator = cur->initiator;
    }
    pthread_mutex_unlock(&peer->lock);
    out->rx_bytes = atomic_load(&peer->rx_bytes);
    out->tx_bytes = atomic_load(&peer->tx_bytes);
    out->last_tx_auth_ns = atomic_load(&peer->last_tx_auth_ns);
    out->last_rx_auth_ns = atomic_load(&peer->last_rx_auth_ns);
    out->first_tx_data_since_rx_ns = atomic_load(&peer->first_tx_data_since_rx_ns);
    out->first_rx_data_since_tx_ns = atomic_load(&peer->first_rx_data_since_tx_ns);
    out->last_tx_data_ns = atomic_load(&peer->last_tx_data_ns);
    out->last_rx_data_ns = atomic_load(&peer->last_rx_data_ns);
    out->staged = atomic_load(&peer->staged_count);
}
