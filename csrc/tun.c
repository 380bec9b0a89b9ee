/*
 * tun.c - TUN reads and writes; see tun.h.
 *
 * A packet may have up to two headers in front, in this order: struct
 * tun_pi (flags and the EtherType) unless the TUN was opened with
 * IFF_NO_PI, as a TUN adopted from wireguard-go's launcher may be; and a
 * virtio_net_hdr with IFF_VNET_HDR.
 *
 * Reads go straight into the TX arena, each packet with room for the data
 * header in front and the padding and tag behind, where it is sealed in
 * place. A read longer than the room left for it in place (a TSO/USO
 * super-packet, or a packet above DP_TUN_INLINE with a large MTU) spills
 * into a second buffer through readv, and is then cut into the arena
 * (offload.c); a super-packet with more segments than a batch has room for
 * finishes in the next batch.
 *
 * Writes: with IFF_VNET_HDR and TUN coalescing allowed, the opened packets
 * of one batch are grouped (offload.c) and each super-packet written with
 * one writev; a write the kernel refuses is retried packet by packet, and
 * that kind of coalescing switched off, so nothing is lost.
 */
#define _GNU_SOURCE                     /* struct mmsghdr, in6_pktinfo, explicit_bzero */
#include "tun.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "offload.h"

#define PI_LEN 4
#define ETH_P_IPV4 0x0800
#define ETH_P_IPV6 0x86dd
#define SLOT_ALIGN 64
#define GRO_SAVED_MAX 128               /* IPv6 and TCP headers with options: 100 */

int wg_tun_prepare(int fd)
{
    int flags = fcntl(fd, F_GETFL);

    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
        return -errno;
    return 0;
}

/* Bytes in front of each packet. */
static uint32_t prefix_len(const struct wg_dp *dp)
{
    return (dp->tun_pi ? PI_LEN : 0) + (dp->tun_vnet_hdr ? VNET_HDR_LEN : 0);
}

static uint32_t slot_size(uint32_t len)
{
    return (DP_HEADROOM + len + DP_TAILROOM + SLOT_ALIGN - 1) & ~(uint32_t)(SLOT_ALIGN - 1);
}

/* Bytes a read may put in place: the MTU's worth, at least DP_TUN_INLINE. */
static uint32_t inline_len(struct wg_dp *dp)
{
    uint32_t mtu = atomic_load_explicit(&dp->mtu, memory_order_relaxed);

    return mtu > DP_TUN_INLINE ? (mtu < DP_MAX_PACKET ? mtu : DP_MAX_PACKET) : DP_TUN_INLINE;
}

/* Cuts the pending super-packet into the arena from *used on, as far as the
 * batch has room; returns the new packet count. */
static unsigned int cut_pending(struct loop *l, unsigned int n, uint32_t *used)
{
    struct gso_packet *g = &l->pending;

    while (l->pending_next < g->segments && n < DP_BURST) {
        uint32_t len = wg_offload_segment_len(g, l->pending_next);
        uint8_t *data = l->arena + *used + DP_HEADROOM;

        if (*used + slot_size(len) > DP_TX_ARENA)
            break;
        wg_offload_segment(g, l->pending_next++, data);
        l->pkts[n++] = (struct packet){ .data = data, .len = len };
        *used += slot_size(len);
    }
    return n;
}

/* A read that spilled into gso_buf: its first part is in the arena slot;
 * joined there, it becomes the pending packet. 0, or -EINVAL. */
static int take_spilled(struct wg_dp *dp, struct loop *l, uint8_t *slot_start, uint32_t first,
                        uint32_t r)
{
    uint32_t hdr = prefix_len(dp);
    uint8_t *buf = l->gso_buf;
    static const uint8_t no_vnet[VNET_HDR_LEN];

    memcpy(buf, slot_start, first);
    l->pending_next = 0;
    if (wg_offload_read(dp->tun_vnet_hdr ? buf + hdr - VNET_HDR_LEN : no_vnet, buf + hdr,
                        r - hdr, &l->pending)) {
        l->pending.segments = 0;        /* nothing pending */
        return -EINVAL;
    }
    return 0;
}

