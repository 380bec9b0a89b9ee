/*
 * device.h - the data plane's device: struct wg_dp and what every file of the
 * data plane shares (counters, the clock, the control mutex).
 *
 * Threads and locks, outermost first:
 *  - control: Python's calls, one at a time. Epoch reclaim runs only under
 *    it, so a control call may use any table entry while holding it.
 *  - peer->tx_lock: the order of one peer's sealed packets and its staged
 *    queue (taken by the TX thread, and by control or RX when they flush).
 *  - peer->lock: the endpoint and the keypair slots, held for a few loads.
 *  - indextable.lock, events.lock, active.lock: leaf locks.
 * The TX and RX threads never wait for the control mutex (they only try it).
 */
#pragma once
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "allowedips.h"
#include "cookie.h"
#include "epoch.h"
#include "events.h"
#include "indextable.h"
#include "messages.h"
#include "ratelimiter.h"
#include "route.h"
#include "wg_dp.h"

struct peer;
struct loop;
struct send_scratch;

/* Counters, in the order of struct wg_dp_stats's fields. */
enum dp_stat {
    STAT_TUN_RX_PACKETS, STAT_TUN_TX_PACKETS, STAT_UDP_RX_PACKETS, STAT_UDP_TX_PACKETS,
    STAT_UDP_RX_SYSCALLS, STAT_UDP_TX_SYSCALLS, STAT_TUN_RX_SYSCALLS, STAT_TUN_TX_SYSCALLS,
    STAT_DROP_NO_PEER, STAT_DROP_BAD_SRC, STAT_DROP_MALFORMED, STAT_DROP_UNKNOWN_INDEX,
    STAT_DROP_DECRYPT, STAT_DROP_REPLAY, STAT_DROP_EXPIRED, STAT_DROP_STAGED_OVERFLOW,
    STAT_DROP_EVENT_OVERFLOW, STAT_DROP_SEND_ERROR, STAT_KEEPALIVES_RX, STAT_KEEPALIVES_TX,
    STAT_EVENT_RING_USED, STAT_DROP_NO_ENDPOINT, STAT_DROP_STAGED_CLEARED, STAT_DROP_TUN_WRITE,
    STAT_ICMP_TX, STAT_HANDSHAKES_RX, STAT_UDP_TX_GSO, STAT_UDP_GSO_REFUSED, STAT_UDP_RX_GRO,
    STAT_TUN_RX_GSO, STAT_TUN_TX_GRO, STAT_TUN_GRO_REFUSED, STAT_DROP_HANDSHAKE_MAC,
    STAT_HANDSHAKE_COOKIES_TX, STAT_DROP_HANDSHAKE_RATELIMIT, STAT_HANDSHAKE_UNDER_LOAD,
    STAT_DROP_LOOP, STAT_COUNT
};

/* Peers whose state moved, for the timer tick: each slot at most once. */
struct active_list {
    pthread_mutex_t lock;
    _Atomic uint8_t *queued;            /* per slot */
    uint32_t *ring;
    uint32_t head, count;
};

struct wg_dp {
    struct wg_dp_timing timing;
    uint32_t max_peers;
    int tun_vnet_hdr;
    int tun_pi;
    _Atomic int tun_fd;                 /* -1 once the TUN is gone */
    _Atomic int udp4_fd, udp6_fd;
    _Atomic uint32_t udp_gen;           /* bumped by every wg_dp_set_udp */
    _Atomic uint16_t listen_port;       /* the sockets' port (0: unknown): the loop check */
    _Atomic uint32_t mtu;
    _Atomic(struct route_mtus *) route_mtus;  /* NULL: no route through us has an MTU */
    uint32_t offloads;                  /* WG_DP_OFFLOAD_* the settings allow */
    _Atomic uint32_t udp4_offloads, udp6_offloads;  /* what each socket took */
    _Atomic uint32_t tun_offloads;      /* TUN coalescing not (yet) refused */
    uint32_t crypto_threads;

