/*
 * socket.h - UDP I/O in batches: recvmmsg and sendmmsg on the IPv4 and IPv6
 * sockets, with the local address of each datagram (IP_PKTINFO,
 * IPV6_RECVPKTINFO) kept as the sticky source for replies.
 */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "device.h"
#include "queueing.h"

/* Asks the kernel for the packet-info control messages on both sockets, and
 * for the UDP offloads dp->offloads allows; records what each socket took. */
void wg_socket_prepare(struct wg_dp *dp, int udp4_fd, int udp6_fd);

enum send_flags {
    SEND_GSO = 1,                       /* in: UDP_SEGMENT may be used */
    SEND_SRC_REJECTED = 2,              /* out: the sticky source was refused, dropped from ep */
    SEND_GSO_REFUSED = 4,               /* out: a UDP_SEGMENT send was refused (resent one by one) */
    SEND_NO_WAIT = 8,                   /* in: a full send buffer drops, never waits (replies
                                           from the receive thread) */
};

/* Sends n datagrams to ep, waiting (bounded) for room in the socket buffer;
 * with SEND_GSO in *flags, runs of equal-size datagrams (the last may be
 * shorter) go in one UDP_SEGMENT send each where the socket supports it.
 * Returns how many were sent, or -errno when none can be (no endpoint, no
 * socket for its family); *flags gets the SEND_* outcomes. */
int wg_socket_send(struct wg_dp *dp, struct send_scratch *s, struct wg_endpoint *ep,
                   uint8_t *const *bufs, const uint32_t *lens, unsigned int n,
                   unsigned int *flags);

/* Sends the batch's datagrams, each to its own endpoint, with one sendmmsg per
 * socket, never waiting for room: on each socket the first one refused ends
 * its sendmmsg (b->sent[] says which went). Returns how many went; the batch
 * is left as it was. */
unsigned int wg_socket_send_each(struct wg_dp *dp, struct reply_batch *b);
/* wg_socket_send_each for the receive thread's cookie replies: what does not
 * go is dropped and counted; empties the batch. Returns how many went. */
unsigned int wg_socket_send_replies(struct wg_dp *dp, struct reply_batch *b);

/* Receives up to DP_BATCH_SIZE datagrams from fd into the loop's buffers
 * (with UDP_GRO, coalesced ones are split here, in place), placed so that the
 * plaintext of a type 4 message lands at packet->data; a batch takes the
 * datagrams that fit DP_BURST packets, and the next call the rest before it
 * receives more. Returns the packet count, 0 if none was waiting, -errno on
 * error; *more says the next call has (or may find) more. */
int wg_socket_receive(struct wg_dp *dp, struct loop *l, int fd, bool *more);
/* The source endpoint of received datagram msg (with our local address). */
void wg_socket_source(struct loop *l, unsigned int msg, struct wg_endpoint *ep);
