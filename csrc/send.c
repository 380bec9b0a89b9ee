/*
 * send.c - the transmit path: TUN packets to their peer by destination
 * address, sealed in batches, out through sendmmsg; packets for a peer with
 * no usable keypair are staged until one arrives.
 *
 * One peer's packets are sealed and sent under its tx_lock, which keeps
 * them in counter order even when a control call or the receive thread
 * flushes staged packets at the same time. A peer with anything staged has
 * its new packets staged behind the old ones, for the same reason.
 */
#define _GNU_SOURCE                     /* struct mmsghdr, in6_pktinfo, explicit_bzero */
#include <errno.h>
#include <poll.h>
#include <string.h>

#include "crypto/aead.h"
#include "keypair.h"
#include "peer.h"
#include "queueing.h"
#include "socket.h"
#include "tun.h"

/* The kernel's calculate_skb_padding: round up to 16, never past the MTU. */
static uint32_t padding(uint32_t len, uint32_t mtu)
{
    uint32_t last = len, padded;

    if (mtu == 0)
        return ((last + MESSAGE_PADDING_MULTIPLE - 1) & ~(uint32_t)(MESSAGE_PADDING_MULTIPLE - 1)) -
               last;
    if (last > mtu)
        last %= mtu;
    padded = (last + MESSAGE_PADDING_MULTIPLE - 1) & ~(uint32_t)(MESSAGE_PADDING_MULTIPLE - 1);
    if (padded > mtu)
        padded = mtu;
    return padded - last;
}

struct seal_job {
    struct packet **pkts;
    struct keypair *kp;
    const struct route_mtus *routes;    /* NULL: no route through us has an MTU */
    uint64_t first;
    uint32_t mtu;
};

static bool ip_destination(const uint8_t *pkt, uint32_t len, uint8_t *family,
                           const uint8_t **dst);

/* The padding of one packet: to the interface's MTU, or to the MTU of the
 * route its destination takes if that is smaller (the kernel pads to
 * dst_mtu). Only a packet padded past the table's smallest MTU is looked
 * up: with any smaller cap the padding would be the same. */
static uint32_t packet_padding(const struct seal_job *job, const struct packet *p)
{
    uint32_t pad = padding(p->len, job->mtu), cap;
    const uint8_t *dst;
    uint8_t family;

    if (!pad || !job->routes || p->len + pad <= job->routes->least ||
        !ip_destination(p->data, p->len, &family, &dst))
        return pad;
    cap = wg_route_mtu_lookup(job->routes, family, dst);
    if (!cap || (job->mtu && cap >= job->mtu))
        return pad;
    return padding(p->len, cap);
}

static void seal_range(void *ctx, unsigned int lo, unsigned int hi)
{
    const struct seal_job *job = ctx;
    const struct wg_aead_backend *aead = wg_aead;

    for (unsigned int i = lo; i < hi; i++) {
        struct packet *p = job->pkts[i];
        uint32_t padded = p->len + packet_padding(job, p);
        uint8_t *hdr = p->data - MESSAGE_DATA_HEADER_SIZE;
        uint64_t counter = job->first + i;

        memset(p->data + p->len, 0, padded - p->len);
        put_le32(hdr, MESSAGE_DATA);
        put_le32(hdr + 4, job->kp->remote_index);
        put_le64(hdr + 8, counter);
        aead->seal(p->data, p->data, padded, NULL, 0, counter, job->kp->send_key);
        p->counter = counter;
        p->wire_len = MESSAGE_DATA_HEADER_SIZE + padded + NOISE_AUTHTAG_LEN;
    }
}

/* Seals pkts in place with consecutive counters from `first` (on the pool's
 * threads too, if given), padded for the MTU and the routes' MTUs. */
static void seal_batch(struct wg_dp *dp, struct crypt_pool *pool, struct packet **pkts,
                       unsigned int n, struct keypair *kp, uint64_t first)
{
    /* The caller is an epoch reader (or holds the control mutex) until the
     * pool is done with the job: the table stays. */
    struct seal_job job = { pkts, kp,
                            atomic_load_explicit(&dp->route_mtus, memory_order_acquire), first,
                            atomic_load_explicit(&dp->mtu, memory_order_relaxed) };
    size_t bytes = 0;

    for (unsigned int i = 0; i < n; i++)
        bytes += pkts[i]->len;
    wg_crypt_run(pool, seal_range, &job, n, bytes);
}

