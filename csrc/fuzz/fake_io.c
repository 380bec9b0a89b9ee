/*
 * fake_io.c - in-memory TUN and UDP for the fuzz drivers; see fake_io.h.
 *
 * Everything lives in one arena and a few fixed tables, reset per input, so
 * that the fuzz loop allocates nothing.
 */
#define _GNU_SOURCE
#include "fake_io.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/udp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif

#define ARENA_BYTES (32u << 20)
#define MAX_RECORDS 65536

int fake_tun_fd = -1, fake_udp4_fd = -1, fake_udp6_fd = -1;

struct blob {
    size_t off, len;
};

struct queued_dgram {
    int fd;
    struct blob data;
    struct fake_dgram meta;
};

static uint8_t *arena;
static size_t arena_used;
static struct blob tun_reads[MAX_RECORDS], tun_writes[MAX_RECORDS];
static size_t tun_reads_n, tun_reads_next, tun_writes_n;
static struct queued_dgram udp_in[MAX_RECORDS];
static size_t udp_in_n, udp_in_next;
static struct fake_sent udp_out[MAX_RECORDS];
static size_t udp_out_n;

ssize_t __real_readv(int fd, const struct iovec *iov, int iovcnt);
ssize_t __real_write(int fd, const void *buf, size_t len);
ssize_t __real_writev(int fd, const struct iovec *iov, int iovcnt);
int __real_recvmmsg(int fd, struct mmsghdr *msgs, unsigned int vlen, int flags,
                    struct timespec *timeout);
int __real_sendmmsg(int fd, struct mmsghdr *msgs, unsigned int vlen, int flags);
ssize_t __wrap_readv(int fd, const struct iovec *iov, int iovcnt);
ssize_t __wrap_write(int fd, const void *buf, size_t len);
ssize_t __wrap_writev(int fd, const struct iovec *iov, int iovcnt);
int __wrap_recvmmsg(int fd, struct mmsghdr *msgs, unsigned int vlen, int flags,
                    struct timespec *timeout);
int __wrap_sendmmsg(int fd, struct mmsghdr *msgs, unsigned int vlen, int flags);

static void die(const char *what)
{
    fprintf(stderr, "fake_io: %s\n", what);
    abort();
}

void fake_io_init(void)
{
    if (arena)
        return;
    arena = malloc(ARENA_BYTES);
    fake_tun_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    fake_udp4_fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    fake_udp6_fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (!arena || fake_tun_fd < 0 || fake_udp4_fd < 0 || fake_udp6_fd < 0)
        die("cannot open the stand-in fds");
}

void fake_io_reset(void)
{
    arena_used = 0;
    tun_reads_n = tun_reads_next = tun_writes_n = 0;
    udp_in_n = udp_in_next = udp_out_n = 0;
}

void fake_settings(struct wg_dp_settings *s)
{
    fake_io_init();
    *s = (struct wg_dp_settings){
        .tun_fd = fake_tun_fd, .udp4_fd = fake_udp4_fd, .udp6_fd = fake_udp6_fd,
        .mtu = 1420, .max_peers = 8, .event_ring_size = 64, .crypto_threads = 1,
        .timing = {
            .rekey_after_time_ns = 120000000000ull, .reject_after_time_ns = 180000000000ull,
            .keepalive_timeout_ns = 10000000000ull, .rekey_timeout_ns = 5000000000ull,
            .rekey_after_messages = 1ull << 60,
            .reject_after_messages = UINT64_MAX - (1ull << 13),
        },
    };
}

static uint8_t *arena_take(size_t len, struct blob *b)
{
    if (len > ARENA_BYTES - arena_used)
        die("arena full: a driver queued or recorded too much for one input");
    b->off = arena_used;
    b->len = len;
    arena_used += (len + 15) & ~(size_t)15;
    return arena + b->off;
}

/* ---- TUN -------------------------------------------------------------------- */

void fake_tun_queue(const uint8_t *data, size_t len)
{
    if (tun_reads_n == MAX_RECORDS)
        die("too many TUN reads queued");
    memcpy(arena_take(len, &tun_reads[tun_reads_n++]), data, len);
}

size_t fake_tun_queue_left(void)
{
    return tun_reads_n - tun_reads_next;
}

