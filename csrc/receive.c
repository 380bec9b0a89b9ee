/*
 * receive.c - the receive path: datagrams in batches from recvmmsg; type 4
 * messages through the index table, opened in a batch, checked against the
 * replay window and cryptokey routing, written to the TUN; handshake
 * messages up the event ring to Python; anything else dropped and counted.
 *
 * A batch goes through three passes: classify (cheap checks, keypair
 * lookup), open (the crypto: no shared state, so it can later be spread
 * over workers), and finish (replay window, rotation, counters, routing,
 * TUN writes) in arrival order on this thread.
 */
#define _GNU_SOURCE                     /* struct mmsghdr, in6_pktinfo, explicit_bzero */
#include <errno.h>
#include <poll.h>
#include <unistd.h>
#include <string.h>

#include "crypto/aead.h"
#include "keypair.h"
#include "peer.h"
#include "queueing.h"
#include "socket.h"
#include "tun.h"

#define CONSUMED (-1)                   /* p->drop: taken by another path, not a drop */

static bool handshake_size_ok(uint32_t type, uint32_t len)
{
    return (type == MESSAGE_HANDSHAKE_INITIATION && len == MESSAGE_INITIATION_SIZE) ||
           (type == MESSAGE_HANDSHAKE_RESPONSE && len == MESSAGE_RESPONSE_SIZE) ||
           (type == MESSAGE_HANDSHAKE_COOKIE && len == MESSAGE_COOKIE_REPLY_SIZE);
}

/* The index a response or a cookie reply names, and the kind of entry it
 * must be: a response answers our pending handshake; a cookie reply may
 * answer our initiation or our response (whose index a keypair has taken). */
static struct index_entry *named_entry(struct wg_dp *dp, uint32_t type, const uint8_t *msg)
{
    struct index_entry *e;

    if (type == MESSAGE_HANDSHAKE_RESPONSE) {
        e = wg_indextable_lookup(&dp->indextable, get_le32(msg + MESSAGE_RESPONSE_RECEIVER));
        return e && e->kind == INDEX_HANDSHAKE ? e : NULL;
    }
    return wg_indextable_lookup(&dp->indextable, get_le32(msg + MESSAGE_COOKIE_RECEIVER));
}

static uint32_t entry_slot(struct index_entry *e)
{
    if (e->kind == INDEX_HANDSHAKE)
        return ((struct peer *)((char *)e - offsetof(struct peer, handshake)))->slot;
    return ((struct keypair *)((char *)e - offsetof(struct keypair, entry)))->peer->slot;
}

/* A cookie reply joins the batch's replies, which go out together (and at
 * once if the batch of them is full). */
static void queue_cookie_reply(struct wg_dp *dp, struct loop *l, const uint8_t *msg, size_t len,
                               const struct wg_endpoint *src, uint64_t now)
{
    struct reply_batch *b = &l->replies;

    if (b->n == DP_BATCH_SIZE)
        stat_add(dp, STAT_HANDSHAKE_COOKIES_TX, wg_socket_send_replies(dp, b));
    if (wg_cookie_reply(&dp->cookies, msg, len, src, now, b->data[b->n]))
        return;
    b->buf[b->n] = b->data[b->n];
    b->len[b->n] = MESSAGE_COOKIE_REPLY_SIZE;
    b->to[b->n++] = *src;
}

/* The front line for types 1 and 2, in the kernel's order: mac1 always; under
 * load mac2 (without it, a cookie reply and nothing more) and the source's
 * rate limit. Only what passes goes up to Python. Cookie replies are rate
 * limited per source too (a separate budget, so that asking for a cookie
 * never spends what the message carrying it needs): a peer needs one every
 * two minutes, and a flooding address must not cost a send per message. */
static bool admit(struct wg_dp *dp, struct loop *l, struct packet *p, const uint8_t *msg,
                  const struct wg_endpoint *src, uint64_t now)
{
    bool under_load = wg_device_under_load(dp, now);

    switch (wg_cookie_validate(&dp->cookies, msg, p->wire_len, src, under_load, now)) {
    case COOKIE_MAC_INVALID:
        p->drop = STAT_DROP_HANDSHAKE_MAC;
        return false;
    case COOKIE_MAC_VALID:
        if (!under_load)
            return true;
        if (wg_ratelimiter_allow(&dp->reply_limiter, src, now))
            queue_cookie_reply(dp, l, msg, p->wire_len, src, now);
        else
            p->drop = STAT_DROP_HANDSHAKE_RATELIMIT;
        return false;
    case COOKIE_MAC_VALID_WITH_COOKIE:
        if (wg_ratelimiter_allow(&dp->ratelimiter, src, now))
            return true;
        p->drop = STAT_DROP_HANDSHAKE_RATELIMIT;
        return false;
    }
    return false;
}

