/*
 * socket.c - UDP I/O in batches; see socket.h.
 *
 * IPv4 endpoints go through the IPv4 socket, or as v4-mapped addresses
 * through a dual-stack IPv6 socket when there is no IPv4 one; datagrams
 * that arrive v4-mapped are reported as IPv4. The local address a datagram
 * arrived on becomes the source of replies (the "sticky source"), as in the
 * kernel module and wireguard-go; if the kernel refuses it (the address is
 * gone), the send is retried without it and the caller told to forget it.
 */
#define _GNU_SOURCE                     /* struct mmsghdr, in6_pktinfo, explicit_bzero */
#include "socket.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>

static const uint8_t v4_mapped_prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

void wg_socket_prepare(int udp4_fd, int udp6_fd)
{
    int one = 1;

    /* Failures leave replies without a sticky source: still correct. */
    if (udp4_fd >= 0)
        setsockopt(udp4_fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof(one));
    if (udp6_fd >= 0) {
        setsockopt(udp6_fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof(one));
        setsockopt(udp6_fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof(one));
    }
}

static bool zero16(const uint8_t *p)
{
    static const uint8_t zero[16];
    return memcmp(p, zero, 16) == 0;
}

/* Picks the socket and fills the destination address; 0 or -errno. */
static int destination(struct wg_dp *dp, const struct wg_endpoint *ep, union sockaddr_inet *sa,
                       socklen_t *salen, int *fd, bool *mapped)
{
    int fd4 = atomic_load(&dp->udp4_fd), fd6 = atomic_load(&dp->udp6_fd);

    memset(sa, 0, sizeof(*sa));
    *mapped = false;
    if (ep->family == 4 && fd4 >= 0) {
        sa->in4.sin_family = AF_INET;
        sa->in4.sin_port = htons(ep->port);
        memcpy(&sa->in4.sin_addr, ep->addr, 4);
        *salen = sizeof(sa->in4);
        *fd = fd4;
        return 0;
    }
    if ((ep->family == 4 || ep->family == 6) && fd6 >= 0) {
        sa->in6.sin6_family = AF_INET6;
        sa->in6.sin6_port = htons(ep->port);
        if (ep->family == 4) {
            memcpy(sa->in6.sin6_addr.s6_addr, v4_mapped_prefix, 12);
            memcpy(sa->in6.sin6_addr.s6_addr + 12, ep->addr, 4);
            *mapped = true;
        } else {
            memcpy(sa->in6.sin6_addr.s6_addr, ep->addr, 16);
            sa->in6.sin6_scope_id = ep->scope_id;
        }
        *salen = sizeof(sa->in6);
        *fd = fd6;
        return 0;
    }
    return ep->family == 0 ? -EDESTADDRREQ : -EAFNOSUPPORT;
}

/* The packet-info control message choosing our source address; its length,
 * 0 if the endpoint has no sticky source. */
static size_t source_cmsg(struct send_scratch *s, const struct wg_endpoint *ep, int fd_family,
                          bool mapped)
{
    struct msghdr mh = { .msg_control = s->ctrl.buf, .msg_controllen = sizeof(s->ctrl.buf) };
    struct cmsghdr *cm;

    if (zero16(ep->src_addr) && !ep->src_ifindex)
        return 0;
    memset(s->ctrl.buf, 0, sizeof(s->ctrl.buf));
    cm = CMSG_FIRSTHDR(&mh);
    if (fd_family == 4) {
        struct in_pktinfo info = { .ipi_ifindex = (int)ep->src_ifindex };
        memcpy(&info.ipi_spec_dst, ep->src_addr, 4);
        cm->cmsg_level = IPPROTO_IP;
        cm->cmsg_type = IP_PKTINFO;
        cm->cmsg_len = CMSG_LEN(sizeof(info));
        memcpy(CMSG_DATA(cm), &info, sizeof(info));
        return CMSG_SPACE(sizeof(info));
    } else {
        struct in6_pktinfo info = { .ipi6_ifindex = ep->src_ifindex };
        if (mapped) {
            memcpy(info.ipi6_addr.s6_addr, v4_mapped_prefix, 12);
            memcpy(info.ipi6_addr.s6_addr + 12, ep->src_addr, 4);
        } else {
            memcpy(info.ipi6_addr.s6_addr, ep->src_addr, 16);
        }
        cm->cmsg_level = IPPROTO_IPV6;
        cm->cmsg_type = IPV6_PKTINFO;
        cm->cmsg_len = CMSG_LEN(sizeof(info));
        memcpy(CMSG_DATA(cm), &info, sizeof(info));
        return CMSG_SPACE(sizeof(info));
    }
}