    pthread_mutex_t control;
    struct epoch epoch;
    _Atomic(struct peer *) *peers;      /* by slot */
    struct allowedips allowedips;
    struct indextable indextable;
    struct event_ring events;
    struct active_list active;
    struct cookie_checker cookies;      /* the handshake front line (receive.c) */
    struct ratelimiter ratelimiter;     /* receive thread only: handshakes with a cookie */
    struct ratelimiter reply_limiter;   /* receive thread only: cookie replies */
    _Atomic uint64_t last_under_load_ns; /* written by the receive thread */
    _Atomic uint32_t staged_total;
    _Atomic uint64_t staged_bytes;
    _Atomic uint64_t stats[STAT_COUNT];

    int stop_fd;                        /* eventfd: readable while stopping */
    int rx_wake_fd;                     /* eventfd: the RX thread re-reads its fds */
    bool running;
    struct loop *tx, *rx;
    struct send_scratch *control_scratch; /* for sends made by control calls */
    struct reply_batch *control_replies; /* for the responses of wg_dp_handshakes_answer */
    uint64_t icmp_window_ns;            /* TX thread only: ICMP rate limit */
    uint32_t icmp_in_window;
};

static inline void stat_add(struct wg_dp *dp, enum dp_stat s, uint64_t n)
{
    atomic_fetch_add_explicit(&dp->stats[s], n, memory_order_relaxed);
}

static inline uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The control mutex; unlocking also frees what the epoch allows. */
static inline void wg_device_lock(struct wg_dp *dp)
{
    pthread_mutex_lock(&dp->control);
}

static inline void wg_device_unlock(struct wg_dp *dp)
{
    wg_epoch_reclaim(&dp->epoch);
    pthread_mutex_unlock(&dp->control);
}

/* The peer in a slot, or NULL. Packet threads: within an epoch section;
 * control calls: under the control mutex. */
static inline struct peer *wg_device_peer(struct wg_dp *dp, uint32_t slot)
{
    if (slot >= dp->max_peers)
        return NULL;
    return atomic_load_explicit(&dp->peers[slot], memory_order_acquire);
}

/* Packet threads between batches: frees retired objects if no control call
 * is running (never waits for one). */
static inline void wg_device_try_reclaim(struct wg_dp *dp)
{
    if (wg_epoch_has_pending(&dp->epoch) && pthread_mutex_trylock(&dp->control) == 0) {
        wg_epoch_reclaim(&dp->epoch);
        pthread_mutex_unlock(&dp->control);
    }
}

/* Queues an event; false (and counted) if the ring had no room. */
static inline bool wg_device_event(struct wg_dp *dp, const struct wg_event *ev, bool droppable)
{
    if (wg_events_push(&dp->events, ev, droppable) == 0)
        return true;
    stat_add(dp, STAT_DROP_EVENT_OVERFLOW, 1);
    return false;
}

/* Under load, as the kernel defines it: handshake messages queued for Python
 * past an eighth of the ring, or less than UNDER_LOAD_AFTER_S since. */
static inline bool wg_device_under_load(struct wg_dp *dp, uint64_t now)
{
    uint64_t last;

    if (wg_events_handshakes(&dp->events) >= dp->events.size / 8) {
        atomic_store_explicit(&dp->last_under_load_ns, now, memory_order_relaxed);
        return true;
    }
    last = atomic_load_explicit(&dp->last_under_load_ns, memory_order_relaxed);
    /* Another thread may have stored a clock read later than ours: that is "just now". */
    return last && (now <= last || now - last < (uint64_t)UNDER_LOAD_AFTER_S * 1000000000u);
}

/* An event that carries no more than its type, peer and time. */
static inline bool wg_device_notify(struct wg_dp *dp, uint32_t type, uint32_t slot, uint64_t now)
{
    struct wg_event ev = { .type = type, .peer = slot, .time_ns = now };

    return wg_device_event(dp, &ev, false);
}

/* device.c: a device's life. Creation (wg_device_free undoes a failed one);
 * the rest under the control mutex, which api.c takes. */
int wg_device_create(const struct wg_dp_settings *settings, struct wg_dp **out);
void wg_device_free(struct wg_dp *dp);             /* no thread may run */
int wg_device_start(struct wg_dp *dp);
void wg_device_stop(struct wg_dp *dp);             /* joins the threads; idempotent */
/* Returns once no thread uses the old fds any more. */
void wg_device_set_udp(struct wg_dp *dp, int udp4_fd, int udp6_fd);