size_t fake_tun_write_count(void)
{
    return tun_writes_n;
}

const uint8_t *fake_tun_write_at(size_t i, size_t *len)
{
    *len = tun_writes[i].len;
    return arena + tun_writes[i].off;
}

static size_t iov_total(const struct iovec *iov, int iovcnt)
{
    size_t total = 0;

    for (int i = 0; i < iovcnt; i++)
        total += iov[i].iov_len;
    return total;
}

/* The iovecs gathered into a new record. */
static struct blob gather(const struct iovec *iov, int iovcnt)
{
    struct blob b;
    uint8_t *dst = arena_take(iov_total(iov, iovcnt), &b);

    for (int i = 0; i < iovcnt; i++) {
        memcpy(dst, iov[i].iov_base, iov[i].iov_len);
        dst += iov[i].iov_len;
    }
    return b;
}

ssize_t __wrap_readv(int fd, const struct iovec *iov, int iovcnt)
{
    const uint8_t *src;
    size_t left, copied = 0;

    if (fd != fake_tun_fd)
        return __real_readv(fd, iov, iovcnt);
    if (tun_reads_next == tun_reads_n) {
        errno = EAGAIN;
        return -1;
    }
    src = arena + tun_reads[tun_reads_next].off;
    left = tun_reads[tun_reads_next++].len;
    /* A TUN read hands over one packet, cut to the buffer if it is longer. */
    for (int i = 0; i < iovcnt && left; i++) {
        size_t k = iov[i].iov_len < left ? iov[i].iov_len : left;
        memcpy(iov[i].iov_base, src, k);
        src += k;
        left -= k;
        copied += k;
    }
    return (ssize_t)copied;
}

ssize_t __wrap_writev(int fd, const struct iovec *iov, int iovcnt)
{
    if (fd != fake_tun_fd)
        return __real_writev(fd, iov, iovcnt);
    if (tun_writes_n == MAX_RECORDS)
        die("too many TUN writes");
    tun_writes[tun_writes_n] = gather(iov, iovcnt);
    return (ssize_t)tun_writes[tun_writes_n++].len;
}

ssize_t __wrap_write(int fd, const void *buf, size_t len)
{
    struct iovec iov = { (void *)buf, len };

    if (fd != fake_tun_fd)
        return __real_write(fd, buf, len);
    return __wrap_writev(fd, &iov, 1);
}

/* ---- UDP -------------------------------------------------------------------- */

void fake_udp_queue(int fd, const uint8_t *data, size_t len, const struct fake_dgram *meta)
{
    struct queued_dgram *q;

    if (udp_in_n == MAX_RECORDS)
        die("too many datagrams queued");
    q = &udp_in[udp_in_n++];
    q->fd = fd;
    q->meta = *meta;
    memcpy(arena_take(len, &q->data), data, len);
}

size_t fake_udp_queued(void)
{
    return udp_in_n - udp_in_next;
}

/* The control messages the kernel would attach, as far as they fit. */
static void fill_control(struct msghdr *mh, const struct fake_dgram *m)
{
    size_t room = mh->msg_controllen, used = 0;
    uint8_t *buf = mh->msg_control;

    struct {
        int level, type;
        const void *data;
        size_t len;
    } want[3] = {
        { IPPROTO_IP, IP_PKTINFO, &m->pi4, sizeof(m->pi4) },
        { IPPROTO_IPV6, IPV6_PKTINFO, &m->pi6, sizeof(m->pi6) },
        { SOL_UDP, UDP_GRO, &m->gro_size, sizeof(m->gro_size) },
    };
    bool present[3] = { m->pktinfo4, m->pktinfo6, m->gro_size != 0 };

    for (int i = 0; i < 3; i++) {
        struct cmsghdr cm = { .cmsg_len = CMSG_LEN(want[i].len), .cmsg_level = want[i].level,
                              .cmsg_type = want[i].type };
        if (!present[i])
            continue;
        if (!buf || used + CMSG_SPACE(want[i].len) > room) {
            mh->msg_flags |= MSG_CTRUNC;
            break;
        }
        memset(buf + used, 0, CMSG_SPACE(want[i].len));
        memcpy(buf + used, &cm, sizeof(cm));
        memcpy(CMSG_DATA((struct cmsghdr *)(buf + used)), want[i].data, want[i].len);
        used += CMSG_SPACE(want[i].len);
    }
    mh->msg_controllen = used;
}