/* Types 1-3 go up to Python once they pass the front line; a response or
 * cookie reply names its peer, or is dropped here if it names no index of
 * ours. A full ring drops the newest message. */
static void queue_handshake(struct wg_dp *dp, struct loop *l, unsigned int i, uint32_t type,
                            uint64_t now)
{
    struct packet *p = &l->pkts[i];
    const uint8_t *msg = p->data - MESSAGE_DATA_HEADER_SIZE;
    struct wg_event ev = { .type = WG_EV_HANDSHAKE, .peer = WG_DP_PEER_NONE, .time_ns = now };
    struct index_entry *e;

    p->drop = CONSUMED;
    if (type != MESSAGE_HANDSHAKE_INITIATION) {
        if (!(e = named_entry(dp, type, msg))) {
            p->drop = STAT_DROP_UNKNOWN_INDEX;
            return;
        }
        ev.peer = entry_slot(e);
    }
    wg_socket_source(l, p->msg, &ev.src);
    if (type != MESSAGE_HANDSHAKE_COOKIE && !admit(dp, l, p, msg, &ev.src, now))
        return;
    ev.len = p->wire_len;
    memcpy(ev.data, msg, p->wire_len);
    if (wg_device_event(dp, &ev, true))
        stat_add(dp, STAT_HANDSHAKES_RX, 1);
}

/* Pass 1: decide what each datagram is; type 4 gets its keypair. */
static void classify(struct wg_dp *dp, struct loop *l, unsigned int i, uint64_t now)
{
    struct packet *p = &l->pkts[i];
    const uint8_t *msg = p->data - MESSAGE_DATA_HEADER_SIZE;
    struct index_entry *entry;
    struct keypair *kp;
    uint32_t type;

    if (p->drop)
        return;
    if (p->wire_len < 4) {
        p->drop = STAT_DROP_MALFORMED;
        return;
    }
    type = get_le32(msg);
    if (handshake_size_ok(type, p->wire_len)) {
        queue_handshake(dp, l, i, type, now);
        return;
    }
    if (type != MESSAGE_DATA || p->wire_len < MESSAGE_DATA_MIN_SIZE) {
        p->drop = STAT_DROP_MALFORMED;
        return;
    }
    entry = wg_indextable_lookup(&dp->indextable, get_le32(msg + MESSAGE_DATA_RECEIVER));
    if (!entry || entry->kind != INDEX_KEYPAIR) {
        p->drop = STAT_DROP_UNKNOWN_INDEX;
        return;
    }
    kp = (struct keypair *)((char *)entry - offsetof(struct keypair, entry));
    p->counter = get_le64(msg + 8);
    if (now - kp->birth_ns >= dp->timing.reject_after_time_ns ||
        p->counter >= dp->timing.reject_after_messages) {
        p->drop = STAT_DROP_EXPIRED;
        return;
    }
    p->keypair = kp;
    p->peer = kp->peer;
    p->len = p->wire_len - MESSAGE_DATA_MIN_SIZE;
}

/* Pass 2: pure crypto over the packets that got a keypair. */
static void open_range(void *ctx, unsigned int lo, unsigned int hi)
{
    struct packet **pkts = ctx;
    const struct wg_aead_backend *aead = wg_aead;

    for (unsigned int i = lo; i < hi; i++) {
        struct packet *p = pkts[i];
        if (!aead->open(p->data, p->data, p->len + NOISE_AUTHTAG_LEN, NULL, 0, p->counter,
                        p->keypair->recv_key))
            p->drop = STAT_DROP_DECRYPT;
    }
}

/* Opens pkts in place; a failure sets p->drop. */
static void open_batch(struct crypt_pool *pool, struct packet **pkts, unsigned int n)
{
    size_t bytes = 0;

    for (unsigned int i = 0; i < n; i++)
        bytes += pkts[i]->len;
    wg_crypt_run(pool, open_range, pkts, n, bytes);
}

