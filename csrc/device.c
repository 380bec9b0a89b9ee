/*
 * device.c - a data plane's life: creation from Python's settings, the two
 * packet threads, stopping, new sockets. api.c calls it, under the control
 * mutex where device.h says so.
 */
#define _GNU_SOURCE                     /* struct mmsghdr, in6_pktinfo, explicit_bzero */
#include "device.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "crypto/aead.h"
#include "peer.h"
#include "queueing.h"
#include "socket.h"
#include "tun.h"

static bool timing_valid(const struct wg_dp_timing *t)
{
    return t->rekey_after_time_ns && t->reject_after_time_ns && t->rekey_timeout_ns &&
           t->rekey_after_messages && t->reject_after_messages;
}

/* The TX loop's arena and super-packet buffer, or the RX loop's receive
 * buffers, in one mapping: untouched pages cost no memory, so only what
 * packets fill gets resident. */
static size_t loop_bytes(bool tx)
{
    return tx ? (size_t)DP_TX_ARENA + DP_BUFFER_SIZE : (size_t)DP_BATCH_SIZE * DP_BUFFER_SIZE;
}

static struct loop *loop_new(struct wg_dp *dp, bool tx)
{
    struct loop *l = calloc(1, sizeof(*l));
    uint8_t *mem;

    if (!l)
        return NULL;
    mem = mmap(NULL, loop_bytes(tx), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) {
        free(l);
        return NULL;
    }
    if (tx) {
        l->arena = mem;
        l->gso_buf = mem + DP_TX_ARENA;
    } else {
        l->buffers = mem;
    }
    l->dp = dp;
    return l;
}

static void loop_free(struct loop *l)
{
    if (!l)
        return;
    munmap(l->arena ? l->arena : l->buffers, loop_bytes(l->arena != NULL));
    free(l);
}

static int create_parts(struct wg_dp *dp, const struct wg_dp_settings *s)
{
    int ret;

    dp->peers = calloc(s->max_peers, sizeof(*dp->peers));
    dp->tx = loop_new(dp, true);
    dp->rx = loop_new(dp, false);
    dp->control_scratch = calloc(1, sizeof(*dp->control_scratch));
    dp->control_replies = calloc(1, sizeof(*dp->control_replies));
    if (!dp->peers || !dp->tx || !dp->rx || !dp->control_scratch || !dp->control_replies)
        return -ENOMEM;
    if ((ret = wg_allowedips_init(&dp->allowedips, s->max_peers, &dp->epoch)) ||
        (ret = wg_indextable_init(&dp->indextable, 4 * s->max_peers)) ||
        (ret = wg_events_init(&dp->events, s->event_ring_size)) ||
        (ret = wg_active_init(&dp->active, s->max_peers)) ||
        (ret = wg_ratelimiter_init(&dp->ratelimiter)) ||
        (ret = wg_ratelimiter_init(&dp->reply_limiter)))
        return ret;
    dp->stop_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    dp->rx_wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (dp->stop_fd < 0 || dp->rx_wake_fd < 0)
        return -errno;
    if ((ret = wg_epoch_reader_add(&dp->epoch, &dp->tx->reader)) ||
        (ret = wg_epoch_reader_add(&dp->epoch, &dp->rx->reader)))
        return ret;
    return 0;
}

int wg_device_create(const struct wg_dp_settings *s, struct wg_dp **out)
{
    struct wg_dp *dp;
    int ret;

    *out = NULL;
    if (!s->max_peers || s->max_peers > (1u << 24) || !timing_valid(&s->timing) ||
        s->crypto_threads > DP_MAX_CRYPTO_THREADS)
        return -EINVAL;
    if ((ret = wg_aead_init()))
        return ret;
    dp = calloc(1, sizeof(*dp));
    if (!dp)
        return -ENOMEM;
    dp->stop_fd = dp->rx_wake_fd = -1;
    dp->timing = s->timing;
    dp->max_peers = s->max_peers;
    dp->tun_vnet_hdr = s->tun_vnet_hdr;
    dp->tun_pi = s->tun_pi;
    atomic_init(&dp->tun_fd, s->tun_fd);
    atomic_init(&dp->udp4_fd, s->udp4_fd);
    atomic_init(&dp->udp6_fd, s->udp6_fd);
    atomic_init(&dp->mtu, s->mtu);
    dp->offloads = s->offloads;
    atomic_init(&dp->tun_offloads, s->tun_vnet_hdr ?
                    s->offloads & (WG_DP_OFFLOAD_TUN_TCP_GRO | WG_DP_OFFLOAD_TUN_UDP_GRO) : 0);
    dp->crypto_threads = s->crypto_threads ? s->crypto_threads : wg_crypt_threads_default();
    pthread_mutex_init(&dp->control, NULL);
    wg_cookie_checker_init(&dp->cookies);
    wg_epoch_init(&dp->epoch);
    ret = create_parts(dp, s);
    if (!ret && s->tun_fd >= 0)
        ret = wg_tun_prepare(s->tun_fd);
    if (ret) {
        wg_device_free(dp);
        return ret;
    }
    wg_socket_prepare(dp, s->udp4_fd, s->udp6_fd);
    *out = dp;
    return 0;
}

