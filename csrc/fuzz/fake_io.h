/*
 * fake_io.h - the TUN and UDP system calls of the data plane, answered in
 * memory for the fuzz drivers: no kernel, no threads, no sockets that reach
 * anywhere.
 *
 * The drivers link with -Wl,--wrap for readv, write, writev, recvmmsg and
 * sendmmsg; a call on one of the stand-in fds below is answered here
 * (reads from what the driver queued, writes and sends recorded), a call on
 * any other fd goes to the C library. The stand-in fds are real (a
 * /dev/null and two UDP sockets that are never bound), so the data plane's
 * fcntl and setsockopt calls on them succeed as they would on the real ones.
 * Each answer is what the kernel would give: truncation sets MSG_TRUNC,
 * packet-info and UDP_GRO come as control messages, UDP_SEGMENT sends are
 * cut into their datagrams.
 */
#pragma once
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "../wg_dp.h"

extern int fake_tun_fd, fake_udp4_fd, fake_udp6_fd;

/* Opens the stand-in fds (once). */
void fake_io_init(void);
/* Forgets everything queued and recorded. */
void fake_io_reset(void);
/* Settings for a device on the stand-in fds (no offloads, one crypto
 * thread, the protocol's timing, 64 events, 8 peers): the driver changes
 * what it needs and calls wg_dp_create, and never starts the threads. */
void fake_settings(struct wg_dp_settings *s);

/* ---- TUN: reads queued (one per readv, then EAGAIN), writes recorded ---- */
void fake_tun_queue(const uint8_t *data, size_t len);
size_t fake_tun_queue_left(void);       /* reads not taken yet */
size_t fake_tun_write_count(void);
const uint8_t *fake_tun_write_at(size_t i, size_t *len);

/* ---- UDP: datagrams queued for recvmmsg on an fd, sends recorded --------- */
struct fake_dgram {
    struct sockaddr_storage from;
    socklen_t from_len;
    bool pktinfo4, pktinfo6;            /* which packet-info control messages come */
    struct in_pktinfo pi4;
    struct in6_pktinfo pi6;
    int gro_size;                       /* a UDP_GRO control message with it, if nonzero */
};
void fake_udp_queue(int fd, const uint8_t *data, size_t len, const struct fake_dgram *meta);
size_t fake_udp_queued(void);           /* not received yet */

struct fake_sent {
    int fd;
    struct sockaddr_storage to;
    socklen_t to_len;
    const uint8_t *data;
    size_t len;
    uint16_t gso_size;                  /* the send's UDP_SEGMENT size, 0 if none */
};
size_t fake_udp_sent_count(void);
const struct fake_sent *fake_udp_sent_at(size_t i);