/* Cuts the plaintext to the IP packet's own length and finds its source. */
static bool ip_trim(struct packet *p, uint8_t *family, const uint8_t **src)
{
    uint32_t total;

    if (p->len >= 20 && p->data[0] >> 4 == 4) {
        total = get_be16(p->data + 2);
        if (total < 20 || total > p->len)
            return false;
        *family = 4;
        *src = p->data + 12;
    } else if (p->len >= 40 && p->data[0] >> 4 == 6) {
        total = 40u + get_be16(p->data + 4);
        if (total > p->len)
            return false;
        *family = 6;
        *src = p->data + 8;
    } else {
        return false;
    }
    p->len = total;
    return true;
}

/* keepKeyFreshReceiving: an initiator's keypair close to REJECT_AFTER_TIME. */
static void keep_key_fresh(struct wg_dp *dp, struct peer *peer, struct keypair *kp, uint64_t now)
{
    uint64_t margin = dp->timing.keepalive_timeout_ns + dp->timing.rekey_timeout_ns;
    uint64_t limit = dp->timing.reject_after_time_ns > margin ?
                         dp->timing.reject_after_time_ns - margin : 0;

    if (kp->initiator && now - kp->birth_ns >= limit &&
        atomic_load_explicit(&peer->current, memory_order_relaxed) == kp)
        wg_peer_rekey_event(dp, peer, WG_EV_REKEY_RECV, &peer->rekey_recv_event_ns, now);
}

/* The responder's keypair is confirmed: tell Python, send what waited. */
static void confirmed(struct wg_dp *dp, struct loop *l, struct peer *peer, uint64_t now)
{
    wg_device_notify(dp, WG_EV_KEYPAIR_CONFIRMED, peer->slot, now);
    pthread_mutex_lock(&peer->tx_lock);
    wg_send_staged(dp, &l->send, peer, now);
    pthread_mutex_unlock(&peer->tx_lock);
}

/* Pass 3 for one opened packet: the checks that need order and state; a
 * packet for the TUN joins l->deliver. */
static void finish(struct wg_dp *dp, struct loop *l, unsigned int i, uint64_t now,
                   unsigned int *ndeliver)
{
    struct packet *p = &l->pkts[i];
    struct keypair *kp = p->keypair;
    struct peer *peer = p->peer;
    const uint8_t *src;
    uint8_t family;

    if (!wg_replay_check(&kp->replay, p->counter, dp->timing.reject_after_messages)) {
        p->drop = STAT_DROP_REPLAY;
        return;
    }
    if (atomic_load_explicit(&peer->next, memory_order_relaxed) == kp &&
        wg_keypair_confirm(dp, peer, kp))
        confirmed(dp, l, peer, now);
    peer->rx_batch = l->batch;
    peer->rx_last = i;
    wg_peer_received(dp, peer, p->wire_len, p->len != 0, now);
    keep_key_fresh(dp, peer, kp, now);
    if (p->len == 0) {
        stat_add(dp, STAT_KEEPALIVES_RX, 1);
        p->drop = CONSUMED;
        return;
    }
    if (!ip_trim(p, &family, &src)) {
        p->drop = STAT_DROP_MALFORMED;
        return;
    }
    if (wg_allowedips_lookup(&dp->allowedips, family, src) != peer->slot) {
        p->drop = STAT_DROP_BAD_SRC;
        return;
    }
    l->deliver[(*ndeliver)++] = i;
}

/* Roaming: each peer's endpoint follows its latest authenticated packet. */
static void roam(struct wg_dp *dp, struct loop *l, unsigned int n, uint64_t now)
{
    for (unsigned int i = 0; i < n; i++) {
        struct packet *p = &l->pkts[i];
        struct wg_event ev;

        if (!p->peer || p->peer->rx_batch != l->batch || p->peer->rx_last != i)
            continue;
        memset(&ev, 0, sizeof(ev));
        wg_socket_source(l, p->msg, &ev.src);
        if (!wg_peer_update_endpoint(p->peer, &ev.src))
            continue;
        ev.type = WG_EV_ENDPOINT_CHANGED;
        ev.peer = p->peer->slot;
        ev.time_ns = now;
        wg_device_event(dp, &ev, false);
    }
}