/* Once per staging episode. If the ring was full the next packet asks again,
 * and the timer tick sees the peer anyway: the timers read the staged count. */
static void ask_handshake(struct wg_dp *dp, struct peer *peer, uint64_t now)
{
    if (!peer->handshake_asked)
        peer->handshake_asked = wg_device_notify(dp, WG_EV_NEED_HANDSHAKE, peer->slot, now);
    if (!peer->handshake_asked)
        wg_peer_mark_active(dp, peer);
}

/* keepKeyFreshSending. */
static void keep_key_fresh(struct wg_dp *dp, struct peer *peer, struct keypair *kp, uint64_t now)
{
    if (atomic_load_explicit(&kp->send_counter, memory_order_relaxed) >
            dp->timing.rekey_after_messages ||
        (kp->initiator && now - kp->birth_ns >= dp->timing.rekey_after_time_ns))
        wg_peer_rekey_event(dp, peer, WG_EV_REKEY_SEND, &peer->rekey_send_event_ns, now);
}

static void count_sent(struct wg_dp *dp, struct peer *peer, struct packet **pkts, int sent,
                       uint64_t now)
{
    uint64_t bytes = 0, keepalives = 0;

    for (int i = 0; i < sent; i++) {
        bytes += pkts[i]->wire_len;
        keepalives += pkts[i]->len == 0;
    }
    if (keepalives)
        stat_add(dp, STAT_KEEPALIVES_TX, keepalives);
    wg_peer_sent(dp, peer, bytes, keepalives < (uint64_t)sent, now);
}

/* Seals n packets with counters from `first` and sends them to the peer's
 * endpoint. Caller holds peer->tx_lock. */
static void seal_and_send(struct wg_dp *dp, struct send_scratch *s, struct peer *peer,
                          struct keypair *kp, struct packet **pkts, uint32_t n, uint64_t first,
                          uint64_t now)
{
    struct wg_endpoint ep;
    unsigned int flags = now >= peer->gso_retry_ns ? SEND_GSO : 0;
    int sent;

    seal_batch(dp, s->pool, pkts, n, kp, first);
    for (uint32_t i = 0; i < n; i++) {
        s->bufs[i] = pkts[i]->data - MESSAGE_DATA_HEADER_SIZE;
        s->lens[i] = pkts[i]->wire_len;
    }
    wg_peer_get_endpoint(peer, &ep);
    sent = wg_socket_send(dp, s, &ep, s->bufs, s->lens, n, &flags);
    if (flags & SEND_SRC_REJECTED)
        wg_peer_forget_src(peer);
    /* A path that refuses segmentation (a smaller MTU, a device without
     * checksum offload) is tried again later, not at every batch. */
    if (flags & SEND_GSO_REFUSED)
        peer->gso_retry_ns = now + (uint64_t)DP_UDP_GSO_RETRY_MS * 1000000u;
    if (sent == -EDESTADDRREQ)
        stat_add(dp, STAT_DROP_NO_ENDPOINT, n);
    else if (sent < 0)
        stat_add(dp, STAT_DROP_SEND_ERROR, n);
    else if (sent > 0)
        count_sent(dp, peer, pkts, sent, now);
    keep_key_fresh(dp, peer, kp, now);
}

void wg_send_staged(struct wg_dp *dp, struct send_scratch *s, struct peer *peer, uint64_t now)
{
    struct staged_packet *taken[DP_BATCH_SIZE];

    while (peer->staged_head) {
        struct keypair *kp = wg_keypair_sendable(dp, peer, now);
        uint32_t want = atomic_load_explicit(&peer->staged_count, memory_order_relaxed);
        uint64_t first;
        uint32_t got;

        if (want > DP_BATCH_SIZE)
            want = DP_BATCH_SIZE;
        if (!kp || !(got = wg_keypair_reserve(dp, kp, want, &first))) {
            ask_handshake(dp, peer, now);
            return;
        }
        for (uint32_t i = 0; i < got; i++) {
            taken[i] = wg_peer_unstage(peer);
            s->staged[i] = (struct packet){ .data = taken[i]->buf + DP_HEADROOM,
                                            .len = taken[i]->len };
            s->group[i] = &s->staged[i];
        }
        seal_and_send(dp, s, peer, kp, s->group, got, first, now);
        for (uint32_t i = 0; i < got; i++)
            wg_peer_staged_free(dp, taken[i]);
    }
    peer->handshake_asked = false;          /* the staging episode is over */
}

