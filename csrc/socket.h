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

/* Asks the kernel for the packet-info control messages on both sockets. */
void wg_socket_prepare(int udp4_fd, int udp6_fd);

/* Sends n datagrams to ep, waiting (bounded) for room in the socket buffer.
 * Returns how many were sent, or -errno when none can be (no endpoint, no
 * socket for its family). *src_rejected says the sticky source was refused
 * and dropped from ep. */
int wg_socket_send(struct wg_dp *dp, struct send_scratch *s, struct wg_endpoint *ep,
                   uint8_t *const *bufs, const uint32_t *lens, unsigned int n,
                   bool *src_rejected);

/* Receives up to DP_BATCH_SIZE datagrams from fd into the loop's buffers,
 * placed so that the plaintext of a type 4 message lands at packet->data.
 * Returns the count, 0 if none was waiting, -errno on error. */
int wg_socket_receive(struct wg_dp *dp, struct loop *l, int fd);
/* The source endpoint of received datagram i (with our local address). */
void wg_socket_source(struct loop *l, unsigned int i, struct wg_endpoint *ep);