/* Waits for room in the send buffer; false on stop or after DP_SEND_WAIT_MS. */
static bool wait_writable(struct wg_dp *dp, int fd, int *waited_ms)
{
    struct pollfd pfd[2] = { { fd, POLLOUT, 0 }, { dp->stop_fd, POLLIN, 0 } };
    int slice = 50;

    if (*waited_ms >= DP_SEND_WAIT_MS)
        return false;
    *waited_ms += slice;
    if (poll(pfd, 2, slice) < 0 && errno != EINTR)
        return false;
    return !pfd[1].revents;
}

int wg_socket_send(struct wg_dp *dp, struct send_scratch *s, struct wg_endpoint *ep,
                   uint8_t *const *bufs, const uint32_t *lens, unsigned int n,
                   bool *src_rejected)
{
    unsigned int next = 0, sent = 0;
    socklen_t salen;
    size_t ctrl_len;
    int fd, ret, waited = 0;
    bool mapped;

    *src_rejected = false;
    s->err = 0;
    ret = destination(dp, ep, &s->dst, &salen, &fd, &mapped);
    if (ret)
        return ret;
    ctrl_len = source_cmsg(s, ep, s->dst.sa.sa_family == AF_INET ? 4 : 6, mapped);
    for (unsigned int i = 0; i < n; i++) {
        s->iov[i] = (struct iovec){ bufs[i], lens[i] };
        s->msgs[i].msg_hdr = (struct msghdr){
            .msg_name = &s->dst, .msg_namelen = salen, .msg_iov = &s->iov[i], .msg_iovlen = 1,
            .msg_control = ctrl_len ? s->ctrl.buf : NULL, .msg_controllen = ctrl_len,
        };
    }
    while (next < n) {
        int err;

        ret = sendmmsg(fd, s->msgs + next, n - next, MSG_DONTWAIT | MSG_NOSIGNAL);
        err = errno;
        stat_add(dp, STAT_UDP_TX_SYSCALLS, 1);
        if (ret > 0) {
            next += (unsigned int)ret;
            sent += (unsigned int)ret;
            continue;
        }
        if (ret == 0 || err == EINTR)
            continue;
        if ((err == EAGAIN || err == ENOBUFS) && wait_writable(dp, fd, &waited))
            continue;
        if ((err == EINVAL || err == EADDRNOTAVAIL || err == ENETUNREACH) && ctrl_len) {
            /* Our old address is gone (IPv4 reports ENETUNREACH for a source that is
             * no longer local, IPv6 EINVAL): let the kernel choose one. */
            for (unsigned int i = next; i < n; i++) {
                s->msgs[i].msg_hdr.msg_control = NULL;
                s->msgs[i].msg_hdr.msg_controllen = 0;
            }
            ctrl_len = 0;
            memset(ep->src_addr, 0, sizeof(ep->src_addr));
            ep->src_ifindex = 0;
            *src_rejected = true;
            continue;
        }
        s->err = err;
        if (err == EAGAIN || err == ENOBUFS) {
            /* Stopping, or no room for a whole second: drop the rest. */
            stat_add(dp, STAT_DROP_SEND_ERROR, n - next);
            break;
        }
        stat_add(dp, STAT_DROP_SEND_ERROR, 1);
        next++;                             /* skip the one the kernel refused */
    }
    stat_add(dp, STAT_UDP_TX_PACKETS, sent);
    return (int)sent;
}