/* n packets of one peer, in order; pkts may be s->group (it is read before
 * wg_send_staged reuses it). */
static void peer_send(struct wg_dp *dp, struct send_scratch *s, struct peer *peer,
                      struct packet **pkts, uint32_t n, uint64_t now)
{
    struct keypair *kp;
    uint32_t got = 0;
    uint64_t first;

    pthread_mutex_lock(&peer->tx_lock);
    if (!peer->staged_head && (kp = wg_keypair_sendable(dp, peer, now)) &&
        (got = wg_keypair_reserve(dp, kp, n, &first)))
        seal_and_send(dp, s, peer, kp, pkts, got, first, now);
    if (got < n) {
        for (uint32_t i = got; i < n; i++)
            wg_peer_stage(dp, peer, pkts[i]->data, pkts[i]->len);
        wg_send_staged(dp, s, peer, now);
    }
    pthread_mutex_unlock(&peer->tx_lock);
}

/* The destination of an IP packet; false if it is not one. */
static bool ip_destination(const uint8_t *pkt, uint32_t len, uint8_t *family,
                           const uint8_t **dst)
{
    if (len >= 20 && pkt[0] >> 4 == 4) {
        *family = 4;
        *dst = pkt + 16;
        return true;
    }
    if (len >= 40 && pkt[0] >> 4 == 6) {
        *family = 6;
        *dst = pkt + 24;
        return true;
    }
    return false;
}

/* A datagram of our own socket that routing sent back into our TUN, towards
 * the very peer whose endpoint it was sent to: the endpoint is reached through
 * the tunnel itself. The kernel module refuses such a send (ELOOP); here the
 * packet is dropped at its first turn instead of circling for ever, growing by
 * our overhead at each turn and splitting into fragments past the MTU. Only
 * our sockets send from our port in this namespace, and a forwarded packet
 * from the same port to exactly this endpoint is no one's traffic but a loop's. */
static bool routing_loop(struct wg_dp *dp, struct peer *peer, const uint8_t *pkt, uint32_t len)
{
    uint16_t port = atomic_load_explicit(&dp->listen_port, memory_order_relaxed);
    struct wg_endpoint ep;
    const uint8_t *udp, *daddr;
    uint8_t family;

    if (pkt[0] >> 4 == 4) {
        uint32_t ihl = (pkt[0] & 0xf) * 4u;
        if (pkt[9] != IPPROTO_UDP || ihl < 20 || len < ihl + 8 || (get_be16(pkt + 6) & 0x1fff))
            return false;
        udp = pkt + ihl;
        daddr = pkt + 16;
        family = 4;
    } else {
        if (pkt[6] != IPPROTO_UDP || len < 48)
            return false;
        udp = pkt + 40;
        daddr = pkt + 24;
        family = 6;
    }
    if (!port || get_be16(udp) != port)
        return false;
    wg_peer_get_endpoint(peer, &ep);
    return ep.family == family && ep.port == get_be16(udp + 2) &&
           memcmp(ep.addr, daddr, family == 4 ? 4 : 16) == 0;
}

struct tx_group {
    struct peer *peer;
    unsigned int head, tail, count;
};

/* Routes each packet to its peer; returns the number of groups. */
static unsigned int route_batch(struct wg_dp *dp, struct loop *l, unsigned int n,
                                struct tx_group *groups, uint64_t now)
{
    unsigned int ngroups = 0;