/* One read into the arena at *used; returns the new packet count, or -errno
 * for an error on the fd, or -EAGAIN when there was nothing. */
static int read_one(struct wg_dp *dp, struct loop *l, int fd, unsigned int n, uint32_t *used)
{
    uint32_t hdr = prefix_len(dp), room = inline_len(dp);
    uint8_t *start = l->arena + *used + DP_HEADROOM - hdr;
    struct iovec iov[2] = { { start, hdr + room },
                            { l->gso_buf + hdr + room, DP_MAX_PACKET - room } };
    struct gso_packet g;
    ssize_t r;

    do
        r = readv(fd, iov, 2);
    while (r < 0 && errno == EINTR);
    stat_add(dp, STAT_TUN_RX_SYSCALLS, 1);
    if (r < 0)
        return -errno;
    /* An empty read is an empty packet: a TUN has no end-of-file (a removed
     * interface reads as EBADFD, or polls as an error). */
    if ((uint32_t)r <= hdr)
        goto malformed;
    if ((uint32_t)r > hdr + room || (dp->tun_vnet_hdr && start[hdr - VNET_HDR_LEN + 1])) {
        /* A super-packet, or too long to stay in place: cut or copied. */
        if (take_spilled(dp, l, start, (uint32_t)r > hdr + room ? hdr + room : (uint32_t)r,
                         (uint32_t)r))
            goto malformed;
        if (l->pending.hdr_len)
            stat_add(dp, STAT_TUN_RX_GSO, 1);
        return (int)cut_pending(l, n, used);
    }
    if (dp->tun_vnet_hdr &&
        wg_offload_read(start + hdr - VNET_HDR_LEN, start + hdr, (uint32_t)r - hdr, &g))
        goto malformed;
    l->pkts[n] = (struct packet){ .data = start + hdr, .len = (uint32_t)r - hdr };
    *used += slot_size((uint32_t)r - hdr);
    return (int)n + 1;
malformed:
    stat_add(dp, STAT_DROP_MALFORMED, 1);
    return (int)n;
}

int wg_tun_read(struct wg_dp *dp, struct loop *l, bool *more)
{
    int fd = atomic_load(&dp->tun_fd);
    uint32_t used = 0, need = slot_size(prefix_len(dp) + inline_len(dp));
    unsigned int n = 0;

    *more = true;
    n = cut_pending(l, n, &used);
    /* Bounded in reads, not only in packets: bad reads must not spin here. */
    for (unsigned int tries = 0; l->pending_next >= l->pending.segments && n < DP_BURST &&
                                 used + need <= DP_TX_ARENA && tries < 2 * DP_BATCH_SIZE;
         tries++) {
        int got = read_one(dp, l, fd, n, &used);

        if (got == -EAGAIN) {
            *more = false;
            break;
        }
        if (got < 0) {
            stat_add(dp, STAT_TUN_RX_PACKETS, n);
            return n ? (int)n : got;
        }
        n = (unsigned int)got;
    }
    stat_add(dp, STAT_TUN_RX_PACKETS, n);
    return (int)n;
}

/* Writes one packet with zeroed headers in front (the bytes before pkt are
 * room for them: the spent data header); 0 or -errno. */
int wg_tun_write(struct wg_dp *dp, uint8_t *pkt, uint32_t len)
{
    int fd = atomic_load(&dp->tun_fd);
    uint32_t hdr = prefix_len(dp);
    ssize_t r;

    if (fd < 0)
        return -EBADF;
    /* The virtio header says "nothing to do" (Poly1305 already proved the
     * packet intact); packet info names the protocol, which the kernel
     * takes from it rather than from the packet. */
    memset(pkt - hdr, 0, hdr);
    if (dp->tun_pi) {
        uint16_t proto = pkt[0] >> 4 == 6 ? ETH_P_IPV6 : ETH_P_IPV4;
        pkt[-(int)hdr + 2] = (uint8_t)(proto >> 8);
        pkt[-(int)hdr + 3] = (uint8_t)proto;
    }
    do
        r = write(fd, pkt - hdr, len + hdr);
    while (r < 0 && errno == EINTR);
    stat_add(dp, STAT_TUN_TX_SYSCALLS, 1);
    return r < 0 ? -errno : 0;
}