int wg_socket_receive(struct wg_dp *dp, struct loop *l, int fd)
{
    int n;

    for (unsigned int i = 0; i < DP_BATCH_SIZE; i++) {
        l->iov[i] = (struct iovec){ loop_buffer(l, i) + DP_HEADROOM - MESSAGE_DATA_HEADER_SIZE,
                                    DP_MAX_PACKET };
        l->msgs[i].msg_hdr = (struct msghdr){
            .msg_name = &l->names[i], .msg_namelen = sizeof(l->names[i]),
            .msg_iov = &l->iov[i], .msg_iovlen = 1,
            .msg_control = l->ctrl[i].buf, .msg_controllen = sizeof(l->ctrl[i].buf),
        };
    }
    n = recvmmsg(fd, l->msgs, DP_BATCH_SIZE, MSG_DONTWAIT, NULL);
    stat_add(dp, STAT_UDP_RX_SYSCALLS, 1);
    if (n < 0)
        return errno == EAGAIN || errno == EINTR ? 0 : -errno;
    for (int i = 0; i < n; i++) {
        struct packet *p = &l->pkts[i];
        *p = (struct packet){ .data = loop_buffer(l, (unsigned int)i) + DP_HEADROOM,
                              .wire_len = l->msgs[i].msg_len };
        if (l->msgs[i].msg_hdr.msg_flags & MSG_TRUNC)
            p->drop = STAT_DROP_MALFORMED;
    }
    stat_add(dp, STAT_UDP_RX_PACKETS, (uint64_t)n);
    return n;
}

static void source_from_cmsgs(struct msghdr *mh, struct wg_endpoint *ep)
{
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm; cm = CMSG_NXTHDR(mh, cm)) {
        if (cm->cmsg_level == IPPROTO_IP && cm->cmsg_type == IP_PKTINFO && ep->family == 4) {
            struct in_pktinfo info;
            memcpy(&info, CMSG_DATA(cm), sizeof(info));
            memcpy(ep->src_addr, &info.ipi_spec_dst, 4);
            ep->src_ifindex = (uint32_t)info.ipi_ifindex;
        } else if (cm->cmsg_level == IPPROTO_IPV6 && cm->cmsg_type == IPV6_PKTINFO) {
            struct in6_pktinfo info;
            memcpy(&info, CMSG_DATA(cm), sizeof(info));
            if (ep->family == 4 && memcmp(info.ipi6_addr.s6_addr, v4_mapped_prefix, 12) == 0)
                memcpy(ep->src_addr, info.ipi6_addr.s6_addr + 12, 4);
            else if (ep->family == 6)
                memcpy(ep->src_addr, info.ipi6_addr.s6_addr, 16);
            ep->src_ifindex = info.ipi6_ifindex;
        }
    }
}

void wg_socket_source(struct loop *l, unsigned int i, struct wg_endpoint *ep)
{
    const union sockaddr_inet *sa = &l->names[i];

    memset(ep, 0, sizeof(*ep));
    if (sa->sa.sa_family == AF_INET) {
        ep->family = 4;
        memcpy(ep->addr, &sa->in4.sin_addr, 4);
        ep->port = ntohs(sa->in4.sin_port);
    } else if (sa->sa.sa_family == AF_INET6) {
        const uint8_t *a = sa->in6.sin6_addr.s6_addr;
        if (memcmp(a, v4_mapped_prefix, 12) == 0) {
            ep->family = 4;
            memcpy(ep->addr, a + 12, 4);
        } else {
            ep->family = 6;
            memcpy(ep->addr, a, 16);
            ep->scope_id = sa->in6.sin6_scope_id;
        }
        ep->port = ntohs(sa->in6.sin6_port);
    } else {
        return;
    }
    source_from_cmsgs(&l->msgs[i].msg_hdr, ep);
}