    for (unsigned int i = 0; i < n; i++) {
        struct packet *p = &l->pkts[i];
        const uint8_t *dst;
        struct peer *peer;
        uint8_t family;

        if (!ip_destination(p->data, p->len, &family, &dst)) {
            stat_add(dp, STAT_DROP_MALFORMED, 1);
            continue;
        }
        peer = wg_device_peer(dp, wg_allowedips_lookup(&dp->allowedips, family, dst));
        if (!peer) {
            stat_add(dp, STAT_DROP_NO_PEER, 1);
            wg_icmp_unreachable(dp, p->data, p->len, now);
            continue;
        }
        if (routing_loop(dp, peer, p->data, p->len)) {
            stat_add(dp, STAT_DROP_LOOP, 1);
            continue;
        }
        p->next = DP_BURST;
        if (peer->tx_batch != l->batch) {
            peer->tx_batch = l->batch;
            peer->tx_group = ngroups;
            groups[ngroups++] = (struct tx_group){ peer, i, i, 0 };
        } else {
            l->pkts[groups[peer->tx_group].tail].next = i;
            groups[peer->tx_group].tail = i;
        }
        groups[peer->tx_group].count++;
    }
    return ngroups;
}

void wg_send_batch(struct wg_dp *dp, struct loop *l, unsigned int n, uint64_t now)
{
    struct tx_group groups[DP_BURST];
    unsigned int ngroups;

    l->batch++;
    ngroups = route_batch(dp, l, n, groups, now);
    for (unsigned int g = 0; g < ngroups; g++) {
        unsigned int k = 0;
        for (unsigned int i = groups[g].head; k < groups[g].count; i = l->pkts[i].next)
            l->send.group[k++] = &l->pkts[i];
        peer_send(dp, &l->send, groups[g].peer, l->send.group, k, now);
    }
}

static void tun_gone(struct wg_dp *dp)
{
    atomic_store(&dp->tun_fd, -1);
    wg_device_notify(dp, WG_EV_TUN_GONE, WG_DP_PEER_NONE, now_ns());
}

/* Reads and sends until the TUN has nothing more for now; false if it is
 * gone. */
static bool drain_tun(struct wg_dp *dp, struct loop *l, short revents)
{
    unsigned int total = 0;
    bool more;
    int n;

    do {
        n = wg_tun_read(dp, l, &more);
        if (n < 0)
            return false;
        /* Nothing but empty reads from a hung-up fd: a TUN-less device's
         * socket whose other end was closed reads as end-of-file for ever. */
        if (n == 0 && more && (revents & POLLHUP))
            return total > 0;
        /* Helpers share the sealing only while the TUN has more than one
         * batch waiting: then the thread is behind. */
        l->send.pool = more ? &l->pool : NULL;
        if (n > 0)
            wg_send_batch(dp, l, (unsigned int)n, now_ns());
        total += (unsigned int)n;
        wg_epoch_quiescent(&dp->epoch, &l->reader);
    } while (more);
    /* An error or hang-up with nothing to read: the other end is gone. */
    return total || !(revents & (POLLERR | POLLHUP | POLLNVAL));
}

void *wg_send_thread(void *arg)
{
    struct loop *l = arg;
    struct wg_dp *dp = l->dp;

    for (;;) {
        struct pollfd pfd[2] = { { dp->stop_fd, POLLIN, 0 },
                                 { atomic_load(&dp->tun_fd), POLLIN, 0 } };
        int ret;

        wg_epoch_offline(&l->reader);
        ret = poll(pfd, pfd[1].fd >= 0 ? 2 : 1, -1);
        if (ret < 0 && errno != EINTR)
            break;
        if (pfd[0].revents)
            break;
        wg_epoch_online(&dp->epoch, &l->reader);
        if (pfd[1].fd >= 0 && pfd[1].revents && !drain_tun(dp, l, pfd[1].revents))
            tun_gone(dp);
        wg_device_try_reclaim(dp);
    }
    wg_epoch_offline(&l->reader);
    return NULL;
}

void wg_send_keepalive(struct wg_dp *dp, struct peer *peer)
{
    uint8_t buf[DP_HEADROOM + DP_TAILROOM];
    struct send_scratch *s = dp->control_scratch;
    uint64_t now = now_ns(), first;
    struct keypair *kp;

    pthread_mutex_lock(&peer->tx_lock);
    if (peer->staged_head) {
        wg_send_staged(dp, s, peer, now);
    } else if ((kp = wg_keypair_sendable(dp, peer, now)) && wg_keypair_reserve(dp, kp, 1, &first)) {
        s->staged[0] = (struct packet){ .data = buf + DP_HEADROOM, .len = 0 };
        s->group[0] = &s->staged[0];
        seal_and_send(dp, s, peer, kp, s->group, 1, first, now);
    } else {
        wg_peer_stage(dp, peer, buf, 0);
        ask_handshake(dp, peer, now);
    }
    pthread_mutex_unlock(&peer->tx_lock);
}