static void free_peers(struct wg_dp *dp)
{
    for (uint32_t i = 0; dp->peers && i < dp->max_peers; i++) {
        struct peer *peer = atomic_load(&dp->peers[i]);
        if (peer)
            wg_peer_free_now(peer);
    }
    free(dp->peers);
}

void wg_device_free(struct wg_dp *dp)
{
    /* No thread runs: everything may go at once. */
    wg_epoch_destroy(&dp->epoch);
    free_peers(dp);
    wg_route_mtus_free(atomic_load(&dp->route_mtus));
    if (dp->allowedips.by_peer)
        wg_allowedips_free(&dp->allowedips);
    if (dp->indextable.buckets)
        wg_indextable_free(&dp->indextable);
    if (dp->events.slots)
        wg_events_free(&dp->events);
    if (dp->active.ring)
        wg_active_free(&dp->active);
    wg_ratelimiter_free(&dp->ratelimiter);
    wg_ratelimiter_free(&dp->reply_limiter);
    wg_cookie_checker_free(&dp->cookies);
    if (dp->stop_fd >= 0)
        close(dp->stop_fd);
    if (dp->rx_wake_fd >= 0)
        close(dp->rx_wake_fd);
    loop_free(dp->tx);
    loop_free(dp->rx);
    free(dp->control_scratch);
    free(dp->control_replies);
    pthread_mutex_destroy(&dp->control);
    free(dp);
}

static void fd_drain(int fd)
{
    uint64_t value;
    ssize_t ret = read(fd, &value, sizeof(value));
    (void)ret;
}

static void fd_signal(int fd)
{
    uint64_t one = 1;
    ssize_t ret = write(fd, &one, sizeof(one));
    (void)ret;
}

static int start_thread(struct loop *l, void *(*fn)(void *), const char *name)
{
    sigset_t all, old;
    int ret;

    /* Signals stay with Python's main thread. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    ret = -pthread_create(&l->thread, NULL, fn, l);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (ret)
        return ret;
    l->started = true;
    pthread_setname_np(l->thread, name);
    return 0;
}

int wg_device_start(struct wg_dp *dp)
{
    int ret;

    if (dp->running)
        return -EALREADY;
    fd_drain(dp->stop_fd);
    dp->running = true;
    ret = wg_crypt_pool_start(&dp->tx->pool, dp->crypto_threads);
    if (!ret)
        ret = wg_crypt_pool_start(&dp->rx->pool, dp->crypto_threads);
    if (!ret)
        ret = start_thread(dp->tx, wg_send_thread, "wg-dp-tx");
    if (!ret)
        ret = start_thread(dp->rx, wg_receive_thread, "wg-dp-rx");
    if (ret)
        wg_device_stop(dp);
    return ret;
}

void wg_device_stop(struct wg_dp *dp)
{
    if (!dp->running)
        return;
    fd_signal(dp->stop_fd);
    /* The threads never wait for the control mutex, so joining under it is
     * safe and keeps a concurrent start out. */
    if (dp->tx->started)
        pthread_join(dp->tx->thread, NULL);
    if (dp->rx->started)
        pthread_join(dp->rx->thread, NULL);
    dp->tx->started = dp->rx->started = false;
    wg_crypt_pool_stop(&dp->tx->pool);
    wg_crypt_pool_stop(&dp->rx->pool);
    dp->running = false;
}

void wg_device_set_udp(struct wg_dp *dp, int udp4_fd, int udp6_fd)
{
    wg_socket_prepare(dp, udp4_fd, udp6_fd);
    atomic_store(&dp->udp4_fd, udp4_fd);
    atomic_store(&dp->udp6_fd, udp6_fd);
    /* The receive thread may be asleep in poll() on the old fds, offline, so
     * the wait below does not cover it: the generation tells it that what
     * that poll() reports may be about fds the caller has closed (or whose
     * numbers new sockets have taken) by the time it looks. */
    atomic_fetch_add(&dp->udp_gen, 1);
    fd_signal(dp->rx_wake_fd);
    /* After this, no thread is inside a send or receive on the old fds. */
    wg_epoch_synchronize(&dp->epoch);
}