void wg_receive_batch(struct wg_dp *dp, struct loop *l, unsigned int n, uint64_t now)
{
    struct packet *opened[DP_BURST];
    unsigned int nopen = 0, ndeliver = 0;

    l->batch++;
    for (unsigned int i = 0; i < n; i++) {
        classify(dp, l, i, now);
        if (!l->pkts[i].drop)
            opened[nopen++] = &l->pkts[i];
    }
    if (l->replies.n)
        stat_add(dp, STAT_HANDSHAKE_COOKIES_TX, wg_socket_send_replies(dp, &l->replies));
    open_batch(l->send.pool, opened, nopen);
    for (unsigned int i = 0; i < n; i++) {
        struct packet *p = &l->pkts[i];
        if (!p->drop)
            finish(dp, l, i, now, &ndeliver);
        if (p->drop > 0)
            stat_add(dp, (enum dp_stat)p->drop, 1);
    }
    /* Before the TUN sees the packets, as the kernel does: what answers them must go
     * to where the peer is now, not where it was. */
    roam(dp, l, n, now);
    wg_tun_write_batch(dp, l, ndeliver);
}

/* Reads fd until it is empty, or until wg_dp_set_udp replaces it: once this
 * thread has passed a quiescent point, the caller may close the old fd. */
static void drain_socket(struct wg_dp *dp, struct loop *l, int fd, uint32_t gen)
{
    bool more;
    int n;

    do {
        n = wg_socket_receive(dp, l, fd, &more);
        /* Helpers share the opening only while the socket has more than
         * one batch waiting: then the thread is behind. */
        l->send.pool = more ? &l->pool : NULL;
        if (n > 0)
            wg_receive_batch(dp, l, (unsigned int)n, now_ns());
        wg_epoch_quiescent(&dp->epoch, &l->reader);
    } while (more && atomic_load(&dp->udp_gen) == gen);
}

/* The UDP sockets as one wg_dp_set_udp left them. A socket fd Python closed
 * without wg_dp_set_udp would make poll() return at once forever; such an fd
 * is left out until the next wg_dp_set_udp, whatever number it then has. */
struct rx_sockets {
    uint32_t gen;
    int fd[2];
    bool dead[2];
};

static void rx_sockets_load(struct wg_dp *dp, struct rx_sockets *s)
{
    uint32_t gen = atomic_load(&dp->udp_gen);

    if (gen != s->gen) {
        s->gen = gen;
        s->dead[0] = s->dead[1] = false;
    }
    s->fd[0] = atomic_load(&dp->udp4_fd);
    s->fd[1] = atomic_load(&dp->udp6_fd);
}

void *wg_receive_thread(void *arg)
{
    struct loop *l = arg;
    struct wg_dp *dp = l->dp;
    struct rx_sockets socks = { .gen = atomic_load(&dp->udp_gen) };

    for (;;) {
        struct pollfd pfd[4];
        uint64_t value;
        int ret;

        rx_sockets_load(dp, &socks);
        pfd[0] = (struct pollfd){ dp->stop_fd, POLLIN, 0 };
        pfd[1] = (struct pollfd){ dp->rx_wake_fd, POLLIN, 0 };
        /* poll() ignores negative fds, so an absent socket needs no care. */
        for (int k = 0; k < 2; k++)
            pfd[2 + k] = (struct pollfd){ socks.dead[k] ? -1 : socks.fd[k], POLLIN, 0 };
        wg_epoch_offline(&l->reader);
        ret = poll(pfd, 4, -1);
        if (ret < 0 && errno != EINTR)
            break;
        if (pfd[0].revents)
            break;
        wg_epoch_online(&dp->epoch, &l->reader);
        if (pfd[1].revents && read(dp->rx_wake_fd, &value, sizeof(value)) < 0)
            value = 0;
        for (int k = 0; k < 2; k++) {
            /* Sockets changed while poll() slept (or while the other one was
             * drained): its answers may concern closed fds, or new sockets
             * under old numbers, so the loop polls the current ones. Being
             * online first means a wg_dp_set_udp after this check waits. */
            if (atomic_load(&dp->udp_gen) != socks.gen)
                break;
            if (pfd[2 + k].fd < 0 || !pfd[2 + k].revents)
                continue;
            if (pfd[2 + k].revents & POLLNVAL)
                socks.dead[k] = true;
            else
                drain_socket(dp, l, pfd[2 + k].fd, socks.gen);
        }
        wg_device_try_reclaim(dp);
    }
    wg_epoch_offline(&l->reader);
    return NULL;
}