/* One datagram from a control call: the count sent, or -errno. */
static int send_one(struct wg_dp *dp, struct wg_endpoint *ep, const uint8_t *msg, size_t len,
                    bool *rejected)
{
    struct send_scratch *s = dp->control_scratch;
    unsigned int flags = 0;
    int ret;

    *rejected = false;
    if (len > DP_MAX_PACKET)
        return -EMSGSIZE;
    s->bufs[0] = (uint8_t *)msg;
    s->lens[0] = (uint32_t)len;
    ret = wg_socket_send(dp, s, ep, s->bufs, s->lens, 1, &flags);
    *rejected = flags & SEND_SRC_REJECTED;
    return ret == 0 ? -s->err : ret;
}

int wg_send_to_peer(struct wg_dp *dp, struct peer *peer, const uint8_t *msg, size_t len)
{
    struct wg_endpoint ep;
    bool rejected;
    int ret;

    wg_peer_get_endpoint(peer, &ep);
    ret = send_one(dp, &ep, msg, len, &rejected);
    if (rejected)
        wg_peer_forget_src(peer);
    if (ret > 0)
        wg_peer_sent(dp, peer, len, false, now_ns());
    return ret < 0 ? ret : 0;
}

/* The answers of one batch up to DP_BATCH_SIZE: roam, count, install; then
 * the responses in one go, and what that could not send one at a time. */
static int send_answer_batch(struct wg_dp *dp, struct wg_handshake_answer *a, uint32_t n,
                             uint64_t now)
{
    struct reply_batch *b = dp->control_replies;
    struct peer *peers[DP_BATCH_SIZE];
    uint32_t of[DP_BATCH_SIZE];
    uint64_t sent_at;
    int sent = 0;

    b->n = 0;
    for (uint32_t i = 0; i < n; i++) {
        struct peer *peer = wg_device_peer(dp, a[i].peer);
        uint8_t family = a[i].source.family;

        if (family != 4 && family != 6) {
            a[i].result = -EAFNOSUPPORT;
            continue;
        }
        if (!peer) {
            a[i].result = -ENOENT;
            continue;
        }
        wg_peer_set_endpoint(peer, &a[i].source);
        wg_peer_received(dp, peer, a[i].received, false, now);
        if ((a[i].result = wg_keypair_install(dp, peer, &a[i].keypair)))
            continue;
        peers[b->n] = peer;
        of[b->n] = i;
        wg_peer_get_endpoint(peer, &b->to[b->n]);
        b->buf[b->n] = a[i].response;
        b->len[b->n++] = sizeof(a[i].response);
    }
    wg_socket_send_each(dp, b);
    sent_at = now_ns();
    for (unsigned int j = 0; j < b->n; j++) {
        struct wg_handshake_answer *answer = &a[of[j]];

        if (b->sent[j])
            wg_peer_sent(dp, peers[j], sizeof(answer->response), false, sent_at);
        else
            answer->result = wg_send_to_peer(dp, peers[j], answer->response,
                                             sizeof(answer->response));
        sent += answer->result == 0;
    }
    b->n = 0;
    return sent;
}

int wg_send_answers(struct wg_dp *dp, struct wg_handshake_answer *answers, uint32_t n,
                    uint64_t now)
{
    int sent = 0;

    for (uint32_t at = 0; at < n; at += DP_BATCH_SIZE)
        sent += send_answer_batch(dp, answers + at, n - at < DP_BATCH_SIZE ? n - at
                                                                            : DP_BATCH_SIZE, now);
    for (uint32_t i = 0; i < n; i++)
        explicit_bzero(&answers[i].keypair, sizeof(answers[i].keypair));
    return sent;
}

int wg_send_to(struct wg_dp *dp, const struct wg_endpoint *ep, const uint8_t *msg, size_t len)
{
    struct wg_endpoint copy = *ep;
    bool rejected;
    int ret = send_one(dp, &copy, msg, len, &rejected);

    return ret < 0 ? ret : 0;
}
