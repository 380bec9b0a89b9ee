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

/* UDP_SEGMENT and UDP_GRO as the kernel names them (linux/udp.h). */
#ifndef SOL_UDP
#define SOL_UDP 17
#endif
#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif

_Static_assert(CMSG_SPACE(sizeof(struct in6_pktinfo)) + CMSG_SPACE(sizeof(uint16_t)) <=
                   DP_SEND_CMSG_SIZE, "DP_SEND_CMSG_SIZE holds a source and a segment size");

/* The offloads one socket takes: UDP_SEGMENT is probed (getsockopt answers
 * where the kernel has it), UDP_GRO switched on or off as allowed. */
static uint32_t socket_offloads(int fd, uint32_t allowed)
{
    uint32_t got = 0;
    int value = 0, on = !!(allowed & WG_DP_OFFLOAD_UDP_GRO);
    socklen_t len = sizeof(value);

    if (fd < 0)
        return 0;
    if ((allowed & WG_DP_OFFLOAD_UDP_GSO) &&
        getsockopt(fd, SOL_UDP, UDP_SEGMENT, &value, &len) == 0)
        got |= WG_DP_OFFLOAD_UDP_GSO;
    if (setsockopt(fd, SOL_UDP, UDP_GRO, &on, sizeof(on)) == 0 && on)
        got |= WG_DP_OFFLOAD_UDP_GRO;
    return got;
}

/* The port the sockets are bound to (both have the same one); 0 if neither
 * says. */
static uint16_t bound_port(int udp4_fd, int udp6_fd)
{
    union sockaddr_inet sa;
    socklen_t len = sizeof(sa);
    int fd = udp4_fd >= 0 ? udp4_fd : udp6_fd;

    if (fd < 0 || getsockname(fd, &sa.sa, &len) != 0)
        return 0;
    return ntohs(sa.sa.sa_family == AF_INET6 ? sa.in6.sin6_port : sa.in4.sin_port);
}

void wg_socket_prepare(struct wg_dp *dp, int udp4_fd, int udp6_fd)
{
    int one = 1;

    /* Failures leave replies without a sticky source: still correct. */
    if (udp4_fd >= 0)
        setsockopt(udp4_fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof(one));
    if (udp6_fd >= 0) {
        setsockopt(udp6_fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof(one));
        setsockopt(udp6_fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof(one));
    }
    atomic_store(&dp->udp4_offloads, socket_offloads(udp4_fd, dp->offloads));
    atomic_store(&dp->udp6_offloads, socket_offloads(udp6_fd, dp->offloads));
    atomic_store(&dp->listen_port, bound_port(udp4_fd, udp6_fd));
}