static void write_alone(struct wg_dp *dp, struct loop *l, unsigned int i, uint64_t *ok)
{
    struct packet *p = &l->pkts[i];

    if (wg_tun_write(dp, p->data, p->len))
        stat_add(dp, STAT_DROP_TUN_WRITE, 1);
    else
        (*ok)++;
}

/* One super-packet; 0, or -errno with the headers put back. */
static int write_coalesced(struct wg_dp *dp, struct loop *l, const struct gro_item *it)
{
    struct iovec iov[GRO_MAX_SEGMENTS];
    uint8_t saved[GRO_SAVED_MAX];
    uint32_t hdr = prefix_len(dp);
    uint8_t *head = l->pkts[it->head].data;
    int fd = atomic_load(&dp->tun_fd);
    unsigned int niov = wg_gro_prepare(l->pkts, it, hdr, iov, saved);
    ssize_t r;

    if (dp->tun_pi) {
        uint16_t proto = head[0] >> 4 == 6 ? ETH_P_IPV6 : ETH_P_IPV4;
        memset(head - hdr, 0, PI_LEN);
        head[-(int)hdr + 2] = (uint8_t)(proto >> 8);
        head[-(int)hdr + 3] = (uint8_t)proto;
    }
    do
        r = writev(fd, iov, (int)niov);
    while (r < 0 && errno == EINTR);
    stat_add(dp, STAT_TUN_TX_SYSCALLS, 1);
    if (r >= 0)
        return 0;
    wg_gro_restore(l->pkts, it, saved);
    return -errno;
}

/* The kernel does not take super-packets of this kind (no GSO_UDP_L4
 * before Linux 6.2, say), as opposed to failing this one write. */
static bool refused(int err)
{
    return err == -EINVAL || err == -EOPNOTSUPP || err == -EPROTO;
}

void wg_tun_write_batch(struct wg_dp *dp, struct loop *l, unsigned int n)
{
    uint32_t offloads = atomic_load_explicit(&dp->tun_offloads, memory_order_relaxed);
    unsigned int kinds = 0, count;
    uint64_t ok = 0;
    int err;

    if (offloads & WG_DP_OFFLOAD_TUN_TCP_GRO)
        kinds |= 1u << GRO_TCP4 | 1u << GRO_TCP6;
    if (offloads & WG_DP_OFFLOAD_TUN_UDP_GRO)
        kinds |= 1u << GRO_UDP4 | 1u << GRO_UDP6;
    if (!kinds || atomic_load(&dp->tun_fd) < 0) {
        for (unsigned int j = 0; j < n; j++)
            write_alone(dp, l, l->deliver[j], &ok);
        stat_add(dp, STAT_TUN_TX_PACKETS, ok);
        return;
    }
    count = wg_gro_build(l->pkts, l->deliver, n, kinds, &l->gro, l->items);
    for (unsigned int k = 0; k < count; k++) {
        const struct gro_item *it = &l->items[k];
        if (it->count == 1) {
            write_alone(dp, l, it->head, &ok);
            continue;
        }
        err = write_coalesced(dp, l, it);
        if (!err) {
            stat_add(dp, STAT_TUN_TX_GRO, 1);
            ok += it->count;
            continue;
        }
        /* Never lost: one by one. A kernel that takes no super-packets of
         * this kind is not asked again. */
        stat_add(dp, STAT_TUN_GRO_REFUSED, 1);
        if (refused(err))
            atomic_fetch_and(&dp->tun_offloads,
                             it->kind == GRO_TCP4 || it->kind == GRO_TCP6
                                 ? ~(uint32_t)WG_DP_OFFLOAD_TUN_TCP_GRO
                                 : ~(uint32_t)WG_DP_OFFLOAD_TUN_UDP_GRO);
        for (unsigned int i = it->head; i != DP_BURST; i = l->pkts[i].next)
            write_alone(dp, l, i, &ok);
    }
    stat_add(dp, STAT_TUN_TX_PACKETS, ok);
}