static void receive_one(struct mmsghdr *mm, const struct queued_dgram *q)
{
    struct msghdr *mh = &mm->msg_hdr;
    const uint8_t *src = arena + q->data.off;
    size_t left = q->data.len, copied = 0;

    mh->msg_flags = 0;
    for (size_t i = 0; i < mh->msg_iovlen && left; i++) {
        size_t k = mh->msg_iov[i].iov_len < left ? mh->msg_iov[i].iov_len : left;
        memcpy(mh->msg_iov[i].iov_base, src, k);
        src += k;
        left -= k;
        copied += k;
    }
    if (left)
        mh->msg_flags |= MSG_TRUNC;
    if (mh->msg_name) {
        socklen_t k = mh->msg_namelen < q->meta.from_len ? mh->msg_namelen : q->meta.from_len;
        memcpy(mh->msg_name, &q->meta.from, k);
        mh->msg_namelen = q->meta.from_len;
    }
    fill_control(mh, &q->meta);
    mm->msg_len = (unsigned int)copied;
}

int __wrap_recvmmsg(int fd, struct mmsghdr *msgs, unsigned int vlen, int flags,
                    struct timespec *timeout)
{
    unsigned int n = 0;

    if (fd != fake_udp4_fd && fd != fake_udp6_fd)
        return __real_recvmmsg(fd, msgs, vlen, flags, timeout);
    /* Datagrams come in the order they were queued, each from its own fd. */
    while (n < vlen && udp_in_next < udp_in_n && udp_in[udp_in_next].fd == fd)
        receive_one(&msgs[n++], &udp_in[udp_in_next++]);
    if (!n) {
        errno = EAGAIN;
        return -1;
    }
    return (int)n;
}

static uint16_t segment_size(const struct msghdr *mh)
{
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm; cm = CMSG_NXTHDR((struct msghdr *)mh, cm)) {
        uint16_t size;
        if (cm->cmsg_level == SOL_UDP && cm->cmsg_type == UDP_SEGMENT) {
            memcpy(&size, CMSG_DATA(cm), sizeof(size));
            return size;
        }
    }
    return 0;
}

static void record_send(int fd, struct msghdr *mh, const uint8_t *data, size_t len,
                        uint16_t gso)
{
    struct fake_sent *s;
    struct blob b;

    if (udp_out_n == MAX_RECORDS)
        die("too many datagrams sent");
    s = &udp_out[udp_out_n++];
    memcpy(arena_take(len, &b), data, len);
    *s = (struct fake_sent){ .fd = fd, .data = arena + b.off, .len = len, .gso_size = gso };
    if (mh->msg_name) {
        s->to_len = mh->msg_namelen < sizeof(s->to) ? mh->msg_namelen : sizeof(s->to);
        memcpy(&s->to, mh->msg_name, s->to_len);
    }
}

int __wrap_sendmmsg(int fd, struct mmsghdr *msgs, unsigned int vlen, int flags)
{
    if (fd != fake_udp4_fd && fd != fake_udp6_fd)
        return __real_sendmmsg(fd, msgs, vlen, flags);
    for (unsigned int m = 0; m < vlen; m++) {
        struct msghdr *mh = &msgs[m].msg_hdr;
        struct blob all = gather(mh->msg_iov, (int)mh->msg_iovlen);
        const uint8_t *p = arena + all.off;
        uint16_t gso = segment_size(mh);

        /* A UDP_SEGMENT send leaves as datagrams of gso bytes, the last shorter. */
        for (size_t off = 0; off < all.len || (off == 0 && all.len == 0);) {
            size_t k = gso && all.len - off > gso ? gso : all.len - off;
            record_send(fd, mh, p + off, k, gso);
            off += k;
            if (!k)
                break;
        }
        msgs[m].msg_len = (unsigned int)all.len;
    }
    return (int)vlen;
}

size_t fake_udp_sent_count(void)
{
    return udp_out_n;
}

const struct fake_sent *fake_udp_sent_at(size_t i)
{
    return &udp_out[i];
}
