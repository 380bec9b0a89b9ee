/*
 * tun.c - TUN reads and writes; see tun.h.
 *
 * A packet may have up to two headers in front, in this order: struct
 * tun_pi (flags and the EtherType) unless the TUN was opened with
 * IFF_NO_PI, as a TUN adopted from wireguard-go's launcher may be; and a
 * virtio_net_hdr with IFF_VNET_HDR. The data plane asks for no offloads
 * yet, so the kernel sends no GSO packets; a packet whose checksum it left
 * to us (NEEDS_CSUM) gets it here, since the peer will not compute it.
 */
#define _GNU_SOURCE                     /* struct mmsghdr, in6_pktinfo, explicit_bzero */
#include "tun.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#define PI_LEN 4
#define ETH_P_IPV4 0x0800
#define ETH_P_IPV6 0x86dd
#define VNET_HDR_LEN 10
#define VNET_F_NEEDS_CSUM 1
#define VNET_GSO_NONE 0

int wg_tun_prepare(int fd)
{
    int flags = fcntl(fd, F_GETFL);

    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
        return -errno;
    return 0;
}

static uint16_t get_le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

/* Applies a virtio header to the packet behind it; false if it cannot. */
static bool vnet_apply(const uint8_t *hdr, uint8_t *pkt, uint32_t len)
{
    uint16_t start, offset;
    uint16_t sum;

    if (hdr[1] != VNET_GSO_NONE)
        return false;
    if (!(hdr[0] & VNET_F_NEEDS_CSUM))
        return true;
    start = get_le16(hdr + 6);
    offset = get_le16(hdr + 8);
    if ((uint32_t)start + offset + 2 > len)
        return false;
    /* The field holds the pseudo-header sum; fold the rest over it. */
    sum = wg_csum_fold(wg_csum_add(0, pkt + start, len - start));
    pkt[start + offset] = (uint8_t)(sum >> 8);
    pkt[start + offset + 1] = (uint8_t)sum;
    return true;
}

/* Bytes in front of each packet. */
static uint32_t prefix_len(const struct wg_dp *dp)
{
    return (dp->tun_pi ? PI_LEN : 0) + (dp->tun_vnet_hdr ? VNET_HDR_LEN : 0);
}

/* Checks the headers in front of a packet read from the TUN. */
static bool prefix_ok(const struct wg_dp *dp, const uint8_t *buf, uint8_t *pkt, uint32_t len)
{
    const uint8_t *vnet = buf + (dp->tun_pi ? PI_LEN : 0);

    return !dp->tun_vnet_hdr || vnet_apply(vnet, pkt, len);
}

int wg_tun_read(struct wg_dp *dp, struct loop *l)
{
    int fd = atomic_load(&dp->tun_fd);
    uint32_t hdr = prefix_len(dp);
    unsigned int n = 0;

    /* Bounded in reads, not only in packets: bad reads must not spin here. */
    for (unsigned int tries = 0; n < DP_BATCH_SIZE && tries < 2 * DP_BATCH_SIZE; tries++) {
        uint8_t *buf = loop_buffer(l, n) + DP_HEADROOM - hdr;
        ssize_t r = read(fd, buf, DP_MAX_PACKET + hdr);

        stat_add(dp, STAT_TUN_RX_SYSCALLS, 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && errno == EAGAIN)
            break;
        if (r < 0)
            return n ? (int)n : -errno;
        /* An empty read is an empty packet: a TUN has no end-of-file (a
         * removed interface reads as EBADFD, or polls as an error). */
        if ((uint32_t)r <= hdr || !prefix_ok(dp, buf, buf + hdr, (uint32_t)r - hdr)) {
            stat_add(dp, STAT_DROP_MALFORMED, 1);
            continue;
        }
        l->pkts[n] = (struct packet){ .data = buf + hdr, .len = (uint32_t)r - hdr };
        n++;
    }
    stat_add(dp, STAT_TUN_RX_PACKETS, n);
    return (int)n;
}

int wg_tun_write(struct wg_dp *dp, uint8_t *pkt, uint32_t len)
{
    int fd = atomic_load(&dp->tun_fd);
    uint32_t hdr = prefix_len(dp);
    ssize_t r;

    if (fd < 0)
        return -EBADF;
    /* The bytes before pkt are the spent data header: room for the
     * headers. The virtio one says "nothing to do" (Poly1305 already proved
     * the packet intact); packet info names the protocol, which the kernel
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