static uint32_t fd_offloads(struct wg_dp *dp, int fd)
{
    if (fd == atomic_load(&dp->udp4_fd))
        return atomic_load_explicit(&dp->udp4_offloads, memory_order_relaxed);
    if (fd == atomic_load(&dp->udp6_fd))
        return atomic_load_explicit(&dp->udp6_offloads, memory_order_relaxed);
    return 0;
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

/* The packet-info control message choosing our source address, written to
 * buf (size >= DP_SEND_CMSG_SIZE); its length, 0 if the endpoint has no sticky
 * source. */
static size_t source_cmsg_into(char *buf, size_t size, const struct wg_endpoint *ep,
                               int fd_family, bool mapped)
{
    struct msghdr mh = { .msg_control = buf, .msg_controllen = size };
    struct cmsghdr *cm;

    if (zero16(ep->src_addr) && !ep->src_ifindex)
        return 0;
    memset(buf, 0, size);
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

static size_t source_cmsg(struct send_scratch *s, const struct wg_endpoint *ep, int fd_family,
                          bool mapped)
{
    return source_cmsg_into(s->ctrl.buf, sizeof(s->ctrl.buf), ep, fd_family, mapped);
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

/* Datagrams from..n-1 as messages from message m on: one datagram each, or
 * with gso runs of up to DP_UDP_MAX_SEGMENTS equal-size datagrams (a shorter
 * one ends a run) and DP_UDP_GSO_MAX_BYTES. Returns the message count. */
static unsigned int build_messages(struct send_scratch *s, uint8_t *const *bufs,
                                   const uint32_t *lens, unsigned int m, unsigned int from,
                                   unsigned int n, socklen_t salen, size_t ctrl_len, bool gso)
{
    for (unsigned int i = from; i < n; m++) {
        uint32_t size = lens[i], total = size;
        unsigned int k = 1;
        struct msghdr *mh = &s->msgs[m].msg_hdr;

        s->iov[i] = (struct iovec){ bufs[i], lens[i] };
        while (gso && i + k < n && k < DP_UDP_MAX_SEGMENTS && lens[i + k - 1] == size &&
               lens[i + k] <= size && total + lens[i + k] <= DP_UDP_GSO_MAX_BYTES) {
            s->iov[i + k] = (struct iovec){ bufs[i + k], lens[i + k] };
            total += lens[i + k++];
        }
        *mh = (struct msghdr){ .msg_name = &s->dst, .msg_namelen = salen,
                               .msg_iov = &s->iov[i], .msg_iovlen = k };
        if (k > 1) {
            struct cmsghdr *cm;
            uint16_t seg = (uint16_t)size;

            memcpy(s->seg_ctrl[m].buf, s->ctrl.buf, ctrl_len);
            mh->msg_control = s->seg_ctrl[m].buf;
            mh->msg_controllen = ctrl_len + CMSG_SPACE(sizeof(seg));
            cm = (struct cmsghdr *)(s->seg_ctrl[m].buf + ctrl_len);
            memset(cm, 0, CMSG_SPACE(sizeof(seg)));
            cm->cmsg_level = SOL_UDP;
            cm->cmsg_type = UDP_SEGMENT;
            cm->cmsg_len = CMSG_LEN(sizeof(seg));
            memcpy(CMSG_DATA(cm), &seg, sizeof(seg));
        } else if (ctrl_len) {
            mh->msg_control = s->ctrl.buf;
            mh->msg_controllen = ctrl_len;
        }
        s->first[m] = (uint16_t)i;
        s->segs[m] = (uint16_t)k;
        i += k;
    }
    return m;
}

/* Our old address is gone (IPv4 reports ENETUNREACH for a source that is
 * no longer local, IPv6 EINVAL): let the kernel choose one from now on. */
static void drop_source(struct send_scratch *s, struct wg_endpoint *ep, unsigned int from,
                        unsigned int nm)
{
    for (unsigned int m = from; m < nm; m++) {
        struct msghdr *mh = &s->msgs[m].msg_hdr;
        if (s->segs[m] > 1) {
            /* Keep the segment size: move it to the front. */
            size_t src_len = mh->msg_controllen - CMSG_SPACE(sizeof(uint16_t));
            memmove(s->seg_ctrl[m].buf, s->seg_ctrl[m].buf + src_len,
                    CMSG_SPACE(sizeof(uint16_t)));
            mh->msg_controllen = CMSG_SPACE(sizeof(uint16_t));
        } else {
            mh->msg_control = NULL;
            mh->msg_controllen = 0;
        }
    }
    memset(ep->src_addr, 0, sizeof(ep->src_addr));
    ep->src_ifindex = 0;
}

static unsigned int datagrams(const struct send_scratch *s, unsigned int from, unsigned int to)
{
    unsigned int count = 0;

    for (unsigned int m = from; m < to; m++)
        count += s->segs[m];
    return count;
}

int wg_socket_send(struct wg_dp *dp, struct send_scratch *s, struct wg_endpoint *ep,
                   uint8_t *const *bufs, const uint32_t *lens, unsigned int n,
                   unsigned int *flags)
{
    unsigned int next = 0, sent = 0, nm, gso_sent = 0;
    socklen_t salen;
    size_t ctrl_len;
    int fd, ret, waited = 0;
    bool mapped, gso, no_wait;

    gso = (*flags & SEND_GSO) != 0;
    no_wait = (*flags & SEND_NO_WAIT) != 0;
    *flags = 0;
    s->err = 0;
    ret = destination(dp, ep, &s->dst, &salen, &fd, &mapped);
    if (ret)
        return ret;
    gso = gso && (fd_offloads(dp, fd) & WG_DP_OFFLOAD_UDP_GSO);
    ctrl_len = source_cmsg(s, ep, s->dst.sa.sa_family == AF_INET ? 4 : 6, mapped);
    nm = build_messages(s, bufs, lens, 0, 0, n, salen, ctrl_len, gso);
    while (next < nm) {
        int err;

        ret = sendmmsg(fd, s->msgs + next, nm - next, MSG_DONTWAIT | MSG_NOSIGNAL);
        err = errno;
        stat_add(dp, STAT_UDP_TX_SYSCALLS, 1);
        if (ret > 0) {
            for (unsigned int m = next; m < next + (unsigned int)ret; m++)
                gso_sent += s->segs[m] > 1;
            sent += datagrams(s, next, next + (unsigned int)ret);
            next += (unsigned int)ret;
            continue;
        }
        if (ret == 0 || err == EINTR)
            continue;
        if ((err == EAGAIN || err == ENOBUFS) && !no_wait && wait_writable(dp, fd, &waited))
            continue;
        if (s->segs[next] > 1 && err != EAGAIN && err != ENOBUFS) {
            /* The kernel or the path refused the segmentation (EIO: no
             * checksum offload on the way out; EINVAL: a segment longer
             * than the path MTU, ...): the rest go one datagram each, which
             * the kernel may fragment; the caller avoids it for a while. */
            *flags |= SEND_GSO_REFUSED;
            stat_add(dp, STAT_UDP_GSO_REFUSED, 1);
            nm = build_messages(s, bufs, lens, next, s->first[next], n, salen, ctrl_len, false);
            continue;
        }
        if ((err == EINVAL || err == EADDRNOTAVAIL || err == ENETUNREACH) && ctrl_len) {
            drop_source(s, ep, next, nm);
            ctrl_len = 0;
            *flags |= SEND_SRC_REJECTED;
            continue;
        }
        s->err = err;
        if (err == EAGAIN || err == ENOBUFS) {
            /* Stopping, or no room for a whole second: drop the rest. */
            stat_add(dp, STAT_DROP_SEND_ERROR, datagrams(s, next, nm));
            break;
        }
        stat_add(dp, STAT_DROP_SEND_ERROR, 1);
        next++;                             /* skip the one the kernel refused */
    }
    stat_add(dp, STAT_UDP_TX_PACKETS, sent);
    if (gso_sent)
        stat_add(dp, STAT_UDP_TX_GSO, gso_sent);
    return (int)sent;
}

/* The replies going out through fd: as messages of one sendmmsg, each with
 * its own destination and source. */
static unsigned int build_replies(struct wg_dp *dp, struct reply_batch *b, int fd)
{
    unsigned int m = 0;

    for (unsigned int i = 0; i < b->n; i++) {
        struct mmsghdr *mm = &b->msgs[m];
        socklen_t salen;
        bool mapped;
        int to_fd;

        if (destination(dp, &b->to[i], &b->names[m], &salen, &to_fd, &mapped) || to_fd != fd)
            continue;
        b->iov[m] = (struct iovec){ (void *)b->buf[i], b->len[i] };
        b->item[m] = i;
        memset(&mm->msg_hdr, 0, sizeof(mm->msg_hdr));
        mm->msg_hdr.msg_name = &b->names[m];
        mm->msg_hdr.msg_namelen = salen;
        mm->msg_hdr.msg_iov = &b->iov[m];
        mm->msg_hdr.msg_iovlen = 1;
        mm->msg_hdr.msg_controllen = source_cmsg_into(
            b->ctrl[m].buf, sizeof(b->ctrl[m].buf), &b->to[i],
            b->names[m].sa.sa_family == AF_INET ? 4 : 6, mapped);
        mm->msg_hdr.msg_control = mm->msg_hdr.msg_controllen ? b->ctrl[m].buf : NULL;
        m++;
    }
    return m;
}

unsigned int wg_socket_send_each(struct wg_dp *dp, struct reply_batch *b)
{
    int fds[2] = { atomic_load(&dp->udp4_fd), atomic_load(&dp->udp6_fd) };
    unsigned int sent = 0;

    memset(b->sent, 0, sizeof(b->sent));
    for (int k = 0; k < 2; k++) {
        unsigned int m, next = 0;

        if (fds[k] < 0 || !(m = build_replies(dp, b, fds[k])))
            continue;
        while (next < m) {
            int ret = sendmmsg(fds[k], b->msgs + next, m - next, MSG_DONTWAIT | MSG_NOSIGNAL);
            stat_add(dp, STAT_UDP_TX_SYSCALLS, 1);
            if (ret <= 0) {
                if (ret < 0 && errno == EINTR)
                    continue;
                break;                      /* a full send buffer, or a refusal */
            }
            next += (unsigned int)ret;
        }
        for (unsigned int j = 0; j < next; j++)
            b->sent[b->item[j]] = true;
        sent += next;
    }
    stat_add(dp, STAT_UDP_TX_PACKETS, sent);
    return sent;
}

unsigned int wg_socket_send_replies(struct wg_dp *dp, struct reply_batch *b)
{
    unsigned int sent = wg_socket_send_each(dp, b);

    /* What did not go is dropped, never waited for, so that a flood cannot
     * stall the receive thread. */
    stat_add(dp, STAT_DROP_SEND_ERROR, b->n - sent);
    b->n = 0;
    return sent;
}

/* The segment size of a coalesced receive, 0 if it is one datagram. */
static uint32_t gro_size(struct msghdr *mh)
{
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm; cm = CMSG_NXTHDR(mh, cm)) {
        int size;
        if (cm->cmsg_level != SOL_UDP || cm->cmsg_type != UDP_GRO ||
            cm->cmsg_len < CMSG_LEN(sizeof(size)))
            continue;
        memcpy(&size, CMSG_DATA(cm), sizeof(size));
        return size > 0 ? (uint32_t)size : 0;
    }
    return 0;
}

/* How many packets received message i makes. */
static uint32_t message_segments(struct loop *l, unsigned int i)
{
    uint32_t len = l->msgs[i].msg_len, seg = gro_size(&l->msgs[i].msg_hdr), count;

    if (!seg || seg >= len || (l->msgs[i].msg_hdr.msg_flags & MSG_TRUNC))
        return 1;
    count = (len + seg - 1) / seg;
    return count < DP_UDP_GRO_MAX_SEGMENTS ? count : DP_UDP_GRO_MAX_SEGMENTS;
}

/* Splits received message i into packets from l->pkts[n] on, in place: each
 * datagram keeps its bytes where they landed. Returns the new count. */
static unsigned int split_message(struct wg_dp *dp, struct loop *l, unsigned int i,
                                  unsigned int n)
{
    struct msghdr *mh = &l->msgs[i].msg_hdr;
    uint32_t len = l->msgs[i].msg_len, seg = gro_size(mh), off = 0;
    uint8_t *data = loop_buffer(l, i) + DP_HEADROOM;

    if (mh->msg_flags & MSG_TRUNC) {
        l->pkts[n] = (struct packet){ .data = data, .msg = i, .drop = STAT_DROP_MALFORMED };
        return n + 1;
    }
    if (!seg || seg >= len) {
        l->pkts[n] = (struct packet){ .data = data, .wire_len = len, .msg = i };
        return n + 1;
    }
    stat_add(dp, STAT_UDP_RX_GRO, 1);
    for (unsigned int k = 0; off < len; k++, off += seg) {
        if (k == DP_UDP_GRO_MAX_SEGMENTS) {
            /* No sender makes more: count the rest, keep the batch bounded. */
            stat_add(dp, STAT_DROP_MALFORMED, (len - off + seg - 1) / seg);
            break;
        }
        l->pkts[n++] = (struct packet){ .data = data + off,
                                        .wire_len = len - off < seg ? len - off : seg,
                                        .msg = i };
    }
    return n;
}

/* A batch of datagrams from the socket, every buffer one datagram or, with
 * UDP_GRO, a coalesced run; l->rx_count of them, from l->rx_next on still
 * to be split. */
static int receive_messages(struct wg_dp *dp, struct loop *l, int fd)
{
    int got;

    for (unsigned int i = 0; i < DP_BATCH_SIZE; i++) {
        l->iov[i] = (struct iovec){ loop_buffer(l, i) + DP_HEADROOM - MESSAGE_DATA_HEADER_SIZE,
                                    DP_MAX_PACKET };
        l->msgs[i].msg_hdr = (struct msghdr){
            .msg_name = &l->names[i], .msg_namelen = sizeof(l->names[i]),
            .msg_iov = &l->iov[i], .msg_iovlen = 1,
            .msg_control = l->ctrl[i].buf, .msg_controllen = sizeof(l->ctrl[i].buf),
        };
    }
    got = recvmmsg(fd, l->msgs, DP_BATCH_SIZE, MSG_DONTWAIT, NULL);
    stat_add(dp, STAT_UDP_RX_SYSCALLS, 1);
    if (got < 0)
        return errno == EAGAIN || errno == EINTR ? 0 : -errno;
    l->rx_next = 0;
    l->rx_count = (unsigned int)got;
    l->rx_full = got == DP_BATCH_SIZE;
    return got;
}

int wg_socket_receive(struct wg_dp *dp, struct loop *l, int fd, bool *more)
{
    unsigned int n = 0;
    int got;

    _Static_assert(DP_BURST >= DP_UDP_GRO_MAX_SEGMENTS, "a coalesced datagram fits a batch");
    *more = false;
    if (l->rx_next >= l->rx_count && (got = receive_messages(dp, l, fd)) <= 0)
        return got;
    /* As many datagrams as the batch has room for; the rest wait their turn
     * in their buffers. */
    while (l->rx_next < l->rx_count && n + message_segments(l, l->rx_next) <= DP_BURST)
        n = split_message(dp, l, l->rx_next++, n);
    *more = l->rx_next < l->rx_count || l->rx_full;
    stat_add(dp, STAT_UDP_RX_PACKETS, n);
    return (int)n;
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

void wg_socket_source(struct loop *l, unsigned int msg, struct wg_endpoint *ep)
{
    const union sockaddr_inet *sa = &l->names[msg];

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
    source_from_cmsgs(&l->msgs[msg].msg_hdr, ep);
}
